package record

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// JSON to msgpack: a hand-written single-pass parser. Why not encoding/json:
// it decodes into map[string]any, which loses key order and costs an
// allocation per value; this parser writes msgpack straight into dst and
// allocates nothing when dst has room.

// ErrNotObject is returned by AppendJSONObject for a well-formed JSON value
// that is not an object.
var ErrNotObject = errors.New("record: json value is not an object")

// JSONError reports malformed JSON input and where it was found. Its
// messages follow encoding/json's, e.g. "invalid character 'b' looking for
// beginning of object key string at offset 1".
type JSONError struct {
	Msg    string // what is wrong, without the offset
	Offset int    // byte offset in the input of the offending byte; its length at the end of input
	Err    error  // ErrDepth for nesting beyond MaxDepth, else nil
}

func (e *JSONError) Error() string {
	return e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns e.Err.
func (e *JSONError) Unwrap() error { return e.Err }

func jsonErr(off int, msg string) error {
	return &JSONError{Msg: msg, Offset: off}
}

func jsonEOF(data []byte) error {
	return jsonErr(len(data), "unexpected end of JSON input")
}

func jsonBadChar(data []byte, i int, context string) error {
	return jsonErr(i, "invalid character "+quoteChar(data[i])+" "+context)
}

// quoteChar formats c as encoding/json does in its error messages.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// AppendJSONObject parses line, which must hold exactly one JSON object with
// optional surrounding whitespace, and appends it to dst as a msgpack map
// with the keys in input order (duplicates kept). Integers that fit int64
// (or uint64) become msgpack integers, other numbers float64. Invalid UTF-8
// in strings is copied as is.
//
// Errors are *JSONError, or ErrNotObject for a valid JSON value of another
// type. On error dst is returned with its original length.
func AppendJSONObject(dst []byte, line []byte) ([]byte, error) {
	i := skipSpace(line, 0)
	if i < len(line) && line[i] != '{' {
		// Parse anyway so that malformed input reports where it breaks.
		if _, err := AppendJSONValue(dst, line); err != nil {
			return dst, err
		}
		return dst, ErrNotObject
	}
	return appendJSONTop(dst, line, i)
}

// AppendJSONValue parses data, which must hold exactly one JSON value of any
// type with optional surrounding whitespace, and appends it to dst as
// msgpack, following the rules of AppendJSONObject.
func AppendJSONValue(dst []byte, data []byte) ([]byte, error) {
	return appendJSONTop(dst, data, skipSpace(data, 0))
}

func appendJSONTop(dst, data []byte, i int) ([]byte, error) {
	n := len(dst)
	p := jsonParser{data: data, budget: 4*len(data) + 256}
	out, err := p.parse(dst, i)
	if err == errWiden {
		p.wide = true
		if out, err = p.parse(dst, i); err == nil {
			out = out[:n+compactHeaders(out[n:])]
		}
	}
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// jsonParser writes JSON as msgpack.
//
// Map and array headers come before their elements, but the number of
// elements is known only at their end. Why not a first pass to count them:
// that scans every nested value once per level. Instead each container gets
// a one-byte placeholder, enough for up to 15 elements (most log records),
// and a larger container moves its body up by 2 or 4 bytes when it ends.
// Moving is linear in the body, so nesting large containers deep makes it
// quadratic: past a budget of bytes moved, parsing starts again in wide
// mode, where every header takes 5 bytes and one final pass
// (compactHeaders) shrinks them all.
type jsonParser struct {
	data   []byte
	wide   bool // 5-byte headers throughout
	moved  int  // bytes moved to widen headers
	budget int  // bytes that may be moved before going wide
}

// errWiden stops a parse that moved too many bytes.
var errWiden = errors.New("record: json parse needs wide headers")

func (p *jsonParser) parse(dst []byte, i int) ([]byte, error) {
	dst, i, err := p.value(dst, i, 0)
	if err != nil {
		return dst, err
	}
	if i = skipSpace(p.data, i); i < len(p.data) {
		return dst, jsonBadChar(p.data, i, "after top-level value")
	}
	return dst, nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value appends the JSON value starting at data[i], which follows any
// whitespace, and returns the offset just past it. depth counts the
// enclosing objects and arrays.
func (p *jsonParser) value(dst []byte, i, depth int) ([]byte, int, error) {
	data := p.data
	if i >= len(data) {
		return dst, i, jsonEOF(data)
	}
	switch c := data[i]; c {
	case '"':
		return parseString(dst, data, i)
	case '{':
		return p.object(dst, i, depth+1)
	case '[':
		return p.array(dst, i, depth+1)
	case 't':
		i, err := parseLiteral(data, i, "true")
		return AppendBool(dst, true), i, err
	case 'f':
		i, err := parseLiteral(data, i, "false")
		return AppendBool(dst, false), i, err
	case 'n':
		i, err := parseLiteral(data, i, "null")
		return AppendNil(dst), i, err
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return parseNumber(dst, data, i)
		}
		return dst, i, jsonBadChar(data, i, "looking for beginning of value")
	}
}

func parseLiteral(data []byte, i int, lit string) (int, error) {
	for k := 1; k < len(lit); k++ {
		if i+k >= len(data) {
			return i, jsonEOF(data)
		}
		if data[i+k] != lit[k] {
			return i, jsonBadChar(data, i+k, "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	return i + len(lit), nil
}

// open checks the depth of a new container and appends its placeholder
// header.
func (p *jsonParser) open(dst []byte, i, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return dst, &JSONError{Msg: "exceeded max depth " + strconv.Itoa(MaxDepth), Offset: i, Err: ErrDepth}
	}
	if p.wide {
		return append(dst, 0, 0, 0, 0, 0), nil
	}
	return append(dst, 0), nil
}

// close writes the header of the map or array of n elements whose
// placeholder is at dst[start].
func (p *jsonParser) close(dst []byte, start, n int, isMap bool) ([]byte, error) {
	if p.wide {
		dst[start] = mArray32
		if isMap {
			dst[start] = mMap32
		}
		binary.BigEndian.PutUint32(dst[start+1:], uint32(n))
		return dst, nil
	}
	var hb [5]byte
	var h []byte
	if isMap {
		h = AppendMapHeader(hb[:0], n)
	} else {
		h = AppendArrayHeader(hb[:0], n)
	}
	if len(h) == 1 {
		dst[start] = h[0]
		return dst, nil
	}
	end := len(dst)
	if p.moved += end - start; p.moved > p.budget {
		return dst, errWiden
	}
	dst = append(dst, h[1:]...)
	copy(dst[start+len(h):], dst[start+1:end])
	copy(dst[start:], h)
	return dst, nil
}

// compactHeaders shrinks in place the 5-byte map and array headers of the
// msgpack values in b, written in wide mode, to their smallest form, and
// returns the new length of b.
func compactHeaders(b []byte) int {
	r, w := 0, 0
	for r < len(b) {
		var hb [5]byte
		switch c := b[r]; c {
		case mMap32, mArray32:
			n := int(binary.BigEndian.Uint32(b[r+1:]))
			h := AppendArrayHeader(hb[:0], n)
			if c == mMap32 {
				h = AppendMapHeader(hb[:0], n)
			}
			w += copy(b[w:], h)
			r += 5
		default:
			// In wide mode no other token holds values: skip steps
			// over exactly this one.
			end, err := skip(b, r, 0)
			if err != nil {
				panic("record: invalid msgpack written from JSON: " + err.Error())
			}
			w += copy(b[w:], b[r:end])
			r = end
		}
	}
	return w
}

// object parses the object at data[i] == '{'; depth includes it.
func (p *jsonParser) object(dst []byte, i, depth int) ([]byte, int, error) {
	data := p.data
	start := len(dst)
	dst, err := p.open(dst, i, depth)
	if err != nil {
		return dst, i, err
	}
	n := 0
	if i = skipSpace(data, i+1); i < len(data) && data[i] == '}' {
		dst, err = p.close(dst, start, n, true)
		return dst, i + 1, err
	}
	for {
		if i >= len(data) {
			return dst, i, jsonEOF(data)
		}
		if data[i] != '"' {
			return dst, i, jsonBadChar(data, i, "looking for beginning of object key string")
		}
		if dst, i, err = parseString(dst, data, i); err != nil {
			return dst, i, err
		}
		if i = skipSpace(data, i); i >= len(data) {
			return dst, i, jsonEOF(data)
		}
		if data[i] != ':' {
			return dst, i, jsonBadChar(data, i, "after object key")
		}
		i = skipSpace(data, i+1)
		if dst, i, err = p.value(dst, i, depth); err != nil {
			return dst, i, err
		}
		n++
		if i = skipSpace(data, i); i >= len(data) {
			return dst, i, jsonEOF(data)
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			dst, err = p.close(dst, start, n, true)
			return dst, i + 1, err
		default:
			return dst, i, jsonBadChar(data, i, "after object key:value pair")
		}
	}
}

// array parses the array at data[i] == '['; depth includes it.
func (p *jsonParser) array(dst []byte, i, depth int) ([]byte, int, error) {
	data := p.data
	start := len(dst)
	dst, err := p.open(dst, i, depth)
	if err != nil {
		return dst, i, err
	}
	n := 0
	if i = skipSpace(data, i+1); i < len(data) && data[i] == ']' {
		dst, err = p.close(dst, start, n, false)
		return dst, i + 1, err
	}
	for {
		if dst, i, err = p.value(dst, i, depth); err != nil {
			return dst, i, err
		}
		n++
		if i = skipSpace(data, i); i >= len(data) {
			return dst, i, jsonEOF(data)
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			dst, err = p.close(dst, start, n, false)
			return dst, i + 1, err
		default:
			return dst, i, jsonBadChar(data, i, "after array element")
		}
	}
}

// plainStr marks the bytes that stand for themselves inside a JSON string.
var plainStr = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// parseString parses the string at data[i] == '"'.
func parseString(dst, data []byte, i int) ([]byte, int, error) {
	j := i + 1
	for j+8 <= len(data) && !hasStringSpecial(binary.LittleEndian.Uint64(data[j:])) {
		j += 8
	}
	for j < len(data) && plainStr[data[j]] {
		j++
	}
	if j >= len(data) {
		return dst, j, jsonEOF(data)
	}
	if data[j] == '"' {
		return AppendStringBytes(dst, data[i+1:j]), j + 1, nil
	}
	return parseEscapedString(dst, data, i+1, j)
}

// parseEscapedString finishes a string whose text starts at data[s] and
// whose first escape or control character is at data[j]. The text is
// unescaped at the end of dst, then written as a str after it and moved
// down: its header's size is known only at the end.
func parseEscapedString(dst, data []byte, s, j int) ([]byte, int, error) {
	p := len(dst)
	dst = append(dst, data[s:j]...)
	for {
		k := j
		for k < len(data) && plainStr[data[k]] {
			k++
		}
		dst = append(dst, data[j:k]...)
		if j = k; j >= len(data) {
			return dst, j, jsonEOF(data)
		}
		switch c := data[j]; {
		case c == '"':
			end := len(dst)
			dst = AppendStringBytes(dst, dst[p:end])
			n := copy(dst[p:], dst[end:])
			return dst[:p+n], j + 1, nil
		case c < 0x20:
			return dst, j, jsonBadChar(data, j, "in string literal")
		}
		// A backslash.
		j++
		if j >= len(data) {
			return dst, j, jsonEOF(data)
		}
		switch c := data[j]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, err := hex4(data, j+1)
			if err != nil {
				return dst, j, err
			}
			j += 4
			if 0xd800 <= r && r < 0xe000 {
				// Surrogates: a high one followed by an escaped low one
				// make a pair; anything else is U+FFFD, as encoding/json
				// does, and the next escape is read on its own.
				r2 := rune(-1)
				if j+6 < len(data) && data[j+1] == '\\' && data[j+2] == 'u' {
					r2, _ = hex4(data, j+3)
				}
				if r < 0xdc00 && 0xdc00 <= r2 && r2 < 0xe000 {
					r = 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
					j += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, j, jsonBadChar(data, j, "in string escape code")
		}
		j++
	}
}

// hex4 decodes the four hex digits at data[i:] of a \u escape.
func hex4(data []byte, i int) (rune, error) {
	var r rune
	for k := i; k < i+4; k++ {
		if k >= len(data) {
			return -1, jsonEOF(data)
		}
		c := data[k]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1, jsonBadChar(data, k, `in \u hexadecimal character escape`)
		}
		r = r<<4 | rune(c)
	}
	return r, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseNumber parses the number at data[i], a '-' or a digit.
func parseNumber(dst, data []byte, i int) ([]byte, int, error) {
	start := i
	neg := data[i] == '-'
	if neg {
		if i++; i >= len(data) {
			return dst, i, jsonEOF(data)
		}
	}
	var v uint64
	overflow := false
	switch c := data[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		for ; i < len(data) && isDigit(data[i]); i++ {
			d := uint64(data[i] - '0')
			if v > (math.MaxUint64-d)/10 {
				overflow = true
			}
			v = v*10 + d
		}
	default:
		return dst, i, jsonBadChar(data, i, "in numeric literal")
	}
	isFloat := false
	if i < len(data) && data[i] == '.' {
		isFloat = true
		if i++; i >= len(data) {
			return dst, i, jsonEOF(data)
		}
		if !isDigit(data[i]) {
			return dst, i, jsonBadChar(data, i, "after decimal point in numeric literal")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		isFloat = true
		if i++; i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			return dst, i, jsonEOF(data)
		}
		if !isDigit(data[i]) {
			return dst, i, jsonBadChar(data, i, "in exponent of numeric literal")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if !isFloat && !overflow {
		switch {
		case !neg && v <= math.MaxInt64:
			return AppendInt(dst, int64(v)), i, nil
		case !neg:
			return AppendUint(dst, v), i, nil
		case v <= 1<<63:
			return AppendInt(dst, int64(-v)), i, nil
		}
	}
	f, err := strconv.ParseFloat(string(data[start:i]), 64)
	if err != nil {
		// The syntax is checked above: this is a number beyond float64,
		// which encoding/json refuses too.
		return dst, start, jsonErr(start, "number "+string(data[start:i])+" out of range")
	}
	return AppendFloat(dst, f), i, nil
}

// msgpack to JSON.

func truncatedAt(i int) error { return fmt.Errorf("%w at offset %d", ErrTruncated, i) }

// AppendJSON appends the first msgpack value in msg to dst as compact JSON
// and returns the number of bytes of msg it used.
//
// Maps become objects with their keys in order; a key that is not a string
// becomes the JSON string of its FormatText form (a map or array key must
// not hold another map or array key). Strings are escaped as
// encoding/json does without HTML escaping, invalid UTF-8 turned into
// U+FFFD; bin is base64 (standard encoding) like []byte in encoding/json;
// floats are formatted as by encoding/json, NaN and infinities as null;
// timestamps (extension -1) are RFC 3339 strings in UTC. Other extensions,
// truncated or invalid input and nesting beyond MaxDepth are errors
// (wrapping ErrInvalid, ErrTruncated or ErrDepth); dst is then returned with
// its original length.
func AppendJSON(dst []byte, msg []byte) ([]byte, int, error) {
	n := len(dst)
	out, i, err := appendJSON(dst, msg, 0, 0, false)
	if err != nil {
		return dst[:n], 0, err
	}
	return out, i, nil
}

// FormatText appends a text form of the msgpack value raw, for table cells
// and plain text output: strings as they are, bin as base64, numbers as in
// JSON, nil as null, booleans as true and false, timestamps as RFC 3339 in
// UTC, maps and arrays as compact JSON (see AppendJSON). If raw is not
// exactly one valid value it appends "<invalid>".
func FormatText(dst []byte, raw []byte) []byte {
	n := len(dst)
	out, i, err := appendText(dst, raw, 0, 0, false)
	if err != nil || i != len(raw) {
		return append(dst[:n], "<invalid>"...)
	}
	return out
}

// appendJSON appends the value at msg[i] as JSON and returns the offset just
// past it. depth counts the enclosing maps and arrays.
func appendJSON(dst, msg []byte, i, depth int, inKey bool) ([]byte, int, error) {
	if i >= len(msg) {
		return dst, i, truncatedAt(i)
	}
	c := msg[i]
	switch {
	case c <= 0x7f:
		return strconv.AppendUint(dst, uint64(c), 10), i + 1, nil
	case c >= 0xe0:
		return strconv.AppendInt(dst, int64(int8(c)), 10), i + 1, nil
	case c <= 0x8f:
		return appendJSONMap(dst, msg, i+1, int(c&0x0f), depth+1, inKey)
	case c <= 0x9f:
		return appendJSONArray(dst, msg, i+1, int(c&0x0f), depth+1, inKey)
	case c <= 0xbf:
		return appendJSONStr(dst, msg, i)
	}
	switch c {
	case mStr8, mStr16, mStr32:
		return appendJSONStr(dst, msg, i)
	case mNil:
		return append(dst, "null"...), i + 1, nil
	case mFalse:
		return append(dst, "false"...), i + 1, nil
	case mTrue:
		return append(dst, "true"...), i + 1, nil
	case mFloat32:
		if len(msg)-i < 5 {
			return dst, i, truncatedAt(i)
		}
		f := math.Float32frombits(binary.BigEndian.Uint32(msg[i+1:]))
		return appendJSONFloat(dst, float64(f), 32), i + 5, nil
	case mFloat64:
		if len(msg)-i < 9 {
			return dst, i, truncatedAt(i)
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(msg[i+1:]))
		return appendJSONFloat(dst, f, 64), i + 9, nil
	case mUint8, mUint16, mUint32, mUint64:
		w := 1 << (c - mUint8)
		if len(msg)-i <= w {
			return dst, i, truncatedAt(i)
		}
		return strconv.AppendUint(dst, beUint(msg[i+1:], w), 10), i + 1 + w, nil
	case mInt8, mInt16, mInt32, mInt64:
		w := 1 << (c - mInt8)
		if len(msg)-i <= w {
			return dst, i, truncatedAt(i)
		}
		u := beUint(msg[i+1:], w)
		shift := 64 - 8*w // sign-extend
		return strconv.AppendInt(dst, int64(u<<shift)>>shift, 10), i + 1 + w, nil
	case mArray16, mArray32, mMap16, mMap32:
		w := 2
		if c == mArray32 || c == mMap32 {
			w = 4
		}
		n, err := lenAt(msg, i+1, w)
		if err != nil {
			return dst, i, truncatedAt(i)
		}
		if c == mArray16 || c == mArray32 {
			return appendJSONArray(dst, msg, i+1+w, n, depth+1, inKey)
		}
		return appendJSONMap(dst, msg, i+1+w, n, depth+1, inKey)
	}
	// bin and ext: the same in JSON as in text, quoted.
	switch KindOf(msg[i:]) {
	case KindBinary, KindTime, KindExt:
		dst = append(dst, '"')
		dst, i, err := appendText(dst, msg, i, depth, inKey)
		return append(dst, '"'), i, err
	}
	return dst, i, fmt.Errorf("%w: byte 0x%02x at offset %d", ErrInvalid, c, i)
}

// appendJSONStr appends the str at msg[i] as a JSON string.
func appendJSONStr(dst, msg []byte, i int) ([]byte, int, error) {
	s, end, err := payload(msg, i)
	if err != nil {
		return dst, i, err
	}
	return appendJSONString(dst, s), end, nil
}

// beUint reads a big-endian unsigned integer of w bytes (1, 2, 4 or 8).
func beUint(b []byte, w int) uint64 {
	switch w {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	}
	return binary.BigEndian.Uint64(b)
}

// payload returns the bytes of the str or bin value at msg[i] and the offset
// just past it.
func payload(msg []byte, i int) ([]byte, int, error) {
	c := msg[i]
	n, w := int(c&0x1f), 0 // length, and width of the length field
	switch c {
	case mStr8, mBin8:
		w = 1
	case mStr16, mBin16:
		w = 2
	case mStr32, mBin32:
		w = 4
	}
	if w > 0 {
		var err error
		if n, err = lenAt(msg, i+1, w); err != nil {
			return nil, i, truncatedAt(i)
		}
	}
	p := i + 1 + w
	if n > len(msg)-p {
		return nil, i, truncatedAt(i)
	}
	return msg[p : p+n], p + n, nil
}

func appendJSONMap(dst, msg []byte, i, n, depth int, inKey bool) ([]byte, int, error) {
	if depth > MaxDepth {
		return dst, i, fmt.Errorf("%w at offset %d", ErrDepth, i)
	}
	dst = append(dst, '{')
	var err error
	for k := 0; k < n; k++ {
		if k > 0 {
			dst = append(dst, ',')
		}
		if dst, i, err = appendJSONKey(dst, msg, i, depth, inKey); err != nil {
			return dst, i, err
		}
		dst = append(dst, ':')
		if dst, i, err = appendJSON(dst, msg, i, depth, inKey); err != nil {
			return dst, i, err
		}
	}
	return append(dst, '}'), i, nil
}

func appendJSONArray(dst, msg []byte, i, n, depth int, inKey bool) ([]byte, int, error) {
	if depth > MaxDepth {
		return dst, i, fmt.Errorf("%w at offset %d", ErrDepth, i)
	}
	dst = append(dst, '[')
	var err error
	for k := 0; k < n; k++ {
		if k > 0 {
			dst = append(dst, ',')
		}
		if dst, i, err = appendJSON(dst, msg, i, depth, inKey); err != nil {
			return dst, i, err
		}
	}
	return append(dst, ']'), i, nil
}

// appendJSONKey appends the map key at msg[i] as a JSON string: a str as
// such, anything else as the JSON string of its text form, which is first
// written at the end of dst and then moved down, quoted. inKey tells that
// the map is itself inside a key.
//
// A map or array key inside a key is an error: each such level escapes the
// text of the one inside again, which doubles its backslashes, and a few
// dozen bytes of input could fill the memory.
func appendJSONKey(dst, msg []byte, i, depth int, inKey bool) ([]byte, int, error) {
	if i < len(msg) {
		if c := msg[i]; c&0xe0 == 0xa0 || c == mStr8 || c == mStr16 || c == mStr32 {
			return appendJSON(dst, msg, i, depth, inKey)
		}
	}
	if k := KindOf(msg[min(i, len(msg)):]); inKey && (k == KindMap || k == KindArray) {
		return dst, i, fmt.Errorf("%w: %s as a map key inside a map key at offset %d", ErrInvalid, k, i)
	}
	start := len(dst)
	dst, i, err := appendText(dst, msg, i, depth, true)
	if err != nil {
		return dst, i, err
	}
	end := len(dst)
	dst = appendJSONString(dst, dst[start:end])
	n := copy(dst[start:], dst[end:])
	return dst[:start+n], i, nil
}

// appendText appends the text form of the value at msg[i] (see FormatText)
// and returns the offset just past it.
func appendText(dst, msg []byte, i, depth int, inKey bool) ([]byte, int, error) {
	switch KindOf(msg[min(i, len(msg)):]) {
	case KindString:
		s, end, err := payload(msg, i)
		if err != nil {
			return dst, i, err
		}
		return append(dst, s...), end, nil
	case KindBinary:
		s, end, err := payload(msg, i)
		if err != nil {
			return dst, i, err
		}
		return base64.StdEncoding.AppendEncode(dst, s), end, nil
	case KindTime:
		end, err := skip(msg, i, 0)
		if err != nil {
			return dst, i, fmt.Errorf("%w at offset %d", err, i)
		}
		t, ok := Time(msg[i:end])
		if !ok {
			return dst, i, fmt.Errorf("%w: bad timestamp at offset %d", ErrInvalid, i)
		}
		return t.AppendFormat(dst, time.RFC3339Nano), end, nil
	case KindExt:
		if _, err := skip(msg, i, 0); err != nil {
			return dst, i, fmt.Errorf("%w at offset %d", err, i)
		}
		typ := msg[i+1] // fixext: type follows the format byte
		switch msg[i] {
		case mExt8:
			typ = msg[i+2]
		case mExt16:
			typ = msg[i+3]
		case mExt32:
			typ = msg[i+5]
		}
		return dst, i, fmt.Errorf("%w: unsupported extension type %d at offset %d", ErrInvalid, int8(typ), i)
	}
	return appendJSON(dst, msg, i, depth, inKey)
}

// appendJSONFloat formats f as encoding/json does for a float of the given
// bit size, with null for NaN and infinities.
func appendJSONFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// jsonPlain marks the ASCII bytes written as they are in a JSON string.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a quoted JSON string, escaped as
// encoding/json does with SetEscapeHTML(false).
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && !hasJSONSpecial(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid JavaScript: encoding/json escapes them.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// SWAR (SIMD within a register) tests on 8 bytes at a time, for the common
// run of plain ASCII in strings. Each is exact about whether some byte
// matches, which is all the callers ask.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasLess tells whether some byte of x is below n (n <= 0x80).
func hasLess(x uint64, n byte) bool { return (x-lsb*uint64(n))&^x&msb != 0 }

// hasByte tells whether some byte of x is c.
func hasByte(x uint64, c byte) bool { return hasLess(x^(lsb*uint64(c)), 1) }

// hasStringSpecial tells whether some byte of x ends a plain run in a JSON
// string being parsed: a control character, '"' or '\\'.
func hasStringSpecial(x uint64) bool {
	return hasLess(x, 0x20) || hasByte(x, '"') || hasByte(x, '\\')
}

// hasJSONSpecial is hasStringSpecial, or a byte outside ASCII.
func hasJSONSpecial(x uint64) bool { return x&msb != 0 || hasStringSpecial(x) }

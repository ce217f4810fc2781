package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// cat joins msgpack pieces built with the Append functions.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func str(s string) []byte { return AppendString(nil, s) }
func num(v int64) []byte  { return AppendInt(nil, v) }
func flt(v float64) []byte {
	return AppendFloat(nil, v)
}
func mapHdr(n int) []byte { return AppendMapHeader(nil, n) }
func arrHdr(n int) []byte { return AppendArrayHeader(nil, n) }

// jsonMsgpackTests lists JSON objects and the exact msgpack they become.
var jsonMsgpackTests = []struct {
	name string
	in   string
	want []byte
}{
	{"empty", `{}`, mapHdr(0)},
	{"spaces", " \t\r\n{ \"a\" :\t1 }\n", cat(mapHdr(1), str("a"), num(1))},
	{"key order kept", `{"b":1,"a":2}`, cat(mapHdr(2), str("b"), num(1), str("a"), num(2))},
	{"duplicate keys kept", `{"a":1,"a":2}`, cat(mapHdr(2), str("a"), num(1), str("a"), num(2))},
	{"literals", `{"t":true,"f":false,"n":null}`,
		cat(mapHdr(3), str("t"), AppendBool(nil, true), str("f"), AppendBool(nil, false), str("n"), AppendNil(nil))},
	{"ints", `{"a":0,"b":-0,"c":127,"d":128,"e":-32,"f":-33,"g":65536}`,
		cat(mapHdr(7), str("a"), num(0), str("b"), num(0), str("c"), num(127), str("d"), num(128),
			str("e"), num(-32), str("f"), num(-33), str("g"), num(65536))},
	{"int64 limits", `{"max":9223372036854775807,"min":-9223372036854775808}`,
		cat(mapHdr(2), str("max"), num(math.MaxInt64), str("min"), num(math.MinInt64))},
	{"uint64", `{"a":9223372036854775808,"b":18446744073709551615}`,
		cat(mapHdr(2), str("a"), AppendUint(nil, 1<<63), str("b"), AppendUint(nil, math.MaxUint64))},
	{"beyond uint64 and int64", `{"a":18446744073709551616,"b":-9223372036854775809}`,
		cat(mapHdr(2), str("a"), flt(18446744073709551616), str("b"), flt(-9223372036854775809))},
	{"floats", `{"a":1.5,"b":-2e3,"c":1E-7,"d":0.0,"e":1e+2,"f":-0.0}`,
		cat(mapHdr(6), str("a"), flt(1.5), str("b"), flt(-2000), str("c"), flt(1e-7), str("d"), flt(0),
			str("e"), flt(100), str("f"), flt(math.Copysign(0, -1)))},
	{"tiny float", `{"a":1e-400}`, cat(mapHdr(1), str("a"), flt(0))},
	{"escapes", `{"s":"\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac"}`,
		cat(mapHdr(1), str("s"), str("\"\\/\b\f\n\r\tAé€"))},
	{"surrogate pair", `{"s":"\ud83d\ude00x"}`, cat(mapHdr(1), str("s"), str("😀x"))},
	{"lone high surrogate", `{"s":"\ud83dx"}`, cat(mapHdr(1), str("s"), str("\ufffdx"))},
	{"high surrogate then escape", `{"s":"\ud83d\n"}`, cat(mapHdr(1), str("s"), str("\ufffd\n"))},
	{"two high surrogates", `{"s":"\ud83d\ud83d\ude00"}`, cat(mapHdr(1), str("s"), str("\ufffd😀"))},
	{"lone low surrogate", `{"s":"\ude00"}`, cat(mapHdr(1), str("s"), str("\ufffd"))},
	{"escaped key", `{"k\u00e9":1}`, cat(mapHdr(1), str("ké"), num(1))},
	{"utf8 and html kept", `{"s":"é<>&\u2028"}`, cat(mapHdr(1), str("s"), str("é<>&\u2028"))},
	{"invalid utf8 kept", "{\"s\":\"a\xffb\"}", cat(mapHdr(1), str("s"), str("a\xffb"))},
	{"nested", `{"a":{"b":[1,[],{}]}}`,
		cat(mapHdr(1), str("a"), mapHdr(1), str("b"), arrHdr(3), num(1), arrHdr(0), mapHdr(0))},
	{"str8", `{"s":"` + strings.Repeat("x", 40) + `"}`, cat(mapHdr(1), str("s"), str(strings.Repeat("x", 40)))},
	{"escaped str shrinks to fixstr", `{"s":"` + strings.Repeat(`\n`, 20) + `"}`,
		cat(mapHdr(1), str("s"), str(strings.Repeat("\n", 20)))},
	{"escaped str16", `{"s":"` + strings.Repeat(`x\t`, 200) + `"}`,
		cat(mapHdr(1), str("s"), str(strings.Repeat("x\t", 200)))},
	{"map16", `{` + jsonKeys(16) + `}`, cat(mapHdr(16), msgpackKeys(16))},
	{"map16 nested", `{"m":{` + jsonKeys(20) + `},"z":1}`,
		cat(mapHdr(2), str("m"), mapHdr(20), msgpackKeys(20), str("z"), num(1))},
	{"array16", `{"a":[` + strings.Repeat("1,", 17) + `1]}`,
		cat(mapHdr(1), str("a"), arrHdr(18), bytes.Repeat(num(1), 18))},
	{"array32", `{"a":[` + strings.Repeat("0,", 70000) + `0]}`,
		cat(mapHdr(1), str("a"), arrHdr(70001), bytes.Repeat(num(0), 70001))},
}

func jsonKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k`)
		b.WriteString(string(rune('a' + i)))
		b.WriteString(`":`)
		b.WriteString(string(rune('0' + i%10)))
	}
	return b.String()
}

func msgpackKeys(n int) []byte {
	var b []byte
	for i := range n {
		b = AppendString(b, "k"+string(rune('a'+i)))
		b = AppendInt(b, int64(i%10))
	}
	return b
}

func TestAppendJSONObject(t *testing.T) {
	for _, tt := range jsonMsgpackTests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, err := AppendJSONObject(prefix, []byte(tt.in))
			if err != nil {
				t.Fatalf("AppendJSONObject(%.80q): %v", tt.in, err)
			}
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("prefix lost: %q", got[:min(len(got), 10)])
			}
			got = got[len(prefix):]
			if !bytes.Equal(got, tt.want) {
				t.Errorf("AppendJSONObject(%.80q)\n got %.80x\nwant %.80x", tt.in, got, tt.want)
			}
			if n, err := Skip(got); err != nil || n != len(got) {
				t.Errorf("Skip = %d, %v; want %d", n, err, len(got))
			}
		})
	}
}

// TestWideHeaders checks that parsing in wide mode and compacting gives the
// same msgpack as moving headers, and that nesting large containers deep
// switches to wide mode with the same result.
func TestWideHeaders(t *testing.T) {
	parse := func(in string, p jsonParser) []byte {
		t.Helper()
		p.data = []byte(in)
		out, err := p.parse([]byte("prefix"), skipSpace(p.data, 0))
		if err != nil {
			t.Fatalf("parse(%.80q): %v", in, err)
		}
		if p.wide {
			out = out[:6+compactHeaders(out[6:])]
		}
		return out[6:]
	}
	var inputs []string
	for _, tt := range jsonMsgpackTests {
		inputs = append(inputs, tt.in)
	}
	for _, tt := range roundTripTests {
		inputs = append(inputs, tt.in)
	}
	// 999 levels of arrays of 17 elements, the last one nesting further:
	// moving headers would move about 16 MB.
	deep := `{"a":` + strings.Repeat("[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,", 999) + "0" + strings.Repeat("]", 999) + `}`
	inputs = append(inputs, deep)
	for _, in := range inputs {
		want := parse(in, jsonParser{budget: math.MaxInt})
		if got := parse(in, jsonParser{wide: true}); !bytes.Equal(got, want) {
			t.Errorf("wide parse of %.80q\n got %.80x\nwant %.80x", in, got, want)
		}
		got, err := AppendJSONObject(nil, []byte(in))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("AppendJSONObject(%.80q) = %.80x, %v\nwant %.80x", in, got, err, want)
		}
	}
	p := jsonParser{data: []byte(deep), budget: 4*len(deep) + 256}
	if _, err := p.parse(nil, 0); err != errWiden {
		t.Errorf("deep input parsed without going wide: %v", err)
	}
}

// TestAppendJSONObjectMatchesEncodingJSON decodes our msgpack with
// vmihailenco/msgpack and compares it with what encoding/json makes of the
// same input.
func TestAppendJSONObjectMatchesEncodingJSON(t *testing.T) {
	for _, tt := range jsonMsgpackTests {
		t.Run(tt.name, func(t *testing.T) {
			checkAgainstEncodingJSON(t, []byte(tt.in))
		})
	}
	for _, tt := range roundTripTests {
		t.Run(tt.in, func(t *testing.T) {
			checkAgainstEncodingJSON(t, []byte(tt.in))
		})
	}
}

func checkAgainstEncodingJSON(t *testing.T, in []byte) {
	t.Helper()
	var want any
	if err := json.Unmarshal(in, &want); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	mp, err := AppendJSONObject(nil, in)
	if err != nil {
		t.Fatalf("AppendJSONObject(%.80q): %v", in, err)
	}
	var got any
	if err := msgpack.Unmarshal(mp, &got); err != nil {
		t.Fatalf("msgpack.Unmarshal(%x): %v", mp, err)
	}
	got, ok := asJSONTypes(got)
	if !ok {
		t.Fatalf("input %.80q has keys that are the same once made valid UTF-8", in)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("input %.80q\nmsgpack decodes to %.200v\nencoding/json gives %.200v", in, got, want)
	}
}

// asJSONTypes turns a value decoded by vmihailenco/msgpack into the types
// encoding/json decodes to: numbers float64, strings valid UTF-8. ok is false
// if two keys of a map become the same: which one wins is then lost with the
// order of the decoded map.
func asJSONTypes(v any) (_ any, ok bool) {
	switch x := v.(type) {
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return reflect.ValueOf(x).Convert(reflect.TypeFor[float64]()).Interface(), true
	case float32:
		return float64(x), true
	case string:
		return validUTF8(x), true
	case []any:
		for i := range x {
			if x[i], ok = asJSONTypes(x[i]); !ok {
				return nil, false
			}
		}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			if m[validUTF8(k)], ok = asJSONTypes(e); !ok {
				return nil, false
			}
		}
		return m, len(m) == len(x)
	}
	return v, true
}

// validUTF8 replaces each invalid byte with U+FFFD, as encoding/json does.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s { // ranging yields U+FFFD per invalid byte
		b.WriteRune(r)
	}
	return b.String()
}

// roundTripTests lists JSON objects and the JSON that AppendJSON writes for
// their msgpack form.
var roundTripTests = []struct {
	in, want string
}{
	{`{}`, `{}`},
	{`{"a":1,"b":[true,null,1.5,"x\u00e9\n"],"c":{"d":-3}}`, `{"a":1,"b":[true,null,1.5,"xé\n"],"c":{"d":-3}}`},
	{` { "z" : [ ] , "a" : { } } `, `{"z":[],"a":{}}`},
	{`{"a":1,"a":2}`, `{"a":1,"a":2}`},
	{`{"n":-0,"f":-0.0,"g":1.0,"h":1e21,"i":1e20,"j":1e-7,"k":0.000001,"l":123456789e-15}`,
		`{"n":0,"f":-0,"g":1,"h":1e+21,"i":100000000000000000000,"j":1e-7,"k":0.000001,"l":1.23456789e-7}`},
	{`{"u":18446744073709551615,"i":-9223372036854775808,"big":123456789012345678901234567890}`,
		`{"u":18446744073709551615,"i":-9223372036854775808,"big":1.2345678901234568e+29}`},
	{`{"s":"<a href=\"x\">&amp;</a>"}`, `{"s":"<a href=\"x\">&amp;</a>"}`},
	{`{"s":"\u0000\u001f\u007f\b\f\t\r\n\\\/"}`, `{"s":"\u0000\u001f` + "\x7f" + `\b\f\t\r\n\\/"}`},
	{`{"s":"\u2028\u2029"}`, `{"s":"\u2028\u2029"}`},
	{"{\"s\":\"a\xffb\xe2\x82\"}", `{"s":"a\ufffdb\ufffd\ufffd"}`},
	{`{"s":"\ud83d\ude00"}`, `{"s":"😀"}`},
	{`{"` + strings.Repeat("k", 300) + `":"` + strings.Repeat("v", 70000) + `"}`,
		`{"` + strings.Repeat("k", 300) + `":"` + strings.Repeat("v", 70000) + `"}`},
	{`{"m":{` + jsonKeys(17) + `}}`, `{"m":{` + jsonKeys(17) + `}}`},
}

func TestJSONRoundTrip(t *testing.T) {
	for _, tt := range roundTripTests {
		t.Run(tt.in[:min(len(tt.in), 40)], func(t *testing.T) {
			mp, err := AppendJSONObject(nil, []byte(tt.in))
			if err != nil {
				t.Fatalf("AppendJSONObject: %v", err)
			}
			got, n, err := AppendJSON([]byte("prefix"), append(mp, 0xc1))
			if err != nil {
				t.Fatalf("AppendJSON(%x): %v", mp, err)
			}
			if n != len(mp) {
				t.Errorf("AppendJSON used %d bytes; want %d", n, len(mp))
			}
			if string(got) != "prefix"+tt.want {
				t.Errorf("round trip of %.80q\n got %.80q\nwant %.80q", tt.in, got, "prefix"+tt.want)
			}
			var a, b any
			if err := json.Unmarshal([]byte(tt.in), &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got[len("prefix"):], &b); err != nil {
				t.Fatalf("encoding/json rejects our output: %v", err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("round trip changed the value:\n%.200v\n%.200v", a, b)
			}
		})
	}
}

func TestAppendJSONValue(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
	}{
		{`1`, num(1)},
		{` "x" `, str("x")},
		{`[1,"a"]`, cat(arrHdr(2), num(1), str("a"))},
		{`null`, AppendNil(nil)},
		{`-1.5e1`, flt(-15)},
		{`{"a":[]}`, cat(mapHdr(1), str("a"), arrHdr(0))},
	}
	for _, tt := range tests {
		got, err := AppendJSONValue(nil, []byte(tt.in))
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("AppendJSONValue(%q) = %x, %v; want %x", tt.in, got, err, tt.want)
		}
	}
}

// jsonErrorTests lists malformed inputs and the error AppendJSONObject gives.
var jsonErrorTests = []struct {
	in, want string
}{
	{``, "unexpected end of JSON input at offset 0"},
	{`   `, "unexpected end of JSON input at offset 3"},
	{`{b`, "invalid character 'b' looking for beginning of object key string at offset 1"},
	{`{"a":1,}`, "invalid character '}' looking for beginning of object key string at offset 7"},
	{`{"a":[1,]}`, "invalid character ']' looking for beginning of value at offset 8"},
	{`{"a" 1}`, "invalid character '1' after object key at offset 5"},
	{`{"a":1 "b":2}`, "invalid character '\"' after object key:value pair at offset 7"},
	{`{"a":[1 2]}`, "invalid character '2' after array element at offset 8"},
	{`{"a":1}}`, "invalid character '}' after top-level value at offset 7"},
	{`{"a":1} x`, "invalid character 'x' after top-level value at offset 8"},
	{`{"a":tru}`, "invalid character '}' in literal true (expecting 'e') at offset 8"},
	{`{"a":nul`, "unexpected end of JSON input at offset 8"},
	{`{"a":fals`, "unexpected end of JSON input at offset 9"},
	{`{"a":True}`, "invalid character 'T' looking for beginning of value at offset 5"},
	{`{"a":nan}`, "invalid character 'a' in literal null (expecting 'u') at offset 6"},
	{`{"a":01}`, "invalid character '1' after object key:value pair at offset 6"},
	{`{"a":-}`, "invalid character '}' in numeric literal at offset 6"},
	{`{"a":+1}`, "invalid character '+' looking for beginning of value at offset 5"},
	{`{"a":.5}`, "invalid character '.' looking for beginning of value at offset 5"},
	{`{"a":1.}`, "invalid character '}' after decimal point in numeric literal at offset 7"},
	{`{"a":1e}`, "invalid character '}' in exponent of numeric literal at offset 7"},
	{`{"a":1e+}`, "invalid character '}' in exponent of numeric literal at offset 8"},
	{`{"a":1e400}`, "number 1e400 out of range at offset 5"},
	{`{"a":-1e400}`, "number -1e400 out of range at offset 5"},
	{`{"a":0x10}`, "invalid character 'x' after object key:value pair at offset 6"},
	{`{"a":"x`, "unexpected end of JSON input at offset 7"},
	{`{"a":"x\`, "unexpected end of JSON input at offset 8"},
	{"{\"a\":\"x\ty\"}", `invalid character '\t' in string literal at offset 7`},
	{"{\"a\":\"\\n\x00\"}", `invalid character '\x00' in string literal at offset 8`},
	{`{"a":"\x"}`, "invalid character 'x' in string escape code at offset 7"},
	{`{"a":"\'"}`, `invalid character '\'' in string escape code at offset 7`},
	{`{"a":"\u12G4"}`, `invalid character 'G' in \u hexadecimal character escape at offset 10`},
	{`{"a":"\u12`, "unexpected end of JSON input at offset 10"},
	{`{"a":"\ud83d\u12"}`, `invalid character '"' in \u hexadecimal character escape at offset 16`},
	{`{'a':1}`, `invalid character '\'' looking for beginning of object key string at offset 1`},
	{`{a:1}`, "invalid character 'a' looking for beginning of object key string at offset 1"},
	{`{"a":1,`, "unexpected end of JSON input at offset 7"},
	{`{"a":[`, "unexpected end of JSON input at offset 6"},
	{`{"a":[1,`, "unexpected end of JSON input at offset 8"},
	{`{"a"`, "unexpected end of JSON input at offset 4"},
	{`{"a":`, "unexpected end of JSON input at offset 5"},
	{"\xef\xbb\xbf{}", `invalid character 'ï' looking for beginning of value at offset 0`},
	{`{"a":1}` + "\x00", `invalid character '\x00' after top-level value at offset 7`},
	{`{"é":ü}`, `invalid character 'Ã' looking for beginning of value at offset 6`},
	{`[1,2]`, "record: json value is not an object"},
	{` "x"`, "record: json value is not an object"},
	{`null`, "record: json value is not an object"},
	{`[1,2`, "unexpected end of JSON input at offset 4"},
	{`x`, "invalid character 'x' looking for beginning of value at offset 0"},
}

func TestAppendJSONObjectErrors(t *testing.T) {
	for _, tt := range jsonErrorTests {
		dst := []byte("prefix")
		got, err := AppendJSONObject(dst, []byte(tt.in))
		if err == nil {
			t.Errorf("AppendJSONObject(%q) = %x; want error %q", tt.in, got, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("AppendJSONObject(%q) error\n got %q\nwant %q", tt.in, err, tt.want)
		}
		if string(got) != "prefix" {
			t.Errorf("AppendJSONObject(%q) changed dst to %q", tt.in, got)
		}
		var jerr *JSONError
		if errors.As(err, &jerr) != !errors.Is(err, ErrNotObject) {
			t.Errorf("AppendJSONObject(%q) error %T: want *JSONError or ErrNotObject", tt.in, err)
		}
		// encoding/json must refuse these too.
		var v any
		if json.Unmarshal([]byte(tt.in), &v) == nil && reflect.TypeOf(v) == reflect.TypeFor[map[string]any]() {
			t.Errorf("encoding/json accepts %q", tt.in)
		}
	}
}

func TestJSONDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(`{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	if _, err := AppendJSONObject(nil, nest(MaxDepth)); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
	_, err := AppendJSONObject(nil, nest(MaxDepth+1))
	if !errors.Is(err, ErrDepth) {
		t.Errorf("depth %d: got %v, want ErrDepth", MaxDepth+1, err)
	}
	if want := "exceeded max depth 1000 at offset 1004"; err == nil || err.Error() != want {
		t.Errorf("depth error %q, want %q", err, want)
	}

	mp := append(bytes.Repeat([]byte{0x91}, MaxDepth-1), 0x90)
	if _, _, err := AppendJSON(nil, mp); err != nil {
		t.Errorf("AppendJSON depth %d: %v", MaxDepth, err)
	}
	mp = append(bytes.Repeat([]byte{0x91}, MaxDepth), 0x90)
	if _, _, err := AppendJSON(nil, mp); !errors.Is(err, ErrDepth) {
		t.Errorf("AppendJSON depth %d: got %v, want ErrDepth", MaxDepth+1, err)
	}
}

// msgpackJSONTests lists Go values: encoded by vmihailenco/msgpack and
// passed through AppendJSON they must give what encoding/json gives.
var msgpackJSONTests = []any{
	nil, true, false,
	0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxInt64, uint64(math.MaxUint64),
	-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64,
	int8(-5), int16(-300), int32(-70000), uint8(200), uint16(60000), uint32(4000000000),
	0.0, math.Copysign(0, -1), 1.5, -2.25, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64,
	float32(1.1), float32(-3.4e38), float32(1e-7), float32(1e21), float32(16777216), float32(0.1),
	"", "x", "é€😀", "<>&", "\"\\/\b\f\n\r\t\x00\x1f\x7f", "a\xffb\xc3", "\u2028\u2029", strings.Repeat("x", 31),
	strings.Repeat("y", 32), strings.Repeat("z", 256), strings.Repeat("w", 65536),
	[]byte{}, []byte{0, 1, 2, 0xff}, bytes.Repeat([]byte{7}, 300),
	[]any{}, []any{1, "a", nil, []any{true}}, make([]any, 16), make([]any, 70000),
	map[string]any{}, map[string]any{"a": 1, "b": map[string]any{"c": []any{"d"}}},
	map[string]any{"k\u00e9\n": "v"},
	time.Date(2024, 5, 1, 12, 34, 56, 0, time.UTC),
	time.Date(2024, 5, 1, 12, 34, 56, 789000000, time.UTC),
	time.Date(2024, 5, 1, 12, 34, 56, 1, time.UTC),
	time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
	time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(1000, 1, 1, 0, 0, 0, 500, time.UTC),
}

func marshalSorted(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("msgpack encode %v: %v", v, err)
	}
	return buf.Bytes()
}

func encodingJSON(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("json encode %v: %v", v, err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestAppendJSON(t *testing.T) {
	for _, v := range msgpackJSONTests {
		mp := marshalSorted(t, v)
		want := encodingJSON(t, v)
		got, n, err := AppendJSON([]byte("prefix"), append(mp, "trailing"...))
		if err != nil {
			t.Errorf("AppendJSON(%.40x) for %T %.40v: %v", mp, v, v, err)
			continue
		}
		if string(got) != "prefix"+want {
			t.Errorf("AppendJSON(%.40x) for %T\n got %.100q\nwant %.100q", mp, v, got[len("prefix"):], want)
		}
		if n != len(mp) {
			t.Errorf("AppendJSON(%.40x) used %d bytes; want %d", mp, n, len(mp))
		}
	}
}

func TestAppendJSONSpecial(t *testing.T) {
	f32 := func(f float32) []byte {
		b, _ := msgpack.Marshal(f)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"NaN", flt(math.NaN()), `null`},
		{"Inf", flt(math.Inf(1)), `null`},
		{"-Inf32", f32(float32(math.Inf(-1))), `null`},
		{"int key", cat(mapHdr(2), num(1), str("a"), num(-2), str("b")), `{"1":"a","-2":"b"}`},
		{"other keys", cat(mapHdr(4), AppendNil(nil), num(0), AppendBool(nil, true), num(1), flt(1.5), num(2),
			AppendBinary(nil, []byte{1}), num(3)), `{"null":0,"true":1,"1.5":2,"AQ==":3}`},
		{"array key", cat(mapHdr(1), arrHdr(2), str("x\""), mapHdr(0), num(1)), `{"[\"x\\\"\",{}]":1}`},
		{"keys in a map key", cat(mapHdr(1), mapHdr(2), str("a"), num(1), num(2), AppendTime(nil, time.Unix(0, 0)), num(3)),
			`{"{\"a\":1,\"2\":\"1970-01-01T00:00:00Z\"}":3}`},
		{"time key", cat(mapHdr(1), AppendTime(nil, time.Unix(1, 5).UTC()), num(1)), `{"1970-01-01T00:00:01.000000005Z":1}`},
		{"str8 short", []byte{0xd9, 1, 'a'}, `"a"`},
		{"int64 small", []byte{0xd3, 0, 0, 0, 0, 0, 0, 0, 5}, `5`},
		{"uint64 small", []byte{0xcf, 0, 0, 0, 0, 0, 0, 0, 5}, `5`},
		{"map16 small", []byte{0xde, 0, 1, 0xa1, 'a', 0xc0}, `{"a":null}`},
		{"array32 small", []byte{0xdd, 0, 0, 0, 1, 0xc3}, `[true]`},
		{"timestamp 4", []byte{0xd6, 0xff, 0, 0, 0, 1}, `"1970-01-01T00:00:01Z"`},
		{"timestamp 8", []byte{0xd7, 0xff, 0, 0, 0, 4, 0, 0, 0, 1}, `"1970-01-01T00:00:01.000000001Z"`},
		{"timestamp 12", []byte{0xc7, 12, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, `"1969-12-31T23:59:59Z"`},
	}
	for _, tt := range tests {
		got, n, err := AppendJSON(nil, tt.in)
		if err != nil || string(got) != tt.want || n != len(tt.in) {
			t.Errorf("%s: AppendJSON(%x) = %q, %d, %v; want %q, %d", tt.name, tt.in, got, n, err, tt.want, len(tt.in))
		}
	}
}

func TestAppendJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		is   error
		want string
	}{
		{"empty", nil, ErrTruncated, "record: truncated msgpack value at offset 0"},
		{"never used", []byte{0xc1}, ErrInvalid, "record: invalid msgpack value: byte 0xc1 at offset 0"},
		{"in array", []byte{0x92, 0x01, 0xc1}, ErrInvalid, "record: invalid msgpack value: byte 0xc1 at offset 2"},
		{"ext", []byte{0xd4, 0x05, 0x00}, ErrInvalid, "record: invalid msgpack value: unsupported extension type 5 at offset 0"},
		{"ext16", []byte{0x91, 0xc8, 0, 1, 0xfe, 0}, ErrInvalid, "record: invalid msgpack value: unsupported extension type -2 at offset 1"},
		{"timestamp of 16 bytes", append([]byte{0xd8, 0xff}, make([]byte, 16)...), ErrInvalid,
			"record: invalid msgpack value: unsupported extension type -1 at offset 0"},
		{"truncated str", []byte{0xa3, 'a'}, ErrTruncated, "record: truncated msgpack value at offset 0"},
		{"truncated map", []byte{0x81, 0xa1, 'a'}, ErrTruncated, "record: truncated msgpack value at offset 3"},
		{"truncated key", []byte{0x81, 0xcd, 1}, ErrTruncated, "record: truncated msgpack value at offset 1"},
		{"huge map", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0}, ErrTruncated, "record: truncated msgpack value at offset 6"},
		{"bad key", []byte{0x81, 0xc1, 0xc0}, ErrInvalid, "record: invalid msgpack value: byte 0xc1 at offset 1"},
		// Each map key in a map key would double the backslashes of the
		// keys inside it: 40 bytes would make 3 MB.
		{"map key in map key", cat(bytes.Repeat(mapHdr(1), 20), str("\""), bytes.Repeat(AppendNil(nil), 20)), ErrInvalid,
			"record: invalid msgpack value: map as a map key inside a map key at offset 2"},
		{"array key in array key", cat(mapHdr(1), arrHdr(1), mapHdr(1), arrHdr(0), num(1), num(2)), ErrInvalid,
			"record: invalid msgpack value: array as a map key inside a map key at offset 3"},
	}
	for _, tt := range tests {
		got, n, err := AppendJSON([]byte("prefix"), tt.in)
		if !errors.Is(err, tt.is) || err.Error() != tt.want {
			t.Errorf("%s: AppendJSON(%x) error %v; want %q", tt.name, tt.in, err, tt.want)
		}
		if string(got) != "prefix" || n != 0 {
			t.Errorf("%s: AppendJSON(%x) = %q, %d on error", tt.name, tt.in, got, n)
		}
	}
}

// TestAppendJSONTruncated checks that every strict prefix of a valid value
// is an error.
func TestAppendJSONTruncated(t *testing.T) {
	for _, v := range msgpackJSONTests[:len(msgpackJSONTests)-10] {
		mp := marshalSorted(t, v)
		for i := range len(mp) {
			if _, _, err := AppendJSON(nil, mp[:i]); !errors.Is(err, ErrTruncated) {
				t.Errorf("AppendJSON(%x) of %T: %v, want ErrTruncated", mp[:i], v, err)
			}
		}
	}
}

func TestFormatText(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{str("hello \"you\"\n"), "hello \"you\"\n"},
		{str(""), ""},
		{num(-42), "-42"},
		{AppendUint(nil, math.MaxUint64), "18446744073709551615"},
		{flt(1.5), "1.5"},
		{flt(1e21), "1e+21"},
		{flt(math.NaN()), "null"},
		{AppendNil(nil), "null"},
		{AppendBool(nil, true), "true"},
		{AppendBool(nil, false), "false"},
		{AppendBinary(nil, []byte("hi")), "aGk="},
		{AppendTime(nil, time.Date(2024, 5, 1, 12, 0, 0, 500, time.FixedZone("x", 3600))), "2024-05-01T11:00:00.0000005Z"},
		{cat(mapHdr(1), str("a"), arrHdr(1), str("<b>")), `{"a":["<b>"]}`},
		{nil, "<invalid>"},
		{[]byte{0xc1}, "<invalid>"},
		{[]byte{0xa2, 'a'}, "<invalid>"},
		{cat(num(1), num(2)), "<invalid>"},
		{[]byte{0xd4, 1, 0}, "<invalid>"},
		{cat(arrHdr(2), num(1)), "<invalid>"},
	}
	for _, tt := range tests {
		if got := FormatText([]byte("|"), tt.in); string(got) != "|"+tt.want {
			t.Errorf("FormatText(%x) = %q; want %q", tt.in, got, "|"+tt.want)
		}
	}
}

// benchLine is a typical log record of about 100 bytes.
const benchLine = `{"time":"2024-05-01T12:34:56.789Z","level":"info","msg":"request done","status":200,"dur_ms":12.5,"path":"/api/v1/items?id=42"}`

func TestNoAllocs(t *testing.T) {
	line := []byte(benchLine)
	dst := make([]byte, 0, 1024)
	mp, _ := AppendJSONObject(nil, line)
	escaped := []byte(`{"a":"x\ny\u00e9","m":{` + jsonKeys(20) + `},"f":-1.25e-3}`)
	if n := testing.AllocsPerRun(100, func() {
		dst, _ = AppendJSONObject(dst[:0], line)
		dst, _ = AppendJSONObject(dst[:0], escaped)
	}); n != 0 {
		t.Errorf("AppendJSONObject allocates %v times", n)
	}
	keyed := cat(mapHdr(2), num(1), arrHdr(1), str("x"), mapHdr(1), str("y"), flt(2), AppendNil(nil))
	if _, _, err := AppendJSON(nil, keyed); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		dst, _, _ = AppendJSON(dst[:0], mp)
		dst, _, _ = AppendJSON(dst[:0], keyed)
		dst = FormatText(dst[:0], mp)
	}); n != 0 {
		t.Errorf("AppendJSON allocates %v times", n)
	}
}

func FuzzAppendJSONObject(f *testing.F) {
	for _, tt := range jsonMsgpackTests {
		if len(tt.in) < 1000 {
			f.Add([]byte(tt.in))
		}
	}
	for _, tt := range roundTripTests {
		if len(tt.in) < 1000 {
			f.Add([]byte(tt.in))
		}
	}
	for _, tt := range jsonErrorTests {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte(benchLine))
	// Found by fuzzing: keys that differ only in invalid UTF-8.
	f.Add([]byte("{\"\":{\"\xff\":1,\"\x80\":7},\"Z\":1}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		mp, err := AppendJSONObject(nil, in)
		var want any
		wantErr := json.Unmarshal(in, &want)
		_, isObject := want.(map[string]any)
		if err != nil {
			if wantErr == nil && isObject && !errors.Is(err, ErrDepth) {
				t.Fatalf("AppendJSONObject(%q): %v; encoding/json accepts it", in, err)
			}
			if mp != nil {
				t.Fatalf("AppendJSONObject(%q) returned %x with error %v", in, mp, err)
			}
			return
		}
		if wantErr != nil || !isObject {
			t.Fatalf("AppendJSONObject(%q) accepted; encoding/json gives %v, %T", in, wantErr, want)
		}
		if n, err := Skip(mp); err != nil || n != len(mp) {
			t.Fatalf("Skip(%x) = %d, %v; want %d", mp, n, err, len(mp))
		}
		wp := jsonParser{data: in, wide: true}
		wide, err := wp.parse(nil, skipSpace(in, 0))
		if err != nil || !bytes.Equal(wide[:compactHeaders(wide)], mp) {
			t.Fatalf("wide parse of %q = %x, %v; want %x", in, wide, err, mp)
		}
		var dec any
		if err := msgpack.Unmarshal(mp, &dec); err != nil {
			t.Fatalf("msgpack.Unmarshal(%x): %v", mp, err)
		}
		if dec, ok := asJSONTypes(dec); ok && !reflect.DeepEqual(dec, want) {
			t.Fatalf("input %q\nmsgpack decodes to %v\nencoding/json gives %v", in, dec, want)
		}
		js, n, err := AppendJSON(nil, mp)
		if err != nil || n != len(mp) {
			t.Fatalf("AppendJSON(%x) = %d, %v", mp, n, err)
		}
		var back any
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("encoding/json rejects %q made from %q: %v", js, in, err)
		}
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("input %q\nround trip %q\ngives %v\nwant %v", in, js, back, want)
		}
	})
}

func FuzzAppendJSON(f *testing.F) {
	for _, v := range msgpackJSONTests {
		if mp := marshalSorted(f, v); len(mp) < 1000 {
			f.Add(mp)
		}
	}
	for _, tt := range jsonMsgpackTests {
		if len(tt.want) < 1000 {
			f.Add(tt.want)
		}
	}
	f.Add([]byte{0xc1})
	f.Add([]byte{0xd6, 0xff, 0, 0, 0, 1})
	f.Add([]byte{0xd7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc7, 12, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Add(cat(mapHdr(1), arrHdr(1), str("x"), num(1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		js, n, err := AppendJSON(nil, in)
		text := FormatText(nil, in)
		if err != nil {
			if js != nil || n != 0 {
				t.Fatalf("AppendJSON(%x) = %q, %d with error %v", in, js, n, err)
			}
			if string(text) != "<invalid>" {
				t.Fatalf("FormatText(%x) = %q; AppendJSON fails with %v", in, text, err)
			}
			return
		}
		if !json.Valid(js) {
			t.Fatalf("AppendJSON(%x) = %q: not valid JSON", in, js)
		}
		if m, err := Skip(in); err != nil || m != n {
			t.Fatalf("AppendJSON(%x) used %d bytes; Skip says %d, %v", in, n, m, err)
		}
		if n == len(in) && string(text) == "<invalid>" {
			t.Fatalf("FormatText(%x) = <invalid>; AppendJSON gives %q", in, js)
		}
	})
}

func BenchmarkAppendJSONObject(b *testing.B) {
	line := []byte(benchLine)
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		var err error
		if dst, err = AppendJSONObject(dst[:0], line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	mp, err := AppendJSONObject(nil, []byte(benchLine))
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(mp)))
	for b.Loop() {
		if dst, _, err = AppendJSON(dst[:0], mp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormatText(b *testing.B) {
	mp, err := AppendJSONObject(nil, []byte(benchLine))
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(mp)))
	for b.Loop() {
		dst = FormatText(dst[:0], mp)
	}
}

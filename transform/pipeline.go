package transform

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"reflect"
	"slices"
	"sort"

	"github.com/dstream/dstream/expr"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// field is one entry of a record being edited: its key as text and its
// value as raw msgpack. Both point into the input frame or the arena.
type field struct{ key, val []byte }

// rec is a record on its way through the operations. It starts as raw
// msgpack; an operation that edits fields parses it into a list once, and
// the list is encoded once, when the record leaves.
type rec struct {
	raw    []byte  // the record, when !parsed
	fs     []field // its fields, when parsed
	parsed bool
	orig   bool // raw is the input record, unchanged: it may leave as raw bytes
}

func (r *rec) setRaw(raw []byte, orig bool) {
	r.raw, r.fs, r.parsed, r.orig = raw, r.fs[:0], false, orig
}

// Engine runs the operations on every record of every batch: it is the
// stage.Handler of smap. A record goes through all of them before the next
// one starts, with no encoding in between: fields an operation does not
// touch stay raw bytes, and a record that only passed filters leaves as the
// bytes it came in (runs of such records as one WriteRawBlock).
type Engine struct {
	stage.Forward
	ops     []*op
	skipBad bool
	stats   *stage.Stats
	stderr  io.Writer

	batch  stage.Batch
	n      int // input records seen in the batch
	from   *op // the --exec whose output is in hand, or nil
	line   int // its output line
	top    rec
	kids   []rec  // kids[i]: the record an op i of kind flat made
	arena  []byte // encoded values of the record in hand
	enc    []byte // the record being written
	execs  []*proc
	nilRaw []byte

	// The block in hand and the run of unchanged input records from it not
	// yet written: blk[runStart:runEnd] holds runN of them.
	blk                    []byte
	whole                  framing.Records // the block in hand, untouched, to pass on whole
	runStart, runEnd, runN int
	cur0, cur1             int // where the input record in hand lies in blk

	// Records made by writeSplit not yet written, framed: partsN of them.
	// Pending parts and a pending run are never both there: each is
	// written before the other begins (flushRun writes either).
	parts  []byte
	partsN int
	pad    []byte // writeSplit's copy of the string, padded
}

// New compiles the operations of o, all of them before any input is read
// (an error is a usage error, naming the operation), and returns the
// engine that writes its batches to out. The --exec commands write their
// stderr to stderr; records dropped by o.SkipBad are counted in
// stats.Skipped (stats may be nil). Close must be called when the engine
// is done with.
func New(o Options, out *framing.Writer, stderr io.Writer, stats *stage.Stats) (*Engine, error) {
	ops, err := compile(o.Ops)
	if err != nil {
		return nil, err
	}
	if stats == nil {
		stats = new(stage.Stats)
	}
	return newEngine(ops, out, stderr, stats, o.SkipBad), nil
}

func newEngine(ops []*op, out *framing.Writer, stderr io.Writer, stats *stage.Stats, skipBad bool) *Engine {
	m := &Engine{Forward: stage.Forward{Out: out}, ops: ops, skipBad: skipBad, stats: stats, stderr: procStderr(stderr),
		kids: make([]rec, len(ops)), execs: make([]*proc, len(ops)), nilRaw: record.AppendNil(nil)}
	return m
}

// Begin opens the batch and starts the --exec commands.
func (m *Engine) Begin(b stage.Batch) error {
	m.batch, m.n = b, 0
	if err := m.Forward.Begin(b); err != nil {
		return err
	}
	for i, o := range m.ops {
		if o.kind == Exec {
			p, err := startProc(o, b, m.stderr)
			if err != nil {
				return fmt.Errorf("%v: %w", b, err)
			}
			m.execs[i] = p
		}
	}
	return nil
}

// Block runs the operations on each record of a block.
func (m *Engine) Block(b stage.Batch, recs framing.Records) error {
	blk, n := recs.Rest()
	if len(m.ops) == 0 {
		m.n += n
		return m.Out.WriteRecords(recs)
	}
	m.whole, m.blk, m.runN = recs, blk, 0
	m.from = nil
	for {
		rest, _ := recs.Rest()
		r, ok := recs.Next()
		if !ok {
			break
		}
		m.n++
		m.cur0 = len(blk) - len(rest)
		after, _ := recs.Rest()
		m.cur1 = len(blk) - len(after)
		m.top.setRaw(r, true)
		m.arena = m.arena[:0]
		if err := m.run(&m.top, 0); err != nil {
			return err
		}
	}
	err := m.flushRun()
	m.blk = nil
	return err
}

// End finishes the --exec commands in order, running the operations after
// each on its output, and closes the batch.
func (m *Engine) End(b stage.Batch) error {
	for i, p := range m.execs {
		if p == nil {
			continue
		}
		m.execs[i] = nil
		out, err := p.finish()
		if err != nil {
			return fmt.Errorf("%v: %w", b, err)
		}
		if err := m.execOutput(i, out); err != nil {
			return err
		}
	}
	return m.Forward.End(b)
}

// execOutput turns the output of op i, an --exec, into records and runs
// the operations after it on them.
func (m *Engine) execOutput(i int, out []byte) error {
	o := m.ops[i]
	m.from, m.line = o, 0
	var buf []byte
	for len(out) > 0 {
		var line []byte
		if j := bytes.IndexByte(out, '\n'); j >= 0 {
			line, out = out[:j], out[j+1:]
		} else {
			line, out = out, nil
		}
		m.line++
		if isBlank(line) {
			continue
		}
		var err error
		buf, err = appendLineRecord(buf[:0], line)
		if err != nil {
			if m.skipBad {
				m.stats.Skipped++
				continue
			}
			return fmt.Errorf("%v, %s output line %d: %w: %s", m.batch, o.label, m.line, err, preview(line))
		}
		m.top.setRaw(buf, false)
		m.arena = m.arena[:0]
		if err := m.run(&m.top, i+1); err != nil {
			return err
		}
	}
	m.from = nil
	return nil
}

// appendLineRecord reads one JSON line as a record: an object as it is,
// any other value as {"value": v}. dst must be empty.
func appendLineRecord(dst, line []byte) ([]byte, error) {
	dst, err := record.AppendJSONValue(dst, line)
	if err != nil || record.KindOf(dst) == record.KindMap {
		return dst, err
	}
	return slices.Insert(dst, 0, appendValueHeader(nil)...), nil
}

// appendValueHeader starts the record {"value": ...}.
func appendValueHeader(dst []byte) []byte {
	return append(dst, 0x81, 0xa5, 'v', 'a', 'l', 'u', 'e')
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

func preview(b []byte) string {
	const max = 200
	if len(b) > max {
		return fmt.Sprintf("%q...", b[:max])
	}
	return fmt.Sprintf("%q", b)
}

// Close stops the --exec commands left running by a failure.
func (m *Engine) Close() {
	for _, p := range m.execs {
		if p != nil {
			p.kill()
		}
	}
}

// badRecord is an operation that failed on one record.
type badRecord struct {
	where string // batch 3, record 2
	op    string
	rec   string // the record as JSON, as the operation saw it
	err   error
}

func (e *badRecord) Error() string {
	return fmt.Sprintf("%s: %s: %v; the record: %s", e.where, e.op, e.err, e.rec)
}

func (e *badRecord) Unwrap() error { return e.err }

// bad handles an operation's failure on r: with --skip-bad the record is
// dropped and counted, else it stops the stage.
func (m *Engine) bad(o *op, r *rec, err error) error {
	if m.skipBad {
		m.stats.Skipped++
		return nil
	}
	where := fmt.Sprintf("%v, record %d", m.batch, m.n)
	if m.from != nil {
		where = fmt.Sprintf("%v, %s output line %d", m.batch, m.from.label, m.line)
	}
	return &badRecord{where: where, op: o.label, rec: m.jsonOf(r), err: err}
}

// jsonOf shows a record for an error message.
func (m *Engine) jsonOf(r *rec) string {
	raw := r.raw
	if r.parsed {
		raw = encode(nil, r.fs)
	}
	j, _, err := record.AppendJSON(nil, raw)
	if err != nil {
		return fmt.Sprintf("(not valid msgpack: %v)", err)
	}
	const max = 500
	if len(j) > max {
		return string(j[:max]) + "..."
	}
	return string(j)
}

// run applies the operations from i on to r, and writes r out if it
// passes them all.
func (m *Engine) run(r *rec, i int) error {
	for ; i < len(m.ops); i++ {
		o := m.ops[i]
		var err error
		switch o.kind {
		case Filter:
			var keep bool
			if keep, err = m.filter(o, r); err == nil && !keep {
				return nil
			}
		case Map:
			err = m.mapOp(o, r)
		case Flat:
			return m.flat(o, r, i)
		case Set:
			err = m.set(o, r)
		case Select:
			err = m.selectOp(o, r)
		case Drop:
			err = m.drop(o, r)
		case Rename:
			err = m.rename(o, r)
		case ParseJSON:
			err = m.parseJSON(o, r)
		case Exec:
			return m.feed(i, r)
		}
		if err != nil {
			return m.bad(o, r, err)
		}
	}
	return m.emit(r)
}

// emit writes r out.
func (m *Engine) emit(r *rec) error {
	if r.orig {
		if m.runN > 0 && m.runEnd == m.cur0 {
			m.runEnd = m.cur1
			m.runN++
			return nil
		}
		if err := m.flushRun(); err != nil {
			return err
		}
		m.runStart, m.runEnd, m.runN = m.cur0, m.cur1, 1
		return nil
	}
	if err := m.flushRun(); err != nil {
		return err
	}
	if !r.parsed {
		return m.Out.WriteRecord(r.raw)
	}
	m.enc = encode(m.enc[:0], r.fs)
	return m.Out.WriteRecord(m.enc)
}

// flushRun writes the pending run of unchanged input records, or the
// pending records writeSplit made.
func (m *Engine) flushRun() error {
	if m.partsN > 0 {
		n := m.partsN
		m.partsN = 0
		err := m.Out.WriteRawBlock(m.parts, n)
		m.parts = m.parts[:0]
		return err
	}
	if m.runN == 0 {
		return nil
	}
	n := m.runN
	m.runN = 0
	if m.runStart == 0 && m.runEnd == len(m.blk) {
		return m.Out.WriteRecords(m.whole) // every record kept as it came
	}
	return m.Out.WriteRawBlock(m.blk[m.runStart:m.runEnd], n)
}

// encode appends the record of fields fs.
func encode(dst []byte, fs []field) []byte {
	dst = record.AppendMapHeader(dst, len(fs))
	for _, f := range fs {
		dst = append(record.AppendStringBytes(dst, f.key), f.val...)
	}
	return dst
}

// parse makes r's field list from its raw bytes, once.
func (m *Engine) parse(r *rec) error {
	if r.parsed {
		return nil
	}
	var f record.Fields
	f.Reset(r.raw)
	r.fs = r.fs[:0]
	for f.Next() {
		r.fs = append(r.fs, field{f.Key(), f.Value()})
	}
	if err := f.Err(); err != nil {
		return err
	}
	r.parsed = true
	return nil
}

// lookup returns the raw value of r's field name (the first, if repeated).
func lookup(r *rec, name string) ([]byte, bool, error) {
	if !r.parsed {
		return record.Get(r.raw, name)
	}
	for _, f := range r.fs {
		if string(f.key) == name {
			return f.val, true, nil
		}
	}
	return nil, false, nil
}

// eval runs o's expression on r, decoding only the fields it reads.
func (m *Engine) eval(o *op, r *rec) (any, error) {
	p := o.prog
	if !r.parsed {
		if err := p.BindRecord(r.raw); err != nil {
			return nil, err
		}
		return p.Run()
	}
	p.Reset()
	if p.ReadsAll() {
		for _, f := range r.fs {
			if err := p.BindAll(f.key, f.val); err != nil {
				return nil, err
			}
		}
		return p.Run()
	}
	for i, name := range p.Fields() {
		for _, f := range r.fs {
			if string(f.key) == name {
				if err := p.Bind(i, f.val); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	return p.Run()
}

func (m *Engine) filter(o *op, r *rec) (bool, error) {
	if !r.parsed {
		if keep, ok := o.prog.FastBool(r.raw); ok {
			return keep, nil // a simple predicate, on the raw record
		}
	}
	v, err := m.eval(o, r)
	if err != nil {
		return false, err
	}
	switch v := v.(type) {
	case bool:
		return v, nil
	case nil:
		return false, nil
	}
	return false, fmt.Errorf("the expression gave %s, not true or false", describe(v))
}

func describe(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return fmt.Sprintf("%T %s", v, s)
}

// value appends v, an expression's value, to the arena and returns it.
func (m *Engine) value(v any) ([]byte, error) {
	n := len(m.arena)
	var err error
	if m.arena, err = record.AppendValue(m.arena, v); err != nil {
		m.arena = m.arena[:n]
		return nil, err
	}
	return m.arena[n:len(m.arena):len(m.arena)], nil
}

// mapOp makes r the value of o's expression.
func (m *Engine) mapOp(o *op, r *rec) error {
	v, err := m.eval(o, r)
	if err != nil {
		return err
	}
	fs := o.tmp[:0]
	mv, isMap := v.(map[string]any)
	if !isMap && v != nil {
		mv, isMap = stringMap(v)
	}
	if !isMap {
		val, err := m.value(v)
		if err != nil {
			return err
		}
		fs = append(fs, field{valueKey, val})
	} else {
		var done map[string]bool
		if o.hasShape {
			for k, key := range o.shape.Keys {
				x, ok := mv[key]
				if !ok {
					continue
				}
				var val []byte
				if f := o.shape.Fields[k]; f != "" {
					// The value is a field as it is: its raw bytes, which
					// keep what decoding would lose (the key order of a
					// nested map, float32).
					raw, found, err := lookup(r, f)
					if err != nil {
						return err
					}
					val = raw
					if !found {
						val = m.nilRaw
					}
				} else if val, err = m.value(x); err != nil {
					return err
				}
				fs = append(fs, field{o.shapeKeys[k], val})
			}
			if len(fs) < len(mv) {
				done = make(map[string]bool, len(fs))
				for _, f := range fs {
					done[string(f.key)] = true
				}
			}
		}
		if len(fs) < len(mv) {
			keys := make([]string, 0, len(mv))
			for k := range mv {
				if !done[k] {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				val, err := m.value(mv[k])
				if err != nil {
					return err
				}
				n := len(m.arena)
				m.arena = append(m.arena, k...)
				fs = append(fs, field{m.arena[n:len(m.arena):len(m.arena)], val})
			}
		}
	}
	o.tmp = r.fs
	r.fs, r.parsed, r.orig, r.raw = fs, true, false, nil
	return nil
}

var valueKey = []byte("value")

// stringMap converts another map whose keys are all strings, such as the
// map[any]any of fromPairs or a map[string]int, to a map[string]any.
func stringMap(v any) (map[string]any, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map {
		return nil, false
	}
	m := make(map[string]any, rv.Len())
	for it := rv.MapRange(); it.Next(); {
		k := it.Key()
		if k.Kind() == reflect.Interface {
			k = k.Elem()
		}
		if k.Kind() != reflect.String {
			return nil, false
		}
		m[k.String()] = it.Value().Interface()
	}
	return m, true
}

// flat runs the operations after op i on each element of the list o's
// expression gives.
func (m *Engine) flat(o *op, r *rec, i int) error {
	kid := &m.kids[i]
	if o.split != nil {
		raw, _, err := lookup(r, o.split.Field)
		if err != nil {
			return m.bad(o, r, err)
		}
		if s, ok := record.Str(raw); ok && record.KindOf(raw) == record.KindString {
			// The fast path: the parts are cut from the raw string and each
			// written as {"value": part}, the bytes the program's []string
			// would give (expr.Split; tested in TestFlatSplitFastPath).
			if i+1 == len(m.ops) {
				if sep := o.split.Sep; len(sep) == 1 && !o.split.Fields && len(s) <= framing.BlockSize/16 {
					return m.writeSplit(s, sep[0])
				}
				it := o.split.Iter(s)
				return m.writeParts(&it)
			}
			it := o.split.Iter(s)
			for {
				part, ok := it.Next()
				if !ok {
					return nil
				}
				mark := len(m.arena)
				m.arena = record.AppendStringBytes(appendValueHeader(m.arena), part)
				kid.setRaw(m.arena[mark:], false)
				if err := m.run(kid, i+1); err != nil {
					return err
				}
				m.arena = m.arena[:mark]
			}
		}
		// Not a string: the program runs, and fails as it should.
	}
	v, err := m.eval(o, r)
	if err != nil {
		return m.bad(o, r, err)
	}
	each := func(x any) error {
		mark := len(m.arena)
		var err error
		switch x := x.(type) {
		case string:
			m.arena = record.AppendString(appendValueHeader(m.arena), x)
		case map[string]any:
			m.arena, err = record.AppendValue(m.arena, x)
		default:
			if sm, ok := stringMap(x); ok {
				m.arena, err = record.AppendValue(m.arena, sm)
			} else {
				m.arena, err = record.AppendValue(appendValueHeader(m.arena), x)
			}
		}
		if err != nil {
			m.arena = m.arena[:mark]
			return m.bad(o, r, err)
		}
		kid.setRaw(m.arena[mark:], false)
		if err := m.run(kid, i+1); err != nil {
			return err
		}
		m.arena = m.arena[:mark]
		return nil
	}
	switch l := v.(type) {
	case nil:
		return nil
	case []any:
		for _, x := range l {
			if err := each(x); err != nil {
				return err
			}
		}
		return nil
	case []string:
		for _, x := range l {
			if err := each(x); err != nil {
				return err
			}
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return m.bad(o, r, fmt.Errorf("the expression gave %s, not a list", describe(v)))
	}
	for k := 0; k < rv.Len(); k++ {
		if err := each(rv.Index(k).Interface()); err != nil {
			return err
		}
	}
	return nil
}

// writeParts writes each part as the record {"value": part}, when nothing
// follows the --flat: the records are framed here, (uvarint length,
// msgpack)*, and handed to the writer as one block per input record.
func (m *Engine) writeParts(it *expr.SplitIter) error {
	if err := m.flushRun(); err != nil {
		return err
	}
	b := m.enc[:0]
	n := 0
	for {
		part, ok := it.Next()
		if !ok {
			break
		}
		b = appendPart(b, part)
		n++
		if len(b) >= framing.BlockSize {
			// A long line of short parts: one frame's worth at a time.
			if err := m.Out.WriteRawBlock(b, n); err != nil {
				return err
			}
			b, n = b[:0], 0
		}
	}
	m.enc = b
	if n == 0 {
		return nil
	}
	return m.Out.WriteRawBlock(b, n)
}

// appendPart appends the record {"value": part} to a block, framed.
func appendPart(b, part []byte) []byte {
	l := len(part)
	switch {
	case l < 32:
		l += 1
	case l < 1<<8:
		l += 2
	case l < 1<<16:
		l += 3
	default:
		l += 5
	}
	b = binary.AppendUvarint(b, uint64(l+7))
	return record.AppendStringBytes(appendValueHeader(b), part)
}

// writeSplit is writeParts for split(FIELD, SEP) with a separator of one
// byte, the word count's split(value, " "): the records of the parts of s
// join those of the records before, written a block at a time (flushRun),
// and are made by appendSplit. It writes the same records as writeParts
// (TestFlatSplitFastPath).
//
// Why not SplitIter: words are a few bytes long, and a call of Next and of
// IndexByte per word, and a block written per line, cost more than the
// words' bytes: smap --flat took 0.10 CPU s for 5 M words, SplitIter.Next
// and IndexByte 42% of it.
//
// A string of over BlockSize/16 bytes takes writeParts, a block at a time.
func (m *Engine) writeSplit(s []byte, sep byte) error {
	if m.runN > 0 {
		if err := m.flushRun(); err != nil {
			return err
		}
	}
	// s and 16 bytes that are not sep, so that appendSplit reads 8 and 16
	// bytes at a time without looking for the end; room for the records.
	var pad [16]byte
	not := ^(0x0101010101010101 * uint64(sep))
	binary.LittleEndian.PutUint64(pad[:], not)
	binary.LittleEndian.PutUint64(pad[8:], not)
	p := append(append(m.pad[:0], s...), pad[:]...)
	m.pad = p
	m.parts = slices.Grow(m.parts, 9*(len(s)+1)+48)
	var n int
	m.parts, n = appendSplit(m.parts, p, len(s), sep)
	m.partsN += n
	if len(m.parts) >= framing.BlockSize {
		return m.flushRun()
	}
	return nil
}

// shortPart is the first 8 bytes of the framed record {"value": part} of a
// part under 32 bytes, little endian, but for the first: the record's
// length (8 + the part's), a one-byte uvarint. The part's string header
// (0xa0 | its length) and its bytes follow.
const shortPart = 0x81<<8 | 0xa5<<16 | 'v'<<24 | 'a'<<32 | 'l'<<40 | 'u'<<48 | 'e'<<56

// appendSplit appends to dst the framed records {"value": part} of the
// parts of p[:n] cut at sep, as strings.Split cuts, and returns dst and
// their number. p[n:] is 16 bytes that are not sep; dst has room for
// 9*(n+1)+48 more bytes, which is enough for any parts (a part of l bytes
// takes 9 + l bytes under 32, l + 13 at most up to 64 KiB).
//
// It finds the separators 8 bytes at a time, as a word with the top bit of
// each byte set where a separator stands, and writes a part under 32 bytes
// with one 8-byte store for its length and the record's first bytes, one
// byte for its string header, and two 8-byte copies of up to 16 bytes.
func appendSplit(dst, p []byte, n int, sep byte) ([]byte, int) {
	const lo7 = 0x7f7f7f7f7f7f7f7f
	seps := 0x0101010101010101 * uint64(sep)
	o := len(dst)
	dst = dst[:cap(dst)]
	var mask uint64 // top bit of byte k: p[base+k] is a separator not yet cut at
	parts, start, base, next := 0, 0, 0, 0
	for {
		for mask == 0 && next < n {
			x := binary.LittleEndian.Uint64(p[next:]) ^ seps // a separator is a zero byte
			mask = ^((x&lo7 + lo7) | x | lo7)
			base = next
			next += 8
		}
		end := n
		if mask != 0 {
			end = base + bits.TrailingZeros64(mask)>>3
			mask &= mask - 1
		}
		parts++
		if l := end - start; l <= 16 {
			r := dst[o : o+25]
			binary.LittleEndian.PutUint64(r, shortPart|uint64(8+l))
			r[8] = 0xa0 | byte(l)
			q := p[start : start+16]
			binary.LittleEndian.PutUint64(r[9:], binary.LittleEndian.Uint64(q))
			binary.LittleEndian.PutUint64(r[17:], binary.LittleEndian.Uint64(q[8:]))
			o += 9 + l
		} else {
			o = len(appendPart(dst[:o], p[start:end]))
		}
		if end == n {
			return dst[:o], parts
		}
		start = end + 1
	}
}

// set adds or replaces one field.
func (m *Engine) set(o *op, r *rec) error {
	v, err := m.eval(o, r)
	if err != nil {
		return err
	}
	if err := m.parse(r); err != nil {
		return err
	}
	val, err := m.value(v)
	if err != nil {
		return err
	}
	r.orig = false
	for k := range r.fs {
		if string(r.fs[k].key) == string(o.name) {
			r.fs[k].val = val
			return nil
		}
	}
	r.fs = append(r.fs, field{o.name, val})
	return nil
}

func (m *Engine) selectOp(o *op, r *rec) error {
	if err := m.parse(r); err != nil {
		return err
	}
	fs := o.tmp[:0]
	for _, name := range o.names {
		val := m.nilRaw
		for _, f := range r.fs {
			if string(f.key) == string(name) {
				val = f.val
				break
			}
		}
		fs = append(fs, field{name, val})
	}
	o.tmp = r.fs
	r.fs, r.orig = fs, false
	return nil
}

func (m *Engine) drop(o *op, r *rec) error {
	if err := m.parse(r); err != nil {
		return err
	}
	r.fs = slices.DeleteFunc(r.fs, func(f field) bool {
		for _, name := range o.names {
			if string(f.key) == string(name) {
				return true
			}
		}
		return false
	})
	r.orig = false
	return nil
}

func (m *Engine) rename(o *op, r *rec) error {
	if err := m.parse(r); err != nil {
		return err
	}
	r.orig = false
	for _, rn := range o.renames {
		k := slices.IndexFunc(r.fs, func(f field) bool { return string(f.key) == string(rn[0]) })
		if k < 0 {
			continue
		}
		r.fs[k].key = rn[1]
		// A field already named NEW gives way (withColumnRenamed would
		// leave two columns of one name; a record cannot).
		for j := 0; j < len(r.fs); j++ {
			if j != k && string(r.fs[j].key) == string(rn[1]) {
				r.fs = slices.Delete(r.fs, j, j+1)
				if j < k {
					k--
				}
				j--
			}
		}
	}
	return nil
}

// errNoField is a --parse-json field the record lacks.
var errNoField = errors.New("the record has no such field")

// parseJSON replaces the field o.name, a JSON object in a string, by the
// object's fields, where the field stood. They replace other fields of the
// same name; of keys repeated in the object the last value wins, as in
// encoding/json.
func (m *Engine) parseJSON(o *op, r *rec) error {
	if err := m.parse(r); err != nil {
		return err
	}
	at := slices.IndexFunc(r.fs, func(f field) bool { return string(f.key) == string(o.name) })
	if at < 0 {
		return fmt.Errorf("%w %q", errNoField, o.name)
	}
	raw := r.fs[at].val
	s, ok := record.Str(raw)
	if k := record.KindOf(raw); !ok || (k != record.KindString && k != record.KindBinary) {
		return fmt.Errorf("field %q is %s, not a string of JSON", o.name, record.KindOf(raw))
	}
	mark := len(m.arena)
	var err error
	if m.arena, err = record.AppendJSONObject(m.arena, s); err != nil {
		return fmt.Errorf("field %q: %w", o.name, err)
	}
	// The object's fields first, then the record's around them.
	obj := o.tmp[:0]
	var it record.Fields
	for it.Reset(m.arena[mark:]); it.Next(); {
		if k := slices.IndexFunc(obj, func(f field) bool { return string(f.key) == string(it.Key()) }); k >= 0 {
			obj[k].val = it.Value()
		} else {
			obj = append(obj, field{it.Key(), it.Value()})
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("field %q: %w", o.name, err)
	}
	nobj := len(obj)
	fs := obj
	for _, f := range r.fs[:at] {
		if !hasKey(obj[:nobj], f.key) {
			fs = append(fs, f)
		}
	}
	nbefore := len(fs) - nobj
	for _, f := range r.fs[at+1:] {
		if !hasKey(obj[:nobj], f.key) {
			fs = append(fs, f)
		}
	}
	// Move the fields from before the object in front of it.
	rotate(fs[:nobj+nbefore], nobj)
	o.tmp = r.fs
	r.fs, r.orig = fs, false
	return nil
}

// rotate moves fs[k:] in front of fs[:k].
func rotate(fs []field, k int) {
	slices.Reverse(fs[:k])
	slices.Reverse(fs[k:])
	slices.Reverse(fs)
}

func hasKey(fs []field, key []byte) bool {
	for _, f := range fs {
		if string(f.key) == string(key) {
			return true
		}
	}
	return false
}

// feed writes r to the stdin of op i's command.
func (m *Engine) feed(i int, r *rec) error {
	raw := r.raw
	if r.parsed {
		m.enc = encode(m.enc[:0], r.fs)
		raw = m.enc
	}
	if err := m.execs[i].write(raw); err != nil {
		return m.bad(m.ops[i], r, err)
	}
	return nil
}

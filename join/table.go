package join

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"

	"github.com/dstream/dstream/record"
)

// Table is the rows of one side of a join, indexed by their join key: a
// static table (sjoin --table) loaded once, or one batch of a stream. Rows
// with the same key keep the order they were added in.
//
// Layout, chosen so that a lookup costs two cache misses and a table of
// millions of rows little more than its bytes and nothing to the garbage
// collector (no pointer in it):
//
//	data   a group per distinct key, in order of first appearance:
//	       uvarint len(key), key (canonical values, see appendKey),
//	       uvarint rows, then per row: with raw keys (a stream's batch)
//	       uvarint len(raw), raw (the key fields' values as they came);
//	       uvarint len(body), body (a msgpack map of the row's other fields)
//	slots  open addressing, load at most 3/4: 0 empty, else the top 24
//	       bits of the key's hash << 40 | offset of its group in data + 1
//
// So a row costs its fields' bytes and a length byte or two, and a distinct
// key its bytes and 8 to 16 bytes of slots (TestTableMemory measures it).
// Why not map[string][]int32: a Go map of 1M string keys costs about 45
// bytes an entry, a slice header and a heap object per key, which the
// collector scans at every cycle; and three cache misses a lookup.
type Table struct {
	data  []byte
	slots []uint64
	mask  uint64
	seed  maphash.Seed
	raw   bool // rows keep their raw key values

	rows     int
	keys     int // distinct keys
	nullKeys int // rows whose key is null: they match nothing, and are not kept

	// The columns: every field name of the rows in order of first
	// appearance (the header of a CSV file, the columns of a SQL table),
	// key fields included, and the non-key ones alone.
	cols   []string
	colIdx map[string]int // of every column
	rest   colset
}

const (
	offBits = 40 // a group's offset in a slot: data up to 1 TiB
	offMask = 1<<offBits - 1
)

// builder adds rows to a Table, then indexes them. Rows are staged one
// after another, each as a group of one row: [uvarint len(key)][key][1][the
// row]; when keys repeat, finish lays them out anew in groups of a key.
type builder struct {
	t  *Table
	on []string
	// keepNull makes a null key a key like any other (cogroup groups the
	// records whose key is null together, as a groupBy does), instead of
	// leaving its row out.
	keepNull bool
	stage    []byte
	rowOff   []int64 // where each staged row starts
	p        probe
	shape    []byte // the field names of the last row
	f        record.Fields
	kb       []byte
	sink     uint64 // what touches read, so that they are not left out
}

// newBuilder returns a builder of a table keyed by on; raw keeps each
// row's key values as they came, for the rows written without a match.
func newBuilder(on []string, raw bool) *builder {
	return &builder{
		t:  &Table{seed: maphash.MakeSeed(), colIdx: map[string]int{}, raw: raw},
		on: on,
		p:  probe{spans: make([]record.Span, len(on)), wantShape: true},
	}
}

// addColumn notes a column of the table, as a header row or a SQL table
// names it, before or without rows.
func (b *builder) addColumn(name string) {
	t := b.t
	if _, ok := t.colIdx[name]; !ok {
		t.colIdx[name] = len(t.cols)
		t.cols = append(t.cols, name)
	}
}

// add adds one row, a msgpack map. A row whose key is null is counted and
// left out: it can match nothing.
func (b *builder) add(rec []byte) error {
	t, p := b.t, &b.p
	p.shape = p.shape[:0]
	if err := p.parse(rec, b.on, nil); err != nil {
		return err
	}
	// The columns: most rows have the fields of the one before, in the same
	// order, which their names tell without a map lookup per field.
	if !bytes.Equal(p.shape, b.shape) {
		b.shape = append(b.shape[:0], p.shape...)
		b.f.Reset(rec)
		for b.f.Next() {
			if name := b.f.Key(); !t.known(name) {
				b.addColumn(string(name))
			}
		}
	}
	key, ok := b.key(rec)
	if !ok {
		t.nullKeys++
		return nil
	}
	if len(b.rowOff) == 1<<31-1 {
		return errors.New("more than 2^31 rows")
	}
	b.grow(len(rec) + len(key) + 16)
	b.rowOff = append(b.rowOff, int64(len(b.stage)))
	b.stage = binary.AppendUvarint(b.stage, uint64(len(key)))
	b.stage = append(b.stage, key...)
	b.stage = append(b.stage, 1) // a group of one row, as finish may keep it
	if t.raw {
		start := len(b.stage)
		b.stage = append(b.stage, 0) // the length, below
		for _, s := range p.spans {
			if s.End == 0 {
				b.stage = record.AppendNil(b.stage) // missing, with keepNull
				continue
			}
			b.stage = append(b.stage, rec[s.Start:s.End]...)
		}
		b.stage = insertLen(b.stage, start)
	}
	start := len(b.stage)
	b.stage = append(b.stage, 0)
	b.stage = record.AppendMapHeader(b.stage, p.n)
	for _, r := range p.ranges {
		b.stage = append(b.stage, rec[r.start:r.end]...)
	}
	b.stage = insertLen(b.stage, start)
	return nil
}

// reserve makes room for rows more rows of bytes more bytes, as a loader
// that knows the size of what it reads foresees them.
func (b *builder) reserve(rows, bytes int) {
	b.grow(bytes)
	b.rowOff = slices.Grow(b.rowOff, rows)
}

// grow makes room for n more bytes of staged rows, doubling: append grows
// a large slice by a quarter, which for a table of 60 MB allocates 300.
func (b *builder) grow(n int) {
	if cap(b.stage)-len(b.stage) >= n {
		return
	}
	s := make([]byte, len(b.stage), max(2*cap(b.stage), len(b.stage)+n, 4096))
	copy(s, b.stage)
	b.stage = s
}

// insertLen replaces the byte at start, a placeholder, by the uvarint
// length of what follows it.
func insertLen(b []byte, start int) []byte {
	n := uint64(len(b) - start - 1)
	if n < 0x80 {
		b[start] = byte(n)
		return b
	}
	var l [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(l[:], n)
	b = slices.Insert(b, start+1, l[1:k]...)
	copy(b[start:], l[:k])
	return b
}

// known reports whether name is a column already.
func (t *Table) known(name []byte) bool {
	_, ok := t.colIdx[string(name)]
	return ok
}

// key is the row's key; ok is false if a key field is null or missing.
func (b *builder) key(rec []byte) (key []byte, ok bool) {
	b.kb = b.kb[:0]
	for _, s := range b.p.spans {
		var raw []byte
		if s.End > 0 {
			raw = rec[s.Start:s.End]
		}
		if b.kb, ok = appendKey(b.kb, raw); !ok {
			if !b.keepNull {
				return nil, false
			}
			b.kb = record.AppendNil(b.kb)
		}
	}
	return b.kb, true
}

// stagedKey is the key of staged row r, and where the row starts, after
// its count.
func (b *builder) stagedKey(r int32) ([]byte, int) {
	off := int(b.rowOff[r])
	l, k := binary.Uvarint(b.stage[off:])
	start := off + k
	return b.stage[start : start+int(l)], start + int(l) + 1
}

// finish indexes the rows and returns the table; the builder is spent.
func (b *builder) finish() *Table {
	t := b.t
	for _, c := range t.cols {
		if !slices.Contains(b.on, c) {
			t.rest.add([]byte(c))
		}
	}

	n := len(b.rowOff)
	t.rows = n
	size := 1 << bits.Len(uint(max(8, n+n/3)))
	t.slots = make([]uint64, size)
	t.mask = uint64(size - 1)
	// Chain the rows of each key, a slot holding its first row for now:
	// backwards, each row put at the head of its key's list, so that the
	// lists come out in the order of the rows.
	next := make([]int32, n)
	slotOf := make([]uint64, n) // of a key's first row: its slot
	first := make([]bool, n)
	rows := make([]int32, 0, 8)
	// A chunk of rows at a time: their hashes, then their slots touched in
	// a tight loop so that the cache misses overlap (as Static.Block does),
	// then the chaining.
	var hs [64]uint64
	for hi := int32(n - 1); hi >= 0; hi -= int32(len(hs)) {
		lo := max(hi-int32(len(hs))+1, 0)
		for r := hi; r >= lo; r-- {
			key, _ := b.stagedKey(r)
			hs[hi-r] = maphash.Bytes(t.seed, key)
		}
		var sink uint64
		for j := range hi - lo + 1 {
			sink ^= t.touch(hs[j])
		}
		b.sink ^= sink
		for r := hi; r >= lo; r-- {
			key, _ := b.stagedKey(r)
			h := hs[hi-r]
			i, s := t.probe(h, func(s uint64) bool {
				k, _ := b.stagedKey(int32(s&offMask) - 1)
				return bytes.Equal(k, key)
			})
			next[r] = -1
			if s != 0 {
				next[r] = int32(s&offMask) - 1
				first[next[r]] = false
			} else {
				t.keys++
			}
			t.slots[i] = h>>offBits<<offBits | uint64(r+1)
			slotOf[r], first[r] = i, true
		}
	}
	if t.keys == n {
		// Every key once (a lookup table): the staged rows are the groups.
		for r := range n {
			i := slotOf[r]
			t.slots[i] = t.slots[i]&^offMask | uint64(b.rowOff[r]+1)
		}
		t.data = b.stage
		if cap(t.data)-len(t.data) > len(t.data)/16 {
			t.data = slices.Clone(t.data)
		}
		b.t, b.stage, b.rowOff = nil, nil, nil
		return t
	}
	// Lay the groups out, in order of their first row, and point the
	// slots at them.
	data := make([]byte, 0, len(b.stage)+3*t.keys) // +the counts: enough
	for r := range int32(n) {
		if !first[r] {
			continue // laid out with the first row of its key
		}
		key, _ := b.stagedKey(r)
		off := len(data)
		rows = rows[:0]
		for q := r; q >= 0; q = next[q] {
			rows = append(rows, q)
		}
		data = binary.AppendUvarint(data, uint64(len(key)))
		data = append(data, key...)
		data = binary.AppendUvarint(data, uint64(len(rows)))
		for _, q := range rows {
			_, rest := b.stagedKey(q)
			end := len(b.stage)
			if int(q)+1 < n {
				end = int(b.rowOff[q+1])
			}
			data = append(data, b.stage[rest:end]...)
		}
		i := slotOf[r]
		t.slots[i] = t.slots[i]&^offMask | uint64(off+1)
	}
	if cap(data)-len(data) > len(data)/16 { // many keys of several rows
		data = slices.Clone(data)
	}
	t.data = data
	b.t, b.stage, b.rowOff = nil, nil, nil
	return t
}

// probe returns the slot of the key whose hash is h, as match recognises
// its slot value among those of the same hash bits, and that value; or the
// empty slot where the key would go, and 0.
func (t *Table) probe(h uint64, match func(s uint64) bool) (uint64, uint64) {
	fp := h >> offBits
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 || (s>>offBits == fp && match(s)) {
			return i, s
		}
	}
}

// Group is the rows of one key: Next gives them in order.
type Group struct {
	b   []byte // the rows not yet given
	n   int
	raw bool
	off int // the group's offset in the table's data: who it is
}

// Len is the number of rows not yet given.
func (g *Group) Len() int { return g.n }

// Next returns the next row: its key values as they came (with raw keys;
// else nil) and its body, a msgpack map of its other fields.
func (g *Group) Next() (raw, body []byte, ok bool) {
	if g.n == 0 {
		return nil, nil, false
	}
	g.n--
	if g.raw {
		l, k := binary.Uvarint(g.b)
		raw, g.b = g.b[k:k+int(l)], g.b[k+int(l):]
	}
	l, k := binary.Uvarint(g.b)
	body, g.b = g.b[k:k+int(l)], g.b[k+int(l):]
	return raw, body, true
}

// group returns the group at offset off of data, and its key.
func (t *Table) group(off int) (key []byte, g Group) {
	l, k := binary.Uvarint(t.data[off:])
	start := off + k
	key = t.data[start : start+int(l)]
	n, k2 := binary.Uvarint(t.data[start+int(l):])
	return key, Group{b: t.data[start+int(l)+k2:], n: int(n), raw: t.raw, off: off}
}

// Lookup returns the rows of key: an empty Group if none.
func (t *Table) Lookup(key []byte) Group { return t.lookup(key, t.hash(key)) }

// hash is the hash of key.
func (t *Table) hash(key []byte) uint64 { return maphash.Bytes(t.seed, key) }

// touch reads the first slot of hash h, so that it is in the cache when
// lookup comes to it: a batch of touches before a batch of lookups makes
// the processor wait for many cache misses at once rather than one after
// another.
func (t *Table) touch(h uint64) uint64 { return t.slots[h&t.mask] }

// touchGroup reads the first byte of the group that the first slot of h
// with h's hash bits points to, for the same reason as touch.
func (t *Table) touchGroup(h uint64) uint64 {
	fp := h >> offBits
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return 0
		}
		if s>>offBits == fp {
			return uint64(t.data[s&offMask-1])
		}
	}
}

// lookup is Lookup of key whose hash is h.
func (t *Table) lookup(key []byte, h uint64) Group {
	fp := h >> offBits
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return Group{}
		}
		if s>>offBits == fp {
			off := int(s&offMask) - 1
			// The key is read inline: this is the hot path of a join.
			l, k := binary.Uvarint(t.data[off:])
			start := off + k
			if int(l) == len(key) && bytes.Equal(t.data[start:start+int(l)], key) {
				_, g := t.group(off)
				return g
			}
		}
	}
}

// Each calls fn with every key and its rows, in order of first appearance.
func (t *Table) Each(fn func(key []byte, g Group)) {
	for off := 0; off < len(t.data); {
		key, g := t.group(off)
		fn(key, g)
		for g.n > 0 {
			g.Next()
		}
		off = len(t.data) - len(g.b)
	}
}

// Len is the number of rows kept: those with a key.
func (t *Table) Len() int { return t.rows }

// Keys is the number of distinct keys.
func (t *Table) Keys() int { return t.keys }

// NullKeys is the number of rows left out because a key field was null or
// missing.
func (t *Table) NullKeys() int { return t.nullKeys }

// Columns are the table's field names, key fields included, in order of
// first appearance.
func (t *Table) Columns() []string { return t.cols }

// MemoryUsed is the bytes the table holds.
func (t *Table) MemoryUsed() int64 { return int64(cap(t.data) + 8*len(t.slots)) }

// String describes the table's size, for notes.
func (t *Table) String() string { return fmt.Sprintf("%d rows, %d keys", t.rows, t.keys) }

package join

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/dstream/dstream/record"
)

// side is the state one side of an event-time join keeps across batches:
// its records not yet dropped by the watermark, found by key, and in order
// of event time for the dropping.
//
// A record's bytes (its key values as they came, then its body, a msgpack
// map of its other fields) are in one arena; a row of rows says where, and
// links it to the other rows of its key; index finds the first and last row
// of a key; heap orders the rows by event time (then by arrival), so that
// the rows the watermark passes are taken from its top. Removed rows leave
// garbage in the arena, which is rewritten once it is half garbage.
type side struct {
	rows    []srow
	free    []int32
	index   map[string]int32 // key -> its entry in ends
	ends    [][2]int32       // per key: its first and last row
	freeK   []int32          // entries of ends free for reuse
	heap    []int32
	arena   []byte
	garbage int
	live    int
	seq     uint64 // arrivals so far: each row's order

	cols  colset // the non-key fields its records had so far
	shape []byte // the field names of its last record
	maxT  int64  // the latest event time seen
	seenT bool
	on    int // key fields
	kb    []byte
}

// srow is a record in a side's state.
type srow struct {
	t          int64
	seq        uint64
	off        uint32 // in the arena: the key values, then the body
	raw, n     uint32 // the length of the key values, and of both
	next, prev int32  // the other rows of its key, -1 at the ends
	matched    bool   // it joined with a record of the other side
	nokey      bool   // its key is null: it matches nothing, and is in no list
	alive      bool
}

// srowSize is the bytes of an srow, for MemoryUsed.
const srowSize = 48

func newSide(on int) *side { return &side{on: on, index: map[string]int32{}} }

// rawKeys and body are the parts of row r's bytes.
func (s *side) rawKeys(r int32) []byte {
	w := &s.rows[r]
	return s.arena[w.off : w.off+w.raw]
}

func (s *side) body(r int32) []byte {
	w := &s.rows[r]
	return s.arena[w.off+w.raw : w.off+w.n]
}

// add keeps a record of event time t whose key is key (nil when null), its
// key values raw and its body. It returns the row.
func (s *side) add(key []byte, t int64, matched bool, raw, body []byte) (int32, error) {
	if len(s.arena)+len(raw)+len(body) > math.MaxUint32 {
		return 0, errors.New("join state above 4 GiB")
	}
	var r int32
	if n := len(s.free); n > 0 {
		r, s.free = s.free[n-1], s.free[:n-1]
	} else {
		if len(s.rows) == math.MaxInt32 {
			return 0, errors.New("more than 2^31 rows in the join state")
		}
		r = int32(len(s.rows))
		s.rows = append(s.rows, srow{})
	}
	s.rows[r] = srow{t: t, seq: s.seq, off: uint32(len(s.arena)), raw: uint32(len(raw)), n: uint32(len(raw) + len(body)),
		next: -1, prev: -1, matched: matched, nokey: key == nil, alive: true}
	s.seq++
	s.arena = append(append(s.arena, raw...), body...)
	s.live++
	if key != nil {
		// A lookup with string(key) allocates nothing; only a new key's
		// entry in the map copies the key.
		if k, ok := s.index[string(key)]; ok {
			e := &s.ends[k]
			s.rows[e[1]].next = r
			s.rows[r].prev = e[1]
			e[1] = r
		} else {
			var k int32
			if n := len(s.freeK); n > 0 {
				k, s.freeK = s.freeK[n-1], s.freeK[:n-1]
				s.ends[k] = [2]int32{r, r}
			} else {
				k = int32(len(s.ends))
				s.ends = append(s.ends, [2]int32{r, r})
			}
			s.index[string(key)] = k
		}
	}
	s.push(r)
	return r, nil
}

// first returns the first row of key, or -1; rows[r].next the others.
func (s *side) first(key []byte) int32 {
	if k, ok := s.index[string(key)]; ok {
		return s.ends[k][0]
	}
	return -1
}

// keyOf is the canonical key of row r, from its key values.
func (s *side) keyOf(r int32) []byte {
	raw := s.rawKeys(r)
	s.kb = s.kb[:0]
	for range s.on {
		n := valueLen(raw)
		s.kb, _ = appendKey(s.kb, raw[:n])
		raw = raw[n:]
	}
	return s.kb
}

// remove forgets row r.
func (s *side) remove(r int32) {
	w := &s.rows[r]
	if !w.nokey {
		key := s.keyOf(r)
		k := s.index[string(key)]
		e := &s.ends[k]
		if w.prev < 0 && w.next < 0 {
			delete(s.index, string(key))
			s.freeK = append(s.freeK, k)
		} else {
			if w.prev >= 0 {
				s.rows[w.prev].next = w.next
			} else {
				e[0] = w.next
			}
			if w.next >= 0 {
				s.rows[w.next].prev = w.prev
			} else {
				e[1] = w.prev
			}
		}
	}
	s.garbage += int(w.n)
	*w = srow{}
	s.free = append(s.free, r)
	s.live--
}

// evict removes the rows whose event time is at or before cutoff, earliest
// first, calling out with each before it goes (out may read the row).
func (s *side) evict(cutoff int64, out func(r int32) error) (int, error) {
	n := 0
	for len(s.heap) > 0 && s.rows[s.heap[0]].t <= cutoff {
		r := s.pop()
		if out != nil {
			if err := out(r); err != nil {
				return n, err
			}
		}
		s.remove(r)
		n++
	}
	if s.garbage > 1<<20 && s.garbage > len(s.arena)/2 {
		s.compact()
	}
	return n, nil
}

// compact rewrites the arena with the live rows only.
func (s *side) compact() {
	arena := make([]byte, 0, len(s.arena)-s.garbage)
	for r := range s.rows {
		w := &s.rows[r]
		if !w.alive {
			continue
		}
		off := len(arena)
		arena = append(arena, s.arena[w.off:w.off+w.n]...)
		w.off = uint32(off)
	}
	s.arena, s.garbage = arena, 0
}

// The heap of rows by (t, seq), smallest on top.

func (s *side) less(i, j int) bool {
	a, b := &s.rows[s.heap[i]], &s.rows[s.heap[j]]
	return a.t < b.t || (a.t == b.t && a.seq < b.seq)
}

func (s *side) push(r int32) {
	s.heap = append(s.heap, r)
	for i := len(s.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s.heap[i], s.heap[p] = s.heap[p], s.heap[i]
		i = p
	}
}

func (s *side) pop() int32 {
	h := s.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	s.heap = h[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < last && s.less(l, m) {
			m = l
		}
		if l+1 < last && s.less(l+1, m) {
			m = l + 1
		}
		if m == i {
			break
		}
		s.heap[i], s.heap[m] = s.heap[m], s.heap[i]
		i = m
	}
	return top
}

// memory estimates the bytes the side holds.
func (s *side) memory() int64 {
	// A map entry of a short key: the key's string header and bytes, its
	// entry, the map's own overhead; about 56 bytes.
	return int64(cap(s.arena) + srowSize*cap(s.rows) + 4*(cap(s.heap)+cap(s.free)+cap(s.freeK)) + 8*cap(s.ends) + 56*len(s.index))
}

// valueLen is the length of the msgpack value at the start of raw, which
// was checked when it came.
func valueLen(raw []byte) int {
	n, err := record.Skip(raw)
	if err != nil {
		panic("join: corrupt key values in the state")
	}
	return n
}

// sortRows sorts rows by (t, seq): the order of the heap's pops.
func sortRows(s *side, rows []int32) {
	slices.SortFunc(rows, func(a, b int32) int {
		x, y := &s.rows[a], &s.rows[b]
		if c := cmp.Compare(x.t, y.t); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
}

// The snapshot of a side: uvarints and varints, and bytes with their
// length before them.
//
//	seenT, maxT, seq, len(cols), cols..., live, then per row in order of
//	(t, seq): t, seq, flags (1 matched, 2 nokey), raw keys, body

func (s *side) save(w io.Writer, buf []byte) ([]byte, error) {
	b := buf[:0]
	b = appendBool(b, s.seenT)
	b = binary.AppendVarint(b, s.maxT)
	b = binary.AppendUvarint(b, s.seq)
	b = binary.AppendUvarint(b, uint64(len(s.cols.names)))
	for _, c := range s.cols.names {
		b = appendBytes(b, []byte(c))
	}
	b = binary.AppendUvarint(b, uint64(s.live))
	order := append([]int32(nil), s.heap...)
	sortRows(s, order)
	for _, r := range order {
		if len(b) > 1<<20 {
			if _, err := w.Write(b); err != nil {
				return b, err
			}
			b = b[:0]
		}
		x := &s.rows[r]
		b = binary.AppendVarint(b, x.t)
		b = binary.AppendUvarint(b, x.seq)
		var flags byte
		if x.matched {
			flags |= 1
		}
		if x.nokey {
			flags |= 2
		}
		b = append(b, flags)
		b = appendBytes(b, s.rawKeys(r))
		b = appendBytes(b, s.body(r))
	}
	_, err := w.Write(b)
	return b, err
}

func (s *side) load(d *decoder) error {
	s.seenT = d.bool()
	s.maxT = d.varint()
	seq := d.uvarint()
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		s.cols.add(d.bytes())
	}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		t, rseq, flags := d.varint(), d.uvarint(), d.byte()
		raw, body := d.bytes(), d.bytes()
		if d.err != nil {
			break
		}
		if err := s.checkRow(raw, body); err != nil {
			return err
		}
		var key []byte
		if flags&2 == 0 {
			key = append([]byte(nil), s.keyOfRaw(raw)...)
		}
		r, err := s.add(key, t, flags&1 != 0, raw, body)
		if err != nil {
			return err
		}
		s.rows[r].seq = rseq
	}
	s.seq = seq
	return d.err
}

// checkRow checks a row read from a snapshot: as many key values as key
// fields, and a body that is a map, so that nothing later trips on them.
func (s *side) checkRow(raw, body []byte) error {
	for range s.on {
		n, err := record.Skip(raw)
		if err != nil {
			return fmt.Errorf("join state: a row's key values: %w", err)
		}
		raw = raw[n:]
	}
	if len(raw) > 0 {
		return errors.New("join state: a row with more key values than key fields")
	}
	if n, err := record.Skip(body); err != nil || n != len(body) || record.KindOf(body) != record.KindMap {
		return errors.New("join state: a row's fields are not a map")
	}
	var f record.Fields
	for f.Reset(body); f.Next(); {
	}
	if err := f.Err(); err != nil {
		return fmt.Errorf("join state: a row's fields: %w", err)
	}
	return nil
}

// keyOfRaw is the canonical key of the key values raw.
func (s *side) keyOfRaw(raw []byte) []byte {
	s.kb = s.kb[:0]
	for range s.on {
		n, err := record.Skip(raw)
		if err != nil {
			return s.kb
		}
		s.kb, _ = appendKey(s.kb, raw[:n])
		raw = raw[n:]
	}
	return s.kb
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// decoder reads a snapshot; its first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errors.New("truncated join state")
	}
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bool() bool { return d.byte() == 1 }

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) > 0 {
		return fmt.Errorf("%d bytes after the join state", len(d.b))
	}
	return d.err
}

package agg

import (
	"errors"
	"fmt"
	"io"

	"github.com/dstream/dstream/record"
)

// stateVersion is the version of the snapshot layout written by
// AppendSnapshot; it is also part of Config.Fingerprint.
const stateVersion = 1

// ErrCorrupt is wrapped by LoadSnapshot errors for a snapshot that does not
// parse.
var ErrCorrupt = errors.New("agg: corrupt snapshot")

func errCorrupt(what string) error { return fmt.Errorf("%w: %s", ErrCorrupt, what) }

// AppendSnapshot appends the table's state as a sequence of msgpack values:
//
//	version  int
//	groups   int, then per group (in index order, removed groups left out):
//	         key (bin: the concatenated canonical key values), rows (int),
//	         last update (int, unix ms), then each column's state
//	extras   one value per column (distinct: its (group ordinal, value,
//	         occurrences) triples; others nil)
//
// Column states: count none (it is rows); sum and avg the integer part,
// float part, values summed and floats summed; min, max, first and last an
// array of zero or one value; collect the array of values.
func (t *Table) AppendSnapshot(dst []byte) []byte {
	sw := &snapWriter{buf: dst}
	t.writeSnapshot(sw)
	return sw.buf
}

// WriteSnapshot writes the snapshot of AppendSnapshot to w, a block at a
// time, so that saving a large state does not hold a copy of it in memory.
func (t *Table) WriteSnapshot(w io.Writer) error {
	sw := &snapWriter{w: w, buf: make([]byte, 0, 2*snapBlock)}
	t.writeSnapshot(sw)
	sw.flush(true)
	return sw.err
}

const snapBlock = 64 << 10

// snapWriter gathers a snapshot into buf, handing it to w (if any) a block
// at a time.
type snapWriter struct {
	w   io.Writer
	buf []byte
	err error
}

// flush writes out buf when it holds a block, or anything with force.
func (sw *snapWriter) flush(force bool) {
	if sw.w == nil || sw.err != nil || (!force && len(sw.buf) < snapBlock) {
		return
	}
	_, sw.err = sw.w.Write(sw.buf)
	sw.buf = sw.buf[:0]
}

func (t *Table) writeSnapshot(sw *snapWriter) {
	sw.buf = record.AppendInt(sw.buf, stateVersion)
	sw.buf = record.AppendInt(sw.buf, int64(t.live))
	ordinal := make([]int32, len(t.rows))
	n := int32(0)
	for g := range t.rows {
		if t.flags[g]&fAlive == 0 {
			ordinal[g] = -1
			continue
		}
		ordinal[g] = n
		n++
		sw.buf = t.appendGroup(sw.buf, int32(g))
		sw.flush(false)
	}
	for _, c := range t.cols {
		c.writeExtra(sw, ordinal)
	}
}

// appendGroup appends group g as a snapshot holds it: its key, rows, time
// and the state of each column.
func (t *Table) appendGroup(dst []byte, g int32) []byte {
	dst = record.AppendBinary(dst, t.ks.key(g))
	dst = record.AppendInt(dst, t.rows[g])
	dst = record.AppendInt(dst, t.last[g])
	for _, c := range t.cols {
		dst = c.appendState(dst, g)
	}
	return dst
}

// LoadSnapshot replaces the table's state with a snapshot that
// AppendSnapshot wrote for the same Config (the caller checks the
// fingerprint). Groups restored are not touched.
func (t *Table) LoadSnapshot(b []byte) error {
	t.Reset()
	if _, err := t.load(nil, b); err != nil {
		t.Reset()
		return err
	}
	return nil
}

// AppendGroupSnapshot appends a snapshot of group g alone, in the layout of
// AppendSnapshot, which AddSnapshot adds to a table beside its groups: a
// stateful stage's changelog (package changelog) keeps one per group.
// Not for a table with a distinct column, whose values are kept table-wide
// (see GroupSnapshots).
func (t *Table) AppendGroupSnapshot(dst []byte, g int32) []byte {
	dst = record.AppendInt(dst, stateVersion)
	dst = record.AppendInt(dst, 1)
	dst = t.appendGroup(dst, g)
	for range t.cols {
		dst = record.AppendNil(dst) // no extras: see GroupSnapshots
	}
	return dst
}

// GroupSnapshots reports whether the table's groups can be saved one by one
// (AppendGroupSnapshot), and if not why, naming the flag.
func (c Config) GroupSnapshots() error {
	for _, a := range c.Aggs {
		if a.Kind == Distinct {
			return fmt.Errorf("--distinct %s keeps its values table-wide, not per group: it cannot be kept per partition yet", a.Field)
		}
	}
	return nil
}

// AddSnapshot adds the groups of a snapshot (AppendSnapshot's or
// AppendGroupSnapshot's, for the same Config) to the table beside its own,
// appending them to dst; a key the table has already is an error. The
// groups added are not touched.
func (t *Table) AddSnapshot(dst []int32, b []byte) ([]int32, error) {
	return t.load(dst, b)
}

func (t *Table) load(groups []int32, b []byte) ([]int32, error) {
	v, b, err := nextInt(b)
	if err != nil {
		return groups, err
	}
	if v != stateVersion {
		return groups, fmt.Errorf("agg: snapshot of state version %d, this program reads version %d", v, stateVersion)
	}
	n, b, err := nextInt(b)
	if err != nil {
		return groups, err
	}
	if n < 0 || n > int64(len(b)) { // a group takes several bytes
		return groups, errCorrupt("group count")
	}
	first := len(groups)
	t.reserve(int(n))
	for range n {
		kv, rest, err := next(b)
		if err != nil {
			return groups, err
		}
		key, ok := record.Str(kv)
		if !ok || record.KindOf(kv) != record.KindBinary || !t.validKey(key) {
			return groups, errCorrupt("group key")
		}
		h := t.ks.hash(key)
		g, slot := t.ks.find(key, h)
		if g >= 0 {
			return groups, errCorrupt("duplicate group key")
		}
		g = t.insert(key, h, slot)
		groups = append(groups, g)
		if t.rows[g], rest, err = nextInt(rest); err != nil {
			return groups, err
		}
		if t.last[g], rest, err = nextInt(rest); err != nil {
			return groups, err
		}
		for _, c := range t.cols {
			if rest, err = c.loadState(g, rest); err != nil {
				return groups, err
			}
		}
		b = rest
	}
	for _, c := range t.cols {
		if b, err = c.loadExtra(b, groups[first:]); err != nil {
			return groups, err
		}
	}
	if len(b) != 0 {
		return groups, errCorrupt("trailing bytes")
	}
	return groups, nil
}

// validKey reports whether key holds exactly one value per key field.
func (t *Table) validKey(key []byte) bool {
	for range t.cfg.Keys {
		n, err := record.Skip(key)
		if err != nil {
			return false
		}
		key = key[n:]
	}
	return len(key) == 0
}

// next splits the first msgpack value off b.
func next(b []byte) (v, rest []byte, err error) {
	n, err := record.Skip(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return b[:n], b[n:], nil
}

func nextInt(b []byte) (int64, []byte, error) {
	v, rest, err := next(b)
	if err != nil {
		return 0, nil, err
	}
	x, ok := record.Int(v)
	if !ok {
		return 0, nil, errCorrupt("integer expected")
	}
	return x, rest, nil
}

func nextFloat(b []byte) (float64, []byte, error) {
	v, rest, err := next(b)
	if err != nil {
		return 0, nil, err
	}
	if record.KindOf(v) != record.KindFloat {
		return 0, nil, errCorrupt("float expected")
	}
	x, _ := record.Float(v)
	return x, rest, nil
}

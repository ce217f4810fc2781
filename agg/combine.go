package agg

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Combining partial aggregates: swindow keeps one Table per slice of time
// (a pane: Flink's, and the slices of Scotty and Cutty) and assembles a
// window's groups from the slices it covers, so that a record is added
// once whatever the number of windows holding it. Merge is the combine of
// two partials, associative for every aggregate; Unmerge undoes a Merge
// for the invertible ones.
//
// Merge keeps the order of arrival where an aggregate depends on it
// (first, last, collect) only when src's records came after t's: slices
// are merged oldest first.

// ErrConfig is returned by Merge and Unmerge for tables of different
// configurations.
var ErrConfig = errors.New("agg: tables of different configurations")

// Merge folds every group of src into t, as if the records folded into src
// had been added to t after its own: counts, sums and distinct values add
// up, min and max compare, first keeps t's value if it has one and last
// takes src's, collect appends src's values. It creates the groups t lacks
// and marks the groups it changes touched. src is left as it was, but for
// its bookkeeping (removed groups of a distinct count are swept).
//
// An integer sum that would overflow is an error (wrapping ErrOverflow);
// t is then partly merged, and the caller gives it up.
func (t *Table) Merge(src *Table) error { return t.merge(src, nil, nil) }

// merge is Merge, and with ta and sa (the arrivals of t and src, both or
// neither) MergeArrival.
func (t *Table) merge(src *Table, ta, sa *Arrival) error {
	gmap, err := t.groupMap(src, true)
	if err != nil {
		return err
	}
	if ta != nil {
		ta.grow(len(t.rows))
		sa.grow(len(src.rows))
	}
	for i, c := range t.cols {
		if v, ok := c.(*valueCol); ok && ta != nil && (v.kind == First || v.kind == Last) {
			v.mergeArrival(src.cols[i].(*valueCol), gmap, ta, sa)
			continue
		}
		if err := c.(combiner).merge(src.cols[i], gmap); err != nil {
			return err
		}
	}
	for sg, g := range gmap {
		if g >= 0 {
			t.rows[g] += src.rows[sg]
			t.touch(g)
		}
	}
	if ta != nil {
		ta.merge(sa, gmap)
	}
	return nil
}

// Unmerge takes back from t a src that was merged into it (or whose records
// were added to it) before: the inverse of Merge for invertible aggregates
// (count, sum, avg, distinct), ErrNotInvertible for the others. The groups
// stay, possibly with no rows, as after Subtract; they are marked touched.
// A group of src that t does not hold is an error, and t is then partly
// changed.
func (t *Table) Unmerge(src *Table) error {
	if !t.cfg.Invertible() {
		return ErrNotInvertible
	}
	gmap, err := t.groupMap(src, false)
	if err != nil {
		return err
	}
	for i, c := range t.cols {
		c.(combiner).unmerge(src.cols[i], gmap)
	}
	for sg, g := range gmap {
		if g >= 0 {
			t.rows[g] -= src.rows[sg]
			t.touch(g)
		}
	}
	return nil
}

// groupMap maps each group of src to t's group of the same key, -1 for a
// removed group of src. With create, it makes the groups t lacks; without,
// a group t lacks is an error.
func (t *Table) groupMap(src *Table, create bool) ([]int32, error) {
	if !sameConfig(t.cfg, src.cfg) {
		return nil, ErrConfig
	}
	gmap := make([]int32, len(src.rows))
	for sg := range src.rows {
		if src.flags[sg]&fAlive == 0 {
			gmap[sg] = -1
			continue
		}
		key := src.ks.key(int32(sg))
		h := t.ks.hash(key)
		g, slot := t.ks.find(key, h)
		if g < 0 {
			if !create {
				return nil, errors.New("agg: taking back a group that the table does not hold")
			}
			g = t.insert(key, h, slot)
		}
		gmap[sg] = g
	}
	return gmap, nil
}

// combiner is a column's part of Merge and Unmerge: src is the same column
// of the other table, gmap maps its groups to this one's (-1: none).
type combiner interface {
	merge(src column, gmap []int32) error
	unmerge(src column, gmap []int32) // invertible kinds only
}

func (countCol) merge(column, []int32) error { return nil }
func (countCol) unmerge(column, []int32)     {}

func (c *sumCol) merge(src column, gmap []int32) error {
	s := src.(*sumCol)
	for sg, g := range gmap {
		if g < 0 || s.n[sg] == 0 {
			continue
		}
		i, over := add64(c.i[g], s.i[sg])
		if over {
			return &RecordError{Name: c.name, Err: fmt.Errorf("%w: %d plus %d", ErrOverflow, c.i[g], s.i[sg])}
		}
		c.i[g] = i
		c.f[g] += s.f[sg]
		c.n[g] += s.n[sg]
		c.nf[g] += s.nf[sg]
	}
	return nil
}

func (c *sumCol) unmerge(src column, gmap []int32) {
	s := src.(*sumCol)
	for sg, g := range gmap {
		if g < 0 || s.n[sg] == 0 {
			continue
		}
		c.i[g] -= s.i[sg]
		c.f[g] -= s.f[sg]
		c.n[g] -= s.n[sg]
		if c.nf[g] -= s.nf[sg]; c.nf[g] == 0 {
			c.f[g] = 0 // as sub: no rounding left over from floats that are gone
		}
	}
}

func (c *valueCol) merge(src column, gmap []int32) error {
	s := src.(*valueCol)
	for sg, g := range gmap {
		if g < 0 || s.k[sg] == 0 {
			continue
		}
		switch {
		case c.kind == First && c.k[g] != 0:
			continue
		case (c.kind == Min || c.kind == Max) && c.k[g] != 0:
			// src's scratch: c's holds c's value.
			s.scratch = s.appendValue(s.scratch[:0], int32(sg))
			c.scratch = c.appendValue(c.scratch[:0], g)
			d := CompareValues(s.scratch, c.scratch)
			if (c.kind == Min && d >= 0) || (c.kind == Max && d <= 0) {
				continue
			}
		}
		c.take(g, s, int32(sg))
	}
	return nil
}

// take sets group g's value to group sg's of s, sharing its string: no
// copy, no allocation.
func (c *valueCol) take(g int32, s *valueCol, sg int32) {
	c.bytes += int64(len(s.str[sg]) - len(c.str[g]))
	c.k[g], c.num[g], c.str[g] = s.k[sg], s.num[sg], s.str[sg]
}

func (c *valueCol) unmerge(column, []int32) {}

func (c *distinctCol) merge(src column, gmap []int32) error {
	c.combine(src.(*distinctCol), gmap, c.addKey)
	return nil
}

func (c *distinctCol) unmerge(src column, gmap []int32) {
	c.combine(src.(*distinctCol), gmap, c.subKey)
}

// combine hands each entry of s, moved to its group in c by gmap (groups
// mapped to -1 left out), to f with its count.
func (c *distinctCol) combine(s *distinctCol, gmap []int32, f func(g int32, k []byte, n int64)) {
	if len(s.dead) > 0 {
		s.sweep() // a removed group's index may be another's now
	}
	if len(c.dead) > 0 {
		c.sweep()
	}
	for k, i := range s.m {
		g := gmap[binary.BigEndian.Uint32([]byte(k))]
		if g < 0 {
			continue
		}
		c.kb = append(binary.BigEndian.AppendUint32(c.kb[:0], uint32(g)), k[4:]...)
		f(g, c.kb, s.cnt[i])
	}
}

func (c *collectCol) merge(src column, gmap []int32) error {
	s := src.(*collectCol)
	for sg, g := range gmap {
		if g < 0 || s.n[sg] == 0 {
			continue
		}
		c.bytes -= int64(cap(c.buf[g]))
		c.buf[g] = append(c.buf[g], s.buf[sg]...)
		c.bytes += int64(cap(c.buf[g]))
		c.n[g] += s.n[sg]
	}
	return nil
}

func (c *collectCol) unmerge(column, []int32) {}

// sameConfig reports whether a and b compute the same aggregates of the same
// keys (output names aside, as in Fingerprint).
func sameConfig(a, b Config) bool {
	if len(a.Keys) != len(b.Keys) || len(a.Aggs) != len(b.Aggs) {
		return false
	}
	for i := range a.Keys {
		if a.Keys[i] != b.Keys[i] {
			return false
		}
	}
	for i := range a.Aggs {
		if a.Aggs[i].Kind != b.Aggs[i].Kind || a.Aggs[i].Field != b.Aggs[i].Field {
			return false
		}
	}
	return true
}

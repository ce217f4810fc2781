package agg

import "errors"

// Arrival keeps, beside a Table, when the records of each group came: the
// arrival numbers of its first and of its last record (0: none). With
// them, partial aggregates of first and last may be merged in any order,
// not only oldest first: first takes the value of the earlier first
// record, last that of the later last one. swindow's slices of event time
// hold records in order of event time, not of arrival, and are merged so
// (docs/performance.md, Windows).
//
// Every record sets first (if the group has no value yet) and last, a
// missing field as null, so one pair of numbers per group serves every
// first and last column. Collect would need a number per value, and is
// not merged so (MergeArrival refuses it).
//
// An Arrival is indexed by the groups of its table: after the table's
// Reset or Zero, Reset it too.
type Arrival struct {
	first, last []uint64
}

// ErrCollectOrder is returned by MergeArrival for a table with collect.
var ErrCollectOrder = errors.New("agg: collect's order of arrival is not kept across merges")

// HasFirstLast reports whether c has a first or last aggregate.
func (c Config) HasFirstLast() bool {
	for _, a := range c.Aggs {
		if a.Kind == First || a.Kind == Last {
			return true
		}
	}
	return false
}

// AddArrival is Add, for a record of arrival number n, which must be
// above the number of every record added to the table before (the
// caller's count of the records it took, from 1).
func (t *Table) AddArrival(rec []byte, a *Arrival, n uint64) error {
	if err := t.Add(rec); err != nil {
		return err
	}
	g := t.added
	a.grow(len(t.rows))
	if a.first[g] == 0 {
		a.first[g] = n
	}
	a.last[g] = n
	return nil
}

// MergeArrival is Merge, whatever the order of the records of t and src:
// ta and sa are their arrivals. First and last take the value of whichever
// group's record came first, or last; ta becomes the arrival of the
// merged records. A table with collect is refused (ErrCollectOrder).
func (t *Table) MergeArrival(src *Table, ta, sa *Arrival) error {
	for _, a := range t.cfg.Aggs {
		if a.Kind == Collect {
			return ErrCollectOrder
		}
	}
	return t.merge(src, ta, sa)
}

// Of is the arrival numbers of group g's first and last records, 0 with
// none.
func (a *Arrival) Of(g int32) (first, last uint64) {
	if int(g) >= len(a.first) {
		return 0, 0
	}
	return a.first[g], a.last[g]
}

// Set sets group g's arrival numbers, as when loading a saved state.
func (a *Arrival) Set(g int32, first, last uint64) {
	a.grow(int(g) + 1)
	a.first[g], a.last[g] = first, last
}

// Reset forgets every group.
func (a *Arrival) Reset() { a.first, a.last = a.first[:0], a.last[:0] }

// MemoryUsed is the bytes it holds.
func (a *Arrival) MemoryUsed() int64 { return int64(cap(a.first)+cap(a.last)) * 8 }

// grow makes room for groups [0, n), of no record.
func (a *Arrival) grow(n int) {
	for len(a.first) < n {
		a.first, a.last = append(a.first, 0), append(a.last, 0)
	}
}

// merge folds in the arrivals of src, whose groups gmap maps to a's: the
// earlier first, the later last.
func (a *Arrival) merge(src *Arrival, gmap []int32) {
	for sg, g := range gmap {
		if g < 0 || src.first[sg] == 0 {
			continue
		}
		if a.first[g] == 0 || src.first[sg] < a.first[g] {
			a.first[g] = src.first[sg]
		}
		if src.last[sg] > a.last[g] {
			a.last[g] = src.last[sg]
		}
	}
}

// mergeArrival is merge for first and last, ta and sa being the arrivals
// of c's table and s's, before the merge.
func (c *valueCol) mergeArrival(s *valueCol, gmap []int32, ta, sa *Arrival) {
	for sg, g := range gmap {
		if g < 0 || s.k[sg] == 0 {
			continue
		}
		if c.k[g] != 0 {
			if c.kind == First && sa.first[sg] >= ta.first[g] {
				continue
			}
			if c.kind == Last && sa.last[sg] <= ta.last[g] {
				continue
			}
		}
		c.take(g, s, int32(sg))
	}
}

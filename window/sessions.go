package window

import (
	"fmt"
	"slices"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
)

// session is one session window of a key: [start, end), from its first
// event to its last plus the gap, and the records it holds.
type session struct {
	key        []byte // the group key (agg.Table.Key)
	start, end int64
	recs       []byte // as in a Records frame
	n          int
}

// sessions are session windows of event time (Structured Streaming's
// session_window(F, GAP)): per key, an event opens [t, t+GAP), GAP fixed
// or the record's own, and windows that overlap or touch (one ending where
// the other starts, as Spark's merge joins them) merge into one. A
// session's records are held, and folded into its aggregates when it is
// written: a merge of two sessions needs no merge of aggregates.
type sessions struct {
	o       *options
	byKey   map[string][]*session // sorted by start, never overlapping
	changed map[*session]bool     // by the batch in hand
	tmp     *agg.Table            // a record's key and check; a session's aggregates
	list    []*session
	rows    windowRows
}

func newSessions(o *options) *sessions {
	tmp, _ := agg.New(o.agg.Cfg) // checked in newEventWindower
	return &sessions{o: o, byKey: map[string][]*session{}, changed: map[*session]bool{}, tmp: tmp}
}

func (s *sessions) add(rec []byte, t, gap int64, final func(int64) bool) (bool, error) {
	// The record alone, in a table of its own: its key, and a check that
	// its values aggregate, before it joins a session.
	s.tmp.Reset()
	if err := s.tmp.Add(rec); err != nil {
		return false, err
	}
	key := s.tmp.Key(s.tmp.Touched()[0])
	lo, hi := t, t+gap
	// The key's sessions are sorted, apart and not touching, so those that
	// [lo, hi) overlaps or touches are a run, ss[i:j]: merged into ss[i],
	// in place.
	ss := s.byKey[string(key)]
	i := 0
	for i < len(ss) && ss[i].end < lo {
		i++
	}
	j := i
	for j < len(ss) && ss[j].start <= hi {
		j++
	}
	if i == j {
		if final(hi) {
			return false, nil // late: a session of its own, and already over
		}
		x := &session{key: slices.Clone(key), start: lo, end: hi, n: 1}
		x.recs = framing.AppendRecord(x.recs, rec)
		s.byKey[string(key)] = slices.Insert(ss, i, x)
		s.changed[x] = true
		return true, nil
	}
	into := ss[i]
	into.start, into.end = min(lo, into.start), max(hi, ss[j-1].end)
	for _, x := range ss[i+1 : j] {
		into.recs = append(into.recs, x.recs...)
		into.n += x.n
		delete(s.changed, x)
	}
	into.recs = framing.AppendRecord(into.recs, rec)
	into.n++
	if j-i > 1 {
		s.byKey[string(key)] = slices.Delete(ss, i+1, j)
	}
	s.changed[into] = true
	return true, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *sessions) newBatch() { clear(s.changed) }

func (s *sessions) write(out *framing.Writer, pick func(int64, bool) bool, _ bool) error {
	s.list = s.list[:0]
	for _, ss := range s.byKey {
		for _, x := range ss {
			if pick(x.end, s.changed[x]) {
				s.list = append(s.list, x)
			}
		}
	}
	slices.SortFunc(s.list, func(a, b *session) int {
		if c := cmpInt(a.start, b.start); c != 0 {
			return c
		}
		return agg.CompareKeys(a.key, b.key)
	})
	for _, x := range s.list {
		s.tmp.Reset()
		recs := framing.NewRecords(x.recs, x.n)
		for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
			if err := s.tmp.Add(rec); err != nil {
				return fmt.Errorf("the session of %s to %s: %w", fmtTime(x.start), fmtTime(x.end), err)
			}
		}
		if err := s.rows.write(out, s.tmp, s.tmp.Touched()[0], x.start, x.end); err != nil {
			return err
		}
	}
	return nil
}

func (s *sessions) evict(final func(int64) bool) int {
	removed := 0
	for k, ss := range s.byKey {
		kept := ss[:0]
		for _, x := range ss {
			if final(x.end) {
				removed++
				continue
			}
			kept = append(kept, x)
		}
		if len(kept) == 0 {
			delete(s.byKey, k)
		} else {
			s.byKey[k] = kept
		}
	}
	return removed
}

func (s *sessions) size() (groups, changed int, mem int64) {
	for _, ss := range s.byKey {
		groups += len(ss)
		for _, x := range ss {
			mem += int64(cap(x.recs) + len(x.key))
		}
	}
	return groups, len(s.changed), mem
}

func (s *sessions) lastEnd() (int64, bool) {
	var last int64
	any := false
	for _, ss := range s.byKey {
		for _, x := range ss {
			last, any = max(last, x.end), true
		}
	}
	return last, any
}

func (s *sessions) save(e *enc) error {
	var all []*session
	for _, ss := range s.byKey {
		all = append(all, ss...)
	}
	slices.SortFunc(all, func(a, b *session) int {
		if c := agg.CompareKeys(a.key, b.key); c != 0 {
			return c
		}
		return cmpInt(a.start, b.start)
	})
	e.int(int64(len(all)))
	for _, x := range all {
		e.bin(x.key)
		e.int(x.start)
		e.int(x.end)
		e.int(int64(x.n))
		e.bin(x.recs)
	}
	return nil
}

func (s *sessions) load(d *dec) error {
	byKey := map[string][]*session{}
	for range d.count("sessions", 5) {
		x := &session{key: slices.Clone(d.bin("session key")), start: d.int("session start"), end: d.int("session end")}
		x.recs, x.n = d.records("session")
		if d.err != nil {
			break
		}
		ss := byKey[string(x.key)]
		if x.start >= x.end || len(ss) > 0 && ss[len(ss)-1].end > x.start {
			d.fail("sessions out of order")
			break
		}
		byKey[string(x.key)] = append(ss, x)
	}
	if d.err != nil {
		return d.err
	}
	s.byKey = byKey
	clear(s.changed)
	return nil
}

package window

import (
	"github.com/dstream/dstream/agg"
)

// Windows assembled from slices. A window of length L sliding every S is
// cut into slices of gcd(L, S), each with one partial aggregate (an
// agg.Table) per key; a record is folded into its slice alone, once
// whatever the number of windows holding it, and a window is the combine
// of its slices (agg.Table.Merge). Windows are written in order of start,
// so the slices of the window in hand form a queue: a slice enters at the
// new end and leaves at the old one, and a span keeps the queue's combine
// up to date at a cost per slice that does not grow with the number of
// slices a window holds (docs/performance.md, Windows).
//
//   - subtractor, for invertible aggregates (count, sum, avg, distinct):
//     one running table; an entering slice is merged in, a leaving one
//     merged out (agg.Table.Unmerge).
//   - twoStacks, for any aggregate (min, max...): Two-Stacks (Tangwongsan,
//     Hirzel, Schneider, "Sliding-window aggregation algorithms", 2017): a
//     back stack with the combine of its slices, and a front stack in which
//     each slice carries the combine of itself and every newer slice of
//     the front; when the front runs out the back is flipped onto it, so
//     that each slice is combined O(1) times on the way through.
//
// A span of slices whose records are not in order of arrival, for first
// and last (slices of event time), is ordered: each slice comes with its
// agg.Arrival, the span's own tables keep theirs, and slices are combined
// by agg.Table.MergeArrival, in which first and last take the value of
// the earlier or later record whatever the order of the slices.
type span interface {
	// push adds the slice of start, newer than every slice held, with its
	// arrivals if the span is ordered (else nil).
	push(start int64, s *agg.Table, a *agg.Arrival) error
	// pop lets go of the oldest slice and returns its table, the caller's
	// again.
	pop() (*agg.Table, error)
	// first is the start of the oldest slice, false with none.
	first() (int64, bool)
	// added folds rec into the combine of the slice of start, held, to
	// which the caller has just added it, of arrival number n if the span
	// is ordered.
	added(start int64, rec []byte, n uint64) error
	// result is the combine of the slices held, the span's own table,
	// valid until the span changes. Groups with no record may be in it:
	// leave them out (agg.Table.Rows).
	result() (*agg.Table, error)
	len() int
	// each calls f with every slice held, oldest first.
	each(f func(start int64, t *agg.Table))
	// rows is about the groups of result: a bound, cheap to take.
	rows() int
	reset()
	// memory is of the span's own tables, not of the slices it holds.
	memory() int64
}

// newSpan is the span for cfg: a subtractor if its aggregates are
// invertible, else Two-Stacks, ordered or not.
func newSpan(cfg agg.Config, ordered bool) span {
	p := &tablePool{cfg: cfg}
	if cfg.Invertible() {
		return &subtractor{pool: p, r: p.get()}
	}
	s := &twoStacks{pool: p, ordered: ordered}
	s.backAgg, s.res = s.get(), s.get()
	return s
}

// tablePool keeps emptied tables of one configuration for reuse.
type tablePool struct {
	cfg  agg.Config
	free []*agg.Table
}

func (p *tablePool) get() *agg.Table {
	if n := len(p.free); n > 0 {
		t := p.free[n-1]
		p.free = p.free[:n-1]
		return t
	}
	t, err := agg.New(p.cfg)
	if err != nil {
		panic("window: a configuration checked before does not make a table: " + err.Error())
	}
	return t
}

func (p *tablePool) put(t *agg.Table) {
	t.Reset()
	p.free = append(p.free, t)
}

// slice is a slice in a span: its start and its partial aggregates, with
// their arrivals in an ordered span.
type slice struct {
	start int64
	t     *agg.Table
	a     *agg.Arrival
}

// part is a table of a span's own, with its arrivals in an ordered span.
type part struct {
	t *agg.Table
	a *agg.Arrival
}

// merge folds src (of arrivals a) into p, by order of arrival if p keeps
// it.
func (p part) merge(src *agg.Table, a *agg.Arrival) error {
	if p.a != nil {
		return p.t.MergeArrival(src, p.a, a)
	}
	return p.t.Merge(src)
}

// add folds rec, of arrival number n, into p.
func (p part) add(rec []byte, n uint64) error {
	if p.a != nil {
		return p.t.AddArrival(rec, p.a, n)
	}
	return p.t.Add(rec)
}

func (p part) memory() int64 {
	if p.a != nil {
		return p.t.MemoryUsed() + p.a.MemoryUsed()
	}
	return p.t.MemoryUsed()
}

// subtractor is the span of invertible aggregates.
type subtractor struct {
	pool *tablePool
	q    []slice // oldest first
	head int     // q[head:] are held
	r    *agg.Table
}

func (s *subtractor) push(start int64, t *agg.Table, _ *agg.Arrival) error {
	s.q = append(s.q, slice{start, t, nil})
	return s.r.Merge(t)
}

func (s *subtractor) pop() (*agg.Table, error) {
	x := s.q[s.head]
	s.q[s.head] = slice{}
	s.head++
	if s.head == len(s.q) {
		s.q, s.head = s.q[:0], 0
	} else if s.head > 64 && s.head*2 > len(s.q) {
		n := copy(s.q, s.q[s.head:])
		clear(s.q[n:])
		s.q, s.head = s.q[:n], 0
	}
	s.r.ClearTouched()
	if err := s.r.Unmerge(x.t); err != nil {
		return nil, err
	}
	for _, g := range s.r.Touched() {
		if s.r.Rows(g) == 0 {
			s.r.Remove(g)
		}
	}
	return x.t, nil
}

func (s *subtractor) first() (int64, bool) {
	if s.head == len(s.q) {
		return 0, false
	}
	return s.q[s.head].start, true
}

func (s *subtractor) added(_ int64, rec []byte, _ uint64) error { return s.r.Add(rec) }
func (s *subtractor) result() (*agg.Table, error)               { return s.r, nil }
func (s *subtractor) len() int                                  { return len(s.q) - s.head }
func (s *subtractor) rows() int                                 { return s.r.Len() }
func (s *subtractor) memory() int64                             { return s.r.MemoryUsed() }

func (s *subtractor) each(f func(int64, *agg.Table)) {
	for _, x := range s.q[s.head:] {
		f(x.start, x.t)
	}
}

func (s *subtractor) reset() {
	clear(s.q)
	s.q, s.head = s.q[:0], 0
	s.r.Reset()
}

// twoStacks is the span of any aggregates.
type twoStacks struct {
	pool    *tablePool
	ordered bool
	front   []frontSlice   // the oldest last
	back    []slice        // the oldest first
	backAgg part           // the combine of back
	res     part           // result's, when both stacks hold slices
	arrs    []*agg.Arrival // emptied, for reuse
}

// frontSlice is a slice of the front stack, with agg the combine of it and
// the newer slices of the front.
type frontSlice struct {
	slice
	agg part
}

// get is an empty table of the span's own.
func (s *twoStacks) get() part {
	p := part{t: s.pool.get()}
	if s.ordered {
		if n := len(s.arrs); n > 0 {
			p.a = s.arrs[n-1]
			s.arrs = s.arrs[:n-1]
		} else {
			p.a = new(agg.Arrival)
		}
	}
	return p
}

func (s *twoStacks) put(p part) {
	s.pool.put(p.t)
	if p.a != nil {
		p.a.Reset()
		s.arrs = append(s.arrs, p.a)
	}
}

// clear empties p, keeping its memory: as put and get.
func (p part) clear() {
	p.t.Reset()
	if p.a != nil {
		p.a.Reset()
	}
}

func (s *twoStacks) push(start int64, t *agg.Table, a *agg.Arrival) error {
	s.back = append(s.back, slice{start, t, a})
	return s.backAgg.merge(t, a)
}

func (s *twoStacks) pop() (*agg.Table, error) {
	if len(s.front) == 0 {
		if err := s.flip(); err != nil {
			return nil, err
		}
	}
	n := len(s.front) - 1
	t := s.front[n].t
	s.put(s.front[n].agg)
	s.front[n] = frontSlice{}
	s.front = s.front[:n]
	return t, nil
}

// flip moves the back stack onto the empty front one, newest first, each
// slice combined with the newer ones.
func (s *twoStacks) flip() error {
	for i := len(s.back) - 1; i >= 0; i-- {
		a := s.get()
		if err := a.merge(s.back[i].t, s.back[i].a); err != nil {
			return err
		}
		if n := len(s.front); n > 0 {
			if err := a.merge(s.front[n-1].agg.t, s.front[n-1].agg.a); err != nil {
				return err
			}
		}
		s.front = append(s.front, frontSlice{s.back[i], a})
		s.back[i] = slice{}
	}
	s.back = s.back[:0]
	s.backAgg.clear()
	return nil
}

func (s *twoStacks) first() (int64, bool) {
	if n := len(s.front); n > 0 {
		return s.front[n-1].start, true
	}
	if len(s.back) > 0 {
		return s.back[0].start, true
	}
	return 0, false
}

// added: a slice of the back is in backAgg alone; a slice of the front is
// in its own combine and in those of the older slices of the front.
func (s *twoStacks) added(start int64, rec []byte, n uint64) error {
	if len(s.back) > 0 && start >= s.back[0].start {
		return s.backAgg.add(rec, n)
	}
	for i := len(s.front) - 1; i >= 0 && s.front[i].start <= start; i-- {
		if err := s.front[i].agg.add(rec, n); err != nil {
			return err
		}
	}
	return nil
}

func (s *twoStacks) result() (*agg.Table, error) {
	n := len(s.front)
	switch {
	case n == 0:
		return s.backAgg.t, nil
	case len(s.back) == 0:
		return s.front[n-1].agg.t, nil
	}
	// Zeroed rather than emptied, while it holds not much more than the
	// groups coming in: its groups keep their order, so that only new keys
	// are sorted when the window is written (agg.Table.Sorted).
	if s.res.t.Len() > 2*(s.front[n-1].agg.t.Len()+s.backAgg.t.Len())+1024 {
		s.res.t.Reset()
	} else {
		s.res.t.Zero()
	}
	if s.res.a != nil {
		s.res.a.Reset()
	}
	oldest := s.front[n-1].agg
	if err := s.res.merge(oldest.t, oldest.a); err != nil {
		return nil, err
	}
	if err := s.res.merge(s.backAgg.t, s.backAgg.a); err != nil {
		return nil, err
	}
	return s.res.t, nil
}

func (s *twoStacks) len() int { return len(s.front) + len(s.back) }

func (s *twoStacks) rows() int {
	n := s.backAgg.t.Len()
	if k := len(s.front); k > 0 {
		n += s.front[k-1].agg.t.Len()
	}
	return n
}

func (s *twoStacks) each(f func(int64, *agg.Table)) {
	for i := len(s.front) - 1; i >= 0; i-- {
		f(s.front[i].start, s.front[i].t)
	}
	for _, x := range s.back {
		f(x.start, x.t)
	}
}

func (s *twoStacks) reset() {
	for _, f := range s.front {
		s.put(f.agg)
	}
	clear(s.front)
	clear(s.back)
	s.front, s.back = s.front[:0], s.back[:0]
	s.backAgg.clear()
	s.res.clear()
}

func (s *twoStacks) memory() int64 {
	m := s.backAgg.memory() + s.res.memory()
	for _, f := range s.front {
		m += f.agg.memory()
	}
	return m
}

// gcd is the greatest common divisor of a and b, both positive.
func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

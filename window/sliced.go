package window

import (
	"fmt"
	"slices"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
)

// slicedWindows are the tumbling or sliding windows of event time of
// fixedWindows, kept as slices of gcd(length, slide) (assemble.go): a
// record is folded into its slice alone, and a window is assembled from
// its slices when it is written, so that a record costs the same whatever
// the number of windows holding it.
//
// In append mode the windows become final in order of start, and the span
// that assembles them lasts from batch to batch: it holds the slices from
// the start of the next window to write (from) up to the end of the last
// written (to), and a record folded into one of them is folded into the
// span too. In complete mode every window is written at every batch, and
// in update mode every window the batch changed (those holding a slice it
// changed), assembled by a span made afresh, at a cost in proportion to
// what is written.
//
// First and last depend on the order in which records arrive, which a
// window's slices, in order of event time, do not follow: with them each
// slice keeps the arrival number of each group's first and last record
// (agg.Arrival, arrs), the span is ordered, and slices are combined by
// arrival (agg.Table.MergeArrival). Collect keeps a table per window
// (fixedWindows): its output is every value of the window, which costs
// what adding each record to each of its windows does.
type slicedWindows struct {
	o      *options
	g      int64                // slice width
	tables map[int64]*agg.Table // slices by start
	starts []int64              // of tables, sorted
	pool   *tablePool
	// With first or last: each slice's arrivals, by start, and the
	// arrival number of the last record taken (from 1).
	ordered bool
	arrs    map[int64]*agg.Arrival
	freeArr []*agg.Arrival
	arrival uint64
	// The figures of size, kept as slices change rather than summed over
	// every slice at every batch: a window of an hour sliding every
	// second holds 3,600 of them.
	dirty  []int64         // slices the batch in hand changed
	isDirt map[int64]bool  // of dirty
	mems   map[int64]int64 // each slice's memory when last counted
	groups int             // in all slices
	mem    int64           // sum of mems

	// from is the start of the first window that is not final: the windows
	// before it were written when they became final, if they had a record,
	// and are never written again. Unset before the first watermark.
	from    int64
	fromSet bool
	// open is the start of the first window that is not final now, false
	// when none is (no watermark yet, or complete mode).
	open func() (int64, bool)

	span       span
	spanSet    bool  // span holds the slices in [spanLo, spanHi)
	spanLo     int64 // start of the window it assembles
	spanHi     int64
	newInSpan  bool // a slice was made in [spanLo, spanHi): span is rebuilt
	gs         []int32
	rows       windowRows
	singleSlot bool // length = slide: a window is one slice

	// update mode's scratch
	touched map[string]int // keys the batch changed in the window in hand: how many of its slices
	ds      []int64        // the slices the batch changed, sorted
	ws      []int64        // the windows holding them
}

// sliceable reports whether the windows of o can be sliced: all but
// those with collect.
func sliceable(o *options) bool {
	for _, a := range o.agg.Cfg.Aggs {
		if a.Kind == agg.Collect {
			return false
		}
	}
	return true
}

func newSlicedWindows(o *options, open func() (int64, bool)) *slicedWindows {
	g := gcd(o.length, o.slide)
	ordered := o.agg.Cfg.HasFirstLast()
	return &slicedWindows{o: o, g: g, tables: map[int64]*agg.Table{}, pool: &tablePool{cfg: o.agg.Cfg},
		ordered: ordered, arrs: map[int64]*agg.Arrival{},
		isDirt: map[int64]bool{}, mems: map[int64]int64{},
		open: open, span: newSpan(o.agg.Cfg, ordered), singleSlot: g == o.length}
}

// newArrival is an empty agg.Arrival for a slice.
func (f *slicedWindows) newArrival() *agg.Arrival {
	if n := len(f.freeArr); n > 0 {
		a := f.freeArr[n-1]
		f.freeArr = f.freeArr[:n-1]
		return a
	}
	return new(agg.Arrival)
}

func (f *slicedWindows) add(rec []byte, t, _ int64, final func(int64) bool) (bool, error) {
	if final(floorTo(t, f.o.slide) + f.o.length) { // its last window
		return false, nil
	}
	s := floorTo(t, f.g)
	tb, ok := f.tables[s]
	if !ok {
		tb = f.pool.get()
		f.tables[s] = tb
		if f.ordered {
			f.arrs[s] = f.newArrival()
		}
		i, _ := slices.BinarySearch(f.starts, s)
		f.starts = slices.Insert(f.starts, i, s)
	}
	n := tb.Len()
	var err error
	if f.ordered {
		f.arrival++
		err = tb.AddArrival(rec, f.arrs[s], f.arrival)
	} else {
		err = tb.Add(rec)
	}
	if err != nil {
		return false, err
	}
	f.groups += tb.Len() - n
	if !f.isDirt[s] {
		f.isDirt[s] = true
		f.dirty = append(f.dirty, s)
	}
	if f.spanSet && s >= f.spanLo && s < f.spanHi {
		// A slice the span does not have, or a record the span could not
		// take (an integer sum overflowing in a window: the record is in
		// its slice, and assembling the window reports it): the span is
		// made again when next used.
		if !ok || f.span.added(s, rec, f.arrival) != nil {
			f.newInSpan = true
		}
	}
	return true, nil
}

func (f *slicedWindows) newBatch() {
	for _, s := range f.dirty {
		if t, ok := f.tables[s]; ok {
			t.ClearTouched()
		}
	}
	f.dirty = f.dirty[:0]
	clear(f.isDirt)
}

// nextWindow is the first window at or after start (a multiple of the
// slide) that holds a slice, false with none.
func (f *slicedWindows) nextWindow(start int64) (int64, bool) {
	i, _ := slices.BinarySearch(f.starts, start)
	if i == len(f.starts) {
		return 0, false
	}
	if s := f.starts[i]; s >= start+f.o.length {
		start = floorTo(s-f.o.length, f.o.slide) + f.o.slide // the first window holding s
	}
	return start, true
}

// window is the groups of the window starting at start: the span moved
// onto it, or, with windows of one slice, the slice itself.
func (f *slicedWindows) window(start int64) (*agg.Table, error) {
	if f.singleSlot {
		if t, ok := f.tables[start]; ok {
			return t, nil
		}
		return nil, nil
	}
	end := start + f.o.length
	if !f.spanSet || f.newInSpan || start >= f.spanHi || start < f.spanLo {
		f.span.reset()
		f.spanSet, f.newInSpan, f.spanLo, f.spanHi = true, false, start, start
	}
	for {
		first, ok := f.span.first()
		if !ok || first >= start {
			break
		}
		if _, err := f.span.pop(); err != nil {
			return nil, err
		}
	}
	f.spanLo = start
	i, _ := slices.BinarySearch(f.starts, f.spanHi)
	for ; i < len(f.starts) && f.starts[i] < end; i++ {
		s := f.starts[i]
		if err := f.span.push(s, f.tables[s], f.arrs[s]); err != nil {
			return nil, err
		}
	}
	f.spanHi = end
	return f.span.result()
}

// write writes the windows that pick picks, in order of start: in append
// mode the windows now final, from the first not final before; in complete
// mode (and at the end of the stream) every window. changed is for update
// mode, which is not sliced.
func (f *slicedWindows) write(out *framing.Writer, pick func(int64, bool) bool, changed bool) error {
	if changed {
		return f.writeChanged(out)
	}
	if len(f.starts) == 0 {
		return f.moveOn()
	}
	start := floorTo(f.starts[0]-f.o.length, f.o.slide) + f.o.slide // the first window holding a slice
	if f.fromSet {
		start = max(start, f.from)
	}
	if f.o.ev.mode == Complete {
		f.spanSet = false // made afresh: complete mode writes windows before the last written
	}
	for {
		var ok bool
		if start, ok = f.nextWindow(start); !ok || !pick(start+f.o.length, false) {
			break
		}
		t, err := f.window(start)
		if err != nil {
			return fmt.Errorf("the window starting %s: %w", fmtTime(start), err)
		}
		if t != nil && t.Len() > 0 {
			if err := f.writeWindow(out, start, t); err != nil {
				return err
			}
		}
		start += f.o.slide
	}
	if f.o.ev.mode == Complete {
		f.spanSet = false
	}
	return f.moveOn()
}

// writeChanged writes update mode's batch: of each window holding a slice
// the batch changed (and not final before it), the groups of the keys the
// batch brought to those of its slices.
func (f *slicedWindows) writeChanged(out *framing.Writer) error {
	f.spanSet = false // made afresh, as in complete mode
	defer func() { f.spanSet = false }()
	f.ds = append(f.ds[:0], f.dirty...)
	slices.Sort(f.ds)
	f.ws = f.ws[:0]
	for _, s := range f.ds {
		lo := floorTo(s-f.o.length, f.o.slide) + f.o.slide // the first window holding s
		if f.fromSet {
			lo = max(lo, f.from)
		}
		if n := len(f.ws); n > 0 {
			lo = max(lo, f.ws[n-1]+f.o.slide)
		}
		for w := lo; w <= floorTo(s, f.o.slide); w += f.o.slide {
			f.ws = append(f.ws, w)
		}
	}
	if f.touched == nil {
		f.touched = map[string]int{}
	}
	clear(f.touched)
	i, j := 0, 0 // f.ds[i:j] are the changed slices of the window in hand
	for _, start := range f.ws {
		end := start + f.o.length
		for ; j < len(f.ds) && f.ds[j] < end; j++ {
			if t := f.tables[f.ds[j]]; t != nil {
				for _, g := range t.Touched() {
					f.touched[string(t.Key(g))]++
				}
			}
		}
		for ; i < j && f.ds[i] < start; i++ {
			if t := f.tables[f.ds[i]]; t != nil {
				for _, g := range t.Touched() {
					k := string(t.Key(g))
					if f.touched[k]--; f.touched[k] == 0 {
						delete(f.touched, k)
					}
				}
			}
		}
		t, err := f.window(start)
		if err != nil {
			return fmt.Errorf("the window starting %s: %w", fmtTime(start), err)
		}
		if t == nil {
			continue
		}
		gs := f.gs[:0]
		for k := range f.touched {
			gs = append(gs, t.Group([]byte(k)))
		}
		t.SortByKey(gs)
		f.gs = gs
		if err := f.writeGroups(out, start, t, gs); err != nil {
			return err
		}
	}
	return f.moveOn()
}

// moveOn moves from to the first window not final, letting the span go of
// the slices before it.
func (f *slicedWindows) moveOn() error {
	open, ok := f.open()
	if !ok {
		return nil
	}
	if !f.fromSet || open > f.from {
		f.from, f.fromSet = open, true
	}
	if !f.spanSet {
		return nil
	}
	for {
		first, ok := f.span.first()
		if !ok || first >= f.from {
			break
		}
		if _, err := f.span.pop(); err != nil {
			return err
		}
	}
	f.spanLo = max(f.spanLo, f.from)
	if f.spanHi < f.spanLo {
		f.spanSet = false
	}
	return nil
}

func (f *slicedWindows) writeWindow(out *framing.Writer, start int64, t *agg.Table) error {
	f.gs = append(f.gs[:0], t.Sorted()...)
	return f.writeGroups(out, start, t, f.gs)
}

// writeGroups writes groups gs of t, the window starting at start, or the
// --top of them.
func (f *slicedWindows) writeGroups(out *framing.Writer, start int64, t *agg.Table, gs []int32) error {
	// A span may keep groups with no record: not written, nor ranked.
	gs = slices.DeleteFunc(gs, func(g int32) bool { return t.Rows(g) == 0 })
	if f.o.agg.Top > 0 {
		gs = t.Top(gs, f.o.agg.Top, f.o.agg.By)
	}
	for _, g := range gs {
		if err := f.rows.write(out, t, g, start, start+f.o.length); err != nil {
			return err
		}
	}
	return nil
}

// evict drops the slices whose windows are all final, the oldest ones; the
// span holds none of them (moveOn).
func (f *slicedWindows) evict(final func(int64) bool) int {
	removed, n := 0, 0
	for _, s := range f.starts {
		if !final(floorTo(s, f.o.slide) + f.o.length) {
			break
		}
		t := f.tables[s]
		removed += t.Len()
		f.groups -= t.Len()
		f.mem -= f.mems[s]
		delete(f.mems, s)
		delete(f.tables, s)
		f.pool.put(t)
		if a := f.arrs[s]; a != nil {
			a.Reset()
			f.freeArr = append(f.freeArr, a)
			delete(f.arrs, s)
		}
		n++
	}
	f.starts = append(f.starts[:0], f.starts[n:]...)
	return removed
}

func (f *slicedWindows) size() (groups, changed int, mem int64) {
	for _, s := range f.dirty {
		t, ok := f.tables[s]
		if !ok {
			continue // evicted
		}
		changed += len(t.Touched())
		m := t.MemoryUsed()
		if a := f.arrs[s]; a != nil {
			m += a.MemoryUsed()
		}
		f.mem += m - f.mems[s]
		f.mems[s] = m
	}
	return f.groups, changed, f.mem + f.span.memory()
}

func (f *slicedWindows) lastEnd() (int64, bool) {
	if len(f.starts) == 0 {
		return 0, false
	}
	return floorTo(f.starts[len(f.starts)-1], f.o.slide) + f.o.length, true
}

// save: where the windows stand (from), then the slices; with first or
// last, the arrival number of the last record taken, and each slice's
// arrivals after it, its groups in key order.
func (f *slicedWindows) save(e *enc) error {
	e.bool(f.fromSet)
	e.int(f.from)
	if f.ordered {
		e.uint(f.arrival)
	}
	e.int(int64(len(f.starts)))
	var snap []byte
	for _, s := range f.starts {
		t := f.tables[s]
		snap = t.AppendSnapshot(snap[:0])
		e.int(s)
		e.bin(snap)
		if f.ordered {
			gs := t.Sorted()
			e.int(int64(len(gs)))
			for _, g := range gs {
				first, last := f.arrs[s].Of(g)
				e.uint(first)
				e.uint(last)
			}
		}
	}
	return nil
}

// loadArrival reads the arrivals of t, a slice loaded: as many as its
// groups, each from 1 to arrival, the last of the stream taken.
func loadArrival(d *dec, t *agg.Table, arrival uint64) *agg.Arrival {
	gs := t.Sorted()
	if n := d.count("arrivals", 2); d.err == nil && n != len(gs) {
		d.fail(fmt.Sprintf("arrivals of %d groups in a slice of %d", n, len(gs)))
	}
	a := new(agg.Arrival)
	for _, g := range gs {
		first, last := d.uint("first arrival"), d.uint("last arrival")
		if d.err != nil {
			break
		}
		if first == 0 || last < first || last > arrival {
			d.fail("arrivals out of order")
			break
		}
		a.Set(g, first, last)
	}
	return a
}

func (f *slicedWindows) load(d *dec) error {
	fromSet, from := d.bool("windows set"), d.int("first open window")
	var arrival uint64
	if f.ordered {
		arrival = d.uint("arrival number")
	}
	tables := map[int64]*agg.Table{}
	arrs := map[int64]*agg.Arrival{}
	var starts []int64
	for range d.count("slices", 2) {
		start, snap := d.int("slice start"), d.bin("slice")
		if d.err != nil {
			break
		}
		if start%f.g != 0 || len(starts) > 0 && start <= starts[len(starts)-1] {
			d.fail("slices out of order")
			break
		}
		t, err := agg.New(f.o.agg.Cfg)
		if err != nil {
			return err
		}
		if err := t.LoadSnapshot(snap); err != nil {
			return fmt.Errorf("%w: the slice starting %s: %v", ErrState, fmtTime(start), err)
		}
		if f.ordered {
			arrs[start] = loadArrival(d, t, arrival)
		}
		tables[start] = t
		starts = append(starts, start)
	}
	if d.err != nil {
		return d.err
	}
	f.tables, f.starts, f.from, f.fromSet = tables, starts, from, fromSet
	f.arrs, f.arrival = arrs, arrival
	f.groups, f.mem = 0, 0
	clear(f.mems)
	for s, t := range tables {
		f.groups += t.Len()
		f.mems[s] = t.MemoryUsed()
		if a := arrs[s]; a != nil {
			f.mems[s] += a.MemoryUsed()
		}
		f.mem += f.mems[s]
	}
	f.dirty = f.dirty[:0]
	clear(f.isDirt)
	f.span.reset()
	f.spanSet = false
	return nil
}

package window

import (
	"fmt"
	"slices"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
)

// fixedWindows are tumbling or sliding windows of event time, [start,
// start+length) with start a multiple of the slide, as Structured
// Streaming's window(). Every window held has its own table of groups.
type fixedWindows struct {
	o       *options
	wins    map[int64]*agg.Table // by start
	changed map[int64]bool       // the windows the batch in hand changed
	spare   []*agg.Table
	starts  []int64 // scratch: window starts, sorted
	gs      []int32
	rows    windowRows
}

func newFixedWindows(o *options) *fixedWindows {
	return &fixedWindows{o: o, wins: map[int64]*agg.Table{}, changed: map[int64]bool{}}
}

func (f *fixedWindows) add(rec []byte, t, _ int64, final func(int64) bool) (bool, error) {
	length, slide := f.o.length, f.o.slide
	open := false
	for start := floorTo(t, slide); start > t-length; start -= slide {
		if final(start + length) {
			continue
		}
		if err := f.table(start).Add(rec); err != nil {
			if !open {
				return false, err
			}
			// Counted in a window before: only an overflow in this one.
			return false, fmt.Errorf("window starting %s: %w", fmtTime(start), err)
		}
		f.changed[start] = true
		open = true
	}
	return open, nil
}

// table returns the groups of the window starting at start, made if new.
func (f *fixedWindows) table(start int64) *agg.Table {
	if t, ok := f.wins[start]; ok {
		return t
	}
	var t *agg.Table
	if n := len(f.spare); n > 0 {
		t, f.spare = f.spare[n-1], f.spare[:n-1]
	} else {
		t, _ = agg.New(f.o.agg.Cfg) // checked in newEventWindower
	}
	f.wins[start] = t
	return t
}

func (f *fixedWindows) newBatch() {
	clear(f.changed)
	for _, t := range f.wins {
		t.ClearTouched()
	}
}

func (f *fixedWindows) write(out *framing.Writer, pick func(int64, bool) bool, changed bool) error {
	f.starts = f.starts[:0]
	for start := range f.wins {
		if pick(start+f.o.length, f.changed[start]) {
			f.starts = append(f.starts, start)
		}
	}
	slices.Sort(f.starts)
	for _, start := range f.starts {
		t := f.wins[start]
		var gs []int32
		if changed {
			gs = t.SortedTouched(f.gs[:0])
		} else {
			gs = append(f.gs[:0], t.Sorted()...)
		}
		if f.o.agg.Top > 0 {
			gs = t.Top(gs, f.o.agg.Top, f.o.agg.By)
		}
		f.gs = gs
		for _, g := range gs {
			if err := f.rows.write(out, t, g, start, start+f.o.length); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fixedWindows) evict(final func(int64) bool) int {
	removed := 0
	for start, t := range f.wins {
		if final(start + f.o.length) {
			removed += t.Len()
			t.Reset()
			f.spare = append(f.spare, t)
			delete(f.wins, start)
		}
	}
	return removed
}

func (f *fixedWindows) size() (groups, changed int, mem int64) {
	for _, t := range f.wins {
		groups += t.Len()
		changed += len(t.Touched())
		mem += t.MemoryUsed()
	}
	return groups, changed, mem
}

func (f *fixedWindows) lastEnd() (int64, bool) {
	var last int64
	for start := range f.wins {
		last = max(last, start+f.o.length)
	}
	return last, len(f.wins) > 0
}

func (f *fixedWindows) save(e *enc) error {
	starts := make([]int64, 0, len(f.wins))
	for s := range f.wins {
		starts = append(starts, s)
	}
	slices.Sort(starts)
	e.int(int64(len(starts)))
	var snap []byte
	for _, s := range starts {
		snap = f.wins[s].AppendSnapshot(snap[:0])
		e.int(s)
		e.bin(snap)
	}
	return nil
}

func (f *fixedWindows) load(d *dec) error {
	wins := map[int64]*agg.Table{}
	for range d.count("windows", 2) {
		start, snap := d.int("window start"), d.bin("window")
		if d.err != nil {
			break
		}
		t, err := agg.New(f.o.agg.Cfg)
		if err != nil {
			return err
		}
		if err := t.LoadSnapshot(snap); err != nil {
			return fmt.Errorf("%w: the window starting %s: %v", ErrState, fmtTime(start), err)
		}
		wins[start] = t
	}
	if d.err != nil {
		return d.err
	}
	f.wins = wins
	return nil
}

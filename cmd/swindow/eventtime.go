package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/input"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// The output modes of event-time windows (--mode): Structured Streaming's.
const (
	modeAppend   = "append"
	modeUpdate   = "update"
	modeComplete = "complete"
)

// Output fields of an event-time window, before the keys: Spark's window
// column is a struct of start and end; flat fields read better in a shell.
const (
	fieldStart = "window_start"
	fieldEnd   = "window_end"
)

// eventOptions are the options of event-time windows (--time-field).
type eventOptions struct {
	field string
	unit  input.TimeUnit
	delay int64 // --watermark, ms
	mode  string
	late  string // --late FILE, or ""
}

// eventWindower is the stage's Handler with --time-field: windows of each
// record's own event time, [start, start+length) with start a multiple of
// the slide, as Structured Streaming's window(). Every window in the state
// has its own table of groups.
type eventWindower struct {
	out   *framing.Writer
	o     *options
	stats *stage.Stats

	wins   map[int64]*agg.Table // the windows in the state, by start
	spare  []*agg.Table
	starts []int64 // scratch: window starts, sorted
	// update: the windows the batch in hand changed
	changed map[int64]bool

	wm      int64 // the watermark: windows that end at or before it are final
	haveWM  bool
	maxT    int64 // the latest event time seen
	haveMax bool

	ck   *checkpointer // --checkpoint, or nil
	skip bool          // the batch in hand is in the restored state already

	late     *bufio.Writer // --late, or nil
	lateFile *os.File
	nLate    uint64 // late records of the batch in hand

	nrec     int
	lastID   uint64
	lastTime int64
	started  bool
	gs       []int32
	buf      []byte
	rec      []byte
}

func newEventWindower(out *framing.Writer, o *options) (*eventWindower, error) {
	if _, err := agg.New(o.agg.Cfg); err != nil {
		return nil, stage.Usage(err)
	}
	w := &eventWindower{out: out, o: o, stats: new(stage.Stats), wins: map[int64]*agg.Table{}, changed: map[int64]bool{}}
	if o.ev.late != "" {
		f, err := os.OpenFile(o.ev.late, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, stage.Hint(fmt.Errorf("--late: %w", err), "--late names a file to append the late records to, as JSON lines")
		}
		w.lateFile, w.late = f, bufio.NewWriter(f)
	}
	return w, nil
}

// Close closes the --late file.
func (w *eventWindower) Close() error {
	if w.lateFile == nil {
		return nil
	}
	err := w.late.Flush()
	if cerr := w.lateFile.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--late %s: %w", w.o.ev.late, err)
	}
	return nil
}

func (w *eventWindower) Begin(b stage.Batch) error {
	if w.ck != nil {
		var err error
		if w.skip, err = w.ck.begin(b.ID); err != nil {
			return err
		}
	}
	if w.started && b.Time <= w.lastTime && !w.skip {
		return fmt.Errorf("%v: batch time %s does not come after the last batch's, %s: batch times must rise",
			b, fmtTime(b.Time), fmtTime(w.lastTime))
	}
	w.nrec, w.nLate = 0, 0
	if w.o.ev.mode == modeUpdate {
		clear(w.changed)
		for _, t := range w.wins {
			t.ClearTouched()
		}
	}
	return nil
}

func (w *eventWindower) Block(b stage.Batch, recs framing.Records) error {
	if w.skip {
		return nil
	}
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		w.nrec++
		if err := w.add(b, rec); err != nil {
			return err
		}
	}
	return nil
}

// add folds rec into each of its windows that is not final yet; a record
// whose windows are all final is late.
func (w *eventWindower) add(b stage.Batch, rec []byte) error {
	t, err := w.eventTime(rec)
	if err != nil {
		if w.o.agg.SkipBad {
			w.stats.Skipped++
			return nil
		}
		return badRecord(fmt.Sprintf("%v, record %d", b, w.nrec), rec, err)
	}
	length, slide := w.o.length, w.o.slide
	open := 0
	for start := floorTo(t, slide); start > t-length; start -= slide {
		if w.final(start + length) {
			continue
		}
		tbl := w.table(start)
		if err := tbl.Add(rec); err != nil {
			if open == 0 && w.o.agg.SkipBad {
				w.stats.Skipped++
				return nil
			}
			return badRecord(fmt.Sprintf("%v, record %d", b, w.nrec), rec, err)
		}
		w.changed[start] = true
		open++
	}
	if open == 0 {
		return w.lateRecord(rec)
	}
	if !w.haveMax || t > w.maxT {
		w.maxT, w.haveMax = t, true
	}
	return nil
}

// final reports whether the window ending at end is past the watermark. In
// complete mode no window is: every one is written at every batch.
func (w *eventWindower) final(end int64) bool {
	return w.haveWM && end <= w.wm && w.o.ev.mode != modeComplete
}

func (w *eventWindower) eventTime(rec []byte) (int64, error) {
	raw, ok, err := record.Get(rec, w.o.ev.field)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("no time field %q", w.o.ev.field)
	}
	t, err := input.EventTime(raw, w.o.ev.unit)
	if err != nil {
		return 0, fmt.Errorf("field %q: %w", w.o.ev.field, err)
	}
	return t, nil
}

func (w *eventWindower) lateRecord(rec []byte) error {
	w.nLate++
	if w.late == nil {
		return nil
	}
	js, _, err := record.AppendJSON(w.buf[:0], rec)
	if err != nil {
		return err
	}
	w.buf = append(js, '\n')
	if _, err := w.late.Write(w.buf); err != nil {
		return fmt.Errorf("--late %s: %w", w.o.ev.late, err)
	}
	return nil
}

// table returns the groups of the window starting at start, made if new.
func (w *eventWindower) table(start int64) *agg.Table {
	if t, ok := w.wins[start]; ok {
		return t
	}
	var t *agg.Table
	if n := len(w.spare); n > 0 {
		t, w.spare = w.spare[n-1], w.spare[:n-1]
	} else {
		t, _ = agg.New(w.o.agg.Cfg) // checked in newEventWindower
	}
	w.wins[start] = t
	return t
}

// End moves the watermark on and writes the batch of the output mode: the
// windows it made final (append), the groups it changed (update), or every
// window (complete), with the input batch's id and time. The windows now
// final leave the state (not in complete mode).
func (w *eventWindower) End(b stage.Batch) error {
	if !w.skip {
		w.started, w.lastID, w.lastTime = true, b.ID, b.Time
	}
	moved := false
	if w.haveMax && (!w.haveWM || w.maxT-w.o.ev.delay > w.wm) {
		w.wm, w.haveWM, moved = w.maxT-w.o.ev.delay, true, true
	}
	if err := w.out.BeginBatch(b.ID, b.Time); err != nil {
		return err
	}
	var err error
	switch w.o.ev.mode {
	case modeAppend:
		err = w.write(func(start int64) bool { return w.final(start + w.o.length) }, false)
	case modeUpdate:
		err = w.write(func(start int64) bool { return w.changed[start] }, true)
	default:
		err = w.write(func(int64) bool { return true }, false)
	}
	if err != nil {
		return err
	}
	if err := w.out.EndBatch(); err != nil {
		return err
	}
	if moved {
		if err := w.out.Watermark(w.wm); err != nil {
			return err
		}
	}
	removed := w.evict()
	w.report(removed)
	if w.late != nil {
		if err := w.late.Flush(); err != nil {
			return fmt.Errorf("--late %s: %w", w.o.ev.late, err)
		}
	}
	if w.ck != nil && !w.skip {
		return w.ck.end(b)
	}
	return nil
}

// write writes the windows whose start pick picks, in order of start, each
// window's groups in key order (or its --top); with touched only the
// groups the batch changed.
func (w *eventWindower) write(pick func(int64) bool, touched bool) error {
	w.starts = w.starts[:0]
	for start := range w.wins {
		if pick(start) {
			w.starts = append(w.starts, start)
		}
	}
	slices.Sort(w.starts)
	for _, start := range w.starts {
		t := w.wins[start]
		var gs []int32
		if touched {
			gs = t.SortedTouched(w.gs[:0])
		} else {
			gs = append(w.gs[:0], t.Sorted()...)
		}
		if w.o.agg.Top > 0 {
			gs = t.Top(gs, w.o.agg.Top, w.o.agg.By)
		}
		w.gs = gs
		for _, g := range gs {
			if err := w.out.WriteRecord(w.record(t, g, start)); err != nil {
				return err
			}
		}
	}
	return nil
}

// record is the output record of group g of the window starting at start:
// window_start and window_end (timestamps), the key fields, the aggregates.
func (w *eventWindower) record(t *agg.Table, g int32, start int64) []byte {
	w.rec = t.AppendRecord(w.rec[:0], g)
	n, hdr, _ := record.MapLen(w.rec)
	out := record.AppendMapHeader(w.buf[:0], n+2)
	out = record.AppendString(out, fieldStart)
	out = record.AppendTime(out, time.UnixMilli(start))
	out = record.AppendString(out, fieldEnd)
	out = record.AppendTime(out, time.UnixMilli(start+w.o.length))
	w.buf = append(out, w.rec[hdr:]...)
	return w.buf
}

// evict drops the windows now final (none in complete mode) and returns
// how many groups went with them.
func (w *eventWindower) evict() int {
	removed := 0
	for start, t := range w.wins {
		if w.final(start + w.o.length) {
			removed += t.Len()
			t.Reset()
			w.spare = append(w.spare, t)
			delete(w.wins, start)
		}
	}
	return removed
}

func (w *eventWindower) report(removed int) {
	groups, updated, mem := 0, 0, int64(0)
	for _, t := range w.wins {
		groups += t.Len()
		updated += len(t.Touched())
		mem += t.MemoryUsed()
	}
	w.stats.State = &stage.StateStats{NumRowsTotal: int64(groups), NumRowsUpdated: int64(updated), NumRowsRemoved: int64(removed), MemoryUsedBytes: mem}
	w.stats.Late = w.nLate
	if w.haveWM {
		wm := w.wm
		w.stats.Watermark = &wm
	}
}

func (w *eventWindower) Watermark(int64) error { return nil } // swindow makes its own

// finish: the stream is over, so nothing later can come, and in append mode
// the windows still open are final: they leave in one more batch, numbered
// after the last input batch (update and complete mode have written every
// group as it changed).
func (w *eventWindower) finish() error {
	if w.o.ev.mode != modeAppend || len(w.wins) == 0 {
		return nil
	}
	end := w.lastTime + 1
	for start := range w.wins {
		end = max(end, start+w.o.length)
	}
	if err := w.out.BeginBatch(w.lastID+1, end); err != nil {
		return err
	}
	if err := w.write(func(int64) bool { return true }, false); err != nil {
		return err
	}
	return w.out.EndBatch()
}

// floorTo is the largest multiple of m at or before t.
func floorTo(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	return t - r
}

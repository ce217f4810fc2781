package window

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// Output fields of an event-time window, before the keys: Spark's window
// column is a struct of start and end; flat fields read better in a shell.
const (
	fieldStart = "window_start"
	fieldEnd   = "window_end"
)

// eventOptions are the options of event-time windows (--time-field).
type eventOptions struct {
	field   string
	unit    codec.TimeUnit
	delay   int64 // --watermark, ms
	mode    Mode
	late    string   // --late FILE, or ""
	session int64    // --session GAP, ms; 0 for fixed windows or gap
	gap     *gapExpr // --session-gap-expr, or nil
}

// sessions tells whether the windows are sessions, of a fixed gap or of
// each record's.
func (e *eventOptions) sessions() bool { return e.session > 0 || e.gap != nil }

// eventState is the windows of event time a stage keeps: fixed windows
// (tumbling, sliding) or sessions.
type eventState interface {
	// add folds rec, of event time t, into its windows that final does
	// not call final; it reports whether there was one. gap is the
	// record's session gap (ms), for sessions.
	add(rec []byte, t, gap int64, final func(end int64) bool) (bool, error)
	// newBatch forgets which windows the last batch changed.
	newBatch()
	// write writes, in order of start then key, the windows that pick picks
	// (by end, and whether the batch in hand changed them); with changed
	// only their groups that it changed.
	write(out *framing.Writer, pick func(end int64, changed bool) bool, changed bool) error
	// evict drops the final windows and returns the groups that went.
	evict(final func(end int64) bool) int
	// size is the groups held, those the batch changed, and the memory.
	size() (groups, changed int, mem int64)
	// lastEnd is the latest end of a window held, false with none.
	lastEnd() (int64, bool)
	save(e *enc) error
	load(d *dec) error
}

// eventWindower is the stage's Handler with --time-field: windows of each
// record's own event time, with a watermark (Structured Streaming's
// groupBy(window(...)) or session_window(...) with withWatermark).
type eventWindower struct {
	out   *framing.Writer
	o     *options
	stats *stage.Stats
	st    eventState
	// isFinal is final, bound once: a method value made per record would
	// be an allocation per record.
	isFinal func(end int64) bool

	wm      int64 // the watermark: windows that end at or before it are final
	haveWM  bool
	maxT    int64 // the latest event time seen
	haveMax bool

	ck *checkpointer // --checkpoint, or nil

	late     *bufio.Writer // --late, or nil
	lateFile *os.File
	nLate    uint64 // late records of the batch in hand
	nNoGap   uint64 // records of the batch in hand with no session gap
	buf      []byte

	nrec     int
	lastID   uint64
	lastTime int64
	started  bool
}

func newEventWindower(out *framing.Writer, o *options) (*eventWindower, error) {
	if _, err := agg.New(o.agg.Cfg); err != nil {
		return nil, stage.Usage(err)
	}
	w := &eventWindower{out: out, o: o, stats: new(stage.Stats)}
	w.isFinal = w.final
	switch {
	case o.ev.sessions():
		w.st = newSessions(o)
	case sliceable(o):
		w.st = newSlicedWindows(o, w.firstOpen)
	default:
		w.st = newFixedWindows(o)
	}
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
		if err := w.ck.begin(b.ID); err != nil {
			return err
		}
	}
	if w.started && b.Time <= w.lastTime {
		return fmt.Errorf("%v: batch time %s does not come after the last batch's, %s: batch times must rise",
			b, fmtTime(b.Time), fmtTime(w.lastTime))
	}
	w.nrec, w.nLate, w.nNoGap = 0, 0, 0
	w.st.newBatch()
	return nil
}

func (w *eventWindower) Block(b stage.Batch, recs framing.Records) error {
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		w.nrec++
		if err := w.add(b, rec); err != nil {
			return err
		}
	}
	return nil
}

// add folds rec into its windows that are not final yet; a record whose
// windows are all final is late. A record whose --session-gap-expr gives
// no gap is in no session: left out and counted, as Spark filters it, but
// its time still moves the watermark, as in Spark, where the watermark is
// taken before the filter.
func (w *eventWindower) add(b stage.Batch, rec []byte) error {
	t, err := w.eventTime(rec)
	gap, ok := w.o.ev.session, true
	if err == nil && w.o.ev.gap != nil {
		gap, ok, err = w.o.ev.gap.gap(rec, w.o.ev.unit)
	}
	if err == nil && !ok {
		w.nNoGap++
	} else if err == nil {
		var open bool
		if open, err = w.st.add(rec, t, gap, w.isFinal); err == nil && !open {
			return w.lateRecord(rec)
		}
	}
	if err != nil {
		if w.o.agg.SkipBad {
			w.stats.Skipped++
			return nil
		}
		return agg.BadRecord(fmt.Sprintf("%v, record %d", b, w.nrec), rec, err)
	}
	if !w.haveMax || t > w.maxT {
		w.maxT, w.haveMax = t, true
	}
	return nil
}

// final reports whether the window ending at end is past the watermark. In
// complete mode no window is: every one is written at every batch.
func (w *eventWindower) final(end int64) bool {
	return w.haveWM && end <= w.wm && w.o.ev.mode != Complete
}

// firstOpen is the start of the first fixed window that is not final,
// false when none is final (no watermark yet, or complete mode).
func (w *eventWindower) firstOpen() (int64, bool) {
	if !w.haveWM || w.o.ev.mode == Complete {
		return 0, false
	}
	return floorTo(w.wm-w.o.length, w.o.slide) + w.o.slide, true
}

func (w *eventWindower) eventTime(rec []byte) (int64, error) {
	raw, ok, err := record.Get(rec, w.o.ev.field)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("no time field %q", w.o.ev.field)
	}
	t, err := codec.EventTime(raw, w.o.ev.unit)
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

// End moves the watermark on and writes the batch of the output mode: the
// windows it made final (append), the groups it changed (update), or every
// window (complete), with the input batch's id and time. The windows now
// final leave the state (not in complete mode). The batch is ended on the
// output only after the state that includes it is saved: a sink commits a
// batch at its end, and a restart restores the state of the last batch
// committed.
func (w *eventWindower) End(b stage.Batch) error {
	w.started, w.lastID, w.lastTime = true, b.ID, b.Time
	moved := false
	if w.haveMax && (!w.haveWM || w.maxT-w.o.ev.delay > w.wm) {
		w.wm, w.haveWM, moved = w.maxT-w.o.ev.delay, true, true
	}
	if err := w.out.BeginBatch(b.ID, b.Time); err != nil {
		return err
	}
	var err error
	switch w.o.ev.mode {
	case Append:
		err = w.st.write(w.out, func(end int64, _ bool) bool { return w.final(end) }, false)
	case Update:
		err = w.st.write(w.out, func(_ int64, changed bool) bool { return changed }, true)
	default:
		err = w.st.write(w.out, func(int64, bool) bool { return true }, false)
	}
	if err != nil {
		return fmt.Errorf("%v: %w", b, err)
	}
	removed := w.st.evict(w.isFinal)
	w.report(removed)
	if w.late != nil {
		if err := w.late.Flush(); err != nil {
			return fmt.Errorf("--late %s: %w", w.o.ev.late, err)
		}
	}
	if w.ck != nil {
		if err := w.ck.end(b); err != nil {
			return err
		}
	}
	if err := w.out.EndBatch(); err != nil {
		return err
	}
	if moved {
		return w.out.Watermark(w.wm)
	}
	return nil
}

func (w *eventWindower) report(removed int) {
	groups, changed, mem := w.st.size()
	w.stats.State = &stage.StateStats{NumRowsTotal: int64(groups), NumRowsUpdated: int64(changed), NumRowsRemoved: int64(removed), MemoryUsedBytes: mem}
	w.stats.Late = w.nLate
	w.stats.Dropped = w.nNoGap
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
	last, any := w.st.lastEnd()
	if w.o.ev.mode != Append || !any || w.ck != nil { // see windower.finish
		return nil
	}
	if err := w.out.BeginBatch(w.lastID+1, max(w.lastTime+1, last)); err != nil {
		return err
	}
	if err := w.st.write(w.out, func(int64, bool) bool { return true }, false); err != nil {
		return err
	}
	return w.out.EndBatch()
}

// windowRows writes the output records of windows' groups, reusing its
// buffers from record to record.
type windowRows struct{ rec, buf []byte }

// write writes group g of t as the record of the window [start, end).
func (w *windowRows) write(out *framing.Writer, t *agg.Table, g int32, start, end int64) error {
	w.rec = t.AppendRecord(w.rec[:0], g)
	w.buf = windowRecord(w.buf[:0], start, end, w.rec)
	return out.WriteRecord(w.buf)
}

// windowRecord appends the output record of a window's group to dst: the
// window's start and end (timestamps), then the fields of rec, the group's
// record as agg.Table.AppendRecord makes it (keys, aggregates).
func windowRecord(dst []byte, start, end int64, rec []byte) []byte {
	n, hdr, _ := record.MapLen(rec)
	dst = record.AppendMapHeader(dst, n+2)
	dst = record.AppendString(dst, fieldStart)
	dst = record.AppendTime(dst, time.UnixMilli(start))
	dst = record.AppendString(dst, fieldEnd)
	dst = record.AppendTime(dst, time.UnixMilli(end))
	return append(dst, rec[hdr:]...)
}

// floorTo is the largest multiple of m at or before t.
func floorTo(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	return t - r
}

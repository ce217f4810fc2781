// Package window is swindow's engine: windows of batch time (DStream's
// window and reduceByKeyAndWindow), and fixed and session windows of event
// time with a watermark (Structured Streaming's window and session_window
// with withWatermark), with their state saved in a checkpoint after each
// batch. docs/swindow.md describes what it writes; cmd/swindow is its
// command line.
package window

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/stage"
)

// Options configure the windows. The messages of New name the swindow
// flags that set them.
type Options struct {
	// Length is the window's length (--length); Slide starts one at every
	// multiple of it (--slide; a tumbling window has Slide = Length). Both
	// whole milliseconds. Windows of batch time cover the batches of time in
	// (T - Length, T], and a Length shorter than the Slide leaves the
	// batches between two windows out of both (DStream.window); fixed
	// windows of event time [start, start + Length), with Slide at most
	// Length, as Spark's window() asks. Zero with Event.Session.
	Length, Slide time.Duration

	// Agg is the keys and aggregates (-k, --count, --sum F, ...) a window
	// reduces to, one record per group; with neither a window of batch
	// time is its batches' records, in the order they came. Event time
	// needs one or the other.
	Agg agg.Config
	// Top, if more than 0, writes only the Top groups of each window with
	// the largest aggregate By (an index in Agg.Aggs): --top, --by. It does
	// not apply to sessions.
	Top, By int
	// SkipBad skips and counts the records that cannot be aggregated
	// instead of stopping with an error (--skip-bad).
	SkipBad bool
	// Strict makes a key or aggregated field that no record of a batch
	// has an error; else it is a note on Notes, once per field (a typo,
	// most often: see agg.FieldCheck).
	Strict bool
	Notes  io.Writer

	// Event, if not nil, windows each record's event time instead of the
	// batch time (--time-field).
	Event *EventOptions

	// Checkpoint is the checkpoint directory (--checkpoint), or "": the
	// state is saved after each batch in Checkpoint/state/Name (--name) and
	// restored before the first.
	Checkpoint, Name string
}

// EventOptions configure windows of event time.
type EventOptions struct {
	Field string         // the event time's field (--time-field)
	Unit  codec.TimeUnit // of numeric event times (--time-unit)
	// Watermark is how far behind the latest event time the watermark
	// stays (--watermark): whole milliseconds, 0 or more.
	Watermark time.Duration
	Mode      Mode   // what each batch writes (--mode); "": Append
	Late      string // a file to append late records to as JSON lines (--late), or "": dropped
	// Session, if not 0, makes session windows of this gap (--session),
	// whole milliseconds, instead of fixed windows of Length and Slide.
	Session time.Duration
	// SessionGap, if not "", makes session windows whose gap each record
	// gives: an expression (package expr) over the record's fields whose
	// value is a duration, a string time.ParseDuration reads ("30s"), or a
	// number of Unit; a gap of zero or less, or null, leaves the record
	// out (--session-gap-expr; Spark's dynamic session_window gap).
	SessionGap string
}

// Mode is the output mode of event-time windows: Structured Streaming's.
type Mode string

// The output modes.
const (
	Append   Mode = "append"   // the windows a batch made final, each once
	Update   Mode = "update"   // the groups of every window a batch changed
	Complete Mode = "complete" // every window at every batch: nothing final, nothing late
)

// maxGap bounds the windows one jump in batch time may write: a jump of
// more is far more likely a wrong unit than a real gap (sbatch's bound).
const maxGap = 1_000_000

// options are Options checked, in the units the windows work in.
type options struct {
	length, slide int64 // ms
	agg           aggOptions
	reduce        bool          // keys or aggregates: a window is its groups
	ev            *eventOptions // windows of event time; nil for batch time
	checkpoint    string
	name          string
}

// aggOptions are the aggregation options.
type aggOptions struct {
	Cfg     agg.Config
	Top, By int
	SkipBad bool
}

// check checks o and converts it to options.
func (o Options) check() (*options, error) {
	c := &options{agg: aggOptions{Cfg: o.Agg, Top: o.Top, By: o.By, SkipBad: o.SkipBad},
		reduce: len(o.Agg.Keys)+len(o.Agg.Aggs) > 0, checkpoint: o.Checkpoint, name: o.Name}
	if o.Event == nil || (o.Event.Session == 0 && o.Event.SessionGap == "") {
		var err error
		if c.length, err = millis("length", o.Length); err != nil {
			return nil, err
		}
		if c.slide, err = millis("slide", o.Slide); err != nil {
			return nil, err
		}
	}
	if o.Event == nil {
		return c, nil
	}
	if o.Event.Session == 0 && o.Event.SessionGap == "" && c.slide > c.length {
		// Windows of batch time may leave batches out; a record of event
		// time in no window would pass for late.
		return nil, stage.UsageError("--slide %v is longer than --length %v: windows of event time must cover every time, so the slide is at most the length (as Spark's window() asks)",
			time.Duration(c.slide)*time.Millisecond, time.Duration(c.length)*time.Millisecond)
	}
	ev := &eventOptions{field: o.Event.Field, unit: o.Event.Unit, mode: o.Event.Mode, late: o.Event.Late}
	d := o.Event.Watermark
	if d < 0 || d%time.Millisecond != 0 {
		return nil, stage.UsageError("--watermark %v: want a whole number of milliseconds, 0 or more", d)
	}
	ev.delay = d.Milliseconds()
	switch ev.mode {
	case "":
		ev.mode = Append
	case Append, Update, Complete:
	default:
		return nil, stage.UsageError("--mode %q: want append, update or complete", ev.mode)
	}
	if o.Event.Session != 0 || o.Event.SessionGap != "" {
		if o.Length != 0 || o.Slide != 0 {
			return nil, stage.UsageError("--length and --slide do not go with --session: a session window is as long as its events make it")
		}
	}
	if o.Event.Session != 0 {
		if o.Event.SessionGap != "" {
			return nil, stage.UsageError("--session and --session-gap-expr are two ways to give the gap: give one")
		}
		var err error
		if ev.session, err = millis("session", o.Event.Session); err != nil {
			return nil, err
		}
	}
	if o.Event.SessionGap != "" {
		var err error
		if ev.gap, err = compileGap(o.Event.SessionGap); err != nil {
			return nil, err
		}
	}
	c.ev = ev
	if !c.reduce {
		return nil, stage.Hint(stage.UsageError("event-time windows aggregate: give keys (-k) and/or aggregates (--count, --sum F, ...)"),
			"to gather the records of batches, leave out --time-field: sbatch --time-field cuts batches by event time, and swindow windows them")
	}
	return c, nil
}

func millis(flag string, d time.Duration) (int64, error) {
	if d <= 0 || d%time.Millisecond != 0 {
		return 0, stage.UsageError("--%s %v: want a positive whole number of milliseconds", flag, d)
	}
	return d.Milliseconds(), nil
}

// Engine is the windows of Options, a stage.Handler; after the input's end
// Finish writes what it still holds, and Close closes the --late file.
type Engine struct {
	w interface {
		stage.Handler
		finish() error
	}
	closer func() error
	check  *agg.FieldCheck
	o      *Options
}

// New returns the engine of o, writing its windows to out. It reports the
// figures of each batch in stats, which the stage runtime resets at each
// batch (nil: kept to itself). With o.Checkpoint, it takes its part of the
// checkpoint directory now, and replaying, called at the first batch, tells
// whether the pipeline's source replays from that checkpoint
// (stage.Env.Replaying; nil: never).
func New(o Options, out *framing.Writer, stats *stage.Stats, replaying func() bool) (*Engine, error) {
	c, err := o.check()
	if err != nil {
		return nil, err
	}
	if stats == nil {
		stats = new(stage.Stats)
	}
	if replaying == nil {
		replaying = func() bool { return false }
	}
	e := &Engine{closer: func() error { return nil }, check: agg.NewFieldCheck(o.Agg), o: &o}
	var st stateful
	var ck **checkpointer
	if c.ev != nil {
		ew, err := newEventWindower(out, c)
		if err != nil {
			return nil, err
		}
		ew.stats = stats
		e.w, e.closer, st, ck = ew, ew.Close, ew, &ew.ck
	} else {
		bw, err := newWindower(out, c)
		if err != nil {
			return nil, err
		}
		bw.stats = stats
		e.w, st, ck = bw, bw, &bw.ck
	}
	if c.checkpoint != "" {
		if *ck, err = openCheckpointer(c.checkpoint, c.name, c, st, replaying); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

func (e *Engine) Begin(b stage.Batch) error {
	e.check.Begin()
	return e.w.Begin(b)
}

func (e *Engine) Block(b stage.Batch, recs framing.Records) error {
	probe := recs // a copy: the windower reads recs from its start
	for rec, ok := probe.Next(); ok && !e.check.Done(); rec, ok = probe.Next() {
		e.check.Observe(rec)
	}
	return e.w.Block(b, recs)
}

func (e *Engine) End(b stage.Batch) error {
	if err := agg.ReportMissing(e.check, b, e.o.Strict, e.o.Notes, "swindow"); err != nil {
		return err
	}
	return e.w.End(b)
}
func (e *Engine) Watermark(t int64) error { return e.w.Watermark(t) }

// Finish is called at the end of the input stream: without a checkpoint,
// it writes the windows still open (see windower.finish).
func (e *Engine) Finish() error { return e.w.finish() }

// Close closes the --late file.
func (e *Engine) Close() error { return e.closer() }

// held is an input batch that a coming window of records (no keys, no
// aggregates) still needs: its records as in a Records frame, (uvarint
// length, msgpack)*.
type held struct {
	id   uint64
	time int64
	recs []byte
	n    int
}

func recordsOf(h *held) framing.Records { return framing.NewRecords(h.recs, h.n) }

// windower is the stage's Handler.
type windower struct {
	out   *framing.Writer
	o     *options
	stats *stage.Stats

	held []*held // without keys or aggregates: the batches, oldest first
	// With keys or aggregates, the windows are assembled from slices of
	// gcd(length, slide): each batch's records are folded into its slice,
	// sl, as they come, and the slices of the coming window are in span
	// (assemble.go), which subtracts the leaving slice from a running
	// table when the aggregates are invertible and uses Two-Stacks when
	// not. No record is held.
	sl     *agg.Table
	slEnd  int64 // sl holds the batches of time in (slEnd - g, slEnd]
	g      int64
	span   span
	slices *tablePool
	slMem  int64         // of the slices in span (sealed: they do not change)
	ck     *checkpointer // --checkpoint, or nil
	cur    *held         // the batch in hand, without keys or aggregates
	skip   bool          // the batch in hand is in no window (a length shorter than the slide)
	spare  []*held       // held batches to reuse
	nrec   int           // records of the batch in hand so far
	gs     []int32
	buf    []byte

	started  bool
	next     int64  // end of the next window to write
	lastID   uint64 // id of the last input batch
	lastTime int64
	wrote    bool   // a window was written
	lastOut  uint64 // id of the last window written
	lastEnd  int64  // end of the last window written
	pending  bool   // a batch of a coming window came since the last window was written
}

func newWindower(out *framing.Writer, o *options) (*windower, error) {
	w := &windower{out: out, o: o, stats: new(stage.Stats)}
	if o.reduce {
		if _, err := agg.New(o.agg.Cfg); err != nil {
			return nil, stage.Usage(err)
		}
		w.g = gcd(o.length, o.slide)
		w.span = newSpan(o.agg.Cfg, false)
		w.slices = &tablePool{cfg: o.agg.Cfg}
	}
	return w, nil
}

func (w *windower) Begin(b stage.Batch) error {
	if w.ck != nil {
		if err := w.ck.begin(b.ID); err != nil {
			return err
		}
	}
	if !w.started {
		w.started = true
		w.next = ceilTo(b.Time, w.o.slide)
	} else if b.Time <= w.lastTime {
		return fmt.Errorf("%v: batch time %s does not come after the last batch's, %s: batch times must rise",
			b, fmtTime(b.Time), fmtTime(w.lastTime))
	}
	if gap := (b.Time - w.next) / w.o.slide; gap > maxGap {
		return stage.Hint(fmt.Errorf("%v: batch time %s is %d slides after the window ending %s", b, fmtTime(b.Time), gap, fmtTime(w.next)),
			"check the unit of the batch times upstream (sbatch --time-unit)")
	}
	// The windows that end before this batch are complete. They carry the
	// id of the batch before, whose snapshot holds the state from before
	// them: after a crash they are written again, the same, and a sink
	// skips them as committed.
	for b.Time > w.next {
		if err := w.emit(); err != nil {
			return err
		}
		if err := w.out.EndBatch(); err != nil {
			return err
		}
	}
	// With a length shorter than the slide, the batches between the end of
	// one window and the start of the next are in neither: window(2s, 3s)
	// holds the batches of 2 and 3 s, then of 5 and 6 s, never of 4 s.
	w.skip = b.Time <= w.next-w.o.length
	w.nrec = 0
	switch {
	case !w.o.reduce:
		w.cur = w.newHeld(b)
	case !w.skip:
		if err := w.toSlice(b.Time); err != nil {
			return err
		}
	}
	return nil
}

// toSlice makes sl the slice of batch time t, pushing the one before into
// the span: its batches are all in.
func (w *windower) toSlice(t int64) error {
	end := ceilTo(t, w.g)
	if w.sl != nil && w.slEnd != end {
		if err := w.seal(); err != nil {
			return err
		}
	}
	if w.sl == nil {
		w.sl, w.slEnd = w.slices.get(), end
	}
	return nil
}

// seal pushes sl into the span.
func (w *windower) seal() error {
	if err := w.span.push(w.slEnd, w.sl, nil); err != nil {
		return err
	}
	w.slMem += w.sl.MemoryUsed()
	w.sl = nil
	return nil
}

func (w *windower) newHeld(b stage.Batch) *held {
	var h *held
	if n := len(w.spare); n > 0 {
		h, w.spare = w.spare[n-1], w.spare[:n-1]
		h.recs, h.n = h.recs[:0], 0
	} else {
		h = new(held)
	}
	h.id, h.time = b.ID, b.Time
	return h
}

func (w *windower) Block(b stage.Batch, recs framing.Records) error {
	if w.skip {
		return nil
	}
	if !w.o.reduce {
		blk, n := recs.Rest()
		w.cur.recs = append(w.cur.recs, blk...)
		w.cur.n += n
		w.nrec += n
		return nil
	}
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		w.nrec++
		if err := w.sl.Add(rec); err != nil {
			if w.o.agg.SkipBad {
				w.stats.Skipped++
				continue
			}
			return agg.BadRecord(fmt.Sprintf("%v, record %d", b, w.nrec), rec, err)
		}
	}
	return nil
}

// End writes the window this batch ends, if it ends one. The window's batch
// is ended on the output only after the state that includes this batch is
// saved: a sink commits a batch at its end, and a restart restores the
// state of the last batch committed.
func (w *windower) End(b stage.Batch) error {
	switch {
	case w.cur != nil && w.skip:
		w.spare = append(w.spare, w.cur)
	case w.cur != nil:
		w.held = append(w.held, w.cur)
	}
	w.pending = w.pending || !w.skip
	w.cur = nil
	w.lastID, w.lastTime = b.ID, b.Time
	open := false
	if b.Time == w.next {
		if err := w.emit(); err != nil {
			return err
		}
		open = true
	}
	if w.o.reduce {
		// The groups of the coming window so far: of the slices in the
		// span and of the one in hand (a key in both counts twice).
		rows := w.span.rows()
		if w.sl != nil {
			rows += w.sl.Len()
		}
		w.stats.State = &stage.StateStats{NumRowsTotal: int64(rows), MemoryUsedBytes: w.memory()}
	}
	if w.ck != nil {
		if err := w.ck.end(b); err != nil {
			return err
		}
	}
	if open {
		return w.out.EndBatch()
	}
	return nil
}

func (w *windower) memory() int64 {
	n := int64(0)
	for _, h := range w.held {
		n += int64(cap(h.recs))
	}
	if w.span != nil {
		n += w.span.memory() + w.slMem
		if w.sl != nil {
			n += w.sl.MemoryUsed()
		}
	}
	return n
}

func (w *windower) Watermark(t int64) error { return w.out.Watermark(t) }

// finish writes the window holding the last batch, at the end of the stream.
//
// With --checkpoint it writes nothing: the input's end is then only where
// this run stops, the next run goes on from the saved state, and a window
// written now would be written again, or, for event time, take an id the
// source's next batch will have.
func (w *windower) finish() error {
	if w.pending && w.ck == nil {
		if err := w.emit(); err != nil {
			return err
		}
		return w.out.EndBatch()
	}
	return nil
}

// emit writes the window ending at w.next as a batch, left open for the
// caller to end, then moves on to the next window, letting go of the
// batches it no longer needs.
func (w *windower) emit() error {
	end := w.next
	if w.wrote && w.lastID <= w.lastOut {
		return stage.Hint(fmt.Errorf("the window ending %s holds no batch of its own: batch %d, the last to come, ended the window of %s",
			fmtTime(end), w.lastID, fmtTime(w.lastEnd)),
			"batches must come at least once per slide: give sbatch an interval (-i) that divides the slide, so that idle time brings empty batches")
	}
	id := w.lastID
	if err := w.out.BeginBatch(id, end); err != nil {
		return err
	}
	var err error
	if w.o.reduce {
		err = w.writeGroups(end)
	} else {
		err = w.writeRecords()
	}
	if err != nil {
		return err
	}
	w.wrote, w.lastOut, w.lastEnd, w.pending = true, id, end, false
	w.next += w.o.slide
	return w.release(w.next - w.o.length)
}

func (w *windower) writeRecords() error {
	for _, h := range w.held {
		recs := recordsOf(h)
		for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
			if err := w.out.WriteRecord(rec); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *windower) writeGroups(end int64) error {
	t, err := w.assemble(end)
	if err != nil {
		// Written with the id of the last batch in: name it.
		return fmt.Errorf("batch %d: the window ending %s: %w", w.lastID, fmtTime(end), err)
	}
	gs := append(w.gs[:0], t.Sorted()...)
	// A table assembled from slices may hold groups with no record.
	gs = slices.DeleteFunc(gs, func(g int32) bool { return t.Rows(g) == 0 })
	if len(gs) == 0 && len(w.o.agg.Cfg.Keys) == 0 && w.o.agg.Cfg.HasCount() {
		gs = append(gs, t.Group(nil)) // DStream.count of an empty window is 0
	}
	if w.o.agg.Top > 0 {
		gs = t.Top(gs, w.o.agg.Top, w.o.agg.By)
	}
	w.gs = gs
	for _, g := range gs {
		w.buf = t.AppendRecord(w.buf[:0], g)
		if err := w.out.WriteRecord(w.buf); err != nil {
			return err
		}
	}
	return nil
}

// assemble is the groups of the window ending at end, from its slices:
// the slice in hand pushed if the window holds it, the slices before the
// window popped.
func (w *windower) assemble(end int64) (*agg.Table, error) {
	if w.sl != nil && w.slEnd <= end {
		if err := w.seal(); err != nil {
			return nil, err
		}
	}
	if err := w.popTo(end - w.o.length); err != nil {
		return nil, err
	}
	return w.span.result()
}

// popTo lets the span go of the slices that end at or before cutoff.
func (w *windower) popTo(cutoff int64) error {
	for {
		first, ok := w.span.first()
		if !ok || first > cutoff {
			return nil
		}
		t, err := w.span.pop()
		if err != nil {
			return err
		}
		w.slMem -= t.MemoryUsed()
		w.slices.put(t)
	}
}

// release lets go of what no coming window holds, of time at or before
// cutoff: the slices, or the held batches.
func (w *windower) release(cutoff int64) error {
	if w.o.reduce {
		return w.popTo(cutoff)
	}
	n := 0
	for n < len(w.held) && w.held[n].time <= cutoff {
		n++
	}
	w.spare = append(w.spare, w.held[:n]...)
	w.held = append(w.held[:0], w.held[n:]...)
	return nil
}

// ceilTo is the smallest multiple of m at or after t.
func ceilTo(t, m int64) int64 {
	r := t % m
	if r < 0 {
		r += m
	}
	if r == 0 {
		return t
	}
	return t - r + m
}

func fmtTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

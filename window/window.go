package main

import (
	"fmt"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/cmd/internal/aggflags"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/input"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

var command = &stage.Command{
	Name:      "swindow",
	Usage:     "tumbling and sliding windows over batch time, and windows and sessions of event time with a watermark",
	ArgsUsage: " ",
	Input:     true,
	Output:    true,
	Description: `swindow gathers batches into windows of batch time (DStream's window and
reduceByKeyAndWindow). The window ending at T holds the batches whose batch
time is in (T - LENGTH, T]; a window ends at every multiple of SLIDE (unix
epoch aligned), and swindow writes each window as one batch, at its end
only, with batch time T. -l 1m alone is a tumbling window of one minute;
-l 1m -s 10s slides every 10 seconds over the last minute.

Without keys or aggregates a window is the records of its batches, in the
order they came (DStream.window). With -k and/or aggregates it is one record
per group, as sreduce writes for a batch: the key fields, then the
aggregates in command-line order, sorted by key (reduceByKeyAndWindow,
countByValueAndWindow). A keyless --count of an empty window is 0.

` + aggflags.Help + `

Cost: with count, sum, avg and distinct only (invertible aggregates) a
window is kept up to date incrementally, the entering batch added and the
leaving batch subtracted (reduceByKeyAndWindow with an inverse function), so
a slide costs the records that enter and leave, not the window's length;
groups whose count falls to zero are dropped. With min, max, first, last or
collect each window is recomputed from its batches. Either way swindow holds
the records of the batches a coming window still needs.

Batches and windows (without --time-field): LENGTH and SLIDE are whole
milliseconds, LENGTH a multiple of SLIDE; as in Spark, SLIDE should be a multiple of the batch
interval (sbatch -i), so that every window ends with a batch of its own.
A window leaves with the id of the last input batch it holds (the one whose
time is T, or the last before T): ids rise, and a window whose end no batch
came to mark is an error, since it would have no id of its own. Empty
batches count: sbatch -i writes them while its input is idle, so idle time
still moves the windows along. At the end of the stream (without
--checkpoint) the window holding the last batch is written; the windows
after it, which a sliding window would still fill with the last batches,
are not. Watermarks pass through.

Event time (--time-field F): windows of each record's own time instead of
the batches' (Structured Streaming's groupBy(window(F, LENGTH, SLIDE), keys)
with withWatermark(F, DELAY)). A record at time t counts in every window
[start, start + LENGTH) that holds t, start a multiple of SLIDE; F is a
number of --time-unit (s or ms) since the epoch, an RFC 3339 string or a
timestamp. The watermark is the latest event time seen, at the end of each
batch, minus --watermark DUR (default 0); a window whose end it has reached
is final. A record all of whose windows are final is late: it is dropped
and counted (numLateRows in --progress), or with --late FILE appended to
FILE as a JSON line. Every input batch gives one output batch with its id
and time, holding, by --mode:
  append    the windows the batch made final, each once (the default)
  update    the groups of every window the batch changed
  complete  every window, at every batch (nothing is final, nothing late)
A window's records are window_start and window_end (timestamps), the key
fields, the aggregates; windows in order of start, groups by key. After
each batch the watermark leaves as a watermark frame. Two differences from
Spark: a batch's own watermark already applies at its end, not one batch
later; and at the end of the stream, which nothing can follow (without
--checkpoint), append mode writes the windows still open in one more
batch, numbered after the last.

Checkpoint: with --checkpoint DIR the windows' state after each batch is
saved atomically in DIR/state/NAME (--name, default swindow): the batches a
coming window still needs, or with --time-field every open window's groups
and the watermark. On restart it is restored as of the batch before the
first that arrives, so a source replaying its uncommitted batches with the
same ids (sbatch --checkpoint DIR FILE...) gets the windows of an
uninterrupted run, as sreduce --running does; a checkpoint of another
window configuration is refused. With --checkpoint the windows still open
when the stream ends are not written but kept for the next run, which goes
on from them (a checkpointed source goes on, as a file that grew).

Session windows (--session GAP, with --time-field; no -l or -s): per key,
an event opens [t, t + GAP), and windows that overlap merge, so a session
runs from its first event to its last plus GAP (Structured Streaming's
session_window). An event that joins two sessions merges them. A session
is one group: its records are held until it is written, then folded into
its aggregates (so any aggregate works, and --top does not apply).

Examples:
  sbatch -i 1s < access.log | swindow -l 1m | ssink                  # tumbling: a batch a minute
  sbatch -i 10s --format json | swindow -l 1m -s 10s -k path --count --sum bytes | ssink
  sbatch -i 1s | smap --flat 'split(value, " ")' | swindow -l 30s -s 5s -k value --count --top 10 | ssink
  sbatch -i 1s | swindow -l 5m -s 1m --count | ssink                 # records per 5 minutes, every minute
  sbatch -i 1s --format json | swindow --time-field ts --watermark 30s -l 1m -k path --count | ssink
  sbatch -i 1s --format json | swindow --time-field ts --watermark 1m --session 5m -k user --count --sum bytes | ssink`,
	Flags: append([]cli.Flag{
		&cli.DurationFlag{Name: "length", Aliases: []string{"l"}, Usage: "the window's length `DUR` (1m, 30s, ...): batches of batch time in (T - DUR, T]", Category: "Windows"},
		&cli.DurationFlag{Name: "slide", Aliases: []string{"s"}, Usage: "start a window at every multiple of `DUR` (default: the length, a tumbling window)", Category: "Windows"},
		&cli.DurationFlag{Name: "session", Usage: "session windows of event time instead: a key's events less than `GAP` apart make one window (with --time-field)", Category: "Windows"},
		&cli.StringFlag{Name: "time-field", Usage: "window the event time in `FIELD` of each record instead of the batch time", Category: "Event time"},
		&cli.StringFlag{Name: "time-unit", Value: "s", Usage: "`UNIT` of numeric event times: s or ms", Category: "Event time"},
		&cli.DurationFlag{Name: "watermark", Usage: "how late a record may come: a window is final once the latest event time passes its end by `DUR`", Category: "Event time"},
		&cli.StringFlag{Name: "mode", Value: modeAppend, Usage: "output `MODE`: append (each window once, when final), update (the groups each batch changed), complete (every window at every batch)", Category: "Event time"},
		&cli.StringFlag{Name: "checkpoint", Usage: "save the windows' state after each batch in `DIR`/state/NAME and restore it on restart", Category: "Checkpoint"},
		&cli.StringFlag{Name: "name", Value: "swindow", Usage: "the `NAME` of this stage's state in the checkpoint directory", Category: "Checkpoint"},
		&cli.StringFlag{Name: "late", Usage: "append the records too late for any window to `FILE` as JSON lines (default: drop them, counted in --progress)", Category: "Event time"},
	}, aggflags.Flags()...),
	Action: run,
}

// maxGap bounds the windows one jump in batch time may write: a jump of
// more is far more likely a wrong unit than a real gap (sbatch's bound).
const maxGap = 1_000_000

type options struct {
	length, slide int64 // ms
	agg           *aggflags.Options
	reduce        bool          // keys or aggregates: a window is its groups
	ev            *eventOptions // --time-field: windows of event time; nil for batch time
	checkpoint    string        // --checkpoint DIR, or ""
	name          string        // --name
}

// windows is what run drives: a Handler that writes what it still holds at
// the end of the stream.
type windows interface {
	stage.Handler
	finish() error
}

func run(e *stage.Env) error {
	o, err := parseOptions(e.Ctx, e.Args)
	if err != nil {
		return err
	}
	var w windows
	var st stateful
	if o.ev != nil {
		ew, err := newEventWindower(e.Out, o)
		if err != nil {
			return err
		}
		defer ew.Close()
		ew.stats = &e.Stats
		w, st = ew, ew
	} else {
		bw, err := newWindower(e.Out, o)
		if err != nil {
			return err
		}
		bw.stats = &e.Stats
		w, st = bw, bw
	}
	if o.checkpoint != "" {
		ck, err := openCheckpointer(o.checkpoint, o.name, o, st, e.Replaying)
		if err != nil {
			return err
		}
		switch w := w.(type) {
		case *windower:
			w.ck = ck
		case *eventWindower:
			w.ck = ck
		}
	}
	if err := e.UseCheckpoint(o.checkpoint, "swindow keeps windows across batches, and a restart must restore them"); err != nil {
		return err
	}
	if err := e.Loop(w); err != nil {
		return err
	}
	return w.finish()
}

func parseOptions(c *cli.Context, args []string) (*options, error) {
	if c.NArg() > 0 {
		return nil, stage.UsageError("unexpected argument %q: swindow reads frames from its input and takes flags only", c.Args().First())
	}
	var length, slide int64
	var err error
	switch {
	case c.IsSet("session"):
		for _, f := range []string{"length", "slide", "top"} {
			if c.IsSet(f) {
				return nil, stage.UsageError("--%s does not go with --session: a session window is as long as its events make it, and is one group", f)
			}
		}
		if !c.IsSet("time-field") {
			return nil, stage.UsageError("--session windows event time: add --time-field F")
		}
	case !c.IsSet("length"):
		return nil, stage.UsageError("give the window's length: -l DUR (e.g. -l 1m), or --session GAP")
	default:
		if length, err = millis("length", c.Duration("length")); err != nil {
			return nil, err
		}
		slide = length
		if c.IsSet("slide") {
			if slide, err = millis("slide", c.Duration("slide")); err != nil {
				return nil, err
			}
		}
		if length%slide != 0 {
			return nil, stage.UsageError("--length %v is not a multiple of --slide %v: a window covers a whole number of slides",
				time.Duration(length)*time.Millisecond, time.Duration(slide)*time.Millisecond)
		}
	}
	a, err := aggflags.Parse(c, args)
	if err != nil {
		return nil, err
	}
	o := &options{length: length, slide: slide, agg: a, reduce: len(a.Cfg.Keys)+len(a.Cfg.Aggs) > 0,
		checkpoint: c.String("checkpoint"), name: c.String("name")}
	if c.IsSet("checkpoint") && o.checkpoint == "" {
		return nil, stage.UsageError("--checkpoint needs a directory")
	}
	if err := checkpoint.ValidName(o.name); err != nil {
		return nil, stage.UsageError("--name: %v", err)
	}
	if o.ev, err = parseEventOptions(c); err != nil {
		return nil, err
	}
	if o.ev != nil && !o.reduce {
		return nil, stage.Hint(stage.UsageError("event-time windows aggregate: give keys (-k) and/or aggregates (--count, --sum F, ...)"),
			"to gather the records of batches, leave out --time-field: sbatch --time-field cuts batches by event time, and swindow windows them")
	}
	return o, nil
}

// eventFlags apply to event-time windows only.
var eventFlags = []string{"time-unit", "watermark", "mode", "late"}

func parseEventOptions(c *cli.Context) (*eventOptions, error) {
	field := c.String("time-field")
	if !c.IsSet("time-field") {
		for _, f := range eventFlags {
			if c.IsSet(f) {
				return nil, stage.UsageError("--%s applies to event-time windows: add --time-field F", f)
			}
		}
		return nil, nil
	}
	if field == "" {
		return nil, stage.UsageError("--time-field needs a field name")
	}
	ev := &eventOptions{field: field, mode: c.String("mode"), late: c.String("late")}
	var err error
	if ev.unit, err = input.ParseTimeUnit(c.String("time-unit")); err != nil {
		return nil, stage.UsageError("--time-unit: %v", err)
	}
	d := c.Duration("watermark")
	if d < 0 || d%time.Millisecond != 0 {
		return nil, stage.UsageError("--watermark %v: want a whole number of milliseconds, 0 or more", d)
	}
	ev.delay = d.Milliseconds()
	switch ev.mode {
	case modeAppend, modeUpdate, modeComplete:
	default:
		return nil, stage.UsageError("--mode %q: want append, update or complete", ev.mode)
	}
	if c.IsSet("late") && ev.late == "" {
		return nil, stage.UsageError("--late needs a file name")
	}
	if c.IsSet("session") {
		if ev.session, err = millis("session", c.Duration("session")); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

func millis(flag string, d time.Duration) (int64, error) {
	if d <= 0 || d%time.Millisecond != 0 {
		return 0, stage.UsageError("--%s %v: want a positive whole number of milliseconds", flag, d)
	}
	return d.Milliseconds(), nil
}

// held is an input batch that a coming window still needs: its records as
// in a Records frame, (uvarint length, msgpack)*.
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

	t     *agg.Table    // the groups of the window in hand (reduce)
	inc   bool          // every aggregate is invertible: t is kept up to date
	probe *agg.Table    // not inc: records are checked here as they come
	held  []*held       // oldest first
	ck    *checkpointer // --checkpoint, or nil
	cur   *held         // the batch in hand
	spare []*held       // held batches to reuse
	nrec  int           // records of the batch in hand so far
	gs    []int32
	buf   []byte

	started  bool
	next     int64  // end of the next window to write
	lastID   uint64 // id of the last input batch
	lastTime int64
	wrote    bool   // a window was written
	lastOut  uint64 // id of the last window written
	lastEnd  int64  // end of the last window written
	pending  bool   // a batch came since the last window was written
}

func newWindower(out *framing.Writer, o *options) (*windower, error) {
	w := &windower{out: out, o: o, stats: new(stage.Stats)}
	if o.reduce {
		t, err := agg.New(o.agg.Cfg)
		if err != nil {
			return nil, stage.Usage(err)
		}
		w.t, w.inc = t, o.agg.Cfg.Invertible()
		if !w.inc {
			if w.probe, err = agg.New(o.agg.Cfg); err != nil {
				return nil, stage.Usage(err)
			}
		}
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
	w.cur = w.newHeld(b)
	w.nrec = 0
	if w.probe != nil {
		w.probe.Reset()
	}
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
	if !w.o.reduce {
		blk, n := recs.Rest()
		w.cur.recs = append(w.cur.recs, blk...)
		w.cur.n += n
		w.nrec += n
		return nil
	}
	t := w.t
	if !w.inc {
		t = w.probe
	}
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		w.nrec++
		if err := t.Add(rec); err != nil {
			if w.o.agg.SkipBad {
				w.stats.Skipped++
				continue
			}
			return aggflags.BadRecord(fmt.Sprintf("%v, record %d", b, w.nrec), rec, err)
		}
		w.cur.recs = framing.AppendRecord(w.cur.recs, rec)
		w.cur.n++
	}
	return nil
}

// End writes the window this batch ends, if it ends one. The window's batch
// is ended on the output only after the state that includes this batch is
// saved: a sink commits a batch at its end, and a restart restores the
// state of the last batch committed.
func (w *windower) End(b stage.Batch) error {
	w.held = append(w.held, w.cur)
	w.cur = nil
	w.lastID, w.lastTime, w.pending = b.ID, b.Time, true
	open := false
	if b.Time == w.next {
		if err := w.emit(); err != nil {
			return err
		}
		open = true
	}
	if w.t != nil {
		w.stats.State = &stage.StateStats{NumRowsTotal: int64(w.t.Len()), MemoryUsedBytes: w.memory()}
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
	if w.t != nil {
		n += w.t.MemoryUsed()
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
	t := w.t
	if !w.inc {
		t.Reset()
		for _, h := range w.held {
			recs := recordsOf(h)
			i := 0
			for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
				i++
				if err := t.Add(rec); err != nil {
					return aggflags.BadRecord(fmt.Sprintf("window ending %s, batch %d, record %d", fmtTime(end), h.id, i), rec, err)
				}
			}
		}
	}
	gs := append(w.gs[:0], t.Sorted()...)
	if len(gs) == 0 && len(w.o.agg.Cfg.Keys) == 0 && w.o.agg.HasCount() {
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

// release lets go of the held batches of time at or before cutoff, which no
// coming window holds: subtracted from the window's groups when they are
// kept up to date, and dropping the groups left with no record.
func (w *windower) release(cutoff int64) error {
	n := 0
	for n < len(w.held) && w.held[n].time <= cutoff {
		n++
	}
	if n == 0 {
		return nil
	}
	if w.inc {
		w.t.ClearTouched()
		for _, h := range w.held[:n] {
			recs := recordsOf(h)
			for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
				if err := w.t.Subtract(rec); err != nil {
					return fmt.Errorf("batch %d leaving the window: %w", h.id, err)
				}
			}
		}
		for _, g := range w.t.Touched() {
			if w.t.Rows(g) == 0 {
				w.t.Remove(g)
			}
		}
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

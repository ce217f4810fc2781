package main

import (
	"github.com/dstream/dstream/cmd/internal/aggflags"
	"github.com/dstream/dstream/cmd/internal/stateflags"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
	"github.com/dstream/dstream/window"
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

Cost: with keys or aggregates each batch is folded into the groups of a
slice of gcd(LENGTH, SLIDE) as it comes, and a window is assembled from its
slices: with count, sum, avg and distinct only (invertible aggregates) kept
up to date, the entering slice added and the leaving one subtracted
(reduceByKeyAndWindow with an inverse function), groups whose count falls
to zero dropped; with min, max, first, last or collect by Two-Stacks, each
slice combined a constant number of times. A slide costs about the same
whatever the length, and swindow holds the slices' groups, not the
records. Without keys or aggregates it holds the records of the batches a
coming window still needs.

Batches and windows (without --time-field): LENGTH and SLIDE are whole
milliseconds; as in Spark, both should be multiples of the batch interval
(sbatch -i), so that every window ends with a batch of its own. A LENGTH
shorter than the SLIDE leaves the batches between two windows out of both:
-l 2s -s 3s over batches of 1 s writes at 3 s the batches of 2 and 3 s, at
6 s those of 5 and 6 s, and the batches of 1 and 4 s are in none
(WindowOperationsSuite's "non-overlapping window").
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
[start, start + LENGTH) that holds t, start a multiple of SLIDE (at most
LENGTH, as Spark's window() asks, so that every time is in one). It is
folded once, into a slice of gcd(LENGTH, SLIDE), and windows are assembled
from their slices when written, so a long window sliding often costs about
what a tumbling one does; first and last, which follow the order records
come in and not their time, are combined by the order of arrival each
slice keeps of its groups' first and last records; with collect, whose
output is every value of the window anyway, each window keeps its own
groups. F is a
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
an event opens [t, t + GAP), and windows that overlap or touch merge (as
Spark's do: a session starting where another ends joins it), so a session
runs from its first event to its last plus GAP (Structured Streaming's
session_window). An event that joins two sessions merges them. A session
is one group: its records are held until it is written, then folded into
its aggregates (so any aggregate works, and --top does not apply).

Dynamic gaps (--session-gap-expr EXPR instead of --session; Spark's
session_window with a gap column): EXPR, in smap's expression language
over the record's fields, gives each record's gap: a duration
(duration("30s")), a string such as "30s" or "1m30s", or a number of
--time-unit. The record opens [t, t + its gap), merged as above. A gap of
zero or less, or null, leaves the record out, as Spark filters it: counted
in --progress (numDroppedRows), and its time still moves the watermark.
Any other value stops swindow naming the record (--skip-bad skips it).

Examples:
  sbatch -i 1s < access.log | swindow -l 1m | ssink                  # tumbling: a batch a minute
  sbatch -i 10s --format json | swindow -l 1m -s 10s -k path --count --sum bytes | ssink
  sbatch -i 1s | smap --flat 'split(value, " ")' | swindow -l 30s -s 5s -k value --count --top 10 | ssink
  sbatch -i 1s | swindow -l 5m -s 1m --count | ssink                 # records per 5 minutes, every minute
  sbatch -i 1s --format json | swindow --time-field ts --watermark 30s -l 1m -k path --count | ssink
  sbatch -i 1s --format json | swindow --time-field ts --watermark 1m --session 5m -k user --count --sum bytes | ssink
  sbatch -i 1s --format json | swindow --time-field ts --watermark 1m --session-gap-expr 'plan == "pro" ? "30m" : "5m"' -k user --count | ssink`,
	Flags: append([]cli.Flag{
		&cli.DurationFlag{Name: "length", Aliases: []string{"l"}, Usage: "the window's length `DUR` (1m, 30s, ...): batches of batch time in (T - DUR, T]", Category: "Windows"},
		&cli.DurationFlag{Name: "slide", Aliases: []string{"s"}, Usage: "start a window at every multiple of `DUR`", DefaultText: "the length, a tumbling window", Category: "Windows"},
		&cli.DurationFlag{Name: "session", Usage: "session windows of event time instead: a key's events at most `GAP` apart make one window (with --time-field)", Category: "Windows"},
		&cli.StringFlag{Name: "session-gap-expr", Usage: "session windows whose gap each record gives: `EXPR` over its fields, a duration (\"30s\", duration(\"1m\"), or a number of --time-unit); a gap of 0 or less leaves the record out", Category: "Windows"},
		&cli.StringFlag{Name: "time-field", Usage: "window the event time in `FIELD` of each record instead of the batch time", Category: "Event time"},
		&cli.StringFlag{Name: "time-unit", Value: "s", Usage: "`UNIT` of numeric event times: s or ms", Category: "Event time"},
		&cli.DurationFlag{Name: "watermark", Usage: "how late a record may come: a window is final once the latest event time passes its end by `DUR`", Category: "Event time"},
		&cli.StringFlag{Name: "mode", Value: string(window.Append), Usage: "output `MODE`: append (each window once, when final), update (the groups each batch changed), complete (every window at every batch)", Category: "Event time"},
		&cli.StringFlag{Name: "late", Usage: "append the records too late for any window to `FILE` as JSON lines (default: drop them, counted in --progress)", Category: "Event time"},
	}, append(aggflags.Flags(), stateflags.Flags("swindow", "the windows' state", "Checkpoint")...)...),
	Action: run,
}

func run(e *stage.Env) error {
	o, err := parseOptions(e.Ctx, e.Args)
	if err != nil {
		return err
	}
	o.Notes = e.Stderr
	w, err := window.New(*o, e.Out, &e.Stats, e.Replaying)
	if err != nil {
		return err
	}
	defer w.Close()
	e.KeepsWholeState()
	if err := e.UseCheckpoint(o.Checkpoint, "swindow keeps windows across batches, and a restart must restore them"); err != nil {
		return err
	}
	if err := e.Loop(w); err != nil {
		return err
	}
	return w.Finish()
}

// parseOptions makes the window.Options of the command line; window.New
// checks the values.
func parseOptions(c *cli.Context, args []string) (*window.Options, error) {
	if c.NArg() > 0 {
		return nil, stage.UsageError("unexpected argument %q: swindow reads frames from its input and takes flags only", c.Args().First())
	}
	o := &window.Options{Length: c.Duration("length"), Slide: c.Duration("slide")}
	var err error
	if o.Checkpoint, o.Name, err = stateflags.Parse(c); err != nil {
		return nil, err
	}
	switch {
	case c.IsSet("session") || c.IsSet("session-gap-expr"):
		opt := "--session"
		if !c.IsSet("session") {
			opt = "--session-gap-expr"
		}
		for _, f := range []string{"length", "slide", "top"} {
			if c.IsSet(f) {
				return nil, stage.UsageError("--%s does not go with %s: a session window is as long as its events make it, and is one group", f, opt)
			}
		}
		if !c.IsSet("time-field") {
			return nil, stage.UsageError("%s windows event time: add --time-field F", opt)
		}
	case !c.IsSet("length"):
		return nil, stage.UsageError("give the window's length: -l DUR (e.g. -l 1m), or --session GAP")
	case !c.IsSet("slide"):
		o.Slide = o.Length // a tumbling window
	}
	a, err := aggflags.Parse(c, args)
	if err != nil {
		return nil, err
	}
	o.Agg, o.Top, o.By, o.SkipBad, o.Strict = a.Cfg, a.Top, a.By, a.SkipBad, a.Strict
	if o.Event, err = parseEventOptions(c); err != nil {
		return nil, err
	}
	return o, nil
}

// eventFlags apply to event-time windows only.
var eventFlags = []string{"time-unit", "watermark", "mode", "late"}

func parseEventOptions(c *cli.Context) (*window.EventOptions, error) {
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
	ev := &window.EventOptions{Field: field, Watermark: c.Duration("watermark"), Mode: window.Mode(c.String("mode")),
		Late: c.String("late"), Session: c.Duration("session"), SessionGap: c.String("session-gap-expr")}
	var err error
	if ev.Unit, err = codec.ParseTimeUnit(c.String("time-unit")); err != nil {
		return nil, stage.UsageError("--time-unit: %v", err)
	}
	if c.IsSet("late") && ev.Late == "" {
		return nil, stage.UsageError("--late needs a file name")
	}
	if c.IsSet("session") && ev.Session == 0 {
		return nil, stage.UsageError("--session 0s: want a positive whole number of milliseconds")
	}
	if c.IsSet("session-gap-expr") && ev.SessionGap == "" {
		return nil, stage.UsageError("--session-gap-expr: the expression is empty")
	}
	return ev, nil
}

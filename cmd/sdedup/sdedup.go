package main

import (
	"os"
	"runtime/debug"

	"github.com/dstream/dstream/cmd/internal/stateflags"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/dedup"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

var command = &stage.Command{
	Name:      "sdedup",
	Usage:     "drop the records whose key came before, across batches (dropDuplicates)",
	ArgsUsage: " ",
	Input:     true,
	Output:    true,
	Description: `sdedup passes on the first record of each key and drops every later record of
a key it has seen, in the same batch or in any batch before (Structured
Streaming's dropDuplicates). Without -k the key is the whole record: two
records are duplicates when they have the same fields with the same values,
in any order. With -k F,G the key is the values of F and G together, as
sreduce groups them (a missing field is null; 1, 1.0 and "1" are three
values), and the record kept is the first of its key, other fields and all.
A key field that no record of a batch has (a typo, most often: every key
would be null, and all records but one dropped) is a note on stderr, once
per field; --strict makes it an error.

State: sdedup keeps every key it has seen. Without a watermark that state
grows with the distinct keys, without bound: about 35 bytes per key beside
the key's own values (docs/sdedup.md has the figures), so 10 million keys
of 20 bytes take some 550 MB. Bound it with a watermark.

Event time: --time-field F reads each record's event time (a number of
--time-unit since the epoch, an RFC 3339 string or a timestamp). The
watermark is the latest event time seen, at the end of each batch, minus
--watermark DUR (default 0). A record whose event time is at or before the
watermark is late: dropped and counted (numLateRows in --progress). When F
is one of the keys, or without -k (F is a field of the record), a key is
forgotten once the watermark passes its event time: a record of that key
can no longer come but late, so the state holds the keys of about the last
DUR of event time (Spark's dropDuplicates with a watermark). When F is not a
key, the watermark drops the late records but every key is kept for ever,
as Spark does too: use --within-watermark.

--within-watermark (dropDuplicatesWithinWatermark): a key is kept until the
watermark passes the event time of its first record plus DUR, whatever the
keys: a record of that key coming before then is a duplicate. Give a DUR at
least as long as duplicates can be apart in event time.

Batches: one output batch per input batch, with its id and time, holding the
records kept in the order they came; an empty batch stays empty. With
--time-field sdedup makes its own watermark, as swindow does, and passes it
on after each batch in which it rose; without, upstream watermarks pass on.

Checkpoint: with --checkpoint DIR the keys (and the watermark) are saved
after each batch in DIR/state/NAME (--name, default sdedup), before the
batch's end leaves, and restored on restart as of the last batch the sink
committed, as sreduce --running does; so with sbatch --checkpoint and ssink
--checkpoint a restarted pipeline drops exactly the records an uninterrupted
run drops. A state saved with other keys, another time field or without
(with) --within-watermark is refused; --watermark may change between runs. Downstream of sbatch --checkpoint DIR,
sdedup needs --checkpoint DIR too.

--progress: stateOperators holds numRowsTotal (keys kept), numRowsUpdated
(keys the batch added), numRowsRemoved (keys forgotten), memoryUsedBytes,
numRowsDroppedByWatermark, and customMetrics.numDroppedDuplicateRows.

Examples:
  sbatch --format json events.jsonl | sdedup | ssink
  sbatch --format json -i 10s | sdedup -k event_id | ssink --sqlite events.db --table events
  sbatch --format json -i 10s | sdedup -k event_id,ts --time-field ts --watermark 10m | ssink
  sbatch --format json -i 10s | sdedup -k event_id --time-field ts --watermark 1h --within-watermark | ssink
  sbatch --checkpoint ck --format json --time-field ts -i 1s in.jsonl \
    | sdedup -k id --time-field ts --watermark 5s --within-watermark --checkpoint ck \
    | ssink --checkpoint ck --sqlite out.db --table t`,
	Flags: append([]cli.Flag{
		&cli.StringSliceFlag{Name: "key", Aliases: []string{"k"}, Usage: "the key is the values of `FIELD[,FIELD...]`; none: the whole record", Category: "Keys"},
		&cli.StringFlag{Name: "time-field", Usage: "the event time of each record is in `FIELD`", Category: "Event time"},
		&cli.StringFlag{Name: "time-unit", Value: "s", Usage: "`UNIT` of numeric event times: s or ms", Category: "Event time"},
		&cli.DurationFlag{Name: "watermark", Usage: "how late a record may come: the watermark is the latest event time minus `DUR`; records at or before it are dropped, and the keys it passes forgotten", Category: "Event time"},
		&cli.BoolFlag{Name: "within-watermark", Usage: "keep a key until the watermark passes its first record's event time plus --watermark, whatever the keys (dropDuplicatesWithinWatermark)", Category: "Event time"},
		&cli.BoolFlag{Name: "strict", Usage: "a key field that no record of a batch has is an error (by default a note on stderr, once per field)", Category: "Keys"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip records without a readable event time, and count them in --progress", Category: "Event time"},
	}, stateflags.Flags("sdedup", "the keys seen", "Checkpoint")...),
	Action: run,
}

func run(e *stage.Env) error {
	o, err := parseOptions(e.Ctx)
	if err != nil {
		return err
	}
	// The keys seen live in an arena free of pointers: collecting at 50%
	// growth keeps a large state's resident size near 1.5 times the state
	// (as sreduce does). GOGC set by the user wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	o.Notes = e.Stderr
	d, err := dedup.New(o, e.Out, &e.Stats, e.Replaying)
	if err != nil {
		return err
	}
	e.KeepsWholeState()
	if err := e.UseCheckpoint(o.Checkpoint, "sdedup keeps the keys it has seen across batches, and a restart must restore them"); err != nil {
		return err
	}
	return e.Loop(d)
}

// parseOptions turns the command line into the engine's options.
func parseOptions(c *cli.Context) (dedup.Options, error) {
	if c.NArg() > 0 {
		return dedup.Options{}, stage.UsageError("unexpected argument %q: sdedup reads frames from its input and takes flags only (-k F,G for keys)", c.Args().First())
	}
	o := dedup.Options{Keys: stage.ParseList(c.StringSlice("key")...), TimeField: c.String("time-field"),
		Watermark: c.Duration("watermark"), WithinWatermark: c.Bool("within-watermark"), SkipBad: c.Bool("skip-bad"), Strict: c.Bool("strict")}
	var err error
	if o.Checkpoint, o.Name, err = stateflags.Parse(c); err != nil {
		return o, err
	}
	if c.IsSet("key") && len(o.Keys) == 0 {
		return o, stage.UsageError("-k needs a field name")
	}
	if !c.IsSet("time-field") {
		if o.WithinWatermark {
			return o, stage.Hint(stage.UsageError("--within-watermark needs an event time: add --time-field F and --watermark DUR"),
				"deduplicating within the watermark forgets a key once the watermark passes its first record's event time plus the delay")
		}
		for _, f := range []string{"time-unit", "watermark", "skip-bad"} {
			if c.IsSet(f) {
				return o, stage.UsageError("--%s applies to event time: add --time-field F", f)
			}
		}
	} else if o.TimeField == "" {
		return o, stage.UsageError("--time-field needs a field name")
	}
	if o.Watermark < 0 {
		return o, stage.UsageError("--watermark %v: want a duration of 0 or more", o.Watermark)
	}
	if o.Unit, err = codec.ParseTimeUnit(c.String("time-unit")); err != nil {
		return o, stage.UsageError("--time-unit: %v", err)
	}
	return o, nil
}

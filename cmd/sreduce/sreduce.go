package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/cmd/internal/aggflags"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

var command = &stage.Command{
	Name:      "sreduce",
	Usage:     "reduce records by key per batch, or keep running state across batches",
	ArgsUsage: " ",
	Input:     true,
	Output:    true,
	Description: `sreduce groups the records of each batch by the values of the key fields and
writes one record per group: the key fields, then one field per aggregate, in
the order the aggregation flags are given (DStream's reduceByKey, count,
countByValue; Structured Streaming's groupBy().agg()).

Keys: -k F,G groups by the values of F and G together. The empty string and
null are keys like any other; a missing field is null. Values keep their
types: 1 and 1.0 and "1" are three keys. Without -k the whole batch is one
group. With -k and no aggregate, the output is the distinct keys.

` + aggflags.Help + `

Batches: by default one output batch per input batch, with the same id and
time; an empty batch gives an empty batch, except that a keyless --count
gives a record with count 0 (as DStream.count).

Running state (updateStateByKey): with --running each output batch carries
the aggregates over all the batches so far. --mode complete (the default)
writes every group at every batch, --mode update only the groups the batch
changed. --ttl DUR forgets a group that no record updated for DUR of batch
time (mapWithState's timeout); --progress reports the groups in the state,
updated, removed and the memory held (stateOperators).

Checkpoint: with --running and --checkpoint DIR the state after each batch is
saved atomically in DIR/state/NAME (--name, default sreduce; give two
sreduce stages of one pipeline different names), keeping the last two
snapshots and every one since the last batch a sink committed (DIR/commits),
so a state the restart needs is never purged. Each batch's output leaves
only after its state is saved. On restart the state is restored from the
snapshot of the batch before the first batch that arrives (or of the last
batch before it that came to this stage), so a source replaying its
uncommitted batches with the same ids gets exactly the output of an
uninterrupted run. A first batch of id 0 starts from an empty state. When
the state a restart needs is gone or damaged, sreduce stops with an error
rather than write a wrong result. A checkpoint written with other keys or
aggregates is refused. Downstream of sbatch --checkpoint DIR, sreduce
--running needs --checkpoint DIR too. Without --running, --checkpoint is
accepted and unused (the state lives one batch).

Examples:
  sbatch < words.txt | smap --flat 'split(value, " ")' | sreduce -k value --count | ssink
  sbatch --format json -i 10s | sreduce -k user,page --count --sum bytes --avg ms=latency | ssink
  sbatch --format json | sreduce -k url --count --top 10 --by count | ssink
  sbatch -i 1s | sreduce -k value --count --running --mode update --ttl 1h --checkpoint ckpt | ssink
  sbatch | sreduce --count | ssink    # records per batch, 0 for an empty batch`,
	Flags: append(aggflags.Flags(),
		&cli.BoolFlag{Name: "running", Usage: "keep the aggregates across batches (updateStateByKey)", Category: "Running state"},
		&cli.StringFlag{Name: "mode", Value: "complete", Usage: "with --running, write every group at every batch (complete) or the groups the batch changed (update): `MODE`", Category: "Running state"},
		&cli.DurationFlag{Name: "ttl", Usage: "with --running, forget a group not updated for `DUR` of batch time", Category: "Running state"},
		&cli.StringFlag{Name: "checkpoint", Usage: "save the running state after each batch in `DIR`/state/NAME and restore it on restart", Category: "Running state"},
		&cli.StringFlag{Name: "name", Value: "sreduce", Usage: "the `NAME` of this stage's state in the checkpoint directory", Category: "Running state"},
	),
	Action: run,
}

type mode uint8

const (
	perBatch mode = iota
	complete
	update
)

// options is the parsed command line.
type options struct {
	*aggflags.Options
	mode       mode
	ttl        time.Duration
	checkpoint string
	name       string
}

func run(e *stage.Env) error {
	o, err := parseOptions(e.Ctx, e.Args)
	if err != nil {
		return err
	}
	// The state is almost free of pointers (keys in an arena, aggregates in
	// slices of numbers), so a garbage collection costs little however large
	// it is; collecting at 50% growth instead of 100% keeps the resident
	// size of a large state near 1.5 times the state, not twice. GOGC set by
	// the user wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	r, err := newReducer(e.Out, o)
	if err != nil {
		return err
	}
	r.stats = &e.Stats
	r.replaying = e.Replaying
	need := ""
	if o.mode != perBatch {
		need = "sreduce --running keeps its state across batches, and a restart must restore it"
	}
	if err := e.UseCheckpoint(o.checkpoint, need); err != nil {
		return err
	}
	return e.Loop(r)
}

func parseOptions(c *cli.Context, args []string) (*options, error) {
	if c.NArg() > 0 {
		return nil, stage.UsageError("unexpected argument %q: sreduce reads frames from its input and takes flags only", c.Args().First())
	}
	a, err := aggflags.Parse(c, args)
	if err != nil {
		return nil, err
	}
	o := &options{Options: a, checkpoint: c.String("checkpoint"), name: c.String("name")}
	if len(o.Cfg.Keys) == 0 && len(o.Cfg.Aggs) == 0 {
		return nil, stage.UsageError("nothing to compute: give a key (-k) or an aggregate (--count, --sum F, ...)")
	}
	if c.Bool("running") {
		switch m := c.String("mode"); m {
		case "complete":
			o.mode = complete
		case "update":
			o.mode = update
		default:
			return nil, stage.UsageError("--mode %q: want complete or update", m)
		}
		if o.ttl = c.Duration("ttl"); c.IsSet("ttl") && o.ttl <= 0 {
			return nil, stage.UsageError("--ttl %v: want a positive duration", o.ttl)
		}
	} else {
		for _, f := range []string{"mode", "ttl"} {
			if c.IsSet(f) {
				return nil, stage.UsageError("--%s applies to running state: add --running", f)
			}
		}
	}
	if err := checkpoint.ValidName(o.name); err != nil {
		return nil, stage.UsageError("--name: %v", err)
	}
	return o, nil
}

// reducer is the stage's Handler.
type reducer struct {
	out   *framing.Writer
	o     *options
	t     *agg.Table
	fp    string
	stats *stage.Stats

	state     *checkpoint.State // --checkpoint with --running, or nil
	replaying func() bool       // the pipeline's source replays from the checkpoint
	nrec      int               // records of the batch in hand so far

	gs  []int32
	buf []byte
}

func newReducer(out *framing.Writer, o *options) (*reducer, error) {
	t, err := agg.New(o.Cfg)
	if err != nil {
		return nil, stage.Usage(err)
	}
	r := &reducer{out: out, o: o, t: t, fp: o.Cfg.Fingerprint(), stats: new(stage.Stats)}
	if o.checkpoint != "" && o.mode != perBatch {
		if r.state, err = checkpoint.OpenState(o.checkpoint, o.name, r.fp, "each set of keys and aggregates"); err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
	}
	return r, nil
}

func (r *reducer) Begin(b stage.Batch) error {
	if r.state != nil {
		if err := r.state.Begin(b.ID, r.replaying != nil && r.replaying(), r.t.LoadSnapshot); err != nil {
			return err
		}
	}
	r.nrec = 0
	r.t.SetTime(b.Time)
	r.t.ClearTouched()
	return nil
}

func (r *reducer) Block(b stage.Batch, recs framing.Records) error {
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		r.nrec++
		if err := r.t.Add(rec); err != nil {
			if r.o.SkipBad {
				r.stats.Skipped++
				continue
			}
			return aggflags.BadRecord(fmt.Sprintf("%v, record %d", b, r.nrec), rec, err)
		}
	}
	return nil
}

func (r *reducer) End(b stage.Batch) error {
	t := r.t
	if r.o.mode == perBatch {
		gs := t.SortedTouched(r.gs[:0])
		if len(gs) == 0 && len(r.o.Cfg.Keys) == 0 && r.o.HasCount() {
			gs = append(gs, t.Group(nil)) // DStream.count of an empty batch is 0
		}
		err := r.write(b, gs)
		// Keep the groups for the next batch (their keys are not allocated
		// again) unless they have piled up far beyond what a batch uses.
		t.Zero()
		if t.Len() > 2*len(gs)+4096 {
			t.Reset()
		}
		r.gs = gs
		return err
	}
	removed := 0
	if r.o.ttl > 0 {
		removed = t.Expire(b.Time - r.o.ttl.Milliseconds())
	}
	updated := len(t.Touched())
	if r.state != nil {
		if err := r.state.Save(b.ID, b.Time, t.WriteSnapshot); err != nil {
			return err
		}
	}
	var gs []int32
	switch {
	case r.o.mode == update:
		gs = t.SortedTouched(r.gs[:0])
		r.gs = gs
	case r.o.Top > 0:
		gs = append(r.gs[:0], t.Sorted()...) // Top reorders it
		r.gs = gs
	default:
		gs = t.Sorted()
	}
	r.stats.State = &stage.StateStats{
		NumRowsTotal:    int64(t.Len()),
		NumRowsUpdated:  int64(updated),
		NumRowsRemoved:  int64(removed),
		MemoryUsedBytes: t.MemoryUsed(),
	}
	return r.write(b, gs)
}

// write writes batch b holding the groups gs, sorted by key.
func (r *reducer) write(b stage.Batch, gs []int32) error {
	if r.o.Top > 0 {
		gs = r.t.Top(gs, r.o.Top, r.o.By)
	}
	if err := r.out.BeginBatch(b.ID, b.Time); err != nil {
		return err
	}
	for _, g := range gs {
		r.buf = r.t.AppendRecord(r.buf[:0], g)
		if err := r.out.WriteRecord(r.buf); err != nil {
			return err
		}
	}
	return r.out.EndBatch()
}

func (r *reducer) Watermark(t int64) error { return r.out.Watermark(t) }

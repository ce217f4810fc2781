package main

import (
	"os"
	"runtime/debug"

	"github.com/dstream/dstream/cmd/internal/aggflags"
	"github.com/dstream/dstream/cmd/internal/stateflags"
	"github.com/dstream/dstream/reduce"
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

Order: each batch's groups are written by key (--order key, the default).
--order none writes them unsorted, as Spark's reduceByKey does, which
saves the sort of a large batch (a third of the time with a million
distinct keys): per batch and with --mode update in the order in which the
batch's records first came to each group, with --mode complete in the
state's own order (of creation, mostly). --top N sorts by its aggregate
either way.

Running state (updateStateByKey): with --running each output batch carries
the aggregates over all the batches so far. --mode complete (the default)
writes every group at every batch, --mode update only the groups the batch
changed. --ttl DUR forgets a group that no record updated for DUR of batch
time (mapWithState's timeout): the first batch whose time is DUR or more
after the group's last update removes it. --progress reports the groups in
the state, updated, removed and the memory held (stateOperators).

Expired groups (--emit-expired, with --ttl): a group the TTL removes is
written once more, in the batch that removes it and in either mode, after
the batch's other groups, with the aggregates it had and the field expired
true (mapWithState's timed-out state); every other record then carries
expired false, so that a CSV or SQL sink sees one set of fields, and an
upserting sink (ssink --mode update --key K) marks the key expired.

Initial state (--initial FILE, with --running; updateStateByKey's and
mapWithState's initial RDD): FILE holds JSON lines, each one group as
sreduce writes it: the key fields and the aggregates' output fields, e.g.
{"value": "a", "count": 1}. Other fields are ignored, so sreduce's own
output (ssink --format json) reads back. Each line must give every key field
and the output of every aggregate: --count an integer 0 or more, --sum a
number or null, --min, --max, --first, --last the value (null: none yet for
min and max; null as the first or last value for first and last),
--collect the list. --avg is not read but rebuilt from --sum of its field
over --count, which it needs beside it (the count then stands for the
number of values averaged, which it is while the field is never null).
--distinct cannot start from an initial state (the output is how many
values, the state is which): an error at start-up. The file is read at
start-up; a line that cannot be read or a key given twice stops sreduce
naming the line. The initial groups count as updated by the first batch, at
its time: --mode update writes them then, and --ttl counts from it. With
--checkpoint the initial state applies only when there is no state to
restore: a restart goes on from the saved state, whatever FILE holds then.

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

Scaled out (behind sbatch --group G --scale-out, docs/scale-out.md): the
running state is kept per source partition in the Kafka topic
dstream-G-NAME-changelog, committed with the group's offsets (or, into
ssink --kafka, in the sink's transaction with the output), and it moves
with its partition to whichever copy gets it. The records must carry
their partition: sbatch --meta-field _.

Examples:
  sbatch < words.txt | smap --flat 'split(value, " ")' | sreduce -k value --count | ssink
  sbatch --format json -i 10s | sreduce -k user,page --count --sum bytes --avg ms=latency | ssink
  sbatch --format json | sreduce -k url --count --top 10 --by count | ssink
  sbatch -i 1s | sreduce -k value --count --running --mode update --ttl 1h --checkpoint ckpt | ssink
  sbatch -i 1s | sreduce -k value --count --running --initial counts.jsonl --ttl 1h --emit-expired | ssink
  sbatch | sreduce --count | ssink    # records per batch, 0 for an empty batch`,
	Flags: append(append(aggflags.Flags(),
		&cli.StringFlag{Name: "order", Value: "key", Usage: "write each batch's groups by key (key) or unsorted (none: the fast path for a batch of many distinct keys): `ORDER`"},
		&cli.BoolFlag{Name: "running", Usage: "keep the aggregates across batches (updateStateByKey)", Category: "Running state"},
		&cli.StringFlag{Name: "mode", Value: "complete", Usage: "with --running, write every group at every batch (complete) or the groups the batch changed (update): `MODE`", Category: "Running state"},
		&cli.DurationFlag{Name: "ttl", Usage: "with --running, forget a group not updated for `DUR` of batch time", Category: "Running state"},
		&cli.BoolFlag{Name: "emit-expired", Usage: "with --ttl, write each group it forgets once more, with expired true (and expired false on the others)", Category: "Running state"},
		&cli.StringFlag{Name: "initial", Usage: "with --running, start from the groups in `FILE` (JSON lines of key fields and aggregates), unless a checkpoint has a state", Category: "Running state"},
	), stateflags.Flags("sreduce", "the running state", "Running state")...),
	Action: run,
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
	o.Notes = e.Stderr
	r, err := reduce.New(o, e.Out, &e.Stats, e.Replaying)
	if err != nil {
		return err
	}
	need := ""
	if o.Mode != reduce.PerBatch {
		need = "sreduce --running keeps its state across batches, and a restart must restore it"
	}
	if err := e.UseCheckpoint(o.Checkpoint, need); err != nil {
		return err
	}
	defer r.Close()
	return e.Loop(r)
}

// parseOptions turns the command line into the engine's options.
func parseOptions(c *cli.Context, args []string) (reduce.Options, error) {
	if c.NArg() > 0 {
		return reduce.Options{}, stage.UsageError("unexpected argument %q: sreduce reads frames from its input and takes flags only", c.Args().First())
	}
	a, err := aggflags.Parse(c, args)
	if err != nil {
		return reduce.Options{}, err
	}
	o := reduce.Options{Agg: a.Cfg, Top: a.Top, By: a.By, SkipBad: a.SkipBad, Strict: a.Strict,
		EmitExpired: c.Bool("emit-expired"), Initial: c.String("initial")}
	switch ord := c.String("order"); ord {
	case "key":
	case "none":
		o.Unordered = true
	default:
		return reduce.Options{}, stage.UsageError("--order %q: want key or none", ord)
	}
	if len(o.Agg.Keys) == 0 && len(o.Agg.Aggs) == 0 {
		return reduce.Options{}, stage.UsageError("nothing to compute: give a key (-k) or an aggregate (--count, --sum F, ...)")
	}
	if c.Bool("running") {
		switch m := c.String("mode"); m {
		case "complete":
			o.Mode = reduce.Complete
		case "update":
			o.Mode = reduce.Update
		default:
			return reduce.Options{}, stage.UsageError("--mode %q: want complete or update", m)
		}
		if o.TTL = c.Duration("ttl"); c.IsSet("ttl") && o.TTL <= 0 {
			return reduce.Options{}, stage.UsageError("--ttl %v: want a positive duration", o.TTL)
		}
		if o.EmitExpired && !c.IsSet("ttl") {
			return reduce.Options{}, stage.UsageError("--emit-expired writes the groups --ttl forgets: add --ttl DUR")
		}
		if c.IsSet("initial") && o.Initial == "" {
			return reduce.Options{}, stage.UsageError("--initial needs a file name")
		}
	} else {
		for _, f := range []string{"mode", "ttl", "emit-expired", "initial"} {
			if c.IsSet(f) {
				return reduce.Options{}, stage.UsageError("--%s applies to running state: add --running", f)
			}
		}
	}
	if o.Checkpoint, o.Name, err = stateflags.Parse(c); err != nil {
		return reduce.Options{}, err
	}
	return o, nil
}

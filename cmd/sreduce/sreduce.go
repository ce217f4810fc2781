package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
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

Aggregates, each with the name of its output field (NAME=FIELD renames it):
  --count            records in the group: count (--count-as NAME)
  --sum F            sum of F: sum_F. An integer while every value is one, a
                     float once a float is summed; an integer overflow is an
                     error. Nulls and missing fields are left out; no value
                     at all gives null.
  --avg F            mean of F, a float: avg_F (nulls left out)
  --min F, --max F   smallest, largest value of F: min_F, max_F (nulls left
                     out; mixed types compare in the order below)
  --first F, --last F  F of the group's first, last record: first_F, last_F
                     (null included)
  --distinct F       number of distinct non-null values of F: distinct_F
  --collect F        the non-null values of F as a list: collect_F (groupByKey)
A value that is not a number in --sum or --avg, or an overflow, stops
sreduce with an error naming the record; --skip-bad skips the record instead
(nothing of it is counted) and reports it in --progress (numSkippedRows).

Output order: by key, comparing the key fields in turn: null first, then
booleans, numbers (numerically), strings (bytewise), binary, timestamps,
arrays, maps. With --top N --by NAME only the N groups with the largest
aggregate NAME are written, largest first, ties by key (--by may be left out
when there is a single aggregate).

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
so a state the restart needs is never purged. On restart the state is restored from the snapshot of the batch
before the first batch that arrives, so a source replaying its uncommitted
batches with the same ids gets exactly the output of an uninterrupted run.
When that snapshot is gone, sreduce restores the oldest snapshot that covers
the replayed batches, and a batch whose id it already includes is not
applied again: it gives the state as it is (all groups in complete mode,
none in update mode). A first batch of id 0 starts from an empty state.
A checkpoint written with other keys or aggregates is refused. Without
--running, --checkpoint is accepted and unused (the state lives one batch).

Examples:
  sbatch < words.txt | smap --flat 'split(value, " ")' | sreduce -k value --count | ssink
  sbatch --format json -i 10s | sreduce -k user,page --count --sum bytes --avg ms=latency | ssink
  sbatch --format json | sreduce -k url --count --top 10 --by count | ssink
  sbatch -i 1s | sreduce -k value --count --running --mode update --ttl 1h --checkpoint ckpt | ssink
  sbatch | sreduce --count | ssink    # records per batch, 0 for an empty batch`,
	Flags: []cli.Flag{
		&cli.StringSliceFlag{Name: "key", Aliases: []string{"k"}, Usage: "group by `FIELD[,FIELD...]`; none: the whole batch is one group", Category: "Grouping"},
		&cli.BoolFlag{Name: "count", Usage: "count the records of each group (field count)", Category: "Aggregates"},
		&cli.StringFlag{Name: "count-as", Usage: "count the records of each group into field `NAME`", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "sum", Usage: "sum of `[NAME=]FIELD` (field sum_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "min", Usage: "smallest value of `[NAME=]FIELD` (field min_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "max", Usage: "largest value of `[NAME=]FIELD` (field max_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "avg", Usage: "mean of `[NAME=]FIELD` (field avg_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "first", Usage: "value of `[NAME=]FIELD` in the group's first record (field first_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "last", Usage: "value of `[NAME=]FIELD` in the group's last record (field last_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "distinct", Usage: "number of distinct values of `[NAME=]FIELD` (field distinct_FIELD)", Category: "Aggregates"},
		&cli.StringSliceFlag{Name: "collect", Usage: "list of the values of `[NAME=]FIELD` (field collect_FIELD)", Category: "Aggregates"},
		&cli.IntFlag{Name: "top", Usage: "write only the `N` groups with the largest --by aggregate", Category: "Aggregates"},
		&cli.StringFlag{Name: "by", Usage: "the output field `NAME` of the aggregate that --top ranks by", Category: "Aggregates"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip records whose values cannot be aggregated, and count them in --progress", Category: "Aggregates"},
		&cli.BoolFlag{Name: "running", Usage: "keep the aggregates across batches (updateStateByKey)", Category: "Running state"},
		&cli.StringFlag{Name: "mode", Value: "complete", Usage: "with --running, write every group at every batch (complete) or the groups the batch changed (update): `MODE`", Category: "Running state"},
		&cli.DurationFlag{Name: "ttl", Usage: "with --running, forget a group not updated for `DUR` of batch time", Category: "Running state"},
		&cli.StringFlag{Name: "checkpoint", Usage: "save the running state after each batch in `DIR`/state/NAME and restore it on restart", Category: "Running state"},
		&cli.StringFlag{Name: "name", Value: "sreduce", Usage: "the `NAME` of this stage's state in the checkpoint directory", Category: "Running state"},
	},
	Action: run,
}

// aggFlags are the flags that add an aggregate, by the function they add.
var aggFlags = map[string]agg.Kind{
	"count": agg.Count, "count-as": agg.Count,
	"sum": agg.Sum, "min": agg.Min, "max": agg.Max, "avg": agg.Avg,
	"first": agg.First, "last": agg.Last, "distinct": agg.Distinct, "collect": agg.Collect,
}

type mode uint8

const (
	perBatch mode = iota
	complete
	update
)

// options is the parsed command line.
type options struct {
	cfg        agg.Config
	mode       mode
	ttl        time.Duration
	top        int
	by         int // index in cfg.Aggs of --by, -1 without --top
	skipBad    bool
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
	return e.Loop(r)
}

func parseOptions(c *cli.Context, args []string) (*options, error) {
	if c.NArg() > 0 {
		return nil, stage.UsageError("unexpected argument %q: sreduce reads frames from its input and takes flags only", c.Args().First())
	}
	o := &options{by: -1, skipBad: c.Bool("skip-bad"), checkpoint: c.String("checkpoint"), name: c.String("name")}
	o.cfg.Keys = splitList(c.StringSlice("key"))
	aggs, err := scanAggs(args, c)
	if err != nil {
		return nil, err
	}
	o.cfg.Aggs = aggs
	if len(o.cfg.Keys) == 0 && len(aggs) == 0 {
		return nil, stage.UsageError("nothing to compute: give a key (-k) or an aggregate (--count, --sum F, ...)")
	}
	if err := o.cfg.Validate(); err != nil {
		return nil, stage.Usage(err)
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
	if err := parseTop(c, o); err != nil {
		return nil, err
	}
	return o, nil
}

func parseTop(c *cli.Context, o *options) error {
	if !c.IsSet("top") {
		if c.IsSet("by") {
			return stage.UsageError("--by ranks groups for --top: add --top N")
		}
		return nil
	}
	if o.top = c.Int("top"); o.top < 1 {
		return stage.UsageError("--top %d: want at least 1", o.top)
	}
	names := make([]string, len(o.cfg.Aggs))
	for i, a := range o.cfg.Aggs {
		names[i] = a.Name
	}
	by := c.String("by")
	switch {
	case by != "":
		o.by = slices.Index(names, by)
		if o.by < 0 {
			if len(names) == 0 {
				return stage.UsageError("--by %s: there is no aggregate to rank by", by)
			}
			return stage.UsageError("--by %s: no aggregate of that name (the aggregates are %s)", by, strings.Join(names, ", "))
		}
	case len(names) == 1:
		o.by = 0
	case len(names) == 0:
		return stage.UsageError("--top needs an aggregate to rank by, e.g. --count")
	default:
		return stage.UsageError("--top with several aggregates: say which one ranks with --by NAME (one of %s)", strings.Join(names, ", "))
	}
	return nil
}

// splitList splits flag values at commas, as urfave/cli does for slice
// flags, keeping empty items so that they can be refused.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}

// scanAggs returns the aggregates in command-line order. urfave/cli keeps
// the order of the values of one flag but not the order between different
// flags, so the raw arguments are scanned for it, with the same rules as
// the flag package (which flags take a value comes from cli); cli has
// already parsed and checked them, and its values are compared with the
// scan's to be sure both agree.
func scanAggs(args []string, c *cli.Context) ([]agg.Spec, error) {
	takesValue := map[string]bool{}
	for _, f := range c.App.Flags {
		tv := true
		if d, ok := f.(cli.DocGenerationFlag); ok {
			tv = d.TakesValue()
		}
		for _, n := range f.Names() {
			takesValue[n] = tv
		}
	}
	var specs []agg.Spec
	scanned := map[string][]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			break // the flag package stops at the first argument that is not a flag
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, val, hasVal := strings.Cut(a, "=")
		if takesValue[name] && !hasVal && i+1 < len(args) {
			i++
			val, hasVal = args[i], true
		}
		k, isAgg := aggFlags[name]
		switch {
		case !isAgg:
		case name == "count":
			if on, err := strconv.ParseBool(val); hasVal && (err != nil || !on) {
				continue
			}
			specs = append(specs, agg.Spec{Kind: agg.Count, Name: agg.DefaultName(agg.Count, "")})
		case name == "count-as":
			if val == "" {
				return nil, stage.UsageError("--count-as: empty name")
			}
			specs = append(specs, agg.Spec{Kind: agg.Count, Name: val})
		default:
			for _, v := range splitList([]string{val}) {
				s, err := agg.ParseSpec(k, v)
				if err != nil {
					return nil, stage.Usage(err)
				}
				specs = append(specs, s)
				scanned[name] = append(scanned[name], v)
			}
		}
	}
	for name, k := range aggFlags {
		if k == agg.Count {
			continue
		}
		if !slices.Equal(scanned[name], c.StringSlice(name)) {
			return nil, fmt.Errorf("cannot tell the order of the aggregation flags (--%s: %q from the command line, %q from cli)",
				name, scanned[name], c.StringSlice(name))
		}
	}
	return specs, nil
}

// reducer is the stage's Handler.
type reducer struct {
	out   *framing.Writer
	o     *options
	t     *agg.Table
	fp    string
	stats *stage.Stats

	store    *checkpoint.Store
	started  bool
	skipping bool   // restored from a snapshot past the first batch that arrived
	skipTo   uint64 // with skipping: batches up to this id are in the state
	skip     bool   // the batch in hand is already in the state
	nrec     int    // records of the batch in hand so far

	gs  []int32
	buf []byte
}

func newReducer(out *framing.Writer, o *options) (*reducer, error) {
	t, err := agg.New(o.cfg)
	if err != nil {
		return nil, stage.Usage(err)
	}
	r := &reducer{out: out, o: o, t: t, fp: o.cfg.Fingerprint(), stats: new(stage.Stats)}
	if o.checkpoint != "" && o.mode != perBatch {
		if r.store, err = checkpoint.OpenStore(o.checkpoint, o.name); err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
	}
	return r, nil
}

func (r *reducer) Begin(b stage.Batch) error {
	if !r.started {
		r.started = true
		if r.store != nil {
			if err := r.restore(b.ID); err != nil {
				return err
			}
		}
	}
	r.skip = r.skipping && b.ID <= r.skipTo
	r.nrec = 0
	r.t.SetTime(b.Time)
	r.t.ClearTouched()
	return nil
}

// restore loads the state as of the batch before first, the first batch to
// arrive; see the command's description for when that snapshot is gone.
func (r *reducer) restore(first uint64) error {
	ids, err := r.store.List()
	if err != nil || len(ids) == 0 {
		return err
	}
	// Refuse another configuration's checkpoint even when none of it is
	// needed, rather than overwrite it.
	if err := r.store.Check(ids[len(ids)-1], r.fp); err != nil {
		return r.refuse(err)
	}
	if first == 0 {
		return nil // nothing comes before batch 0: the state starts empty
	}
	var id uint64
	switch i, found := slices.BinarySearch(ids, first-1); {
	case found:
		id = first - 1
	case i < len(ids):
		// No snapshot of first-1: the oldest after it includes first (and
		// maybe more), so batches up to it are not applied again.
		id = ids[i]
		r.skipping, r.skipTo = true, id
	default: // all older than first-1: the batches between never came here
		id = ids[len(ids)-1]
	}
	snap, err := r.store.Load(id, r.fp)
	if err != nil {
		return r.refuse(err)
	}
	if err := r.t.LoadSnapshot(snap.Data); err != nil {
		return r.refuse(fmt.Errorf("%s: %w", r.store.Path(id), err))
	}
	return nil
}

func (r *reducer) refuse(err error) error {
	var m *checkpoint.MismatchError
	switch {
	case errors.As(err, &m):
		return stage.Hint(err, "each set of keys and aggregates keeps its own state: give this stage another --name or --checkpoint directory, or remove %s to start over", r.store.Dir())
	case errors.Is(err, checkpoint.ErrCorrupt), errors.Is(err, agg.ErrCorrupt):
		return stage.Hint(err, "the snapshot is damaged: remove it to restore the one before, or remove %s to start over", r.store.Dir())
	}
	return err
}

func (r *reducer) Block(b stage.Batch, recs framing.Records) error {
	if r.skip {
		return nil
	}
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		r.nrec++
		if err := r.t.Add(rec); err != nil {
			if r.o.skipBad {
				r.stats.Skipped++
				continue
			}
			return r.badRecord(b, rec, err)
		}
	}
	return nil
}

// maxShown bounds the part of a bad record that an error shows.
const maxShown = 200

func (r *reducer) badRecord(b stage.Batch, rec []byte, err error) error {
	where := fmt.Sprintf("%v, record %d", b, r.nrec)
	if js, _, jerr := record.AppendJSON(nil, rec); jerr == nil {
		if len(js) > maxShown {
			js = append(js[:maxShown], "..."...)
		}
		where += " " + string(js)
	}
	return stage.Hint(fmt.Errorf("%s: %w", where, err), "--skip-bad skips such records and counts them in --progress (numSkippedRows)")
}

func (r *reducer) End(b stage.Batch) error {
	t := r.t
	if r.o.mode == perBatch {
		gs := t.SortedTouched(r.gs[:0])
		if len(gs) == 0 && len(r.o.cfg.Keys) == 0 && r.hasCount() {
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
	if !r.skip && r.o.ttl > 0 {
		removed = t.Expire(b.Time - r.o.ttl.Milliseconds())
	}
	updated := len(t.Touched())
	if r.store != nil && !r.skip {
		h := checkpoint.Header{Batch: b.ID, Time: b.Time, Fingerprint: r.fp}
		if err := r.store.Save(h, t.WriteSnapshot); err != nil {
			return err
		}
	}
	var gs []int32
	switch {
	case r.o.mode == update:
		gs = t.SortedTouched(r.gs[:0])
		r.gs = gs
	case r.o.top > 0:
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

func (r *reducer) hasCount() bool {
	for _, a := range r.o.cfg.Aggs {
		if a.Kind == agg.Count {
			return true
		}
	}
	return false
}

// write writes batch b holding the groups gs, sorted by key.
func (r *reducer) write(b stage.Batch, gs []int32) error {
	if r.o.top > 0 {
		gs = r.t.Top(gs, r.o.top, r.o.by)
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

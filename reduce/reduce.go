// Package reduce is the engine of sreduce: it groups the records of each
// batch by key and writes one record per group, the key fields and then the
// aggregates (DStream's reduceByKey, count and countByValue), per batch or
// over a running state kept across batches (updateStateByKey), which it
// saves in the checkpoint and restores on a restart.
//
// The grouping and the aggregates themselves are agg's; this package drives
// an agg.Table through the batches of a stage.
package reduce

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// Mode says what each output batch holds.
type Mode uint8

const (
	// PerBatch: the groups of the batch alone (reduceByKey).
	PerBatch Mode = iota
	// Complete: every group of the running state, at every batch (--running,
	// --mode complete).
	Complete
	// Update: the groups of the running state that the batch changed
	// (--mode update).
	Update
)

// Options is what the engine computes.
type Options struct {
	// Agg is the key fields and the aggregates, in output order; it must be
	// valid (agg.Config.Validate).
	Agg agg.Config
	// Top, if above 0, writes only the Top groups with the largest
	// aggregate Agg.Aggs[By], largest first (--top N --by NAME).
	Top int
	By  int
	// SkipBad skips a record that cannot be aggregated, counting it in
	// stage.Stats.Skipped, instead of failing (--skip-bad).
	SkipBad bool
	// Strict makes a key or aggregated field that no record of a batch
	// has an error; else it is a note on Notes, once per field (a typo,
	// most often: see agg.FieldCheck).
	Strict bool
	Notes  io.Writer

	// Mode is per batch, or a running state and what it writes.
	Mode Mode
	// Unordered writes the groups of a batch in no particular order
	// instead of by key (--order none), as Spark's reduceByKey does, which
	// saves the sort: per batch and in update mode the order in which the
	// batch's records first came to each group (per half, one half after
	// the other, once the table has split: see splits), in complete mode
	// the state's own order.
	Unordered bool
	// TTL, with a running state, forgets a group that no record updated
	// for TTL of batch time (--ttl); 0 keeps every group.
	TTL time.Duration
	// EmitExpired, with TTL, writes each group the TTL removes once more,
	// in the batch that removes it, with the field expired true; the
	// other groups then carry expired false (--emit-expired).
	EmitExpired bool
	// Initial, with a running state, is a file of JSON lines, each a
	// group's output record (the key fields and the aggregates' output
	// fields), that the state starts from when there is no state to
	// restore (--initial); "" starts empty. See agg.Table.Seed.
	Initial string
	// Checkpoint, with a running state, is the checkpoint directory where
	// the state is saved after each batch and restored from on a restart
	// (--checkpoint); "" keeps the state in memory only. Without a running
	// state it is not used.
	Checkpoint string
	// Name is the state's name in the checkpoint directory, state/Name
	// (--name); it must be a checkpoint.ValidName.
	Name string
	// Serial keeps every group in one table filled by one goroutine, where
	// the engine would split them between two (see splits): for
	// tests and benchmarks that compare the two.
	Serial bool
}

// Engine is sreduce's stage.Handler.
type Engine struct {
	out   *framing.Writer
	o     Options
	t     *agg.Table
	split bool        // t may split (see splits)
	t2    *agg.Table  // once t has split, the other part of the groups
	part  *partWorker // filling t2 in the batch in hand
	check *agg.FieldCheck
	fp    string
	stats *stage.Stats

	state *checkpoint.State // a checkpointed running state, or nil
	// Behind a scaled-out source, the state per partition (scale.go).
	scale        *scale
	scaleChecked bool
	replaying    func() bool // the pipeline's source replays from the checkpoint
	nrec         int         // records of the batch in hand so far
	seeded       bool        // t holds the initial state, not yet at a batch

	expired []byte // --emit-expired: the batch's expired groups, as in a Records frame
	nexp    int
	gs      []int32
	buf     []byte
}

// FieldExpired is the field --emit-expired adds to every record: true for
// a group the TTL removed in this batch, false for the others.
const FieldExpired = "expired"

// New returns the engine that writes its batches to out. It opens the
// checkpoint's state (see Options.Checkpoint), refusing one written with
// other keys or aggregates. stats gets the skipped records and the running
// state's figures of each batch (nil: none kept); replaying, called at each
// batch, tells whether the pipeline's source replays from its checkpoint
// (stage.Env.Replaying; nil: never), for the restore.
func New(o Options, out *framing.Writer, stats *stage.Stats, replaying func() bool) (*Engine, error) {
	t, err := agg.New(o.Agg)
	if err != nil {
		return nil, stage.Usage(err)
	}
	if stats == nil {
		stats = new(stage.Stats)
	}
	r := &Engine{check: agg.NewFieldCheck(o.Agg), out: out, o: o, t: t, fp: o.Agg.Fingerprint(), stats: stats, replaying: replaying}
	r.split = splits(o)
	if o.EmitExpired {
		if o.TTL <= 0 {
			return nil, stage.UsageError("--emit-expired writes the groups --ttl forgets: add --ttl DUR")
		}
		if clash(o.Agg, FieldExpired) {
			return nil, stage.Hint(stage.UsageError("--emit-expired adds the field %q, which a key field or an aggregate already names", FieldExpired),
				"rename the aggregate (--sum NAME=FIELD, --count-as NAME), or the key field upstream (smap --rename)")
		}
	}
	if o.Initial != "" {
		if o.Mode == PerBatch {
			return nil, stage.UsageError("--initial is the state --running starts from: add --running")
		}
		if err := o.Agg.CheckSeed(); err != nil {
			return nil, stage.Usage(fmt.Errorf("--initial: %w", err))
		}
		if err := r.seed(o.Initial); err != nil {
			return nil, err
		}
	}
	if o.Checkpoint != "" && o.Mode != PerBatch {
		if r.state, err = checkpoint.OpenState(o.Checkpoint, o.Name, r.fp, "each set of keys and aggregates"); err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
	}
	return r, nil
}

// splitMin is the number of groups at which the table splits (see
// splits): its key index is then 1 MB, as large as a core's cache.
const splitMin = 1 << 16

// splits reports whether the table splits in two once it holds splitMin
// groups (agg.Table.Split), each part then filled from the same blocks
// by a goroutine of its own (the second from copies: see partWorker): over many distinct keys a batch's time goes
// into finding each record's group in a table larger than the caches,
// and the second core takes half of it, then sorts its half (sreduce over
// 5 M distinct keys: see docs/benchmarks.md). Few keys (a word count)
// stay in one table, where a lookup is cheap and the second core better
// left to the other stages. It is the per-batch reduce with counts
// alone, whose output is the groups in key order or none; a running
// state, --top and other aggregates keep one table.
func splits(o Options) bool {
	if o.Serial || o.Mode != PerBatch || o.Top > 0 || len(o.Agg.Keys) == 0 || runtime.GOMAXPROCS(0) < 2 {
		return false
	}
	for _, a := range o.Agg.Aggs {
		if a.Kind != agg.Count {
			return false
		}
	}
	return true
}

// clash reports whether a key field or an aggregate of c is named name.
func clash(c agg.Config, name string) bool {
	for _, k := range c.Keys {
		if k == name {
			return true
		}
	}
	for _, a := range c.Aggs {
		if a.Name == name {
			return true
		}
	}
	return false
}

// seed reads the initial state from the JSON-lines file path into the
// table, whose groups get their time at the first batch.
func (r *Engine) seed(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return stage.Hint(fmt.Errorf("--initial: %w", err), "--initial names a file of JSON lines, each a group's key fields and aggregates, as sreduce writes them")
	}
	defer f.Close()
	dec, err := codec.NewDecoder("json", f, path)
	if err != nil {
		return err
	}
	var rec []byte
	for {
		rec, err = dec.Next(rec[:0])
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("--initial %w", err)
		}
		if err := r.t.Seed(rec); err != nil {
			n, unit := dec.Pos()
			return fmt.Errorf("--initial %s: %s %d: %w", path, unit, n, err)
		}
	}
	r.seeded = true
	return nil
}

// Begin restores the state the batch needs, if it is the first; at the
// first batch after no restore, the initial state's groups take the
// batch's time and count as changed by it.
func (r *Engine) Begin(b stage.Batch) error {
	if r.state != nil {
		load := func(snap []byte) error {
			r.seeded = false // the saved state has the initial one in it
			return r.t.LoadSnapshot(snap)
		}
		if err := r.state.Begin(b.ID, r.replaying != nil && r.replaying(), load); err != nil {
			return err
		}
	}
	r.nrec = 0
	r.check.Begin()
	r.t.SetTime(b.Time)
	r.t.ClearTouched()
	if r.t2 != nil {
		r.t2.SetTime(b.Time)
		r.t2.ClearTouched()
	}
	if r.seeded {
		r.seeded = false
		r.t.TouchAll()
	}
	if r.o.Checkpoint != "" && r.o.Mode != PerBatch {
		return r.scaleBegin(b)
	}
	return nil
}

// Block adds the records to their groups.
func (r *Engine) Block(b stage.Batch, recs framing.Records) error {
	if r.split && r.t2 == nil && r.t.Len() >= splitMin {
		t2, err := r.t.Split()
		if err != nil {
			return err
		}
		r.t2 = t2
	}
	if r.scale != nil || r.t2 != nil || !r.check.Done() {
		// The reader left the check of the block's layout to this stage
		// (ChecksLayout): AddBlock checks it as it goes, but the other
		// paths walk the block with Next, and the second part is handed
		// copies of it.
		if err := recs.Check(); err != nil {
			return err
		}
	}
	if r.scale != nil {
		return r.scaleBlock(b, recs)
	}
	if r.t2 != nil {
		// The second table takes its part of the same records meanwhile.
		if r.part == nil {
			r.part = startPart(r.t2)
		}
		r.part.add(recs)
	}
	// The field check looks at records until it has seen every field in
	// the batch; after that it has nothing to say, and the table takes the
	// rest of the block at once.
	for !r.check.Done() {
		rec, ok := recs.Next()
		if !ok {
			return nil
		}
		r.nrec++
		r.check.Observe(rec)
		if err := r.t.Add(rec); err != nil {
			if err := r.bad(b, rec, err); err != nil {
				return err
			}
		}
	}
	for {
		n := recs.Len()
		rec, err := r.t.AddBlock(&recs)
		r.nrec += n - recs.Len()
		if err == nil {
			return nil
		}
		if errors.Is(err, framing.ErrCorrupt) { // not a bad record: the block
			return err
		}
		if err := r.bad(b, rec, err); err != nil {
			return err
		}
	}
}

// ChecksLayout tells the stage that Block checks the layout of the blocks
// it is given (stage.LayoutChecker).
func (r *Engine) ChecksLayout() {}

// bad skips the record rec, the batch's record r.nrec, that could not be
// added (--skip-bad), or returns the error that names it.
func (r *Engine) bad(b stage.Batch, rec []byte, err error) error {
	if r.o.SkipBad {
		r.stats.Skipped++
		return nil
	}
	return agg.BadRecord(fmt.Sprintf("%v, record %d", b, r.nrec), rec, err)
}

// End saves the running state and writes the batch's groups.
func (r *Engine) End(b stage.Batch) error {
	if err := agg.ReportMissing(r.check, b, r.o.Strict, r.o.Notes, "sreduce"); err != nil {
		return err
	}
	t := r.t
	if r.part != nil {
		r.part.wait()
		r.part = nil
	}
	if r.t2 != nil {
		return r.endParts(b)
	}
	if r.o.Mode == PerBatch {
		gs := r.touched(r.gs[:0])
		if len(gs) == 0 && len(r.o.Agg.Keys) == 0 && r.o.Agg.HasCount() {
			gs = append(gs, t.Group(nil)) // DStream.count of an empty batch is 0
		}
		err := r.write(b, gs, nil)
		keepGroups(t, len(gs))
		r.gs = gs
		return err
	}
	removed := 0
	if r.o.TTL > 0 {
		if r.scale != nil {
			r.scaleExpire(b.Time - r.o.TTL.Milliseconds())
		}
		removed = r.expire(b.Time - r.o.TTL.Milliseconds())
	}
	if r.scale != nil {
		if err := r.scaleCommit(b); err != nil {
			return err
		}
	}
	updated := len(t.Touched())
	var gs []int32
	switch {
	case r.o.Mode == Update:
		gs = r.touched(r.gs[:0])
		r.gs = gs
	case r.o.Unordered:
		gs = t.All(r.gs[:0])
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
	var saved chan error
	if r.state != nil {
		// The state is saved while the batch's groups are written, by a
		// goroutine of its own; the batch ends once it is saved (write),
		// so that no sink commits a batch whose state a restart would not
		// find. Writing and saving only read the table: the groups to
		// write are chosen (Sorted, touched) before.
		saved = make(chan error, 1)
		go func() { saved <- r.state.Save(b.ID, b.Time, t.WriteSnapshot) }()
	}
	return r.write(b, gs, saved)
}

// endParts is End with the groups split between r.t and r.t2: each
// part's groups sorted by key on a core of its own (unless Unordered),
// then written one part after the other.
func (r *Engine) endParts(b stage.Batch) error {
	t0, t1 := r.t, r.t2
	var gs1 []int32
	var wg sync.WaitGroup
	wg.Go(func() { gs1 = r.touchedOf(t1, nil) })
	gs0 := r.touchedOf(t0, r.gs[:0])
	wg.Wait()
	// Every key of t0 sorts before every key of t1 (see agg.Table.Split).
	err := r.out.BeginBatch(b.ID, b.Time)
	if err == nil {
		err = r.writeGroups(t0, gs0)
	}
	if err == nil {
		err = r.writeGroups(t1, gs1)
	}
	if err == nil {
		err = r.out.EndBatch()
	}
	keepGroups(t0, len(gs0))
	keepGroups(t1, len(gs1))
	r.gs = gs0
	return err
}

// keepGroups zeroes the groups of t, a batch of which had n, for the next
// batch (their keys are not stored again), unless they have piled up far
// beyond what a batch uses.
func keepGroups(t *agg.Table, n int) {
	t.Zero()
	if t.Len() > 2*n+4096 {
		t.Reset()
	}
}

// touched appends the groups the batch added to or subtracted from to
// dst: in key order, or with Unordered in the order the batch came to them.
func (r *Engine) touched(dst []int32) []int32 { return r.touchedOf(r.t, dst) }

// touchedOf is touched of table t.
func (r *Engine) touchedOf(t *agg.Table, dst []int32) []int32 {
	if r.o.Unordered {
		return append(dst, t.Touched()...)
	}
	return t.SortedTouched(dst)
}

// expire removes the groups last updated at or before cutoff, and returns
// how many. With EmitExpired their records are kept, in key order, for
// the batch's output.
func (r *Engine) expire(cutoff int64) int {
	t := r.t
	if !r.o.EmitExpired {
		return t.Expire(cutoff)
	}
	r.expired, r.nexp = r.expired[:0], 0
	gs := t.Idle(cutoff, r.gs[:0])
	if !r.o.Unordered {
		t.SortByKey(gs)
	}
	for _, g := range gs {
		r.buf = r.appendRecord(r.buf[:0], g, true)
		r.expired = framing.AppendRecord(r.expired, r.buf)
		r.nexp++
		t.Remove(g)
	}
	r.gs = gs
	return len(gs)
}

// appendRecord appends group g's output record, with the field expired
// when EmitExpired.
func (r *Engine) appendRecord(dst []byte, g int32, expired bool) []byte {
	if !r.o.EmitExpired {
		return r.t.AppendRecord(dst, g)
	}
	dst = r.t.AppendRecordWith(dst, g, 1)
	dst = record.AppendString(dst, FieldExpired)
	return record.AppendBool(dst, expired)
}

// warmAhead is how many groups write has Warm read before it writes them:
// with 5 M keys 256 took 1.7-2.0 CPU s, 2048 1.8-2.1, 16384 2.5-2.6 (as
// many as the caches hold, less the cost of a call).
const warmAhead = 256

// write writes batch b holding the groups gs, then the groups that
// expired in it; it ends the batch once saved, if not nil, says that the
// state is saved.
func (r *Engine) write(b stage.Batch, gs []int32, saved <-chan error) error {
	err := r.writeBatch(b, gs)
	if saved != nil {
		if serr := <-saved; err == nil {
			err = serr
		}
	}
	if err != nil {
		return err
	}
	return r.out.EndBatch()
}

// writeBatch is write but for the batch's end.
func (r *Engine) writeBatch(b stage.Batch, gs []int32) error {
	if r.o.Top > 0 {
		gs = r.t.Top(gs, r.o.Top, r.o.By)
	}
	if err := r.out.BeginBatch(b.ID, b.Time); err != nil {
		return err
	}
	if err := r.writeGroups(r.t, gs); err != nil {
		return err
	}
	if r.nexp > 0 {
		recs := framing.NewRecords(r.expired, r.nexp)
		for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
			if err := r.out.WriteRecord(rec); err != nil {
				return err
			}
		}
		r.nexp = 0
	}
	return nil
}

// writeGroups writes the records of the groups gs of table t, which is
// r.t or r.t2.
func (r *Engine) writeGroups(t *agg.Table, gs []int32) error {
	for i, g := range gs {
		if i%warmAhead == 0 {
			t.Warm(gs[i:min(i+warmAhead, len(gs))])
		}
		if t == r.t {
			r.buf = r.appendRecord(r.buf[:0], g, false)
		} else {
			r.buf = t.AppendRecord(r.buf[:0], g) // r.t2: per batch, no expired field
		}
		if err := r.out.WriteRecord(r.buf); err != nil {
			return err
		}
	}
	return nil
}

// Watermark passes the watermark on.
func (r *Engine) Watermark(t int64) error { return r.out.Watermark(t) }

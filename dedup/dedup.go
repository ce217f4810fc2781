// Package dedup is the engine of sdedup: it drops the records whose key it
// has seen before, across batches (Structured Streaming's dropDuplicates),
// keeping the keys seen in an agg.KeySet. With an event-time field and a
// watermark it drops the records later than the watermark and forgets the
// keys the watermark has passed, as Spark's streaming deduplication does,
// or, within the watermark, the keys whose first record is older than the
// watermark's delay (dropDuplicatesWithinWatermark). The keys survive a
// restart through the checkpoint.
package dedup

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// Options is what the engine does.
type Options struct {
	// Keys are the fields whose values together make a record's key (-k);
	// none: all the record's fields (dropDuplicates()).
	Keys []string
	// TimeField, if not "", is the field holding each record's event time
	// (--time-field), read in Unit when a number (0: seconds); Watermark is how far the
	// watermark stays behind the latest event time (--watermark).
	TimeField string
	Unit      codec.TimeUnit
	Watermark time.Duration
	// WithinWatermark: a key is forgotten once the watermark passes its
	// first record's event time plus Watermark, whether or not the time
	// is part of the key (dropDuplicatesWithinWatermark). It needs a
	// TimeField.
	WithinWatermark bool
	// SkipBad skips a record without a readable event time, counting it in
	// stage.Stats.Skipped, instead of failing (--skip-bad).
	SkipBad bool
	// Strict makes a key field that no record of a batch has an error;
	// else it is a note on Notes, once per field (a typo, most often,
	// which would make every record's key null and drop all but one: see
	// agg.FieldCheck).
	Strict bool
	Notes  io.Writer
	// Checkpoint is the checkpoint directory where the keys are saved after
	// each batch and restored from on a restart (--checkpoint); "" keeps
	// them in memory only. Name is the state's name in it, state/Name
	// (--name); it must be a checkpoint.ValidName.
	Checkpoint string
	Name       string
}

// Bounded reports whether the watermark bounds the keys kept: with
// WithinWatermark, or when the event time is part of the key (every field
// is, without Keys). Otherwise the keys grow with the distinct keys seen,
// as Spark's dropDuplicates on columns without the event time (SPARK-21546):
// the watermark then only drops late records.
func (o *Options) Bounded() bool {
	return o.TimeField != "" && (o.WithinWatermark || len(o.Keys) == 0 || slices.Contains(o.Keys, o.TimeField))
}

// stateVersion is the version of the saved state's layout (state.go), and
// part of the fingerprint.
const stateVersion = 1

// Fingerprint names what the saved keys mean: a state saved under another
// is refused. The watermark's delay is not in it: the keys are saved with
// their event times, and the delay may change between runs, as Spark's
// withWatermark may.
func (o *Options) Fingerprint() string {
	keys := "all"
	if len(o.Keys) > 0 {
		q := make([]string, len(o.Keys))
		for i, k := range o.Keys {
			q[i] = strconv.Quote(k)
		}
		keys = "[" + strings.Join(q, ",") + "]"
	}
	fp := fmt.Sprintf("sdedup/%d keys=%s", stateVersion, keys)
	if o.TimeField != "" {
		fp += fmt.Sprintf(" time=%q", o.TimeField)
	}
	if o.WithinWatermark {
		fp += " within-watermark"
	}
	return fp
}

// Engine is sdedup's stage.Handler.
type Engine struct {
	out   *framing.Writer
	o     Options
	delay int64 // o.Watermark in ms
	seen  *agg.KeySet
	key   keyer
	check *agg.FieldCheck
	stats *stage.Stats

	// The watermark: records at or before it are late. It is the latest
	// event time seen, at the end of a batch, minus delay.
	wm, maxT        int64
	haveWM, haveMax bool

	state     *checkpoint.State // with --checkpoint, or nil
	replaying func() bool

	// Of the batch in hand.
	nrec, added, dups, late int64
}

// New returns the engine that writes its batches to out. It opens the
// checkpoint's state (see Options.Checkpoint), refusing one written with
// other keys. stats gets the figures of each batch (nil: none kept);
// replaying, called at the first batch, tells whether the pipeline's source
// replays from its checkpoint (stage.Env.Replaying; nil: never).
func New(o Options, out *framing.Writer, stats *stage.Stats, replaying func() bool) (*Engine, error) {
	if o.WithinWatermark && o.TimeField == "" {
		return nil, stage.UsageError("deduplicating within the watermark needs an event time: add --time-field F")
	}
	if stats == nil {
		stats = new(stage.Stats)
	}
	if o.Unit == 0 {
		o.Unit = codec.Seconds
	}
	e := &Engine{out: out, o: o, delay: o.Watermark.Milliseconds(), seen: agg.NewKeySet(),
		key: newKeyer(o.Keys), check: agg.NewFieldCheck(agg.Config{Keys: o.Keys}), stats: stats, replaying: replaying}
	if o.Checkpoint != "" {
		var err error
		if e.state, err = checkpoint.OpenState(o.Checkpoint, o.Name, o.Fingerprint(), "each set of keys and time field"); err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
	}
	return e, nil
}

// Begin restores the keys the batch needs, if it is the first, and opens
// the output batch.
func (e *Engine) Begin(b stage.Batch) error {
	if e.state != nil {
		if err := e.state.Begin(b.ID, e.replaying != nil && e.replaying(), e.load); err != nil {
			return err
		}
	}
	e.nrec, e.added, e.dups, e.late = 0, 0, 0, 0
	e.check.Begin()
	return e.out.BeginBatch(b.ID, b.Time)
}

// Block writes the records whose key is new, and drops the others and the
// late ones.
func (e *Engine) Block(b stage.Batch, recs framing.Records) error {
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		e.nrec++
		e.check.Observe(rec)
		keep, err := e.add(rec)
		if err != nil {
			if e.o.SkipBad {
				e.stats.Skipped++
				continue
			}
			return agg.BadRecord(fmt.Sprintf("%v, record %d", b, e.nrec), rec, err)
		}
		if keep {
			if err := e.out.WriteRecord(rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// add takes one record into the state and reports whether it is new.
func (e *Engine) add(rec []byte) (bool, error) {
	var t int64
	if e.o.TimeField != "" {
		var err error
		if t, err = e.eventTime(rec); err != nil {
			return false, err
		}
		// Every record moves the watermark on, the dropped ones too, as
		// Spark's watermark is taken before the deduplication.
		if !e.haveMax || t > e.maxT {
			e.maxT, e.haveMax = t, true
		}
		if e.haveWM && t <= e.wm {
			e.late++
			return false, nil
		}
	}
	key, err := e.key.key(rec)
	if err != nil {
		return false, err
	}
	if !e.seen.Add(key, t) {
		e.dups++
		return false, nil
	}
	e.added++
	return true, nil
}

func (e *Engine) eventTime(rec []byte) (int64, error) {
	raw, ok, err := record.Get(rec, e.o.TimeField)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("no time field %q", e.o.TimeField)
	}
	t, err := codec.EventTime(raw, e.o.Unit)
	if err != nil {
		return 0, fmt.Errorf("field %q: %w", e.o.TimeField, err)
	}
	return t, nil
}

// End moves the watermark on, forgets the keys it has passed, saves the
// keys and ends the output batch, then passes the watermark on if it moved.
// The batch's end leaves only after the state that includes it is saved: a
// sink commits a batch at its end, and a restart restores the state of the
// last batch committed.
func (e *Engine) End(b stage.Batch) error {
	if err := agg.ReportMissing(e.check, b, e.o.Strict, e.o.Notes, "sdedup"); err != nil {
		return err
	}
	moved := false
	if e.haveMax && (!e.haveWM || e.maxT-e.delay > e.wm) {
		e.wm, e.haveWM, moved = e.maxT-e.delay, true, true
	}
	removed := 0
	if e.haveWM && e.o.Bounded() {
		cutoff := e.wm // the key's event time is passed
		if e.o.WithinWatermark {
			cutoff -= e.delay // its event time plus the delay is passed
		}
		removed = e.seen.Expire(cutoff)
	}
	e.report(removed)
	if e.state != nil {
		if err := e.state.Save(b.ID, b.Time, e.save); err != nil {
			return err
		}
	}
	if err := e.out.EndBatch(); err != nil {
		return err
	}
	if moved {
		return e.out.Watermark(e.wm)
	}
	return nil
}

func (e *Engine) report(removed int) {
	e.stats.State = &stage.StateStats{
		NumRowsTotal:              int64(e.seen.Len()),
		NumRowsUpdated:            e.added,
		NumRowsRemoved:            int64(removed),
		MemoryUsedBytes:           e.seen.MemoryUsed(),
		NumRowsDroppedByWatermark: e.late,
		CustomMetrics:             map[string]int64{"numDroppedDuplicateRows": e.dups},
	}
	e.stats.Late = uint64(e.late)
	if e.haveWM {
		wm := e.wm
		e.stats.Watermark = &wm
	}
}

// Watermark passes an upstream watermark on, unless the stage makes its own
// from an event-time field, as swindow does.
func (e *Engine) Watermark(t int64) error {
	if e.o.TimeField != "" {
		return nil
	}
	return e.out.Watermark(t)
}

package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// The state a window stage saves after each batch with --checkpoint (in
// DIR/state/NAME; docs/design.md, Checkpoint), so that a restarted pipeline, whose
// source replays the batches after the last commit with the same ids and
// times, writes the windows an uninterrupted run would have.
//
// Batch time: where the windows stand, and without keys or aggregates the
// batches a coming window still needs, with them the slices (a table of
// groups each) that a coming window still needs. Event time: each window's groups (agg snapshots), the watermark
// and the latest event time.
//
// A state is a sequence of msgpack values, as agg's snapshots are (written
// with record's Append functions, read with record.Skip):
//
//	version   int (stateVersion)
//	batch time:
//	  started, wrote, pending                  bool
//	  next, last id, last time, last out, last end   int, uint, int, uint, int
//	  without keys or aggregates:
//	    held batches  int, then per batch: id (uint), time (int), records
//	                  (int), the records (bin: as in a Records frame)
//	  with keys or aggregates:
//	    slices      int, then per slice, oldest first: end (int), its
//	                groups (bin: an agg snapshot)
//	    slice in hand  bool, then if true: end (int), its groups (bin)
//	event time:
//	  started, watermark set, max set          bool
//	  watermark, max event time, last id, last time  int, int, uint, int
//	  fixed windows, sliced (sliced.go: without collect):
//	                 windows set (bool), first open window (int), with
//	                 first or last the arrival number of the last record
//	                 taken (uint), slices (int), then per slice: start
//	                 (int), its groups (bin: an agg snapshot), with first
//	                 or last its arrivals: groups (int), then per group in
//	                 key order: the arrival numbers of its first and last
//	                 records (uint, uint)
//	  other fixed windows  int, then per window: start (int), its groups
//	                 (bin: an agg snapshot)
//	  sessions       int, then per session, by key then start: key (bin:
//	                 agg.Table.Key), start, end (int), records (int), the
//	                 records (bin)

// stateVersion is the first value of a saved state, and part of the
// fingerprint, so that a state of another layout is refused, not misread.
// Version 1 was a layout of uvarints of its own; version 2 held the
// records of the batches of batch time, and a table per fixed window of
// event time, where version 3 keeps a table per slice; version 3 kept a
// table per window for first and last, where version 4 keeps the arrivals
// of each slice's groups.
const stateVersion = 4

// ErrState is a saved state that cannot be read.
var ErrState = errors.New("window: damaged state")

// enc builds a saved state.
type enc struct{ b []byte }

func (e *enc) uint(v uint64) { e.b = record.AppendUint(e.b, v) }
func (e *enc) int(v int64)   { e.b = record.AppendInt(e.b, v) }
func (e *enc) bin(p []byte)  { e.b = record.AppendBinary(e.b, p) }
func (e *enc) bool(v bool)   { e.b = record.AppendBool(e.b, v) }

// newEnc starts a state with its version.
func newEnc() *enc { return &enc{b: record.AppendInt(nil, stateVersion)} }

// dec reads a saved state; the first error sticks, and after it every
// value reads as zero.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrState, what)
	}
	d.b = nil
}

// next splits the next value off the state.
func (d *dec) next(what string) []byte {
	if d.err != nil {
		return nil
	}
	n, err := record.Skip(d.b)
	if err != nil {
		d.fail(what + ": " + err.Error())
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) int(what string) int64 {
	v := d.next(what)
	x, ok := record.Int(v)
	if !ok {
		d.fail(what + ": integer expected")
	}
	return x
}

func (d *dec) uint(what string) uint64 {
	v := d.next(what)
	if x, ok := record.Int(v); ok && x >= 0 {
		return uint64(x)
	}
	if record.KindOf(v) == record.KindUint {
		return binary.BigEndian.Uint64(v[1:])
	}
	d.fail(what + ": unsigned integer expected")
	return 0
}

func (d *dec) bool(what string) bool {
	v := d.next(what)
	if record.KindOf(v) != record.KindBool {
		d.fail(what + ": boolean expected")
		return false
	}
	return v[0] == 0xc3 // msgpack true
}

// bin reads a bin value; the bytes are the state's, not a copy.
func (d *dec) bin(what string) []byte {
	v := d.next(what)
	p, ok := record.Str(v)
	if !ok || record.KindOf(v) != record.KindBinary {
		d.fail(what + ": binary expected")
		return nil
	}
	return p[:len(p):len(p)]
}

// count reads a count of items each at least min values long (a value
// takes a byte or more), refusing one the rest of the state cannot hold.
func (d *dec) count(what string, min int) int {
	n := d.int(what)
	if d.err == nil && (n < 0 || n > int64(len(d.b)/min)) {
		d.fail(what + ": count out of range")
		return 0
	}
	return int(n)
}

// records reads a count of records and the block of them, which must be
// exactly that many length-prefixed records, as a Records frame lays them
// out; the block is copied.
func (d *dec) records(what string) ([]byte, int) {
	n := d.int(what)
	recs := d.bin(what)
	if d.err == nil && (n < 0 || n > math.MaxInt32 || !validBlock(recs, int(n))) {
		d.fail(what + ": damaged records")
	}
	if d.err != nil {
		return nil, 0
	}
	return slices.Clone(recs), int(n)
}

// version reads the state's version.
func (d *dec) version() {
	v := d.int("version")
	if d.err == nil && v != stateVersion {
		d.err = fmt.Errorf("%w: a state of version %d, this program reads version %d", ErrState, v, stateVersion)
		d.b = nil
	}
}

func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// fingerprint identifies what a window stage keeps: a saved state of another
// configuration is refused.
func (o *options) fingerprint() string {
	fp := fmt.Sprintf("swindow/%d length=%d slide=%d", stateVersion, o.length, o.slide)
	if o.reduce {
		fp += " " + o.agg.Cfg.Fingerprint()
	}
	if o.ev != nil {
		fp += fmt.Sprintf(" time-field=%q unit=%v watermark=%d mode=%s session=%d", o.ev.field, o.ev.unit, o.ev.delay, o.ev.mode, o.ev.session)
		if o.ev.gap != nil {
			fp += fmt.Sprintf(" session-gap-expr=%q", o.ev.gap.src)
		}
	}
	return fp
}

// saveState is the batch-time windower's state.
func (w *windower) saveState() []byte {
	e := newEnc()
	e.bool(w.started)
	e.bool(w.wrote)
	e.bool(w.pending)
	e.int(w.next)
	e.uint(w.lastID)
	e.int(w.lastTime)
	e.uint(w.lastOut)
	e.int(w.lastEnd)
	if !w.o.reduce {
		e.int(int64(len(w.held)))
		for _, h := range w.held {
			e.uint(h.id)
			e.int(h.time)
			e.int(int64(h.n))
			e.bin(h.recs)
		}
		return e.b
	}
	var snap []byte
	e.int(int64(w.span.len()))
	w.span.each(func(end int64, t *agg.Table) {
		snap = t.AppendSnapshot(snap[:0])
		e.int(end)
		e.bin(snap)
	})
	e.bool(w.sl != nil)
	if w.sl != nil {
		e.int(w.slEnd)
		e.bin(w.sl.AppendSnapshot(snap[:0]))
	}
	return e.b
}

// loadState restores a state saveState wrote: the held batches, or the
// slices.
func (w *windower) loadState(b []byte) error {
	d := &dec{b: b}
	d.version()
	started, wrote, pending := d.bool("started"), d.bool("wrote"), d.bool("pending")
	next, lastID, lastTime, lastOut, lastEnd := d.int("next"), d.uint("last id"), d.int("last time"), d.uint("last out"), d.int("last end")
	if !w.o.reduce {
		var hs []*held
		for range d.count("held batches", 4) {
			h := &held{id: d.uint("batch id"), time: d.int("batch time")}
			h.recs, h.n = d.records("batch")
			if d.err != nil {
				break
			}
			hs = append(hs, h)
		}
		if err := d.end(); err != nil {
			return err
		}
		w.held = hs
	} else {
		var ends []int64
		var ts []*agg.Table
		n := d.count("slices", 2)
		for i := range n + 1 {
			if i == n && !d.bool("slice in hand") {
				break
			}
			end, snap := d.int("slice end"), d.bin("slice")
			if d.err != nil {
				break
			}
			if end%w.g != 0 || len(ends) > 0 && end <= ends[len(ends)-1] {
				d.fail("slices out of order")
				break
			}
			t := w.slices.get()
			if err := t.LoadSnapshot(snap); err != nil {
				return fmt.Errorf("%w: the slice ending %s: %v", ErrState, fmtTime(end), err)
			}
			ends, ts = append(ends, end), append(ts, t)
		}
		if err := d.end(); err != nil {
			return err
		}
		w.span.reset()
		w.slMem = 0
		if w.sl != nil {
			w.slices.put(w.sl)
			w.sl = nil
		}
		for i, t := range ts {
			if i == n {
				w.sl, w.slEnd = t, ends[i]
				break
			}
			if err := w.span.push(ends[i], t, nil); err != nil {
				return fmt.Errorf("%w: the slice ending %s: %v", ErrState, fmtTime(ends[i]), err)
			}
			w.slMem += t.MemoryUsed()
		}
	}
	w.started, w.wrote, w.pending = started, wrote, pending
	w.next, w.lastID, w.lastTime, w.lastOut, w.lastEnd = next, lastID, lastTime, lastOut, lastEnd
	return nil
}

// saveState is the event-time windower's state: where the watermark
// stands, then the windows (eventState.save).
func (w *eventWindower) saveState() ([]byte, error) {
	e := newEnc()
	e.bool(w.started)
	e.bool(w.haveWM)
	e.bool(w.haveMax)
	e.int(w.wm)
	e.int(w.maxT)
	e.uint(w.lastID)
	e.int(w.lastTime)
	if err := w.st.save(e); err != nil {
		return nil, err
	}
	return e.b, nil
}

func (w *eventWindower) loadState(b []byte) error {
	d := &dec{b: b}
	d.version()
	started, haveWM, haveMax := d.bool("started"), d.bool("watermark set"), d.bool("max set")
	wm, maxT, lastID, lastTime := d.int("watermark"), d.int("max event time"), d.uint("last id"), d.int("last time")
	if d.err != nil {
		return d.err
	}
	if err := w.st.load(d); err != nil {
		return err
	}
	if err := d.end(); err != nil {
		return err
	}
	w.started, w.haveWM, w.haveMax = started, haveWM, haveMax
	w.wm, w.maxT, w.lastID, w.lastTime = wm, maxT, lastID, lastTime
	return nil
}

// stateful is what a window stage saves and restores.
type stateful interface {
	save() ([]byte, error)
	load([]byte) error
}

func (w *windower) save() ([]byte, error) { return w.saveState(), nil }
func (w *windower) load(b []byte) error   { return w.loadState(b) }
func (w *eventWindower) save() ([]byte, error) {
	return w.saveState()
}
func (w *eventWindower) load(b []byte) error { return w.loadState(b) }

// checkpointer saves a window stage's state after each batch and restores
// it before the first (checkpoint.State).
type checkpointer struct {
	state     *checkpoint.State
	st        stateful
	replaying func() bool // the pipeline's source replays from the checkpoint
}

func openCheckpointer(dir, name string, o *options, st stateful, replaying func() bool) (*checkpointer, error) {
	state, err := checkpoint.OpenState(dir, name, o.fingerprint(), "each window configuration")
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	return &checkpointer{state: state, st: st, replaying: replaying}, nil
}

// begin restores the state when the first batch, first, arrives.
func (c *checkpointer) begin(first uint64) error {
	return c.state.Begin(first, c.replaying(), c.st.load)
}

// end saves the state after batch b.
func (c *checkpointer) end(b stage.Batch) error {
	data, err := c.st.save()
	if err != nil {
		return err
	}
	return c.state.Save(b.ID, b.Time, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// validBlock reports whether b holds exactly n length-prefixed records, as
// a Records frame lays them out.
func validBlock(b []byte, n int) bool {
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return false
		}
		b = b[k+int(l):]
	}
	return len(b) == 0
}

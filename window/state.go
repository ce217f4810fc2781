package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
)

// The state a window stage saves after each batch with --checkpoint (in
// DIR/state/NAME; docs/design.md, Checkpoint), so that a restarted pipeline, whose
// source replays the batches after the last commit with the same ids and
// times, writes the windows an uninterrupted run would have.
//
// Batch time: the batches a coming window still needs, and where the
// windows stand; the groups are not saved but folded again from those
// batches. Event time: each window's groups (agg snapshots), the watermark
// and the latest event time.

// stateVersion is the first byte of a saved state; another is refused.
const stateVersion = 1

// ErrState is a saved state that cannot be read.
var ErrState = errors.New("swindow: damaged state")

// enc builds a saved state.
type enc struct{ b []byte }

func (e *enc) u(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)  { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) bytes(p []byte) {
	e.u(uint64(len(p)))
	e.b = append(e.b, p...)
}
func (e *enc) bools(bs ...bool) {
	var v uint64
	for i, b := range bs {
		if b {
			v |= 1 << i
		}
	}
	e.u(v)
}

// dec reads a saved state; the first error sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = ErrState
	}
	d.b = nil
}

func (d *dec) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes() []byte {
	n := d.u()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) bools(n int) []bool {
	v := d.u()
	if v>>n != 0 {
		d.fail()
	}
	bs := make([]bool, n)
	for i := range bs {
		bs[i] = v&(1<<i) != 0
	}
	return bs
}

// count reads a count of items each at least min bytes long, refusing one
// the rest of the input cannot hold.
func (d *dec) count(min int) int {
	n := d.u()
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrState
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
	}
	return fp
}

// saveState is the batch-time windower's state.
func (w *windower) saveState() []byte {
	e := &enc{b: []byte{stateVersion}}
	e.bools(w.started, w.wrote, w.pending)
	e.i(w.next)
	e.u(w.lastID)
	e.i(w.lastTime)
	e.u(w.lastOut)
	e.i(w.lastEnd)
	e.u(uint64(len(w.held)))
	for _, h := range w.held {
		e.u(h.id)
		e.i(h.time)
		e.u(uint64(h.n))
		e.bytes(h.recs)
	}
	return e.b
}

// loadState restores a state saveState wrote: the held batches, and the
// groups folded again from them.
func (w *windower) loadState(b []byte) error {
	if len(b) == 0 || b[0] != stateVersion {
		return ErrState
	}
	d := &dec{b: b[1:]}
	flags := d.bools(3)
	next, lastID, lastTime, lastOut, lastEnd := d.i(), d.u(), d.i(), d.u(), d.i()
	var hs []*held
	for range d.count(4) {
		h := &held{id: d.u(), time: d.i(), n: int(d.u())}
		h.recs = slices.Clone(d.bytes())
		if d.err == nil && !validBlock(h.recs, h.n) {
			d.fail()
		}
		hs = append(hs, h)
	}
	if err := d.end(); err != nil {
		return err
	}
	w.started, w.wrote, w.pending = flags[0], flags[1], flags[2]
	w.next, w.lastID, w.lastTime, w.lastOut, w.lastEnd = next, lastID, lastTime, lastOut, lastEnd
	w.held = hs
	if w.inc {
		w.t.Reset()
		for _, h := range hs {
			recs := recordsOf(h)
			for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
				if err := w.t.Add(rec); err != nil {
					return fmt.Errorf("%w: batch %d: %v", ErrState, h.id, err)
				}
			}
		}
	}
	return nil
}

// saveState is the event-time windower's state: where the watermark
// stands, then the windows (eventState.save).
func (w *eventWindower) saveState() ([]byte, error) {
	e := &enc{b: []byte{stateVersion}}
	e.bools(w.started, w.haveWM, w.haveMax)
	e.i(w.wm)
	e.i(w.maxT)
	e.u(w.lastID)
	e.i(w.lastTime)
	if err := w.st.save(e); err != nil {
		return nil, err
	}
	return e.b, nil
}

func (w *eventWindower) loadState(b []byte) error {
	if len(b) == 0 || b[0] != stateVersion {
		return ErrState
	}
	d := &dec{b: b[1:]}
	flags := d.bools(3)
	wm, maxT, lastID, lastTime := d.i(), d.i(), d.u(), d.i()
	if d.err != nil {
		return d.err
	}
	if err := w.st.load(d); err != nil {
		return err
	}
	if err := d.end(); err != nil {
		return err
	}
	w.started, w.haveWM, w.haveMax = flags[0], flags[1], flags[2]
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

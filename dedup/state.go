package dedup

import (
	"errors"
	"fmt"
	"io"

	"github.com/dstream/dstream/record"
)

// The state sdedup saves after each batch with --checkpoint (in
// DIR/state/NAME; docs/design.md, Checkpoint) is a sequence of msgpack
// values, as agg's snapshots are:
//
//	version                        int (stateVersion)
//	watermark set, max set         bool, bool
//	watermark, latest event time   int, int (unix ms)
//	the keys seen                  agg.KeySet's snapshot: each key with
//	                               its event time (0 without --time-field)

// errState is a saved state that cannot be read.
var errState = errors.New("dedup: damaged state")

func (e *Engine) save(w io.Writer) error {
	b := record.AppendInt(nil, stateVersion)
	b = record.AppendBool(b, e.haveWM)
	b = record.AppendBool(b, e.haveMax)
	b = record.AppendInt(b, e.wm)
	b = record.AppendInt(b, e.maxT)
	if _, err := w.Write(b); err != nil {
		return err
	}
	return e.seen.WriteSnapshot(w)
}

func (e *Engine) load(b []byte) error {
	d := dec{b: b}
	if v := d.int(); d.err == nil && v != stateVersion {
		return fmt.Errorf("%w: state of version %d, this program reads version %d", errState, v, stateVersion)
	}
	haveWM, haveMax := d.bool(), d.bool()
	wm, maxT := d.int(), d.int()
	if d.err != nil {
		return d.err
	}
	rest, err := e.seen.LoadSnapshot(d.b)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: trailing bytes", errState)
	}
	e.haveWM, e.haveMax, e.wm, e.maxT = haveWM, haveMax, wm, maxT
	return nil
}

// dec reads the values of a saved state; the first error sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) next() []byte {
	if d.err != nil {
		return nil
	}
	n, err := record.Skip(d.b)
	if err != nil {
		d.err = fmt.Errorf("%w: %v", errState, err)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) int() int64 {
	v := d.next()
	x, ok := record.Int(v)
	if !ok && d.err == nil {
		d.err = fmt.Errorf("%w: integer expected", errState)
	}
	return x
}

func (d *dec) bool() bool {
	v := d.next()
	if record.KindOf(v) != record.KindBool {
		if d.err == nil {
			d.err = fmt.Errorf("%w: boolean expected", errState)
		}
		return false
	}
	return v[0] == 0xc3 // msgpack true
}

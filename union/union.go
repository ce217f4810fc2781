// Package union is the engine of sunion: the union of several streams of
// one batch interval (DStream.union, StreamingContext.union), as a
// stage.MultiHandler over stage.Env.LoopInputs, which aligns the inputs'
// batches by batch time and takes the minimum of their watermarks.
//
// Each aligned batch becomes one output batch with the records of every
// input that has a batch at its time, input by input in their order: the
// first such input's records pass through as they arrive (a block whose
// frame can go on unchanged goes on unchanged), and the others' are held
// until the aligned batch ends, then written in turn. So the union holds
// in memory at most one batch of each input but the first.
package union

import (
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/stage"
)

// Engine is sunion's stage.MultiHandler.
type Engine struct {
	out   *framing.Writer
	held  []held // per input
	first int    // the input whose records pass straight through
}

// held is the records of one input's batch, waiting for their turn: the
// blocks as they came, one after another in data.
type held struct {
	data   []byte
	blocks []block
}

type block struct{ len, n int }

// New returns the union of n inputs, writing to out.
func New(out *framing.Writer, n int) *Engine {
	return &Engine{out: out, held: make([]held, n)}
}

// Begin opens the output batch.
func (u *Engine) Begin(a *stage.Aligned) error {
	u.first = -1
	for i, has := range a.Has {
		if has {
			u.first = i
			break
		}
	}
	return u.out.BeginBatch(a.ID, a.Time)
}

// Block writes the records of the first input with a batch, and holds the
// others'.
func (u *Engine) Block(_ *stage.Aligned, input int, recs framing.Records) error {
	if input == u.first {
		return u.out.WriteRecords(recs)
	}
	b, n := recs.Rest()
	if n == 0 {
		return nil
	}
	h := &u.held[input]
	h.data = append(h.data, b...)
	h.blocks = append(h.blocks, block{len(b), n})
	return nil
}

// End writes the records held, input by input, and ends the batch.
func (u *Engine) End(*stage.Aligned) error {
	for i := range u.held {
		h := &u.held[i]
		off := 0
		for _, b := range h.blocks {
			if err := u.out.WriteRawBlock(h.data[off:off+b.len], b.n); err != nil {
				return err
			}
			off += b.len
		}
		// Keep the memory for the next batch, unless a large batch left
		// far more than batches usually need.
		if cap(h.data) > 4<<20 && off < cap(h.data)/4 {
			h.data = nil
		}
		h.data, h.blocks = h.data[:0], h.blocks[:0]
	}
	return u.out.EndBatch()
}

// Watermark passes the inputs' watermark on (their minimum, which
// LoopInputs takes).
func (u *Engine) Watermark(t int64) error { return u.out.Watermark(t) }

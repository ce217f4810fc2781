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
// blocks as they came, copied into chunks of memory that are kept for the
// next batches. Chunks rather than one growing slice: a large batch is
// held once, never copied again as it grows.
type held struct {
	chunks [][]byte
	blocks []block
}

// block is where a block of n records stands: chunks[chunk][off:off+len].
type block struct{ chunk, off, len, n int }

// chunkSize is the size of a chunk, unless a block is larger.
const chunkSize = 1 << 20

// add copies a block of n records.
func (h *held) add(b []byte, n int) {
	last := len(h.chunks) - 1
	if last < 0 || cap(h.chunks[last])-len(h.chunks[last]) < len(b) {
		// The next chunk kept from an earlier batch, or a new one.
		if last+1 < cap(h.chunks) && cap(h.chunks[:last+2][last+1]) >= len(b) {
			h.chunks = h.chunks[:last+2]
		} else {
			h.chunks = append(h.chunks[:last+1], make([]byte, 0, max(chunkSize, len(b))))
		}
		last++
		h.chunks[last] = h.chunks[last][:0]
	}
	c := h.chunks[last]
	h.blocks = append(h.blocks, block{last, len(c), len(b), n})
	h.chunks[last] = append(c, b...)
}

// reset empties h, keeping up to keep chunks for the next batch.
func (h *held) reset(keep int) {
	if cap(h.chunks) > keep {
		clear(h.chunks[keep:cap(h.chunks)])
		h.chunks = h.chunks[:0:keep]
	}
	h.chunks, h.blocks = h.chunks[:0], h.blocks[:0]
}

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
	if n > 0 {
		u.held[input].add(b, n)
	}
	return nil
}

// End writes the records held, input by input, and ends the batch.
func (u *Engine) End(*stage.Aligned) error {
	for i := range u.held {
		h := &u.held[i]
		for _, b := range h.blocks {
			if err := u.out.WriteRawBlock(h.chunks[b.chunk][b.off:b.off+b.len], b.n); err != nil {
				return err
			}
		}
		// Keep the memory of a usual batch for the next, not all of a
		// large one.
		h.reset(4)
	}
	return u.out.EndBatch()
}

// Watermark passes the inputs' watermark on (their minimum, which
// LoopInputs takes).
func (u *Engine) Watermark(t int64) error { return u.out.Watermark(t) }

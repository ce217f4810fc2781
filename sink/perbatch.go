package sink

import (
	"bufio"
	"fmt"
	"io"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
)

// target is where one batch goes: a file, a command or a request.
type target interface {
	io.Writer
	// commit makes the batch's output final; abort throws it away.
	commit() error
	abort()
}

// perBatch is the Writer of the destinations that write each batch to a
// target of its own, in a fresh encoder per target (so that a csv file has
// its header); or, with roll > 1 (--files --roll), roll batches to a
// target, opened at the first (and named after it) and committed at the
// last, or by Finish at the end of the input.
type perBatch struct {
	format *codec.Format
	opts   codec.Options
	open   func(stage.Batch) (target, error)
	roll   int         // batches per target, 1 or more
	n      int         // batches ended in t
	last   stage.Batch // the last batch ended in t
	t      target
	w      *bufio.Writer
	f      codec.Encoder
}

// newPerBatch returns the Writer of o's format to the targets open opens.
func newPerBatch(o *Options, f *codec.Format, open func(stage.Batch) (target, error)) *perBatch {
	return &perBatch{format: f, opts: o.Codec, open: open, roll: max(o.Roll, 1)}
}

func (p *perBatch) Begin(b stage.Batch) error {
	if p.t == nil {
		t, err := p.open(b)
		if err != nil {
			return fmt.Errorf("%v: %w", b, err)
		}
		p.t, p.n = t, 0
		if p.w == nil {
			p.w = bufio.NewWriterSize(t, 64<<10)
		} else {
			p.w.Reset(t)
		}
		p.f = p.format.New(p.w, p.opts)
	}
	return p.f.Begin(b)
}

func (p *perBatch) Record(rec []byte) error { return p.f.Record(rec) }

func (p *perBatch) End(b stage.Batch, n uint64) error {
	err := p.f.End(b, n)
	p.last = b
	if p.n++; err == nil && p.n < p.roll {
		return nil // held: the target takes more batches
	}
	if err != nil {
		p.Flush()
		return err
	}
	return p.close(b)
}

// Held says whether batches that ended are in a target not yet committed.
func (p *perBatch) Held() bool { return p.t != nil }

// Finish commits the target in hand, of fewer than roll batches: the
// input ended.
func (p *perBatch) Finish() error {
	if p.t == nil {
		return nil
	}
	return p.close(p.last)
}

// close writes out and commits the target in hand; b, its last batch,
// names it in an error.
func (p *perBatch) close(b stage.Batch) error {
	err := p.f.Flush()
	if err == nil {
		if err = p.w.Flush(); err != nil {
			err = fmt.Errorf("writing output: %w", err)
		}
	}
	t := p.t
	p.t = nil
	if err != nil {
		t.abort()
		return err
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("%v: %w", b, err)
	}
	return nil
}

// Flush, on the way out after an error, throws away the batch in hand
// (with --roll, the batches of the file in hand, none of them committed):
// a batch's file or command gets the whole batch or nothing.
func (p *perBatch) Flush() error {
	if p.t != nil {
		p.t.abort()
		p.t = nil
	}
	return nil
}

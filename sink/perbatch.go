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

// sizer is a target that knows the bytes it has written (a file).
type sizer interface {
	size() int64
}

// holding is an encoder that holds its records until Flush, and tells
// their size as msgpack (parquet, codec.Format.Whole).
type holding interface {
	HeldBytes() int64
}

// perBatch is the Writer of the destinations that write each batch to a
// target of its own, in a fresh encoder per target (so that a csv file has
// its header); or, with roll > 1 (--files --roll) or rollSize, several
// batches to a target, opened at the first (and named after it) and
// committed at the last, or by Finish at the end of the input.
//
// The encoder of a format that writes whole files (parquet) holds the
// records until the target's end: the target is opened only then, and not
// at all when there are none (a Parquet file needs a column), so an empty
// batch makes no file, command or request.
type perBatch struct {
	format   *codec.Format
	opts     codec.Options
	open     func(stage.Batch) (target, error)
	roll     int   // batches per target, 1 or more; 0 for no bound (with rollSize)
	rollSize int64 // bytes per target, about; 0 for no bound
	// ratio is the size of the last file of an encoder that holds its
	// records, to theirs: how big the one in hand will be (1 before one
	// was written).
	ratio float64

	begun bool        // batches are in hand, for the target of first
	first stage.Batch // the first batch of the target in hand
	n     int         // batches ended in hand
	last  stage.Batch // the last batch ended in hand
	t     target      // opened at first, or at the end for a whole file
	w     *bufio.Writer
	f     codec.Encoder
}

// newPerBatch returns the Writer of o's format to the targets open opens.
func newPerBatch(o *Options, f *codec.Format, open func(stage.Batch) (target, error)) *perBatch {
	p := &perBatch{format: f, opts: o.Codec, open: open, roll: o.Roll, rollSize: o.RollSize, ratio: 1}
	if p.rollSize == 0 {
		p.roll = max(p.roll, 1)
	}
	return p
}

func (p *perBatch) Begin(b stage.Batch) error {
	if !p.begun {
		p.begun, p.first, p.n = true, b, 0
		if p.w == nil {
			p.w = bufio.NewWriterSize(nil, 64<<10)
		}
		if !p.format.Whole {
			if err := p.openTarget(); err != nil {
				p.begun = false
				return err
			}
		}
		p.f = p.format.New(p.w, p.opts)
	}
	return p.f.Begin(b)
}

// openTarget opens the target of the batches in hand, named after the
// first.
func (p *perBatch) openTarget() error {
	t, err := p.open(p.first)
	if err != nil {
		return fmt.Errorf("%v: %w", p.first, err)
	}
	p.t = t
	p.w.Reset(t)
	return nil
}

func (p *perBatch) Record(rec []byte) error { return p.f.Record(rec) }

func (p *perBatch) End(b stage.Batch, n uint64) error {
	err := p.f.End(b, n)
	p.last = b
	if p.n++; err == nil && (p.roll == 0 || p.n < p.roll) && (p.rollSize == 0 || p.size() < p.rollSize) {
		return nil // held: the target takes more batches
	}
	if err != nil {
		p.Flush()
		return err
	}
	return p.close(b)
}

// size is about the size of the target in hand: what it has written, what
// is buffered for it, and what an encoder that holds its records will
// write of them.
func (p *perBatch) size() int64 {
	var n int64
	if s, ok := p.t.(sizer); ok {
		n = s.size()
	}
	n += int64(p.w.Buffered())
	if h, ok := p.f.(holding); ok {
		n += int64(float64(h.HeldBytes()) * p.ratio)
	}
	return n
}

// Held says whether batches that ended are in a target not yet committed.
func (p *perBatch) Held() bool { return p.begun }

// Finish commits the target in hand, of fewer than roll batches: the
// input ended.
func (p *perBatch) Finish() error {
	if !p.begun {
		return nil
	}
	return p.close(p.last)
}

// close writes out and commits the target in hand; b, its last batch,
// names it in an error.
func (p *perBatch) close(b stage.Batch) error {
	p.begun = false
	h, holds := p.f.(holding)
	var held int64
	if holds {
		if held = h.HeldBytes(); held == 0 {
			return nil // no records: no file (see perBatch)
		}
		if err := p.openTarget(); err != nil {
			return err // (the next batch has an encoder of its own)
		}
	}
	err := p.f.Flush()
	if err != nil && holds {
		err = fmt.Errorf("%v: %w", b, err) // the file of the batches up to b
	} else if err == nil {
		if err = p.w.Flush(); err != nil {
			err = fmt.Errorf("writing output: %w", err)
		}
	}
	t := p.t
	p.t = nil
	p.w.Reset(nil)
	if err != nil {
		t.abort()
		return err
	}
	if s, ok := t.(sizer); ok && holds {
		p.ratio = float64(s.size()) / float64(held)
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
	p.begun = false
	if p.t != nil {
		p.t.abort()
		p.t = nil
	}
	return nil
}

package main

import (
	"fmt"
	"io"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/input"
	"github.com/dstream/dstream/record"
)

// chunk is a run of decoded records handed from the producer to the batcher:
// one channel operation per chunk, not per record.
type chunk struct {
	block   []byte  // records as in a Records frame: (uvarint length, msgpack)*
	n       int     // records in block
	times   []int64 // event time of each record (unix ms), with --time-field
	skipped int     // bad records skipped (--skip-bad)
	err     error   // the error that ended the input, after the records above
	eof     bool    // the input has ended

	// With --checkpoint a chunk holds records of one source, and says where
	// each ends in its file (see tracker).
	file      int     // index of the file in config.files
	ends      []int64 // byte offset in the file after each record
	done      bool    // the file ends after these records, at byte size
	size      int64
	replay    bool // the records are a replayed batch's
	replayEnd bool // the replayed batch ends after these records
}

func (c *chunk) reset() {
	c.block, c.n, c.times, c.skipped, c.err, c.eof = c.block[:0], 0, c.times[:0], 0, nil, false
	c.file, c.ends, c.done, c.size, c.replay, c.replayEnd = 0, c.ends[:0], false, 0, false, false
}

// chunkBytes and chunkRecords bound a chunk. Each chunk costs a channel
// operation and often a goroutine wake-up: 1024 records made 5,000 of them
// for 5 M one-word lines, and 2-3,000 context switches; the byte bound
// (about 5,000 such records) now cuts first.
const (
	chunkBytes   = 64 << 10
	chunkRecords = 8192
)

// producer decodes the sources in its own goroutine. It hands over the chunk
// in hand whenever it is full, and also just before each read from the
// input, since that read may block: so a record never waits on input that
// has not come yet, and a slow trickle of lines still leaves at once.
type producer struct {
	srcs  []source
	cfg   *config
	out   chan *chunk
	free  chan *chunk
	cur   *chunk
	rec   []byte
	track bool // --checkpoint: chunks say where their records end
	// more yields the sources after srcs (--watch); false when there are
	// no more.
	more func() (source, bool, error)
	src  *source // the source being read
}

func newProducer(srcs []source, cfg *config) *producer {
	p := &producer{srcs: srcs, cfg: cfg, track: cfg.checkpoint != "", out: make(chan *chunk, 2), free: make(chan *chunk, 4)}
	for range 4 {
		p.free <- new(chunk)
	}
	return p
}

// flushReader hands over the chunk in hand before every read.
type flushReader struct {
	r io.Reader
	p *producer
}

func (f flushReader) Read(b []byte) (int, error) {
	f.p.flush()
	return f.r.Read(b)
}

func (p *producer) flush() {
	if c := p.cur; c != nil && (c.n > 0 || c.skipped > 0 || c.done || c.replayEnd) {
		p.out <- c
		p.cur = nil
	}
}

func (p *producer) chunk() *chunk {
	if p.cur == nil {
		p.cur = <-p.free
		p.cur.reset()
		if p.src != nil {
			p.cur.file, p.cur.replay = p.src.file, p.src.replay
		}
	}
	return p.cur
}

func (p *producer) run() {
	err := p.decodeAll()
	c := p.chunk()
	c.err, c.eof = err, err == nil
	p.out <- c
	p.cur = nil
	for _, s := range p.srcs {
		s.r.Close()
	}
}

func (p *producer) decodeAll() error {
	for i := 0; ; i++ {
		var s *source
		switch {
		case i < len(p.srcs):
			s = &p.srcs[i]
		case p.more != nil:
			p.flush() // the records read so far leave while more are awaited
			next, ok, err := p.more()
			if err != nil || !ok {
				return err
			}
			s = &next
		default:
			return nil
		}
		if p.track {
			// A chunk holds records of one source (the chunk of the one
			// before was handed over at its end), and the batcher learns
			// where each source ends.
			p.src = s
		}
		dec, err := input.NewAt(p.cfg.format, flushReader{s.r, p}, s.name, s.start, s.at)
		if err == nil {
			err = p.decode(dec, s.name)
		}
		if i >= len(p.srcs) {
			s.r.Close() // run closes srcs; this one is done with
		}
		if err != nil {
			return err
		}
		if p.track {
			c := p.chunk()
			if s.replayEnd {
				c.replayEnd = true
			} else if !s.replay {
				c.done, c.size = true, dec.Offset()
			}
			p.flush()
			p.src = nil
		}
	}
}

func (p *producer) decode(dec input.Decoder, name string) error {
	var err error
	for {
		p.rec, err = dec.Next(p.rec[:0])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if p.cfg.skipBad && input.IsBad(err) {
				p.chunk().skipped++
				continue
			}
			return err
		}
		c := p.chunk()
		if p.cfg.timeField != "" {
			t, err := p.eventTime(p.rec)
			if err != nil {
				ierr := &input.Error{Name: name, Err: err, Bad: true}
				ierr.Line, ierr.Unit = dec.Pos()
				if p.cfg.skipBad {
					c.skipped++
					continue
				}
				return ierr
			}
			c.times = append(c.times, t)
		}
		if len(p.rec) > framing.MaxRecord {
			return &input.Error{Name: name, Err: fmt.Errorf("record of %d bytes exceeds the limit of %d", len(p.rec), framing.MaxRecord)}
		}
		c.block = framing.AppendRecord(c.block, p.rec)
		c.n++
		if p.track {
			c.ends = append(c.ends, dec.Offset())
		}
		if c.n >= chunkRecords || len(c.block) >= chunkBytes {
			p.flush()
		}
	}
}

func (p *producer) eventTime(rec []byte) (int64, error) {
	raw, ok, err := record.Get(rec, p.cfg.timeField)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("no time field %q", p.cfg.timeField)
	}
	t, err := input.EventTime(raw, p.cfg.unit)
	if err != nil {
		return 0, fmt.Errorf("field %q: %w", p.cfg.timeField, err)
	}
	return t, nil
}

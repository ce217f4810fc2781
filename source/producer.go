package source

import (
	"fmt"
	"io"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
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

	// With a checkpoint a chunk holds records of one input, and says where
	// each ends in its stream (see Tracker).
	stream    int     // Input.Stream
	ends      []int64 // offset in the stream after each record (Position.Off)
	done      bool    // the stream ends after these records, at offset size
	size      int64
	replay    bool  // the records are a replayed batch's
	replayEnd bool  // the replayed batch ends after these records
	skipEnd   int64 // a feed: the position after bad messages skipped after the records (0: none)
}

func (c *chunk) reset() {
	c.block, c.n, c.times, c.skipped, c.err, c.eof = c.block[:0], 0, c.times[:0], 0, nil, false
	c.stream, c.ends, c.done, c.size, c.replay, c.replayEnd, c.skipEnd = 0, c.ends[:0], false, 0, false, false, 0
}

// chunkBytes and chunkRecords bound a chunk. Each chunk costs a channel
// operation and often a goroutine wake-up: 1024 records made 5,000 of them
// for 5 M one-word lines, and 2-3,000 context switches; the byte bound
// (about 5,000 such records) now cuts first.
const (
	chunkBytes   = 64 << 10
	chunkRecords = 8192
)

// producer decodes the inputs in its own goroutine. It hands over the chunk
// in hand whenever it is full, and also just before each read from the
// input, since that read may block: so a record never waits on input that
// has not come yet, and a slow trickle of lines still leaves at once.
type producer struct {
	src   Source
	o     *Options
	out   chan *chunk
	free  chan *chunk
	cur   *chunk
	rec   []byte
	track bool   // with a checkpoint: chunks say where their records end
	in    *Input // the input being read, when tracked
	stop  <-chan struct{}
	rate  struct { // --max-rate: records since start
		start time.Time
		n     int64
	}
}

func newProducer(src Source, o Options, stop <-chan struct{}) *producer {
	// Chunks in flight: 4. With the continuous trigger a batch is the
	// chunks waiting when the batcher comes for them, so more of them let
	// batches grow while the stages after sbatch are busy (a fast input: a
	// file) and so cut fewer, larger batches, each costing a batch's
	// output downstream; a slow input still has each chunk cut alone.
	n := 4
	if o.Continuous {
		n = continuousChunks
	}
	p := &producer{src: src, o: &o, track: o.Checkpoint != "", stop: stop, out: make(chan *chunk, n-2), free: make(chan *chunk, n)}
	for range n {
		p.free <- new(chunk)
	}
	return p
}

// continuousChunks is the chunks in flight with the continuous trigger: a
// batch of up to 2 MiB when the input outpaces the pipeline.
const continuousChunks = 32

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
		if m := p.o.Meter; m != nil {
			m.Records.Add(int64(c.n))
		}
		p.out <- c
		p.cur = nil
	}
}

func (p *producer) chunk() *chunk {
	if p.cur == nil {
		p.cur = <-p.free
		p.cur.reset()
		if p.in != nil {
			p.cur.stream, p.cur.replay = p.in.Stream, p.in.Replay
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
	p.src.Close() // the inputs not read, after an error
}

func (p *producer) decodeAll() error {
	for {
		p.flush() // the records read so far leave while the next input is awaited
		s, ok, err := p.src.Next()
		if err != nil || !ok {
			return err
		}
		if p.track {
			// A chunk holds records of one input (the chunk of the one
			// before was handed over at its end), and the batcher learns
			// where each input ends.
			p.in = &s
		}
		var dec codec.Decoder
		if s.Feed != nil {
			err = p.feed(&s)
			s.Feed.Close()
		} else {
			dec, err = newDecoder(p.o.Format, &s, flushReader{s.R, p}, p.o.Meter)
			if err == nil {
				err = p.decode(dec, s.Name)
			}
			s.R.Close()
		}
		if err != nil {
			return err
		}
		if p.track {
			c := p.chunk()
			if s.ReplayEnd {
				c.replayEnd = true
			} else if !s.Replay && dec != nil {
				c.done, c.size = true, dec.Offset()
			}
			p.flush()
			p.in = nil
		}
	}
}

func (p *producer) decode(dec codec.Decoder, name string) error {
	var err error
	for {
		p.rec, err = dec.Next(p.rec[:0])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if p.o.SkipBad && codec.IsBad(err) {
				p.chunk().skipped++
				continue
			}
			return err
		}
		c := p.chunk()
		if p.o.TimeField != "" {
			t, err := p.eventTime(p.rec)
			if err != nil {
				ierr := &codec.Error{Name: name, Err: err, Bad: true}
				ierr.Line, ierr.Unit = dec.Pos()
				if p.o.SkipBad {
					c.skipped++
					continue
				}
				return ierr
			}
			c.times = append(c.times, t)
		}
		if len(p.rec) > framing.MaxRecord {
			return &codec.Error{Name: name, Err: fmt.Errorf("record of %d bytes exceeds the limit of %d", len(p.rec), framing.MaxRecord)}
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
	raw, ok, err := record.Get(rec, p.o.TimeField)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("no time field %q", p.o.TimeField)
	}
	t, err := codec.EventTime(raw, p.o.Unit)
	if err != nil {
		return 0, fmt.Errorf("field %q: %w", p.o.TimeField, err)
	}
	return t, nil
}

package join

import (
	"fmt"
	"io"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// Static joins each record of the stream with the rows of a static table of
// the same key (Structured Streaming's stream-static join): inner, or left
// outer, where a record without a match comes out once with every column of
// the table null. It is a stage.Handler; each input batch gives one output
// batch, with its id and time.
//
// The table is loaded when Static is made, and before each batch, if its
// source says it changed (Source.Changed), loaded again: a batch is joined
// with the table as it was at the batch's start. A table that cannot be
// loaded again is noted (on stderr, in sjoin) and the one loaded before is
// kept.
type Static struct {
	out   *framing.Writer
	o     Options
	src   *Source
	t     *Table
	stats *stage.Stats
	notes io.Writer
	c     *composer

	ahead    [32]ahead // the records in hand
	keys     []byte    // their keys
	sink     uint64    // what touches read, so that they are not left out
	buf      []byte
	nrec     int
	lastNote string // the last failed reload noted, so as not to repeat it
}

// ahead is a record in hand of Block.
type ahead struct {
	p         probe
	key       pairRange // in Static.keys
	h         uint64
	g         Group
	bad, null bool
}

// NewStatic loads the table of src and returns the handler writing to out.
// stats gets the table's size and the skipped records (nil: none kept);
// notes gets a line for each reload, and each failed one.
func NewStatic(o Options, src *Source, out *framing.Writer, stats *stage.Stats, notes io.Writer) (*Static, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.How != Inner && o.How != Left {
		return nil, stage.UsageError("--how %v with --table: a static table joins inner or left (as Spark's stream-static joins): the table's rows without a match would come out again at every batch", o.How)
	}
	t, err := src.Load(o.On)
	if err != nil {
		return nil, err
	}
	if stats == nil {
		stats = new(stage.Stats)
	}
	if notes == nil {
		notes = io.Discard
	}
	s := &Static{out: out, o: o, src: src, t: t, stats: stats, notes: notes, c: newComposer(o.On, o.Prefix)}
	for i := range s.ahead {
		s.ahead[i].p.spans = make([]record.Span, len(o.On))
	}
	return s, nil
}

// Table is the table the next batch is joined with.
func (s *Static) Table() *Table { return s.t }

// Close closes the table's source.
func (s *Static) Close() error { return s.src.Close() }

// Begin loads the table again if it changed, and opens the output batch.
func (s *Static) Begin(b stage.Batch) error {
	s.reload(b)
	s.nrec = 0
	return s.out.BeginBatch(b.ID, b.Time)
}

func (s *Static) reload(b stage.Batch) {
	ch, err := s.src.Changed()
	if err == nil && ch {
		start := time.Now()
		var t *Table
		if t, err = s.src.Load(s.o.On); err == nil {
			s.t, s.lastNote = t, ""
			fmt.Fprintf(s.notes, "sjoin: note: %s loaded again before %v: %d rows, %d keys, in %v\n",
				s.src, b, t.Len(), t.Keys(), time.Since(start).Round(time.Millisecond))
			return
		}
	}
	if err != nil {
		if msg := err.Error(); msg != s.lastNote {
			s.lastNote = msg
			fmt.Fprintf(s.notes, "sjoin: note: %v; %v and the next batches are joined with the table loaded at %s until it can be read again\n",
				err, b, s.src.loaded.Format(time.RFC3339))
		}
	}
}

// Block joins each record. It takes the records a few dozen at a time, in
// three passes (take apart, hash and touch the index; look up; write), so
// that the cache misses of their lookups overlap rather than follow one
// another: a lookup in a table of a million rows is two misses, and the
// misses are most of its cost (measured: 1.6x the speed of one record at a
// time).
func (s *Static) Block(b stage.Batch, recs framing.Records) error {
	t := s.t
	for recs.Len() > 0 {
		n := min(recs.Len(), len(s.ahead))
		s.keys = s.keys[:0]
		for j := range n {
			a := &s.ahead[j]
			rec, _ := recs.Next()
			s.nrec++
			a.bad, a.null = false, false
			if err := a.p.parse(rec, s.o.On, &t.rest); err != nil {
				if !s.o.SkipBad {
					return agg.BadRecord(where(b, s.nrec), rec, err)
				}
				s.stats.Skipped++
				a.bad = true
				continue
			}
			start := len(s.keys)
			var ok bool
			if s.keys, ok = a.p.key(s.keys); !ok {
				a.null = true
				continue
			}
			a.key = pairRange{int32(start), int32(len(s.keys))}
			a.h = t.hash(s.keys[start:])
		}
		// Tight loops of independent loads: the processor has many of
		// their misses in flight at once.
		var sink uint64
		for j := range n {
			if a := &s.ahead[j]; !a.bad && !a.null {
				sink ^= t.touch(a.h)
			}
		}
		for j := range n {
			if a := &s.ahead[j]; !a.bad && !a.null {
				sink ^= t.touchGroup(a.h)
			}
		}
		s.sink ^= sink
		for j := range n {
			if a := &s.ahead[j]; !a.bad && !a.null {
				a.g = t.lookup(s.keys[a.key.start:a.key.end], a.h)
			}
		}
		for j := range n {
			a := &s.ahead[j]
			if a.bad {
				continue
			}
			matched := false
			if !a.null {
				for _, body, ok := a.g.Next(); ok; _, body, ok = a.g.Next() {
					s.buf = s.c.appendJoined(s.buf[:0], &a.p, &t.rest, body)
					if err := s.out.WriteRecord(s.buf); err != nil {
						return err
					}
					matched = true
				}
			}
			if !matched && s.o.How == Left {
				s.buf = s.c.appendJoined(s.buf[:0], &a.p, &t.rest, t.rest.null())
				if err := s.out.WriteRecord(s.buf); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// End reports the table's size and closes the output batch.
func (s *Static) End(stage.Batch) error {
	s.stats.State = &stage.StateStats{NumRowsTotal: int64(s.t.Len()), MemoryUsedBytes: s.t.MemoryUsed()}
	return s.out.EndBatch()
}

// Watermark passes the watermark on: the table has no time.
func (s *Static) Watermark(t int64) error { return s.out.Watermark(t) }

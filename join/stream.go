package join

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// StreamOptions are the options of a join of two streams over event time
// (sjoin --mode stream).
type StreamOptions struct {
	// TimeField is the field of each record's event time (--time-field),
	// read in Unit as swindow reads it; "" for none, when there is no
	// watermark.
	TimeField string
	Unit      codec.TimeUnit
	// Watermark, when HasWatermark, is how late a record may come
	// (--watermark): the watermark is the lower of the two sides' latest
	// event times minus Watermark.
	Watermark    time.Duration
	HasWatermark bool
	// Within, when HasWithin, is the time-range condition (--within): two
	// records match only when their event times are at most Within apart.
	Within    time.Duration
	HasWithin bool
	// Checkpoint is the checkpoint directory where both sides' state is
	// saved after each batch, and restored from on a restart; "" for none.
	// Name is the state's name there (--name).
	Checkpoint, Name string
}

// Stream joins two streams over event time (Structured Streaming's
// stream-stream join, a symmetric hash join): each side keeps its records
// across batches, each new record is joined with the other side's records
// of its key (within --within of its time), and the watermark drops the
// records no later record can match, writing those of an outer side that
// matched nothing with the other side's fields null. It is a
// stage.MultiHandler over two inputs, the left (0) and the right (1),
// aligned by stage.LoopInputs; each aligned batch gives one output batch,
// with its id and time.
//
// In a batch the left's records are taken first, each joined with the
// right's state of the batches before; then the right's, each joined with
// the left's state, this batch's records included (Spark's order: every
// pair is found once). A record whose time is at or before the watermark
// of the batch's start is late: dropped and counted. At the batch's end the
// watermark moves to the lower of the two sides' latest event times minus
// --watermark (once both sides have had a record), and the rows it passes
// leave the state: with --within W a row of time t once t + W is at or
// before it (no record after the watermark can be within W of it); when
// the time field is a key field, a row once t is at or before it (a later
// record has another key). Without either, rows never leave: the state
// grows with the stream, as Spark's does.
type Stream struct {
	out   *framing.Writer
	o     Options
	so    StreamOptions
	c     *composer
	stats *stage.Stats

	sides  [2]*side
	keep   [2]bool // the side's unmatched records come out (outer)
	evicts bool    // rows leave the state
	within int64   // ms, with evicts: a row leaves once t + within <= wm
	wm     int64
	hasWM  bool

	state     *checkpoint.State
	replaying func() bool

	right   []byte // the right's records of the batch in hand, framed as a block
	nright  int
	nrec    [2]int
	added   int // rows added to the state in the batch in hand
	nLate   uint64
	started bool
	lastID  uint64
	last    int64

	p, q  probe
	f     record.Fields
	rb    record.Builder
	kb    []byte
	body  []byte
	syn   []byte
	shape []byte
	buf   []byte
	spans []record.Span
}

// NewStream returns the event-time join writing to out. It opens the
// checkpoint's state (see StreamOptions.Checkpoint), refusing one written
// with other options. stats gets the state's size, the late and skipped
// records and the watermark of each batch (nil: none kept); replaying tells
// at the first batch whether the pipeline's source replays from its
// checkpoint (stage.Env.Replaying; nil: never).
func NewStream(o Options, so StreamOptions, out *framing.Writer, stats *stage.Stats, replaying func() bool) (*Stream, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	timeKey := so.TimeField != "" && slices.Contains(o.On, so.TimeField)
	switch {
	case (so.HasWatermark || so.HasWithin) && so.TimeField == "":
		return nil, stage.UsageError("--watermark and --within read each record's event time: add --time-field F")
	case so.HasWithin && !so.HasWatermark:
		return nil, stage.UsageError("--within bounds the state only with a watermark: add --watermark DUR")
	case so.HasWithin && so.Within < 0, so.HasWatermark && so.Watermark < 0:
		return nil, stage.UsageError("--watermark and --within take durations of 0 or more")
	case o.How != Inner && !(so.HasWatermark && (so.HasWithin || timeKey)):
		return nil, stage.Hint(stage.UsageError("--how %v with --mode stream needs --watermark, and --within (or the time field among --on)", o.How),
			"a record is known to have no match only once the watermark has passed every time a match could have: as Spark, an outer stream-stream join needs a watermark and a time-range condition")
	}
	if stats == nil {
		stats = new(stage.Stats)
	}
	s := &Stream{out: out, o: o, so: so, c: newComposer(o.On, o.Prefix), stats: stats, replaying: replaying,
		keep: [2]bool{o.How.keepsLeft(), o.How.keepsRight()}}
	s.sides = [2]*side{newSide(len(o.On)), newSide(len(o.On))}
	if so.HasWatermark && (so.HasWithin || timeKey) {
		s.evicts = true
		if so.HasWithin && !timeKey {
			s.within = so.Within.Milliseconds()
		}
	}
	s.p.spans = make([]record.Span, len(o.On))
	s.q.spans = make([]record.Span, len(o.On))
	s.spans = make([]record.Span, 1)
	if so.Checkpoint != "" {
		var err error
		if s.state, err = checkpoint.OpenState(so.Checkpoint, so.Name, s.fingerprint(), "each join's keys, type and times"); err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
	}
	return s, nil
}

// fingerprint names the options whose state this is: another key, type of
// join or time condition would misread it.
func (s *Stream) fingerprint() string {
	return fmt.Sprintf("sjoin/1 on=%q how=%v time=%q within=%v evicts=%v", s.o.On, s.o.How, s.so.TimeField, s.within, s.evicts)
}

// Begin restores the state the first batch needs, and opens the output
// batch.
func (s *Stream) Begin(a *stage.Aligned) error {
	if s.state != nil {
		if err := s.state.Begin(a.ID, s.replaying != nil && s.replaying(), s.load); err != nil {
			return err
		}
	}
	s.right, s.nright, s.nrec, s.added, s.nLate = s.right[:0], 0, [2]int{}, 0, 0
	return s.out.BeginBatch(a.ID, a.Time)
}

// Block joins the left's records as they come, and keeps the right's for
// the batch's end.
func (s *Stream) Block(a *stage.Aligned, input int, recs framing.Records) error {
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		s.nrec[input]++
		if input == 1 {
			s.right = framing.AppendRecord(s.right, rec)
			s.nright++
			continue
		}
		if err := s.take(a, 0, s.nrec[0], rec); err != nil {
			return err
		}
	}
	return nil
}

// take joins a record of side i with the other side's state and keeps it in
// its side's.
func (s *Stream) take(a *stage.Aligned, i, n int, rec []byte) error {
	me, other := s.sides[i], s.sides[1-i]
	p := &s.p
	t, err := s.parse(p, i, rec)
	if err != nil {
		if s.o.SkipBad {
			s.stats.Skipped++
			return nil
		}
		name := "left"
		if i == 1 {
			name = "right"
		}
		return agg.BadRecord(fmt.Sprintf("%s %v, record %d", name, a.In[i], n), rec, err)
	}
	if s.hasWM && t <= s.wm {
		s.nLate++
		return nil
	}
	if !me.seenT || t > me.maxT {
		me.maxT, me.seenT = t, true
	}
	key, ok := p.key(s.kb[:0])
	s.kb = key
	matched := false
	if ok {
		for r := other.first(key); r >= 0; r = other.rows[r].next {
			o := &other.rows[r]
			if s.so.HasWithin && !s.near(t, o.t) {
				continue
			}
			o.matched, matched = true, true
			if err := s.writePair(i, p, other, r); err != nil {
				return err
			}
		}
	} else if !s.keep[i] {
		return nil // no match can come, and it does not come out alone
	}
	// The record's body: a map of its other fields.
	s.body = record.AppendMapHeader(s.body[:0], p.n)
	for _, r := range p.ranges {
		s.body = append(s.body, rec[r.start:r.end]...)
	}
	s.syn = s.syn[:0]
	for _, sp := range p.spans {
		if sp.End == 0 {
			s.syn = record.AppendNil(s.syn)
		} else {
			s.syn = append(s.syn, rec[sp.Start:sp.End]...)
		}
	}
	var k []byte
	if ok {
		k = key
	}
	if _, err := me.add(k, t, matched, s.syn, s.body); err != nil {
		return err
	}
	s.added++
	return nil
}

// near reports whether two event times are within --within.
func (s *Stream) near(a, b int64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= s.so.Within.Milliseconds()
}

// parse takes rec, a record of side i, apart (p) and returns its event
// time, adding its fields to its side's columns.
func (s *Stream) parse(p *probe, i int, rec []byte) (int64, error) {
	var right *colset // what a left record's fields may clash with
	if i == 0 {
		right = &s.sides[1].cols
	}
	if err := p.parse(rec, s.o.On, right); err != nil {
		return 0, err
	}
	me := s.sides[i]
	// The side's columns: most records have the fields of the one before,
	// in the same order, which a comparison of their names tells without
	// a map lookup per field.
	s.shape = s.shape[:0]
	s.f.Reset(rec)
	for s.f.Next() {
		s.shape = append(binary.AppendUvarint(s.shape, uint64(len(s.f.Key()))), s.f.Key()...)
	}
	if !bytes.Equal(s.shape, me.shape) {
		me.shape = append(me.shape[:0], s.shape...)
		s.f.Reset(rec)
		for s.f.Next() {
			if !isKeyAt(p, int32(s.f.End())) {
				me.cols.add(s.f.Key())
			}
		}
	}
	if s.so.TimeField == "" {
		return 0, nil
	}
	if err := record.Pick(rec, []string{s.so.TimeField}, s.spans); err != nil {
		return 0, err
	}
	sp := s.spans[0]
	if sp.End == 0 {
		return 0, fmt.Errorf("no time field %q", s.so.TimeField)
	}
	t, err := codec.EventTime(rec[sp.Start:sp.End], s.so.Unit)
	if err != nil {
		return 0, fmt.Errorf("field %q: %w", s.so.TimeField, err)
	}
	return t, nil
}

// isKeyAt reports whether the field ending at end is one of p's key fields.
func isKeyAt(p *probe, end int32) bool {
	for _, sp := range p.spans {
		if sp.End == end {
			return true
		}
	}
	return false
}

// writePair writes the record joining p, a new record of side i, with row r
// of the other side: left fields first whichever side is new.
func (s *Stream) writePair(i int, p *probe, other *side, r int32) error {
	if i == 0 {
		s.buf = s.c.appendJoined(s.buf[:0], p, &s.sides[1].cols, other.body(r))
		return s.out.WriteRecord(s.buf)
	}
	// A right record: the left row becomes the probe, the record's other
	// fields the body.
	if err := s.rowProbe(&s.q, other, r); err != nil {
		return err
	}
	s.body = record.AppendMapHeader(s.body[:0], p.n)
	for _, rg := range p.ranges {
		s.body = append(s.body, p.rec[rg.start:rg.end]...)
	}
	s.buf = s.c.appendJoined(s.buf[:0], &s.q, &s.sides[1].cols, s.body)
	return s.out.WriteRecord(s.buf)
}

// rowProbe makes q the probe of row r of a left side: a record of its key
// fields and its other fields.
func (s *Stream) rowProbe(q *probe, left *side, r int32) error {
	raw, body := left.rawKeys(r), left.body(r)
	n, hdr, err := record.MapLen(body)
	if err != nil {
		return err
	}
	s.syn = record.AppendMapHeader(s.syn[:0], len(s.o.On)+n)
	for _, k := range s.o.On {
		l := valueLen(raw)
		s.syn = append(record.AppendString(s.syn, k), raw[:l]...)
		raw = raw[l:]
	}
	s.syn = append(s.syn, body[hdr:]...)
	return q.parse(s.syn, s.o.On, &s.sides[1].cols)
}

// End takes the right's records, moves the watermark, drops the rows it
// passes (writing the unmatched ones of an outer side), saves the state and
// closes the output batch.
func (s *Stream) End(a *stage.Aligned) error {
	recs := framing.NewRecords(s.right, s.nright)
	n := 0
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		n++
		if err := s.take(a, 1, n, rec); err != nil {
			return err
		}
	}
	l, r := s.sides[0], s.sides[1]
	moved := false
	if s.so.HasWatermark && l.seenT && r.seenT {
		if wm := min(l.maxT, r.maxT) - s.so.Watermark.Milliseconds(); !s.hasWM || wm > s.wm {
			s.wm, s.hasWM, moved = wm, true, true
		}
	}
	removed := 0
	if s.evicts && s.hasWM {
		for i := range 2 {
			k, err := s.evict(i, s.wm-s.within)
			if err != nil {
				return err
			}
			removed += k
		}
	}
	s.report(removed)
	if s.state != nil {
		if err := s.state.Save(a.ID, a.Time, s.save); err != nil {
			return err
		}
	}
	s.started, s.lastID, s.last = true, a.ID, a.Time
	if err := s.out.EndBatch(); err != nil {
		return err
	}
	if moved {
		return s.out.Watermark(s.wm)
	}
	return nil
}

// evict drops the rows of side i at or before cutoff, writing those of an
// outer side that matched nothing.
func (s *Stream) evict(i int, cutoff int64) (int, error) {
	var out func(r int32) error
	if s.keep[i] {
		out = func(r int32) error { return s.writeAlone(i, r) }
	}
	return s.sides[i].evict(cutoff, out)
}

// writeAlone writes row r of side i, if it matched nothing, with the other
// side's fields null.
func (s *Stream) writeAlone(i int, r int32) error {
	me := s.sides[i]
	if me.rows[r].matched {
		return nil
	}
	if i == 0 {
		if err := s.rowProbe(&s.q, me, r); err != nil {
			return err
		}
		s.buf = s.c.appendJoined(s.buf[:0], &s.q, &s.sides[1].cols, s.sides[1].cols.null())
		return s.out.WriteRecord(s.buf)
	}
	// A right row: its key values, the left's fields null, its fields.
	raw := me.rawKeys(r)
	s.rb.Reset()
	for _, k := range s.o.On {
		l := valueLen(raw)
		s.rb.Raw(k, raw[:l])
		raw = raw[l:]
	}
	for _, c := range s.sides[0].cols.names {
		s.rb.Raw(c, []byte{0xc0})
	}
	if err := s.q.parse(s.rb.Bytes(), s.o.On, &s.sides[1].cols); err != nil {
		return err
	}
	s.buf = s.c.appendJoined(s.buf[:0], &s.q, &s.sides[1].cols, me.body(r))
	return s.out.WriteRecord(s.buf)
}

func (s *Stream) report(removed int) {
	l, r := s.sides[0], s.sides[1]
	s.stats.State = &stage.StateStats{
		NumRowsTotal:    int64(l.live + r.live),
		NumRowsUpdated:  int64(s.added),
		NumRowsRemoved:  int64(removed),
		MemoryUsedBytes: l.memory() + r.memory(),
	}
	s.stats.Late = s.nLate
	if s.hasWM {
		wm := s.wm
		s.stats.Watermark = &wm
	}
}

// Watermark ignores the inputs' watermarks: sjoin makes its own from the
// records' event times, as swindow does.
func (s *Stream) Watermark(int64) error { return nil }

// Finish is called at the end of both streams: nothing can come any more,
// so without a checkpoint the rows of an outer side that matched nothing
// come out, in one more batch numbered after the last (with a checkpoint
// they are kept for the next run, which goes on from them).
func (s *Stream) Finish() error {
	if !s.started || s.state != nil || (!s.keep[0] && !s.keep[1]) {
		return nil
	}
	any := false
	for i := range 2 {
		if s.keep[i] {
			for _, r := range s.sides[i].heap {
				any = any || !s.sides[i].rows[r].matched
			}
		}
	}
	if !any {
		return nil
	}
	if err := s.out.BeginBatch(s.lastID+1, s.last+1); err != nil {
		return err
	}
	for i := range 2 {
		if _, err := s.evict(i, 1<<63-1); err != nil {
			return err
		}
	}
	return s.out.EndBatch()
}

// Rows is the rows in each side's state.
func (s *Stream) Rows() (left, right int) { return s.sides[0].live, s.sides[1].live }

// MemoryUsed is the state's estimated size.
func (s *Stream) MemoryUsed() int64 { return s.sides[0].memory() + s.sides[1].memory() }

// The snapshot: the watermark, then each side (side.save).
func (s *Stream) save(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	b := appendBool(s.buf[:0], s.hasWM)
	b = binary.AppendVarint(b, s.wm)
	if _, err := bw.Write(b); err != nil {
		return err
	}
	var err error
	for _, sd := range s.sides {
		if b, err = sd.save(bw, b); err != nil {
			return err
		}
	}
	s.buf = b
	return bw.Flush()
}

func (s *Stream) load(data []byte) error {
	d := &decoder{b: data}
	s.hasWM = d.bool()
	s.wm = d.varint()
	for _, sd := range s.sides {
		if err := sd.load(d); err != nil {
			return err
		}
	}
	return d.end()
}

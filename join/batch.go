package join

import (
	"fmt"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// Batch joins the batch of the left stream with the batch of the right
// stream at the same batch time (DStream's join, leftOuterJoin,
// rightOuterJoin, fullOuterJoin, and cogroup). It is a stage.MultiHandler
// over two inputs, the left (0) and the right (1), which stage.LoopInputs
// aligns by batch time: a side without a batch at a time counts as an empty
// batch there. Each aligned batch gives one output batch, with its id and
// time.
//
// Joined records are the left records in order, each with its matches in
// the order of the right batch (or once with the right's fields null, with
// --how left or full), then, with --how right or full, the right records
// that matched nothing, with the left's fields null. The fields of an
// absent side are those its records had so far in the stream (at most
// maxNullColumns), so that the records of a join look alike.
//
// With Cogroup each key of either batch gives one record: the key fields,
// then "left" and "right", the lists of each side's records of that key
// (their other fields), keys in order of first appearance, the left's
// first. A null key is a key there, as in a groupBy.
type Batch struct {
	out     *framing.Writer
	o       Options
	cogroup bool
	names   [2]string
	c       *composer
	stats   *stage.Stats

	left  []byte // the left batch's records, framed as a block
	nleft int
	lb    *builder // cogroup: the left batch's rows
	rb    *builder // the right batch's rows
	nrec  [2]int

	leftCols, rightCols columns

	last  [2]int64 // the last batch time of each side
	seen  [2]bool
	gaps  [2]int   // gaps between its batches seen
	every [2]int64 // the greatest common divisor of the gaps: its interval

	p   probe
	f   record.Fields
	rb2 record.Builder
	buf []byte
	kb  []byte
}

// Cogroup's fields of each side's records.
const (
	CogroupLeft  = "left"
	CogroupRight = "right"
)

// maxNullColumns bounds the fields an absent side is given as nulls.
const maxNullColumns = 256

// columns are the field names one side's records had so far, in order of
// first appearance.
type columns struct {
	names []string
	seen  map[string]bool
}

func (c *columns) add(name []byte) {
	if c.seen[string(name)] || len(c.names) >= maxNullColumns {
		return
	}
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	c.seen[string(name)] = true
	c.names = append(c.names, string(name))
}

// NewBatch returns the per-batch join writing to out; right names the right
// input in messages. stats gets the skipped records (nil: none kept).
func NewBatch(o Options, cogroup bool, right string, out *framing.Writer, stats *stage.Stats) (*Batch, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if cogroup {
		for _, k := range o.On {
			if k == CogroupLeft || k == CogroupRight {
				return nil, stage.UsageError("--on %s with --cogroup: its records have the fields %q and %q, the lists of each side's records: rename the key field (smap --rename)", k, CogroupLeft, CogroupRight)
			}
		}
	}
	if stats == nil {
		stats = new(stage.Stats)
	}
	b := &Batch{out: out, o: o, cogroup: cogroup, names: [2]string{"left", right}, c: newComposer(o.On, o.Prefix), stats: stats}
	b.p.spans = make([]record.Span, len(o.On))
	return b, nil
}

// Begin checks that both sides keep one interval, and opens the output
// batch.
func (b *Batch) Begin(a *stage.Aligned) error {
	for i := range 2 {
		if !a.Has[i] {
			continue
		}
		if b.seen[i] {
			b.every[i] = gcd(b.every[i], a.In[i].Time-b.last[i])
			b.gaps[i]++
		}
		b.seen[i], b.last[i] = true, a.In[i].Time
	}
	// Three gaps a side at least: a source under load may skip a boundary
	// now and then, which the divisor sees through.
	if b.gaps[0] >= 3 && b.gaps[1] >= 3 && b.every[0] != b.every[1] {
		return stage.Hint(fmt.Errorf("the left's batches come every %v and the right's (%s) every %v: a per-batch join joins the batches of the same time",
			time.Duration(b.every[0])*time.Millisecond, b.names[1], time.Duration(b.every[1])*time.Millisecond),
			"cut both streams at one interval: the same sbatch -i (or swindow -s) on both sides")
	}
	b.left, b.nleft, b.nrec = b.left[:0], 0, [2]int{}
	b.rb = b.newBuilder(&b.rightCols)
	if b.cogroup {
		b.lb = b.newBuilder(&b.leftCols)
	}
	return b.out.BeginBatch(a.ID, a.Time)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// newBuilder returns the builder of a side's batch, its columns seeded with
// those the side had so far.
func (b *Batch) newBuilder(cols *columns) *builder {
	bl := newBuilder(b.o.On, true)
	bl.keepNull = b.cogroup || b.o.How.keepsRight()
	for _, c := range cols.names {
		bl.addColumn(c)
	}
	return bl
}

// Block takes the records of one side.
func (b *Batch) Block(a *stage.Aligned, input int, recs framing.Records) error {
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		b.nrec[input]++
		var err error
		switch {
		case input == 1:
			err = b.rb.add(rec)
		case b.cogroup:
			err = b.lb.add(rec)
		default:
			if _, _, err = record.MapLen(rec); err == nil {
				b.left = framing.AppendRecord(b.left, rec)
				b.nleft++
			}
		}
		if err != nil {
			if b.o.SkipBad {
				b.stats.Skipped++
				continue
			}
			side := "left"
			if input == 1 {
				side = "right (" + b.names[1] + ")"
			}
			return agg.BadRecord(fmt.Sprintf("%s %v, record %d", side, a.In[input], b.nrec[input]), rec, err)
		}
	}
	return nil
}

// End joins the two batches and closes the output batch.
func (b *Batch) End(a *stage.Aligned) error {
	rt := b.rb.finish()
	b.rightCols.names = b.rightCols.names[:0]
	clear(b.rightCols.seen)
	for _, c := range rt.cols {
		b.rightCols.add([]byte(c))
	}
	var err error
	if b.cogroup {
		lt := b.lb.finish()
		for _, c := range lt.cols {
			b.leftCols.add([]byte(c))
		}
		err = b.writeCogroup(lt, rt)
	} else {
		err = b.writeJoin(rt)
	}
	if err != nil {
		return err
	}
	return b.out.EndBatch()
}

func (b *Batch) writeJoin(rt *Table) error {
	var matched map[int]bool
	if b.o.How.keepsRight() {
		matched = map[int]bool{}
	}
	recs := framing.NewRecords(b.left, b.nleft)
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		if err := b.p.parse(rec, b.o.On, &rt.rest); err != nil {
			return err // checked in Block
		}
		b.f.Reset(rec)
		for b.f.Next() {
			b.leftCols.add(b.f.Key())
		}
		var g Group
		if key, ok := b.p.key(b.kb[:0]); ok {
			b.kb = key
			g = rt.Lookup(key)
		}
		if g.Len() == 0 {
			if b.o.How.keepsLeft() {
				if err := b.write(b.c.appendJoined(b.buf[:0], &b.p, &rt.rest, rt.rest.null())); err != nil {
					return err
				}
			}
			continue
		}
		if matched != nil {
			matched[g.off] = true
		}
		for _, body, ok := g.Next(); ok; _, body, ok = g.Next() {
			if err := b.write(b.c.appendJoined(b.buf[:0], &b.p, &rt.rest, body)); err != nil {
				return err
			}
		}
	}
	if matched == nil {
		return nil
	}
	var err error
	rt.Each(func(_ []byte, g Group) {
		if matched[g.off] || err != nil {
			return
		}
		for raw, body, ok := g.Next(); ok && err == nil; raw, body, ok = g.Next() {
			err = b.writeRightOnly(rt, raw, body)
		}
	})
	return err
}

// writeRightOnly writes a right row that matched nothing: its key values,
// the left's fields null, its other fields.
func (b *Batch) writeRightOnly(rt *Table, raw, body []byte) error {
	b.rb2.Reset()
	for _, k := range b.o.On {
		n, err := record.Skip(raw)
		if err != nil {
			panic("join: corrupt raw key") // built by Table
		}
		b.rb2.Raw(k, raw[:n])
		raw = raw[n:]
	}
	for _, c := range b.leftCols.names {
		if !contains(b.o.On, c) {
			b.rb2.Raw(c, []byte{0xc0})
		}
	}
	if err := b.p.parse(b.rb2.Bytes(), b.o.On, &rt.rest); err != nil {
		return err
	}
	return b.write(b.c.appendJoined(b.buf[:0], &b.p, &rt.rest, body))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (b *Batch) writeCogroup(lt, rt *Table) error {
	var err error
	done := map[int]bool{}
	lt.Each(func(key []byte, g Group) {
		if err == nil {
			rg := rt.Lookup(key)
			if rg.Len() > 0 {
				done[rg.off] = true
			}
			err = b.write(b.appendCogroup(b.buf[:0], g, rg))
		}
	})
	rt.Each(func(_ []byte, g Group) {
		if err == nil && !done[g.off] {
			err = b.write(b.appendCogroup(b.buf[:0], Group{}, g))
		}
	})
	return err
}

// appendCogroup appends the record of one key: its fields (the values of
// the first row, the left's if it has one), then the lists of the left's
// rows and of the right's.
func (b *Batch) appendCogroup(dst []byte, l, r Group) []byte {
	dst = record.AppendMapHeader(dst, len(b.o.On)+2)
	first := l
	if first.Len() == 0 {
		first = r
	}
	raw, _, _ := first.Next()
	for j := range b.o.On {
		n, err := record.Skip(raw)
		if err != nil {
			panic("join: corrupt raw key") // built by Table
		}
		dst = append(dst, b.c.onEnc[j]...)
		dst = append(dst, raw[:n]...)
		raw = raw[n:]
	}
	for _, side := range []struct {
		name string
		g    Group
	}{{CogroupLeft, l}, {CogroupRight, r}} {
		dst = record.AppendString(dst, side.name)
		dst = record.AppendArrayHeader(dst, side.g.Len())
		for _, body, ok := side.g.Next(); ok; _, body, ok = side.g.Next() {
			dst = append(dst, body...)
		}
	}
	return dst
}

func (b *Batch) write(rec []byte) error {
	b.buf = rec
	return b.out.WriteRecord(rec)
}

// Watermark passes the inputs' watermark on (their minimum, as
// stage.LoopInputs gives it).
func (b *Batch) Watermark(t int64) error { return b.out.Watermark(t) }

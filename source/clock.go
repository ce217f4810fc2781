package source

import (
	"fmt"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/stage"
)

// maxGap bounds the empty batches one jump in event time may create: a jump
// of more is far more likely a wrong --time-unit than a real gap.
const maxGap = 1_000_000

// batcher cuts the producer's records into batches and writes them.
type batcher struct {
	e      *stage.Env
	o      Options
	chunks <-chan *chunk
	free   chan<- *chunk
	w      *framing.Writer

	id      uint64 // id of the next batch
	open    bool
	stats   stage.Stats
	skipped uint64 // skipped records not yet reported

	// With -n the batch time is the time of the cut, unknown when the batch
	// opens: its records wait in pend (at most N of them).
	buffered bool
	pend     []byte
	pendN    int

	k        int64 // event time: the index of the batch in hand
	lastTime int64 // time of the last batch written

	ck *cursor // with a checkpoint, or nil
	// after: event time, resumed from a checkpoint: batch k is the last one
	// the last run wrote, and no batch is in hand yet.
	after bool
}

func (b *batcher) run() error {
	b.w = b.e.Out
	b.buffered = b.o.Count > 0
	if b.ck != nil && b.ck.t.Dir() != "" {
		if err := b.e.AnnounceCheckpoint(b.ck.t.Dir()); err != nil {
			return err
		}
		if stopped, err := b.resume(); err != nil || stopped {
			return err
		}
	}
	var err error
	switch {
	case b.o.TimeField != "":
		err = b.runEventTime()
	case b.o.Continuous:
		err = b.runContinuous()
	case b.o.Once && b.o.Count == 0:
		err = b.runOnce()
	case b.o.Count > 0 && !b.o.IntervalSet:
		err = b.runCount()
	default:
		err = b.runInterval()
	}
	if err != nil && b.open && !stage.IsClosedPipe(err) {
		// Nothing accepted is lost: the records read before the failure
		// leave in the batch in hand (the stream itself stays unended).
		b.end(max(nowMs(), b.stats.Batch.Time))
	}
	if stage.IsClosedPipe(err) && b.e.Stop.Requested() {
		// Ending the stream on a signal, to a reader that the signal
		// stopped first: the batch in hand is lost, which is no quiet end.
		var passed *uint64
		if b.id > 0 {
			last := b.id - 1
			passed = &last
		}
		return b.e.Stop.StopLoss(passed, err)
	}
	// b.id is the batch being written when a write fails.
	return stage.WithBatch(err, stage.Batch{ID: b.id})
}

func nowMs() int64 { return time.Now().UnixMilli() }

// begin opens a batch; t is its batch time (ignored when buffered: the time
// is given at the cut).
func (b *batcher) begin(t int64) error {
	b.open = true
	b.stats = stage.Stats{Batch: stage.Batch{ID: b.id, Time: t}, Start: time.Now(), Source: true}
	if b.buffered {
		b.pend, b.pendN = b.pend[:0], 0
		return nil
	}
	return b.w.BeginBatch(b.id, t)
}

// add writes a block of n records to the batch in hand.
func (b *batcher) add(block []byte, n int) error {
	b.stats.InputRows += uint64(n)
	if b.buffered {
		b.pend = append(b.pend, block...)
		b.pendN += n
		return nil
	}
	return b.w.WriteRawBlock(block, n)
}

// end closes the batch in hand; t is its batch time when buffered.
func (b *batcher) end(t int64) error {
	if !b.open {
		return nil
	}
	b.open = false
	if b.buffered {
		// Batch times rise strictly, also for two cuts in one millisecond.
		t = max(t, b.lastTime+1)
		b.stats.Batch.Time = t
	}
	if b.ck != nil {
		if err := b.ck.write(b.id, b.stats.Batch.Time); err != nil {
			return err
		}
		if o, ok := b.ck.t.(owner); ok {
			b.stats.Partitions = o.Owned()
		}
	}
	if b.buffered {
		if err := b.w.BeginBatch(b.id, t); err != nil {
			return err
		}
		recs := framing.NewRecords(b.pend, b.pendN)
		for {
			rec, ok := recs.Next()
			if !ok {
				break
			}
			if err := b.w.WriteRecord(rec); err != nil {
				return err
			}
		}
	}
	if err := b.w.EndBatch(); err != nil {
		return err
	}
	if b.ck != nil {
		if s, ok := b.ck.t.(sender); ok {
			s.Sent(b.id)
		}
	}
	b.lastTime = b.stats.Batch.Time
	b.stats.OutputRows = b.stats.InputRows
	b.stats.Skipped, b.skipped = b.skipped, 0
	b.e.Progress.Report(&b.stats)
	b.id++
	return nil
}

// finish ends the batch in hand after the last chunk (run ends it when the
// input ended in an error).
func (b *batcher) finish(c *chunk, t int64) error {
	if c.err != nil {
		return c.err
	}
	return b.end(t)
}

func (b *batcher) recycle(c *chunk) {
	if b.ck != nil {
		b.ck.taken(c)
	}
	b.skipped += uint64(c.skipped)
	if !c.eof && c.err == nil {
		b.free <- c
	}
}

// drain takes the chunks already decoded, without waiting for more: a stop
// keeps what was read.
func (b *batcher) drain(take func(*chunk) error) error {
	for {
		select {
		case c := <-b.chunks:
			if err := take(c); err != nil {
				return err
			}
			if c.eof || c.err != nil {
				return nil
			}
		default:
			return nil
		}
	}
}

func (b *batcher) runOnce() error {
	if err := b.begin(max(nowMs(), b.lastTime+1)); err != nil {
		return err
	}
	for c := range b.chunks {
		if err := b.add(c.block, c.n); err != nil {
			return err
		}
		b.recycle(c)
		if c.eof || c.err != nil {
			return b.finish(c, 0)
		}
	}
	return nil
}

// takeCounted adds a chunk's records, cutting a batch at every N records.
func (b *batcher) takeCounted(c *chunk, next int64) error {
	recs := framing.NewRecords(c.block, c.n)
	for recs.Len() > 0 {
		if !b.open {
			if err := b.begin(next); err != nil {
				return err
			}
		}
		take := min(b.o.Count-b.pendN, recs.Len())
		start, _ := recs.Rest()
		for range take {
			recs.Next()
		}
		rest, _ := recs.Rest()
		if err := b.add(start[:len(start)-len(rest)], take); err != nil {
			return err
		}
		if b.ck != nil {
			b.ck.record(c, c.n-recs.Len()-1)
		}
		if b.pendN == b.o.Count {
			if err := b.end(nowMs()); err != nil {
				return err
			}
		}
	}
	b.recycle(c)
	return nil
}

func (b *batcher) runCount() error {
	stop := b.e.Stop.RequestedC()
	take := func(c *chunk) error { return b.takeCounted(c, 0) }
	for {
		select {
		case c := <-b.chunks:
			if err := take(c); err != nil {
				return err
			}
			if c.eof || c.err != nil {
				return b.finish(c, nowMs())
			}
		case <-stop:
			if err := b.drain(take); err != nil {
				return err
			}
			return b.end(nowMs())
		}
	}
}

// nextBoundary is the first multiple of iv after t.
func nextBoundary(t, iv int64) int64 { return (floorDiv(t, iv) + 1) * iv }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (b *batcher) runInterval() error {
	iv := b.o.Interval
	next := nextBoundary(max(nowMs(), b.lastTime), iv)
	if err := b.begin(next); err != nil {
		return err
	}
	timer := time.NewTimer(time.Until(time.UnixMilli(next)))
	defer timer.Stop()
	stop := b.e.Stop.RequestedC()
	take := func(c *chunk) error {
		if b.buffered {
			return b.takeCounted(c, next)
		}
		if err := b.add(c.block, c.n); err != nil {
			return err
		}
		b.recycle(c)
		return nil
	}
	for {
		select {
		case c := <-b.chunks:
			if err := take(c); err != nil {
				return err
			}
			if c.eof || c.err != nil {
				return b.finish(c, next)
			}
		case <-timer.C:
			if err := b.end(next); err != nil {
				return err
			}
			next = nextBoundary(nowMs(), iv)
			if err := b.begin(next); err != nil {
				return err
			}
			timer.Reset(time.Until(time.UnixMilli(next)))
		case <-stop:
			if err := b.drain(take); err != nil {
				return err
			}
			return b.end(next)
		}
	}
}

// runContinuous cuts a batch at every hand-over of the producer (-i 0): a
// batch holds the chunk that came and those waiting behind it, and leaves at
// once. The producer hands its chunk over before every read from the input
// that may block, so a record waits for no later one. An empty batch leaves
// after o.Idle without records, so that time passes downstream. Batch times
// are the time of the cut, rising strictly: two cuts in one millisecond
// take the next (as -n does), so above 1,000 batches a second they run
// ahead of the clock.
func (b *batcher) runContinuous() error {
	idle := time.NewTimer(b.o.Idle)
	defer idle.Stop()
	stop := b.e.Stop.RequestedC()
	// cut writes a batch of c (nil: none) and of the chunks waiting behind
	// it; end tells the input ended.
	cut := func(c *chunk) (end bool, err error) {
		if err := b.begin(max(nowMs(), b.lastTime+1)); err != nil {
			return false, err
		}
		for c != nil {
			if err := b.add(c.block, c.n); err != nil {
				return false, err
			}
			b.recycle(c)
			if c.eof || c.err != nil {
				return true, b.finish(c, 0)
			}
			select {
			case c = <-b.chunks:
			default:
				c = nil
			}
		}
		return false, b.end(0)
	}
	for {
		var c *chunk
		select {
		case c = <-b.chunks:
			if (c.eof || c.err != nil) && c.n == 0 && c.skipped == 0 {
				// The end of the input, nothing read since the last batch.
				b.recycle(c)
				return c.err
			}
		case <-idle.C:
		case <-stop:
			_, err := cut(nil)
			return err
		}
		if end, err := cut(c); end || err != nil {
			return err
		}
		idle.Reset(b.o.Idle)
	}
}

func (b *batcher) runEventTime() error {
	stop := b.e.Stop.RequestedC()
	for {
		select {
		case c := <-b.chunks:
			if err := b.takeEventTime(c); err != nil {
				return err
			}
			if c.eof || c.err != nil {
				return b.finish(c, 0)
			}
		case <-stop:
			if err := b.drain(b.takeEventTime); err != nil {
				return err
			}
			return b.end(0)
		}
	}
}

// takeEventTime puts each record into the batch of its event time.
func (b *batcher) takeEventTime(c *chunk) error {
	iv := b.o.Interval
	recs := framing.NewRecords(c.block, c.n)
	for i := 0; i < c.n; i++ {
		rec, _ := recs.Next()
		k := floorDiv(c.times[i], iv)
		late := false
		switch {
		case !b.open && !b.after:
			b.k = k
			if err := b.begin((k + 1) * iv); err != nil {
				return err
			}
		case !b.open:
			// Batch b.k was the last one out before a restart: a record
			// of it or before is late and goes into the next.
			b.after = false
			if k <= b.k {
				k, late = b.k+1, true
			}
			if err := b.advance(k); err != nil {
				return err
			}
		case k > b.k:
			if err := b.end(0); err != nil {
				return err
			}
			if err := b.advance(k); err != nil {
				return err
			}
		case k < b.k:
			late = true
		}
		if late {
			b.stats.Late++
		}
		b.stats.InputRows++
		if err := b.w.WriteRecord(rec); err != nil {
			return err
		}
		if b.ck != nil {
			b.ck.record(c, i)
		}
	}
	b.recycle(c)
	return nil
}

// advance writes the empty batches after batch b.k and before batch k, and
// begins batch k.
func (b *batcher) advance(k int64) error {
	iv := b.o.Interval
	if gap := k - b.k - 1; gap > maxGap {
		return stage.Hint(fmt.Errorf("event time jumps from batch time %d to %d ms: %d empty batches", (b.k+1)*iv, (k+1)*iv, gap),
			"check --time-unit (s or ms) and -i; the limit is %d empty batches in a row", maxGap)
	}
	for j := b.k + 1; j < k; j++ {
		if err := b.begin((j + 1) * iv); err != nil {
			return err
		}
		if err := b.end(0); err != nil {
			return err
		}
	}
	b.k = k
	return b.begin((k + 1) * iv)
}

package source

import (
	"fmt"
	"time"

	"github.com/dstream/dstream/stage"
)

// resume replays the batches the sink has not committed, and sets the
// batcher to go on after the last batch of the last run (docs/design.md,
// "What a restart reads"). stopped is true
// when a signal came during the replay: the stream ends there, and the
// batches not replayed yet are replayed at the next start.
func (b *batcher) resume() (stopped bool, err error) {
	for _, e := range b.ck.t.Replay() {
		if b.e.Stop.Requested() {
			return true, nil
		}
		if err := b.replayBatch(e); err != nil {
			return false, err
		}
	}
	var resumed bool
	_, b.id, b.lastTime, resumed = b.ck.t.Resume()
	if b.o.TimeField != "" && resumed {
		b.k, b.after = floorDiv(b.lastTime, b.o.Interval)-1, true
	}
	return false, nil
}

// replayBatch writes batch e again: the records the producer decodes from
// its ranges, up to the chunk that ends it.
func (b *batcher) replayBatch(e stage.Batch) error {
	b.stats = stage.Stats{Batch: e, Start: time.Now(), Source: true}
	if err := b.w.BeginBatch(e.ID, e.Time); err != nil {
		return err
	}
	for {
		c := <-b.chunks
		if c.n > 0 {
			b.stats.InputRows += uint64(c.n)
			if err := b.w.WriteRawBlock(c.block, c.n); err != nil {
				return err
			}
		}
		end, err := c.replayEnd, c.err
		if c.eof && err == nil {
			err = fmt.Errorf("batch %d: its input ended before its offsets", e.ID) // cannot happen
		}
		b.recycle(c)
		if err != nil {
			return err
		}
		if end {
			break
		}
	}
	if err := b.w.EndBatch(); err != nil {
		return err
	}
	b.stats.OutputRows = b.stats.InputRows
	b.stats.Skipped, b.skipped = b.skipped, 0
	b.e.Progress.Report(&b.stats)
	b.id, b.lastTime = e.ID+1, e.Time
	return nil
}

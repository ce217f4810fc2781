package reduce

import (
	"sync"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
)

// partWorker fills the second part of a split table (agg.Table.Split) on a
// goroutine of its own, from copies of the batch's blocks, while the
// Engine fills the first part from the blocks themselves.
//
// Why copies, not the blocks: a block is valid only until Block returns,
// so filling the second part from it made every block a barrier, where
// the faster goroutine waited for the slower. Over 1 M distinct keys the
// first waited 50-70 ms of a 0.27 s batch there, mostly while the other
// grew an array (copied it into new memory, page by page faulted in).
// Copying a block costs a memmove of 64 KB; the parts now wait for each
// other once, at the batch's end.
type partWorker struct {
	t    *agg.Table
	in   chan partBlock
	free chan []byte // spent copies, for reuse
	wg   sync.WaitGroup
}

type partBlock struct {
	b []byte
	n int
}

// partQueue is how many blocks the worker may lag behind (64 KB each).
const partQueue = 16

func startPart(t *agg.Table) *partWorker {
	w := &partWorker{t: t, in: make(chan partBlock, partQueue), free: make(chan []byte, partQueue+1)}
	w.wg.Go(w.run)
	return w
}

func (w *partWorker) run() {
	for blk := range w.in {
		recs := framing.NewRecords(blk.b, blk.n)
		// A record that cannot be added is an error in the first part as
		// well (see agg.Table.Split), which reports it: skip it here.
		for {
			if _, err := w.t.AddBlock(&recs); err == nil {
				break
			}
		}
		select {
		case w.free <- blk.b[:0]:
		default:
		}
	}
}

// add hands the worker a copy of recs.
func (w *partWorker) add(recs framing.Records) {
	b, n := recs.Rest()
	var c []byte
	select {
	case c = <-w.free:
	default:
	}
	w.in <- partBlock{append(c, b...), n}
}

// wait returns once every block handed over is in the table; the worker
// is then gone.
func (w *partWorker) wait() {
	close(w.in)
	w.wg.Wait()
}

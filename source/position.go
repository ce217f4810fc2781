package source

import (
	"io"

	"github.com/dstream/dstream/stage"
)

// Position is where the input stands: in one of the streams a tracker
// keeps (a file of the FILE arguments; a broker's partition would be
// another), the offset after the last record taken (a byte offset in a
// file; a partition's next offset).
type Position struct {
	Stream int
	Off    int64
}

// Tracker keeps a replayable source's part of the checkpoint directory
// (DIR/offsets, docs/design.md, Checkpoint): before batch N leaves, what
// input it covers; on restart, the batches to replay and where to go on.
// The batcher moves the position record by record itself (cursor) and
// calls a Tracker only per chunk and per batch, so tracking costs no call
// per record. offsets.go has the tracker of files.
type Tracker interface {
	// Dir is the checkpoint directory.
	Dir() string
	// Inputs opens the input of this run: the input of the batches to
	// replay (ranges that end a replayed batch say so: ReplayEnd), then the
	// input from where the last run stopped on.
	Inputs() ([]Input, error)
	// Replay is the batches to replay before going on, in order, with the
	// ids and times they had.
	Replay() []stage.Batch
	// Resume is where the last run stopped: the position after its last
	// batch, the id of the batch after it and its batch time; resumed is
	// false when the last run wrote no batch.
	Resume() (at Position, next uint64, lastTime int64, resumed bool)
	// Reached tells that the input was taken up to at (all of a chunk);
	// end: its stream ends there (a file read to its end).
	Reached(at Position, end bool)
	// Write makes the entry of batch id durable, before the batch leaves
	// (invariant 1): the input from the end of the batch before it to at.
	Write(id uint64, time int64, at Position) error
}

// sender is a Tracker told when a batch has left (EndBatch written and
// flushed): a broker's, which then records the progress in the broker
// when there is no checkpoint.
type sender interface {
	Sent(id uint64)
}

// ender is a Tracker with work to do once the stream has ended well
// (its end written): a broker's that redelivers waits for the sink's last
// commits, to acknowledge their messages before its connection goes.
type ender interface {
	End()
}

// growing is a Tracker whose input grows while it runs (a watched
// directory): More yields the inputs found after those of Inputs, until
// stop, telling notes (stderr) of what a user should know.
type growing interface {
	More(stop <-chan struct{}, notes io.Writer) Source
}

// cursor moves the position as the batcher takes records.
type cursor struct {
	t   Tracker
	pos Position
}

// record moves the position to the end of record i of chunk c.
func (k *cursor) record(c *chunk, i int) { k.pos = Position{c.stream, c.ends[i]} }

// taken moves the position past all of chunk c.
func (k *cursor) taken(c *chunk) {
	if c.replay {
		return
	}
	if c.n > 0 {
		k.record(c, c.n-1)
	}
	if c.done {
		k.pos = Position{c.stream, c.size}
	}
	if c.skipEnd > 0 {
		k.pos = Position{c.stream, c.skipEnd}
	}
	if c.n > 0 || c.done || c.skipEnd > 0 {
		k.t.Reached(k.pos, c.done)
	}
}

// write writes the entry of batch id, cut at the position.
func (k *cursor) write(id uint64, time int64) error { return k.t.Write(id, time, k.pos) }

package stage

import (
	"fmt"
	"io"
	"time"

	"github.com/dstream/dstream/framing"
)

// A stage over several inputs (a union, a join) reads them with LoopInputs,
// which aligns their batches by batch time and their watermarks by their
// minimum.
//
// Alignment. Batch times rise strictly on every input (sbatch makes them so;
// LoopInputs checks it). LoopInputs waits until each input that has not
// ended has its next batch in view, takes the smallest batch time T among
// them, and hands the stage one aligned batch at T made of the batches of
// every input whose next batch is at T; an input whose next batch comes
// later has no batch at T (Aligned.Has is false for it) and keeps its batch
// for a later T. Aligned batches come out in rising T.
//
// The output batch. Its time is T and its id is the id of the batch at T of
// the lowest-numbered input that has one. A stage thereby writes only ids it
// received (docs/design.md, "Invariants of the checkpoint protocol", 4).
// Inputs with their own id sequences can make output ids repeat or fall,
// which only a sink with a checkpoint minds: so when an input announces a
// checkpoint (its source replays), every input with a batch must announce
// the same one, that is, come from the same source (tee), whose ids they
// share; an input that does not is refused at its first batch, and so are
// inputs announcing different checkpoints. Without any checkpoint, inputs
// of independent sources are taken as they are.
//
// Watermarks. As Spark's default multiple-watermark policy ("min"): the
// stage's watermark is the minimum of the latest watermarks of the inputs
// that have sent one, and it is passed on only when it rises. An input that
// has ended no longer holds it back. It is taken once every input that has
// not ended has its next batch in view, and passed on then, before the next
// aligned batch: so it depends on the streams only, not on the order in
// which frames of different inputs arrive. After the last input ends none
// is passed on: the end of the stream says more.
//
// Ending. An input that ends leaves the others to go on alone; LoopInputs
// returns nil once all have ended.
//
// Back-pressure. An input whose next batch comes later is not read until
// its turn. Inputs fed by one upstream (tee) with the same batch times go
// on; with different ones, the upstream may block on the input not being
// read once its pipe is full, and the stage with it.

// Input is one framed input of a stage over several.
type Input struct {
	Name string // for messages: "left", "right", a path
	R    *framing.Reader
}

// Aligned is the batch at one batch time over all inputs, as LoopInputs
// hands it to a MultiHandler. It is valid until End returns.
type Aligned struct {
	Batch         // the output batch: time T, id of the first input's batch at T
	In    []Batch // In[i]: input i's batch at T, when Has[i]
	Has   []bool  // whether input i has a batch at T
}

// MultiHandler is what a stage over several inputs does with them.
// LoopInputs calls Begin, then Block for each block of records of each input
// that has a batch at the aligned time, then End; Watermark between aligned
// batches. Blocks of different inputs may come interleaved, as they arrive;
// those of one input come in order.
type MultiHandler interface {
	Begin(a *Aligned) error
	Block(a *Aligned, input int, recs framing.Records) error
	End(a *Aligned) error
	Watermark(t int64) error
}

// inState is LoopInputs's view of one input. A goroutine per input reads its
// frames, one at a time: it reads a frame into f, sends its index on the
// loop's channel, and waits for ack before reading the next, so that the
// records reach the handler without a copy and each input holds one frame
// in memory. Reading every input at once, rather than one after another, is
// what lets two inputs fed by one upstream (tee) go on: read in turn, the
// upstream would block on the input not being read. It costs two channel
// operations per frame, a frame holding up to 64 KiB of records.
type inState struct {
	Input
	f   framing.Frame
	err error // of the last read; io.EOF at the end
	ack chan struct{}

	ended   bool
	head    bool  // f is its next BatchBegin, not yet acknowledged
	inBatch bool  // its batch at the aligned time is being read
	last    Batch // its last batch, to check that times rise
	started bool  // a batch was seen
	hasWM   bool
	wm      int64
	ck      string // the id of its Checkpoint frame, "" without
}

func (in *inState) pump(ready chan<- int, idx int, done <-chan struct{}) {
	for {
		in.err = in.R.Read(&in.f)
		select {
		case ready <- idx:
		case <-done:
			return
		}
		if in.err != nil {
			return
		}
		select {
		case <-in.ack:
		case <-done:
			return
		}
	}
}

// unsharedCheckpoint is the error for input i, which has a batch without
// the checkpoint that input from announced.
func unsharedCheckpoint(st []inState, i, from int) error {
	return Hint(st[i].errorf(i, "its batches do not come from the source of input %d (%s), which replays from a checkpoint: their batch ids would mix, and a sink's commits with them", from, st[from].Name),
		"a stage over several streams takes streams of one replaying source (sbatch --checkpoint DIR ... | tee ...), or none that replays")
}

func (in *inState) errorf(idx int, format string, args ...any) error {
	return fmt.Errorf("input %d (%s): "+format, append([]any{idx, in.Name}, args...)...)
}

// LoopInputs reads every input to its end and hands their batches to h,
// aligned by batch time (see above). It returns nil when all inputs have
// ended, and when a signal asks the stage to stop, between aligned batches.
// Errors name the input (index and name) and the batch. After each aligned
// batch it reports progress. A Checkpoint frame is handled for each input as
// Loop does, and passed on once; inputs announcing different checkpoints
// are refused, and so is an input with a batch and no checkpoint when
// another announced one.
//
// On return the goroutines reading the inputs are released, except one
// blocked in a read, which returns once its input is closed or ends.
func (e *Env) LoopInputs(ins []Input, h MultiHandler) error {
	n := len(ins)
	st := make([]inState, n)
	ready := make(chan int, n)
	done := make(chan struct{})
	defer close(done)
	for i := range st {
		st[i] = inState{Input: ins[i], ack: make(chan struct{})}
		go st[i].pump(ready, i, done)
	}
	var stopNow <-chan struct{}
	if e.Stop != nil {
		stopNow = e.Stop.now
	}
	a := &Aligned{In: make([]Batch, n), Has: make([]bool, n)}
	var (
		waiting = n // inputs neither ended nor with a head in view
		open    int // inputs whose batch at the aligned time is not over
		live    = n // inputs not ended
		wmOut   int64
		wmSent  bool
		ckID    string // the checkpoint passed on, "" before
		ckFrom  int
		written uint64
		parked  []int // inputs whose frame waits for the aligned batch's end
	)
	// watermark passes on the minimum watermark if it rose.
	watermark := func() error {
		var m int64
		has := false
		for i := range st {
			if s := &st[i]; !s.ended && s.hasWM && (!has || s.wm < m) {
				m, has = s.wm, true
			}
		}
		if !has || (wmSent && m <= wmOut) {
			return nil
		}
		wmOut, wmSent = m, true
		return h.Watermark(m)
	}
	// between handles a frame that comes between an input's batches.
	between := func(i int) error {
		s := &st[i]
		if s.err == io.EOF {
			s.ended = true
			live--
			waiting--
			return nil
		}
		if s.err != nil {
			return fmt.Errorf("reading input %d (%s): %w", i, s.Name, s.err)
		}
		switch s.f.Kind {
		case framing.KindBatchBegin:
			b := Batch{ID: s.f.BatchID, Time: s.f.Time}
			if s.started && b.Time <= s.last.Time {
				return s.errorf(i, "%v at time %d does not come after %v at time %d: batch times must rise", b, b.Time, s.last, s.last.Time)
			}
			s.head, s.started, s.last = true, true, b
			waiting--
			return nil // no ack: the input waits for its batch's turn
		case framing.KindWatermark:
			s.hasWM, s.wm = true, s.f.Time
		case framing.KindCheckpoint:
			id, dir := s.f.Checkpoint()
			s.ck = id
			switch {
			case ckID == "":
				if err := e.checkpointFrame(&s.f); err != nil {
					return err
				}
				ckID, ckFrom = id, i
			case id != ckID:
				return Hint(s.errorf(i, "its source keeps its checkpoint in %s, another than input %d (%s)'s", dir, ckFrom, st[ckFrom].Name),
					"the sources of a pipeline share one --checkpoint directory")
			}
		}
		s.ack <- struct{}{}
		return nil
	}
	for {
		// Between aligned batches: wait until every input has ended or has
		// its next batch in view.
		for waiting > 0 {
			var i int
			select {
			case i = <-ready:
			case <-stopNow:
				return nil
			}
			if err := between(i); err != nil {
				return err
			}
		}
		if live == 0 {
			return nil
		}
		// Every input has now given what it sends before its next batch:
		// taken here, the minimum depends on the streams, not on which
		// input's frames happened to arrive first.
		if err := watermark(); err != nil {
			return err
		}
		first := -1
		for i := range st {
			if s := &st[i]; s.head && (first < 0 || s.last.Time < st[first].last.Time) {
				first = i
			}
		}
		a.Batch = Batch{ID: st[first].last.ID, Time: st[first].last.Time}
		for i := range st {
			s := &st[i]
			a.Has[i] = s.head && s.last.Time == a.Time
			a.In[i] = Batch{}
			if a.Has[i] {
				a.In[i] = s.last
			}
			if a.Has[i] && s.ck != ckID { // only "" can differ: see between
				return unsharedCheckpoint(st, i, ckFrom)
			}
		}
		e.Stats = Stats{Batch: a.Batch, Start: time.Now()}
		if wmSent {
			wm := wmOut
			e.Stats.Watermark = &wm // the watermark the stage works under
		}
		if e.Out != nil {
			written = e.Out.Written()
		}
		if err := h.Begin(a); err != nil {
			return err
		}
		for i := range st {
			if a.Has[i] {
				st[i].head, st[i].inBatch = false, true
				open++
				st[i].ack <- struct{}{}
			}
		}
		parked = parked[:0]
		for open > 0 {
			i := <-ready
			s := &st[i]
			if !s.inBatch {
				// Done with T: its next frame waits, unacknowledged, for the
				// end of the aligned batch, so that no watermark or
				// checkpoint comes out inside it.
				parked = append(parked, i)
				continue
			}
			if s.err != nil {
				// io.EOF cannot come inside a batch: the Reader calls that
				// ErrTruncated.
				return fmt.Errorf("reading input %d (%s): %w", i, s.Name, s.err)
			}
			switch s.f.Kind {
			case framing.KindRecords:
				e.Stats.InputRows += s.f.Count
				if err := h.Block(a, i, s.f.Records()); err != nil {
					return err
				}
			case framing.KindBatchEnd:
				s.inBatch = false
				open--
				waiting++
			}
			s.ack <- struct{}{}
		}
		if err := h.End(a); err != nil {
			return err
		}
		if e.Out != nil {
			e.Stats.OutputRows = e.Out.Written() - written
		}
		e.Progress.Report(&e.Stats)
		for _, i := range parked {
			if err := between(i); err != nil {
				return err
			}
		}
		if e.Stop != nil && e.Stop.Now() {
			return nil
		}
	}
}

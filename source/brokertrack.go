package source

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
)

// The tracker of a broker source (kafka://, nats://, amqp://): where it
// stands is an offset in each of its streams (a Kafka partition,
// "TOPIC/PARTITION"; a JetStream stream, "STREAM"; a RabbitMQ queue, "QUEUE",
// whose offsets count deliveries), the offset of the next message. Before batch
// N leaves, DIR/offsets/N lists every stream known with the range [Start,
// End) of offsets the batch took from it (Start = End for a stream it took
// nothing from), so that the last entry alone says where each stream goes
// on. On restart each batch after the sink's last commit is read again
// from its ranges, with its id and time (but of a broker that redelivers
// instead, see redeliverer); then the feed goes on from the last entry's
// ends.
//
// The sink's commits also move the broker's own record of progress: the
// ends of each committed batch go to Broker.Commit (Kafka's group offsets,
// JetStream's acks), never before the sink has the batch. Without a
// checkpoint the tracker keeps no file, and a batch's ends go to the broker
// once the batch has left.

// Broker is the part of a broker's tracker that speaks to the broker.
type Broker interface {
	// Replay returns a feed of exactly the messages of a batch: those at
	// offsets [Start, End) of each stream (Range.Path is the stream's
	// name), calling streams.Index for the Position of each.
	Replay(batch uint64, ranges []checkpoint.Range) Feed
	// Live returns the feed of new messages: of each stream in from, from
	// that offset on; of the others, from where the broker's record of the
	// consumer (group, durable) or, for a new one, --start says.
	Live(from map[string]int64) (Feed, error)
	// Commit records in the broker that the messages before ends (by
	// stream name) are done with.
	Commit(ends map[string]int64) error
	// Meta names the metadata fields of the kind's records.
	Meta() *Meta
	// Close lets the broker go.
	Close() error
}

// grouper is a Broker that may read in a consumer group of a scaled-out
// pipeline, which each batch's offsets then name (nil: not scaled out).
type grouper interface {
	group() *checkpoint.Group
}

// redeliverer is a Broker that cannot read a batch again (RabbitMQ): what
// it delivered and was not acknowledged comes back by itself, redelivered
// on the next connection, and nothing else can be read twice. Its tracker
// replays nothing (Replay is never called): on restart the batches after
// the sink's last commit are dropped from the plan, and the run goes on
// with the ids after the last batch written, never the dropped batches'
// ids, whose records would differ now (a sink may hold such a batch
// already: a table written and not yet committed in DIR, which skips it).
// Their ends are not acknowledged either: they were delivered on a
// connection that is gone. So every message is acknowledged only after a
// batch holding it was committed (or, without a checkpoint, has left), and
// the messages of the dropped batches arrive again in new batches: at
// least once.
type redeliverer interface {
	Broker
	// Redelivers reports whether the broker redelivers (Kafka does when
	// scaled out: the group's offsets say where a partition goes on, for
	// whichever copy reads it next).
	Redelivers() bool
}

// commitWait bounds how long the tracker of a broker waits, at its end,
// for the sink to commit the batches it wrote, so that the broker hears of
// them before the connection goes (Kafka's group offsets, JetStream's acks;
// a RabbitMQ message not acknowledged by then is delivered again). Each
// commit that comes starts the wait anew.
var commitWait = 5 * time.Second

// Streams numbers the streams of a broker source: the feed asks for the
// number of each stream it reads (a Position's Stream), the tracker for
// their names. Safe for use by both at once.
type Streams struct {
	mu     sync.Mutex
	names  []string
	starts []int64
	index  map[string]int
}

// Index returns the number of the stream name, adding it if new: start is
// then the offset where the feed begins to read it (of the first message
// it may yield), where the first batch that takes from it begins.
func (s *Streams) Index(name string, start int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[name]; ok {
		return i
	}
	if s.index == nil {
		s.index = map[string]int{}
	}
	s.index[name] = len(s.names)
	s.names = append(s.names, name)
	s.starts = append(s.starts, start)
	return len(s.names) - 1
}

// snapshot returns the names of the streams and their starts.
func (s *Streams) snapshot() ([]string, []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.names), slices.Clone(s.starts)
}

// brokerTracker is the Tracker of a broker source.
type brokerTracker struct {
	lastRun
	b       Broker
	name    string          // the input, for messages
	notes   io.Writer       // stderr
	log     *checkpoint.Log // DIR/offsets; nil without a checkpoint
	fp      string
	format  string
	streams *Streams

	from []int64 // by stream: the offset where the batch in hand begins
	cur  []int64 // by stream: the offset after the last message taken

	mu      sync.Mutex
	pending map[uint64]map[string]int64 // ends of batches written, not yet committed to the broker
	acked   uint64                      // batches up to acked-1 are committed to the broker
	writes  int
	done    chan struct{} // closed by Close
	wrote   bool          // a batch was written into DIR/offsets

	redelivers bool // the broker is a redeliverer: nothing is replayed
	awaited    bool // End has waited for the sink's last commits
}

// End, once the stream has ended well, waits for the sink's last commits
// (with a checkpoint: see awaitCommits), so that the broker's record of
// progress (Kafka's group offsets, JetStream's and RabbitMQ's acks) does
// not end behind the sink.
func (t *brokerTracker) End() {
	if t.log != nil && t.wrote && !t.awaited {
		t.awaitCommits()
	}
	t.awaited = true
}

// Close stops following the sink's commits and lets the broker go. It
// first gives the broker the batches the sink commits meanwhile (see
// awaitCommits), also after a failure: the sink commits what it got.
func (t *brokerTracker) Close() error {
	t.End()
	close(t.done)
	return t.b.Close()
}

// awaitCommits waits for the sink to commit the batches written, up to
// commitWait after the last commit seen, giving their ends to the broker.
// Each batch was flushed at its end, so the sink commits it whether the
// stream's end follows (End) or not (Close after a failure). What is not
// committed in time stays unacknowledged, which a note says: the broker
// delivers it again at the next start.
func (t *brokerTracker) awaitCommits() {
	var seen uint64
	idle := time.Now()
	for {
		if err := t.commitDone(); err != nil {
			fmt.Fprintf(t.notes, "sbatch: note: %s: reading the sink's commits: %v\n", t.name, err)
			return
		}
		t.mu.Lock()
		left := slices.Sorted(maps.Keys(t.pending))
		acked := t.acked
		t.mu.Unlock()
		if len(left) == 0 {
			return
		}
		if acked != seen {
			seen, idle = acked, time.Now()
		}
		if time.Since(idle) >= commitWait {
			again := "are replayed at the next start"
			if t.redelivers {
				again = "stay unacknowledged, and come again at the next start"
			}
			fmt.Fprintf(t.notes, "sbatch: note: %s: the sink did not commit %s within %v: their messages %s\n", t.name, batchRange(left[0], left[len(left)-1]), commitWait, again)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// batchRange names the batches first to last: "batch 3", "batches 3 to 5".
func batchRange(first, last uint64) string {
	if first == last {
		return fmt.Sprintf("batch %d", first)
	}
	return fmt.Sprintf("batches %d to %d", first, last)
}

// openBrokerTracker opens the tracker of input name over broker b, reading
// the last run from o.Checkpoint if given.
func openBrokerTracker(o Options, name string, b Broker, streams *Streams, notes io.Writer) (*brokerTracker, error) {
	t := &brokerTracker{lastRun: lastRun{dir: o.Checkpoint}, b: b, name: name, notes: notes, format: o.Format, streams: streams, pending: map[uint64]map[string]int64{}}
	what := []string{name}
	if o.MetaField != "" {
		what = append(what, "meta-field="+o.MetaField)
	}
	if o.ScaleOut {
		// The checkpoint of a copy says nothing of where a partition goes
		// on: it cannot serve one that does not scale out, nor the reverse.
		what = append(what, "scale-out")
	}
	if o.Subject != "" {
		// Another filter would replay other messages in the same ranges.
		what = append(what, "subject="+o.Subject)
	}
	t.fp = fingerprint(&o, what)
	t.done = make(chan struct{})
	if r, ok := b.(redeliverer); ok {
		t.redelivers = r.Redelivers()
	}
	if o.Checkpoint == "" {
		return t, nil
	}
	var err error
	if t.log, err = checkpoint.OpenLog(t.dir, checkpoint.OffsetsDir); err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	if err := t.load(t.log, t.read, nil); err != nil {
		return nil, err
	}
	go t.watchCommits(t.done)
	if t.last == nil {
		return t, nil
	}
	defer t.commitDone() // what the last run's sink committed after it ended
	for _, r := range t.last.Sources {
		i := streams.Index(r.Path, r.End)
		t.grow(i)
		t.from[i], t.cur[i] = r.End, r.End
	}
	if t.redelivers {
		if len(t.replay) > 0 {
			first, last := t.replay[0].BatchID, t.last.BatchID
			fmt.Fprintf(notes, "sbatch: note: %s: the sink did not commit %s: their messages come again from the broker (redelivered), in the batches from %d on\n",
				name, batchRange(first, last), last+1)
		}
		t.replay = nil
		t.acked = t.last.BatchID + 1
		return t, purgeOffsets(t.dir, t.log)
	}
	// The replayed batches are committed to the broker as the sink commits
	// them; so is the last batch the sink committed, which the broker may
	// not have heard of (the last run ended before the commit).
	for _, e := range t.replay {
		t.pending[e.BatchID] = ends(e.Sources)
	}
	t.acked = t.replayFrom()
	switch {
	case len(t.replay) == 0:
		t.acked = t.last.BatchID
		t.pending[t.last.BatchID] = ends(t.last.Sources)
	case t.acked > 0:
		t.acked--
		starts := make(map[string]int64, len(t.replay[0].Sources))
		for _, r := range t.replay[0].Sources {
			starts[r.Path] = r.Start
		}
		t.pending[t.acked] = starts
	}
	return t, purgeOffsets(t.dir, t.log)
}

// replayFrom is the id of the first batch replayed, or of the next batch.
func (t *brokerTracker) replayFrom() uint64 {
	if len(t.replay) > 0 {
		return t.replay[0].BatchID
	}
	if t.last != nil {
		return t.last.BatchID + 1
	}
	return 0
}

func ends(rs []checkpoint.Range) map[string]int64 {
	m := make(map[string]int64, len(rs))
	for _, r := range rs {
		m[r.Path] = r.End
	}
	return m
}

// read reads offsets entry id and checks that this configuration wrote it.
func (t *brokerTracker) read(id uint64, e *checkpoint.Offsets) error {
	if err := t.log.Read(id, e); err != nil {
		return stage.Hint(fmt.Errorf("--checkpoint: %w", err), "remove %s to start over", t.dir)
	}
	if e.Config != t.fp {
		err := &checkpoint.MismatchError{Path: t.log.Path(id), Have: e.Config, Want: t.fp}
		return stage.Hint(err, "a checkpoint belongs to one way of reading the input (the broker URL, format and trigger): run with the same ones, or give another --checkpoint directory (or remove %s to start over)", t.dir)
	}
	if e.BatchID != id {
		return stage.Hint(fmt.Errorf("%s: %w: it describes batch %d", t.log.Path(id), checkpoint.ErrCorrupt, e.BatchID), "remove %s to start over", t.dir)
	}
	for _, r := range e.Sources {
		if r.Start < 0 || r.End < r.Start {
			return stage.Hint(fmt.Errorf("%s: %w: range %s [%d, %d)", t.log.Path(id), checkpoint.ErrCorrupt, r.Path, r.Start, r.End), "remove %s to start over", t.dir)
		}
	}
	return nil
}

// grow makes room for stream i in from and cur.
func (t *brokerTracker) grow(i int) {
	for len(t.cur) <= i {
		t.from = append(t.from, -1)
		t.cur = append(t.cur, -1)
	}
}

// Inputs are a feed per batch to replay, then the live feed from where the
// last batch ended.
func (t *brokerTracker) Inputs() ([]Input, error) {
	meta := t.b.Meta()
	var ins []Input
	for _, e := range t.replay {
		var rs []checkpoint.Range
		for _, r := range e.Sources {
			if r.End > r.Start {
				rs = append(rs, r)
			}
		}
		ins = append(ins, Input{Name: t.name, Feed: t.b.Replay(e.BatchID, rs), Meta: meta, Replay: true, ReplayEnd: true})
	}
	from := map[string]int64{}
	names, _ := t.streams.snapshot()
	for i, off := range t.cur {
		if off >= 0 {
			from[names[i]] = off
		}
	}
	live, err := t.b.Live(from)
	if err != nil {
		for _, in := range ins {
			in.Feed.Close()
		}
		return nil, err
	}
	return append(ins, Input{Name: t.name, Feed: live, Meta: meta}), nil
}

// Reached moves the stream's offset past a chunk taken whole.
func (t *brokerTracker) Reached(at Position, _ bool) {
	t.grow(at.Stream)
	t.cur[at.Stream] = at.Off
}

// Write writes DIR/offsets/id: the range of every stream known from the
// end of the batch before to the cut at at. Without a checkpoint it keeps
// the batch's ends for Sent.
func (t *brokerTracker) Write(id uint64, time int64, at Position) error {
	if at.Off > 0 {
		t.grow(at.Stream)
		t.cur[at.Stream] = at.Off
	}
	names, starts := t.streams.snapshot()
	t.grow(len(names) - 1)
	e := checkpoint.Offsets{BatchID: id, BatchTime: time, Format: t.format, Config: t.fp}
	if g, ok := t.b.(grouper); ok {
		e.Group = g.group()
	}
	for i, end := range t.cur {
		if end < 0 {
			continue // a stream the feed numbered but nothing was taken of yet
		}
		start := t.from[i]
		if start < 0 {
			start = starts[i]
		}
		e.Sources = append(e.Sources, checkpoint.Range{Path: names[i], Start: start, End: end})
	}
	t.mu.Lock()
	t.pending[id] = ends(e.Sources)
	t.mu.Unlock()
	copy(t.from, t.cur)
	if t.log == nil {
		return nil
	}
	if err := t.log.Write(id, e); err != nil {
		return err
	}
	t.wrote = true
	if err := t.commitDone(); err != nil {
		return err
	}
	if t.writes++; t.writes%purgeEvery == 0 {
		return purgeOffsets(t.dir, t.log)
	}
	return nil
}

// Sent is told that batch id has left (without a checkpoint): its ends go
// to the broker.
func (t *brokerTracker) Sent(id uint64) {
	if t.log != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.pending[id]
	delete(t.pending, id)
	if len(e) > 0 {
		t.commit(e)
	}
}

// commit gives the broker the ends e. A failure is a note, not an error:
// the checkpoint (or, without one, the batches that left) is the record of
// what was read, and the next commit carries the ends on.
func (t *brokerTracker) commit(e map[string]int64) {
	if err := t.b.Commit(e); err != nil {
		fmt.Fprintf(t.notes, "sbatch: note: %s: recording progress in the broker: %v (it is retried with the next batch)\n", t.name, err)
	}
}

// commitDone gives the broker the ends of the batches the sink has
// committed since the last call.
func (t *brokerTracker) commitDone() error {
	c, ok, err := checkpoint.LastCommit(t.dir)
	if err != nil || !ok {
		return err
	}
	// Under the lock through Commit: two commits must not pass each other.
	t.mu.Lock()
	defer t.mu.Unlock()
	var e map[string]int64
	for id := t.acked; id <= c; id++ {
		if p, ok := t.pending[id]; ok {
			e = p
			delete(t.pending, id)
		}
	}
	if c+1 > t.acked {
		t.acked = c + 1
	}
	if len(e) > 0 {
		t.commit(e)
	}
	return nil
}

// watchCommits gives the broker the sink's commits as they come, also
// between batches, until stop.
func (t *brokerTracker) watchCommits(stop <-chan struct{}) {
	if t.log == nil {
		return
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if err := t.commitDone(); err != nil {
				fmt.Fprintf(t.notes, "sbatch: note: %s: reading the sink's commits: %v\n", t.name, err)
			}
		}
	}
}

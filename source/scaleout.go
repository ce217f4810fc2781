package source

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A scaled-out Kafka source (--scale-out, docs/scale-out.md): copies of one
// pipeline, each with a checkpoint directory of its own, join the consumer
// group --group, which gives each its share of the partitions and moves
// them when a copy comes or goes. The group's committed offsets are where
// a partition goes on, for whichever copy reads it next:
//
//   - They are committed in a Kafka transaction of the first stage
//     downstream that keeps one, together with what that stage wrote for
//     the batch (a stateful stage's changelog, ssink --kafka's messages):
//     Kafka Streams' exactly-once. That stage says so by the file
//     DIR/group-offsets (checkpoint.OffsetsClaim); without it sbatch
//     commits them itself after the sink's commit, at least once.
//   - So the checkpoint replays nothing: the batches the sink did not
//     commit are dropped, as a redelivering broker's are, and their records
//     come again from the group's offsets, to this copy or another.
//   - A partition leaves a copy only when every record read from it is in
//     a batch the sink has committed: the group's rebalances wait for that
//     (franz-go's BlockRebalanceOnPoll; the feed stops reading while one
//     waits). So a record's batch commits in the generation it was read in,
//     and the generation and member id that each offsets/N names let the
//     broker refuse a commit from a copy the group has moved on from.
//   - After each change of the assignment, DIR/assignment says which
//     partitions this copy owns in which generation, and the feed hands
//     over no record until the batch in hand is cut: the next batch, and
//     every one after until the next change, holds records of those
//     partitions only, which a stage keeping state per partition reads at
//     the batch's beginning (reduce/scale.go).
type scaleOut struct {
	k     *kafka
	owned *owned

	want atomic.Bool // a rebalance waits for the records read to be committed
	// since is when the waiting rebalance was first seen, to bound it.
	since time.Time

	cuts     atomic.Uint64 // batches cut
	assigns  atomic.Uint64 // changes of the assignment
	waitCut  atomic.Bool   // records wait for a cut after an assignment
	cutAfter atomic.Uint64 // the cut they wait for is the one after this many

	mu     sync.Mutex
	failed error            // writing the assignment failed
	read   map[string]int64 // by partition: the offset after the last record handed over
	done   map[string]int64 // by partition: the offset after the last record the sink committed
}

func newScaleOut(k *kafka) *scaleOut {
	return &scaleOut{k: k, read: map[string]int64{}, done: map[string]int64{}}
}

// rebalanceWait bounds how long a rebalance waits for the sink's commits:
// the group drops a member that keeps it waiting for its session timeout.
func (s *scaleOut) rebalanceWait() time.Duration { return s.sessionTimeout() * 3 / 4 }

// sessionTimeout is how long the group waits for a silent copy (killed,
// say) before its partitions go to the others: 10 s, or 4 batch intervals
// if more, since a rebalance waits for the batch in hand.
func (s *scaleOut) sessionTimeout() time.Duration {
	return max(10*time.Second, 4*time.Duration(s.k.o.Interval)*time.Millisecond)
}

// groupOpts are the options of the scaled-out group member.
func (s *scaleOut) groupOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { s.want.Store(true) }),
		// Eager: every partition is given up at a rebalance, before the
		// new generation begins, so that the batch in hand commits in the
		// generation it was read in (the cooperative protocol revokes
		// after the next generation has begun). Sticky: a partition stays
		// where it was if it can.
		kgo.Balancers(kgo.StickyBalancer()),
		kgo.SessionTimeout(s.sessionTimeout()),
		// A rebalance waits this long for the members to join again: a
		// copy that died in one holds up the others no longer than a copy
		// that died between two.
		kgo.RebalanceTimeout(s.sessionTimeout()),
		// A partition's offset committed in a transaction still open (of
		// a copy that died in it) is not read until the transaction ends.
		kgo.RequireStableFetchOffsets(),
	}
}

// handed notes that the feed handed over the records before offset
// ends[key] of each partition key: once a fetch, not once a record.
func (s *scaleOut) handed(ends map[tp]int64) {
	s.mu.Lock()
	for key, end := range ends {
		s.read[partitionName(key.topic, key.p)] = end
	}
	s.mu.Unlock()
}

// assigned writes DIR/assignment after a change of the partitions owned,
// and holds the records back until the next cut.
func (s *scaleOut) assigned(owned []string) {
	a := checkpoint.Assignment{Owned: owned}
	if m := s.k.member; m != nil {
		_, a.Generation = m.GroupMetadata()
	}
	b, err := json.Marshal(a)
	if err == nil {
		err = checkpoint.WriteFile(filepath.Join(s.k.o.Checkpoint, checkpoint.AssignmentFile), b, 0o644)
	}
	if err != nil {
		s.mu.Lock()
		s.failed = fmt.Errorf("%s: writing the assignment of group %s: %w", s.k.spec, s.k.o.Group, err)
		s.mu.Unlock()
	}
	s.cutAfter.Store(s.cuts.Load())
	s.waitCut.Store(true)
	s.assigns.Add(1)
}

// gate, at each poll, holds the records back until the cut after an
// assignment; and lets a waiting rebalance go once every record read is
// committed by the sink, unless holding records polled. It says whether
// to wait (hand nothing over) for now.
func (s *scaleOut) gate(cl *kgo.Client, holding bool) (wait bool, err error) {
	s.mu.Lock()
	err = s.failed
	s.mu.Unlock()
	if err != nil {
		return true, err
	}
	if s.waitCut.Load() {
		if s.cuts.Load() <= s.cutAfter.Load() {
			return true, nil
		}
		s.waitCut.Store(false)
	}
	if holding || !s.want.Load() {
		return false, nil
	}
	if s.since.IsZero() {
		s.since = time.Now()
	}
	if left := s.uncommitted(); len(left) > 0 {
		if time.Since(s.since) > s.rebalanceWait() {
			return true, fmt.Errorf("%s: group %s is rebalancing, and the sink has not committed the records read from %s within %v: the copy cannot hand its partitions over",
				s.k.spec, s.k.o.Group, strings.Join(left, ", "), s.rebalanceWait())
		}
		return true, nil
	}
	s.want.Store(false)
	s.since = time.Time{}
	cl.AllowRebalance()
	return false, nil
}

// uncommitted names the partitions whose records read are not all
// committed: "T/3 up to offset 41".
func (s *scaleOut) uncommitted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var left []string
	for name, end := range s.read {
		if s.done[name] < end {
			left = append(left, fmt.Sprintf("%s up to offset %d", name, end-1))
		}
	}
	slices.Sort(left)
	return left
}

// commit is told the ends of the batches the sink has committed. It returns
// those sbatch commits to the group itself: none if a stage downstream
// commits them in its transaction (DIR/group-offsets), else those of the
// partitions this copy owns (another copy's must not be moved back).
func (s *scaleOut) commit(ends map[string]int64) map[string]int64 {
	s.mu.Lock()
	for name, end := range ends {
		s.done[name] = max(s.done[name], end)
	}
	s.mu.Unlock()
	if _, err := os.Stat(filepath.Join(s.k.o.Checkpoint, checkpoint.OffsetsClaim)); err == nil {
		return nil
	}
	mine := map[string]int64{}
	for _, name := range s.owned.list() {
		if end, ok := ends[name]; ok {
			mine[name] = end
		}
	}
	return mine
}

// group is what offsets/N says of the group: see checkpoint.Group. It is
// called once per batch, at its cut.
func (s *scaleOut) group() *checkpoint.Group {
	s.cuts.Add(1)
	g := s.static()
	g.Owned = s.owned.list()
	if m := s.k.member; m != nil {
		g.Member, g.Generation = m.GroupMetadata()
	}
	return g
}

// static is what does not change in a run: the group, brokers, topics.
func (s *scaleOut) static() *checkpoint.Group {
	g := &checkpoint.Group{ID: s.k.o.Group, Seeds: s.k.u.seeds, Topics: s.k.u.topics, Partitions: s.k.widths}
	if s.k.o.MetaField != "" {
		g.PartitionField = s.k.o.MetaField + kafkaMeta.Partition
	}
	return g
}

// announce writes DIR/scale-out (checkpoint.ScaleOutFile), before any
// batch: the group, its brokers and topics, for the stages downstream.
func (s *scaleOut) announce() error {
	b, err := json.Marshal(s.static())
	if err == nil {
		err = os.MkdirAll(s.k.o.Checkpoint, 0o755)
	}
	if err == nil {
		err = checkpoint.WriteFile(filepath.Join(s.k.o.Checkpoint, checkpoint.ScaleOutFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	return nil
}

// Redelivers: scaled out, the group's offsets say where each partition goes
// on, and the checkpoint replays nothing (see scaleOut).
func (k *kafka) Redelivers() bool { return k.scale != nil }

// group names the group in each offsets/N when scaled out, else nil.
func (k *kafka) group() *checkpoint.Group {
	if k.scale == nil {
		return nil
	}
	return k.scale.group()
}

package source

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type (
	kmsgOffsetCommitRequest  = kmsg.OffsetCommitRequest
	kmsgOffsetCommitResponse = kmsg.OffsetCommitResponse
)

// groupFeed joins the group --group, which gives this copy of sbatch its
// share of the partitions (without a checkpoint): it starts at the group's
// offsets, or at --start for a partition the group has none of. ends, with
// --once, are the end offsets seen at the start.
func (k *kafka) groupFeed(ends kadm.ListedOffsets) (Feed, error) {
	reset := kgo.NoResetOffset().AtEnd()
	if k.o.Start == "earliest" {
		reset = kgo.NoResetOffset().AtStart()
	}
	f := &kafkaFeed{k: k, index: map[tp]int{}, left: map[tp]int64{}, group: true,
		owned: &owned{k: k, now: map[string]bool{}}}
	if ends != nil {
		f.once = true
		ends.Each(func(lo kadm.ListedOffset) {
			if lo.Offset > 0 {
				f.left[tp{lo.Topic, lo.Partition}] = lo.Offset
			}
		})
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(k.o.Group),
		kgo.ConsumeTopics(k.u.topics...),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(reset),
		// A heartbeat a second rather than Kafka's 3: a rebalance, which
		// waits for every member's next heartbeat, takes seconds less.
		kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { f.owned.change("assigned", ps) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { f.owned.change("revoked", ps) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { f.owned.change("lost", ps) }),
	}
	if k.scale != nil {
		k.scale.owned = f.owned
		opts = append(opts, k.scale.groupOpts()...)
	}
	cl, err := kgo.NewClient(k.clientOpts(opts...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.spec, err)
	}
	f.cl, k.member = cl, cl
	return f, nil
}

// commitErr is the first error of a group commit's response.
func commitErr(resp *kmsg.OffsetCommitResponse) error {
	if resp == nil {
		return nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s: %w", partitionName(t.Topic, p.Partition), err)
			}
		}
	}
	return nil
}

// partitionList names partitions as TOPIC/P, sorted.
func partitionList(ps map[string][]int32) string {
	var names []string
	for t, parts := range ps {
		for _, p := range parts {
			names = append(names, partitionName(t, p))
		}
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// owned is what the group has given this copy, told in a note at each
// change: "group G assigned T/2,T/3 (reading T/0,T/1,T/2,T/3)". With the
// cooperative balancer a change names only the partitions that move.
type owned struct {
	k   *kafka
	mu  sync.Mutex
	now map[string]bool
}

// list names the partitions owned now, sorted.
func (o *owned) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.names()
}

// names is list, under the lock.
func (o *owned) names() []string {
	var names []string
	for name, ok := range o.now {
		if ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func (o *owned) change(what string, ps map[string][]int32) {
	moved := partitionList(ps)
	if moved == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for t, parts := range ps {
		for _, p := range parts {
			o.now[partitionName(t, p)] = what == "assigned"
		}
	}
	if s := o.k.scale; s != nil {
		s.assigned(o.names())
	}
	r := strings.Join(o.names(), ",")
	if r == "" {
		r = "none"
	}
	fmt.Fprintf(o.k.notes, "sbatch: note: %s: group %s %s %s (reading %s)\n", o.k.spec, o.k.o.Group, what, moved, r)
}

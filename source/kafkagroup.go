package source

import (
	"context"
	"fmt"
	"slices"
	"strings"

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
	f := &kafkaFeed{k: k, index: map[tp]int{}, left: map[tp]int64{}, group: true}
	if ends != nil {
		f.once = true
		ends.Each(func(lo kadm.ListedOffset) {
			if lo.Offset > 0 {
				f.left[tp{lo.Topic, lo.Partition}] = lo.Offset
			}
		})
	}
	cl, err := kgo.NewClient(k.clientOpts(
		kgo.ConsumerGroup(k.o.Group),
		kgo.ConsumeTopics(k.u.topics...),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(reset),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			fmt.Fprintf(k.notes, "sbatch: note: %s: group %s assigned %s\n", k.spec, k.o.Group, partitionList(ps))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			fmt.Fprintf(k.notes, "sbatch: note: %s: group %s revoked %s\n", k.spec, k.o.Group, partitionList(ps))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			fmt.Fprintf(k.notes, "sbatch: note: %s: group %s lost %s\n", k.spec, k.o.Group, partitionList(ps))
		}),
	)...)
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

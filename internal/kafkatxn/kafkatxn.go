// Package kafkatxn commits a consumer group's offsets inside a Kafka
// transaction of a producer that is not the group's consumer: the stage
// that keeps a transaction (a changelog, ssink --kafka) commits the offsets
// that sbatch read, so that they and the stage's writes commit or abort
// together (Kafka's exactly-once v2, KIP-447, as Kafka Streams does it).
//
// Why not kgo's GroupTransactSession: it commits the offsets of the group
// its own client consumes in, and here the consumer is another process.
package kafkatxn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// retryBackoff is the pause before a request that failed with a retriable
// error (CONCURRENT_TRANSACTIONS while the previous transaction's markers
// are written, a coordinator loading) is sent again, until ctx ends.
const retryBackoff = 20 * time.Millisecond

// CommitOffsets adds group to the transaction in hand of cl, a
// transactional client whose transactional id is txnID, and commits in it
// offsets (topic → partition → the next offset to read), each with
// metadata (nil for none). They take effect when the transaction commits
// and are dropped when it aborts.
//
// generation and member are the group generation and member id of the
// consumer that read the records: the group coordinator refuses the
// offsets (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) once
// the group has moved on from that consumer, so that a copy whose
// partitions were taken away cannot commit over their new owner's.
// Generation -1 and member "" skip the check.
//
// The transaction must already hold a record (the caller produced one):
// kgo's EndTransaction ends a transaction only if its own client added
// something to it, and offsets added here are not its own.
//
// The error of a partition names it. The topics are looked up first
// (their ids, which TxnOffsetCommit v6 names them by): one more request.
func CommitOffsets(ctx context.Context, cl *kgo.Client, txnID, group string, generation int32, member string,
	offsets map[string]map[int32]int64, metadata *string) error {
	if len(offsets) == 0 {
		return nil
	}
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("transactional producer %s: %w", txnID, err)
	}
	ids, err := topicIDs(ctx, cl, slices.Sorted(maps.Keys(offsets)))
	if err != nil {
		return err
	}

	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, id, epoch, group
	err = retry(ctx, func() error {
		resp, err := add.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	})
	if err != nil {
		return fmt.Errorf("adding group %s to transaction %s: %w", group, txnID, err)
	}

	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = txnID, group, id, epoch
	req.Generation, req.MemberID = generation, member
	for _, topic := range slices.Sorted(maps.Keys(offsets)) {
		t := kmsg.NewTxnOffsetCommitRequestTopic()
		t.Topic, t.TopicID = topic, ids[topic]
		parts := offsets[topic]
		for _, p := range slices.Sorted(maps.Keys(parts)) {
			tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			tp.Partition, tp.Offset, tp.Metadata = p, parts[p], metadata
			t.Partitions = append(t.Partitions, tp)
		}
		req.Topics = append(req.Topics, t)
	}
	return retry(ctx, func() error {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("committing the offsets of group %s in transaction %s: %w", group, txnID, err)
		}
		return firstError(resp, group, ids)
	})
}

// CommitOffsetsOutside commits offsets of group, with the consumer's
// generation and member as CommitOffsets checks them, outside any
// transaction (an OffsetCommit request): for a batch that moved the
// source's offsets but wrote nothing, which a transaction cannot hold
// (kgo ends one only if its client wrote a record to it), and which has
// no writes to be atomic with.
func CommitOffsetsOutside(ctx context.Context, cl *kgo.Client, group string, generation int32, member string,
	offsets map[string]map[int32]int64, metadata *string) error {
	if len(offsets) == 0 {
		return nil
	}
	ids, err := topicIDs(ctx, cl, slices.Sorted(maps.Keys(offsets)))
	if err != nil {
		return err
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = group, generation, member
	for _, topic := range slices.Sorted(maps.Keys(offsets)) {
		t := kmsg.NewOffsetCommitRequestTopic()
		t.Topic, t.TopicID = topic, ids[topic]
		parts := offsets[topic]
		for _, p := range slices.Sorted(maps.Keys(parts)) {
			tp := kmsg.NewOffsetCommitRequestTopicPartition()
			tp.Partition, tp.Offset, tp.Metadata = p, parts[p], metadata
			t.Partitions = append(t.Partitions, tp)
		}
		req.Topics = append(req.Topics, t)
	}
	return retry(ctx, func() error {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("committing the offsets of group %s: %w", group, err)
		}
		for _, t := range resp.Topics {
			name := topicName(t.Topic, t.TopicID, ids)
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("group %s, topic %s partition %d: offset refused: %w", group, name, p.Partition, err)
				}
			}
		}
		return nil
	})
}

// topicName is the name of a topic of a response: name, or, for a
// version that answers with the id only, the name ids gives id.
func topicName(name string, id [16]byte, ids map[string][16]byte) string {
	if name != "" {
		return name
	}
	for n, i := range ids {
		if i == id {
			return n
		}
	}
	return name
}

// firstError is the error of the first partition of resp that has one,
// naming it.
func firstError(resp *kmsg.TxnOffsetCommitResponse, group string, ids map[string][16]byte) error {
	for _, t := range resp.Topics {
		name := topicName(t.Topic, t.TopicID, ids) // v6 answers with the id only
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("group %s, topic %s partition %d: offset refused: %w", group, name, p.Partition, err)
			}
		}
	}
	return nil
}

// topicIDs looks up the ids of topics.
func topicIDs(ctx context.Context, cl *kgo.Client, topics []string) (map[string][16]byte, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("looking up topics %v: %w", topics, err)
	}
	ids := make(map[string][16]byte, len(topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("topic %s: %w", *t.Topic, err)
		}
		ids[*t.Topic] = t.TopicID
	}
	for _, t := range topics {
		if _, ok := ids[t]; !ok {
			return nil, fmt.Errorf("topic %s: %w", t, kerr.UnknownTopicOrPartition)
		}
	}
	return ids, nil
}

// retry calls fn until it succeeds, fails with an error that is not
// retriable, or ctx ends. CONCURRENT_TRANSACTIONS is retried too, as the
// Java producer does: it passes once the last transaction's markers are
// written.
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		var ke *kerr.Error
		if err == nil || !errors.As(err, &ke) || !ke.Retriable && ke != kerr.ConcurrentTransactions {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (retried until %v)", err, context.Cause(ctx))
		case <-time.After(retryBackoff):
		}
	}
}

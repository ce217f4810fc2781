// Package changelog keeps a stateful stage's state in a compacted Kafka
// topic, a partition of it per source partition, as Kafka Streams keeps a
// state store's changelog: whichever copy of a scaled-out pipeline gets a
// source partition restores that partition's state from the topic, so state
// moves with its partition between machines (docs/scale-out.md).
//
// Each batch's changes are one Kafka transaction that also commits the
// source group's offsets (Kafka's exactly-once v2): the state as of a batch
// and the group's position after it are committed together or not at all,
// and a read_committed restore sees exactly the committed batches. A
// changelog record's key is the state's key and its value the key's state
// (a tombstone, a nil value, when the key is gone), both opaque bytes that
// the stage encodes; compaction keeps the last value of each key.
package changelog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/internal/kafkatxn"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Config's durations.
const (
	// DefaultTxnTimeout is the Java producer's transaction.timeout.ms:
	// the longest an open transaction of a dead instance holds up the
	// restore of its partitions.
	DefaultTxnTimeout = time.Minute
	// DefaultTimeout bounds each wait on the brokers.
	DefaultTimeout = 30 * time.Second
)

// Errors of Commit, wrapped: the transaction is aborted or will be, none of
// its changes and offsets are visible (ErrNotCommitted); or the brokers
// did not confirm its commit nor its abort, and it may have committed
// (ErrOutcomeUnknown: a restore of its partitions tells).
var (
	ErrNotCommitted   = errors.New("changelog: nothing was committed")
	ErrOutcomeUnknown = errors.New("changelog: the transaction's end was asked for, but neither its commit nor its abort confirmed")
)

// Config is where a Store keeps its state.
type Config struct {
	Seeds      []string // the brokers, HOST:PORT
	Topic      string   // the changelog topic
	Partitions int32    // the source's partitions: the topic has at least as many
	// TxnID is the transactional id of the Store's producer: one per copy
	// of the stage, the same across its restarts, so that a restarted copy
	// fences off its earlier instance and ends its open transaction.
	TxnID      string
	TxnTimeout time.Duration // the broker aborts a transaction open longer; 0 for DefaultTxnTimeout
	Timeout    time.Duration // bounds each wait on the brokers; 0 for DefaultTimeout
	// RestoreTimeout bounds a restore, which waits for the transactions
	// open on the partition to end (0: Timeout). Longer when another
	// producer writes the changelog (ssink --kafka, with its own
	// --txn-timeout): a copy of it that died holds the partition until then.
	RestoreTimeout time.Duration
}

// Store is the changelog of one stateful stage.
type Store struct {
	cfg   Config
	cl    *kgo.Client // transactional producer
	adm   *kadm.Client
	parts int32 // the topic's partitions
}

// Change is a key's new state in the partition of its source partition
// (Value nil: a tombstone, the key is gone): the checkpoint's type, since
// a stage may hand its changes to the sink's transaction instead
// (checkpoint.ChangesDir).
type Change = checkpoint.Change

// Offsets are the source group's offsets after a batch, committed with its
// changes (checkpoint.Group says where they come from).
type Offsets struct {
	Group      string
	Generation int32                      // of the consumer that read the batch; -1 for no check
	Member     string                     // its member id; "" for no check
	Ends       map[string]map[int32]int64 // topic → partition → next offset to read
}

// Open connects to the brokers, creates the topic if it is missing
// (compacted, cfg.Partitions partitions, replicated three times or on as
// many brokers as there are) or checks that it has at least cfg.Partitions
// partitions, and starts the transactional producer, which fences off an
// earlier instance with the same TxnID: that instance's open transaction is
// aborted, and its next Commit fails.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.TxnTimeout <= 0 {
		cfg.TxnTimeout = DefaultTxnTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RestoreTimeout <= 0 {
		cfg.RestoreTimeout = cfg.Timeout
	}
	switch {
	case len(cfg.Seeds) == 0 || cfg.Topic == "" || cfg.TxnID == "":
		return nil, fmt.Errorf("changelog %q: want brokers, a topic and a transactional id", cfg.Topic)
	case cfg.Partitions <= 0:
		return nil, fmt.Errorf("changelog %s: %d partitions: want at least 1", cfg.Topic, cfg.Partitions)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Seeds...),
		kgo.TransactionalID(cfg.TxnID),
		kgo.TransactionTimeout(cfg.TxnTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), // a change goes to its source partition's
		kgo.RecordDeliveryTimeout(cfg.Timeout),
		kgo.RetryTimeout(cfg.Timeout),
	)
	if err != nil {
		return nil, fmt.Errorf("changelog %s: %w", cfg.Topic, err)
	}
	s := &Store{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := s.ensureTopic(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("changelog %s: starting the transactional producer %s: %w", cfg.Topic, cfg.TxnID, err)
	}
	return s, nil
}

// ensureTopic creates the topic or checks the one there.
func (s *Store) ensureTopic(ctx context.Context) error {
	topic := s.cfg.Topic
	brokers, err := s.adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("changelog %s: listing the brokers: %w", topic, err)
	}
	replicas := int16(min(3, len(brokers)))
	resp, err := s.adm.CreateTopic(ctx, s.cfg.Partitions, replicas,
		map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		s.parts = s.cfg.Partitions
		return nil
	case !errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("changelog %s: creating the topic: %w", topic, err)
	}
	topics, err := s.adm.ListTopics(ctx, topic)
	if err == nil {
		err = topics[topic].Err
	}
	if err != nil {
		return fmt.Errorf("changelog %s: %w", topic, err)
	}
	s.parts = int32(len(topics[topic].Partitions))
	if s.parts < s.cfg.Partitions {
		return fmt.Errorf("changelog %s: the topic has %d partitions, fewer than the source's %d: the state of a partition has nowhere to go (add partitions to it)",
			topic, s.parts, s.cfg.Partitions)
	}
	return nil
}

// offsetsMarker is the key of the record that a Commit of offsets without
// changes writes, because a transaction needs a record of its producer's
// for kgo to end it (see kafkatxn.CommitOffsets). Restore skips it, and a
// change may not have it as its key. Its value is not nil, so that
// compaction keeps one, not a tombstone's deletion of a real key.
var offsetsMarker = []byte("\xffdstream-changelog-offsets\xff")

// Commit writes changes and commits the source group's offsets o in one
// transaction: all of it is visible to a read_committed reader, or, with an
// error wrapping ErrNotCommitted, none of it (or, rarely, with
// ErrOutcomeUnknown, see there). With no changes and no offsets it does
// nothing.
func (s *Store) Commit(ctx context.Context, changes []Change, o Offsets) error {
	if len(changes) == 0 && len(o.Ends) == 0 {
		return nil
	}
	if len(o.Ends) > 0 && o.Group == "" {
		return fmt.Errorf("changelog %s: offsets without a group: %w", s.cfg.Topic, ErrNotCommitted)
	}
	recs := make([]*kgo.Record, 0, max(len(changes), 1))
	slab := make([]kgo.Record, max(len(changes), 1))
	for i, c := range changes {
		if c.Partition < 0 || c.Partition >= s.parts {
			return fmt.Errorf("changelog %s: a change of partition %d, of %d: %w", s.cfg.Topic, c.Partition, s.parts, ErrNotCommitted)
		}
		if string(c.Key) == string(offsetsMarker) {
			return fmt.Errorf("changelog %s: partition %d: key %q is the changelog's own: %w", s.cfg.Topic, c.Partition, c.Key, ErrNotCommitted)
		}
		r := &slab[i]
		r.Partition, r.Key, r.Value = c.Partition, c.Key, c.Value
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		r := &slab[0]
		r.Partition, r.Key, r.Value = s.markerPartition(o), offsetsMarker, []byte{}
		recs = append(recs, r)
	}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("changelog %s: beginning a transaction: %w: %w", s.cfg.Topic, err, ErrNotCommitted)
	}
	ending := false // the commit was asked for: its outcome may be unknown
	err := s.cl.ProduceSync(ctx, recs...).FirstErr()
	if err != nil {
		err = fmt.Errorf("writing %d changes: %w", len(changes), err)
	} else if err = kafkatxn.CommitOffsets(ctx, s.cl, s.cfg.TxnID, o.Group, o.Generation, o.Member, o.Ends, nil); err == nil {
		err = s.cl.EndTransaction(ctx, kgo.TryCommit)
		if err == nil {
			return nil
		}
		err = fmt.Errorf("committing the transaction: %w", err)
		ending = true
	}
	// Why abort here, not leave it to the broker: the transaction's
	// partitions hold their last stable offset, and so every restore of
	// them, until it ends. With a context of its own: the failure may be
	// that ctx ended.
	actx, acancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer acancel()
	aerr := s.cl.AbortBufferedRecords(actx)
	if aerr == nil {
		aerr = s.cl.EndTransaction(actx, kgo.TryAbort)
	}
	switch {
	case errors.Is(aerr, kerr.ProducerFenced) || errors.Is(err, kerr.ProducerFenced):
		return fmt.Errorf("changelog %s: %w: a newer instance with transactional id %s fenced this one off, and aborted its transaction: %w",
			s.cfg.Topic, err, s.cfg.TxnID, ErrNotCommitted)
	case aerr != nil && ending:
		return fmt.Errorf("changelog %s: %w; and aborting it: %v: %w", s.cfg.Topic, err, aerr, ErrOutcomeUnknown)
	case aerr != nil:
		return fmt.Errorf("changelog %s: %w; and aborting the transaction: %v (the broker aborts it after %v, or the next instance of %s does): %w",
			s.cfg.Topic, err, aerr, s.cfg.TxnTimeout, s.cfg.TxnID, ErrNotCommitted)
	}
	return fmt.Errorf("changelog %s: %w: %w", s.cfg.Topic, err, ErrNotCommitted)
}

// markerPartition is where the marker of a Commit without changes goes:
// the changelog partition of the first source partition in o, which the
// committing copy owns, so that it holds up no other copy's restore.
func (s *Store) markerPartition(o Offsets) int32 {
	p := int32(-1)
	for _, parts := range o.Ends {
		for q := range parts {
			if p < 0 || q < p {
				p = q
			}
		}
	}
	return max(p, 0) % s.parts
}

// Topic is the changelog topic.
func (s *Store) Topic() string { return s.cfg.Topic }

// Close closes the Store's client. (Commit leaves no transaction open.)
func (s *Store) Close() error {
	s.cl.Close()
	return nil
}

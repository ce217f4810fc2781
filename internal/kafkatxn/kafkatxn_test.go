package kafkatxn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnClient is a transactional producer of topic out on seeds.
func txnClient(t *testing.T, seeds, txnID string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...),
		kgo.TransactionalID(txnID), kgo.DefaultProduceTopic("out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// commitIn runs one transaction of cl: a record to topic out, then offsets
// of group in it, then its end (commit or abort). It returns
// CommitOffsets' error, after aborting.
func commitIn(t *testing.T, cl *kgo.Client, txnID, group string, gen int32, member string, offsets map[string]map[int32]int64, end kgo.TransactionEndTry) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	meta := "batch 7"
	err := CommitOffsets(ctx, cl, txnID, group, gen, member, offsets, &meta)
	if err != nil {
		end = kgo.TryAbort
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		t.Fatalf("ending the transaction: %v", err)
	}
	return err
}

func TestCommitAndAbort(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1, 3, "in", "out")
	cl := txnClient(t, seeds, "t1")
	offsets := map[string]map[int32]int64{"in": {0: 5, 2: 9}}

	if err := commitIn(t, cl, "t1", "g", -1, "", offsets, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	offs := kafkatest.Committed(t, seeds, "g")
	for p, want := range offsets["in"] {
		o, ok := offs.Lookup("in", p)
		if !ok || o.At != want || o.Metadata != "batch 7" {
			t.Errorf("group g, in/%d: got %+v (found %v), want offset %d with metadata %q", p, o, ok, want, "batch 7")
		}
	}
	if o, ok := offs.Lookup("in", 1); ok && o.At >= 0 {
		t.Errorf("group g, in/1: got offset %d, want none (not committed)", o.At)
	}

	if err := commitIn(t, cl, "t1", "aborted", -1, "", offsets, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	for _, o := range kafkatest.Committed(t, seeds, "aborted").Sorted() {
		if o.At >= 0 {
			t.Errorf("group aborted: offset %d of in/%d committed by an aborted transaction", o.At, o.Partition)
		}
	}
}

func TestUnknownTopic(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1, 1, "out")
	cl := txnClient(t, seeds, "t1")
	err := commitIn(t, cl, "t1", "g", -1, "", map[string]map[int32]int64{"nope": {0: 1}}, kgo.TryCommit)
	if !errors.Is(err, kerr.UnknownTopicOrPartition) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("got %v, want UNKNOWN_TOPIC_OR_PARTITION naming topic nope", err)
	}
}

// TestGenerationFencing: offsets from a consumer of an earlier generation,
// or from no member of the group, are refused, naming the partition;
// those of the current member are taken.
func TestGenerationFencing(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1, 2, "in", "out")
	consumer, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...),
		kgo.ConsumerGroup("g"), kgo.ConsumeTopics("in"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	member, gen := kafkatest.Joined(t, consumer)

	cl := txnClient(t, seeds, "t1")
	offsets := map[string]map[int32]int64{"in": {1: 3}}
	for _, c := range []struct {
		name   string
		gen    int32
		member string
		want   error
	}{
		{"an earlier generation", gen - 1, member, kerr.IllegalGeneration},
		{"a later generation", gen + 1, member, kerr.IllegalGeneration},
		{"another member", gen, "someone-else", kerr.UnknownMemberID},
	} {
		err := commitIn(t, cl, "t1", "g", c.gen, c.member, offsets, kgo.TryCommit)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "in partition 1") {
			t.Errorf("%s: got %v, want %v naming in partition 1", c.name, err, c.want)
		}
	}
	if o, ok := kafkatest.Committed(t, seeds, "g").Lookup("in", 1); ok && o.At >= 0 {
		t.Fatalf("refused offsets committed: %+v", o)
	}
	if err := commitIn(t, cl, "t1", "g", gen, member, offsets, kgo.TryCommit); err != nil {
		t.Fatalf("the current member and generation: %v", err)
	}
	if o, _ := kafkatest.Committed(t, seeds, "g").Lookup("in", 1); o.At != 3 {
		t.Errorf("group g, in/1: got %+v, want offset 3", o)
	}
}

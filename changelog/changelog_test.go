package changelog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// open opens a Store of topic "state" with partitions partitions on seeds,
// closed at the end of the test.
func open(t testing.TB, seeds string, partitions int32, txnID string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{
		Seeds: strings.Split(seeds, ","), Topic: "state", Partitions: partitions,
		TxnID: txnID, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// restore returns partition p's state as a map.
func restore(t testing.TB, s *Store, p int32) map[string]string {
	t.Helper()
	got := map[string]string{}
	n, err := s.Restore(context.Background(), p, func(k, v []byte) error {
		if _, dup := got[string(k)]; dup {
			t.Errorf("partition %d: key %q handed twice", p, k)
		}
		got[string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatalf("Restore(%d): %v", p, err)
	}
	if n != len(got) {
		t.Errorf("Restore(%d) = %d keys, handed %d", p, n, len(got))
	}
	return got
}

func set(p int32, k, v string) Change { return Change{Partition: p, Key: []byte(k), Value: []byte(v)} }
func del(p int32, k string) Change    { return Change{Partition: p, Key: []byte(k)} }

func mustCommit(t testing.TB, s *Store, o Offsets, changes ...Change) {
	t.Helper()
	if err := s.Commit(context.Background(), changes, o); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func checkState(t *testing.T, s *Store, p int32, want map[string]string) {
	t.Helper()
	if got := restore(t, s, p); !maps.Equal(got, want) {
		t.Errorf("partition %d: restored %v, want %v", p, got, want)
	}
}

// committed returns the offsets group has committed (stable).
func committed(t *testing.T, s *Store, group string) kadm.OffsetResponses {
	t.Helper()
	offs, err := s.adm.FetchOffsets(kadm.RequireStable(context.Background()), group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("fetching the offsets of %s: %v", group, err)
	}
	return offs
}

func TestRoundTrip(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 3, 1) // the coordinators and leaders apart
	s := open(t, seeds, 3, "copy-1")
	mustCommit(t, s, Offsets{},
		set(0, "a", "1"), set(2, "b", "2"), set(0, "c", ""), Change{Partition: 2, Key: []byte{}, Value: []byte{0, 0xff}})
	checkState(t, s, 0, map[string]string{"a": "1", "c": ""})
	checkState(t, s, 1, map[string]string{})
	checkState(t, s, 2, map[string]string{"b": "2", "": "\x00\xff"})

	// Another instance, of another copy, sees the same.
	other := open(t, seeds, 3, "copy-2")
	checkState(t, other, 2, map[string]string{"b": "2", "": "\x00\xff"})
}

func TestLastWinsAndTombstones(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1, 1)
	s := open(t, seeds, 1, "copy-1")
	mustCommit(t, s, Offsets{}, set(0, "a", "1"), set(0, "b", "1"), set(0, "c", "1"), set(0, "a", "2"))
	mustCommit(t, s, Offsets{}, del(0, "b"), set(0, "c", "2"), del(0, "never"))
	mustCommit(t, s, Offsets{}, set(0, "b", "3"), del(0, "c"), set(0, "a", "3"), set(0, "d", "1"), del(0, "d"))
	checkState(t, s, 0, map[string]string{"a": "3", "b": "3"})

	// The keys come in the order they first appear, a key that came
	// back where it came back.
	var order []string
	s.Restore(context.Background(), 0, func(k, _ []byte) error { order = append(order, string(k)); return nil })
	if got := strings.Join(order, ","); got != "a,b" {
		t.Errorf("order of keys: got %s, want a,b", got)
	}

	// fn's error ends the restore and is returned.
	stop := errors.New("stop")
	if _, err := s.Restore(context.Background(), 0, func(k, _ []byte) error { return stop }); err != stop {
		t.Errorf("an error of fn: Restore returned %v, want it", err)
	}
}

func TestOffsetsCommitted(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 3, 4, "in")
	s := open(t, seeds, 4, "copy-1")
	mustCommit(t, s, Offsets{Group: "g", Generation: -1, Ends: map[string]map[int32]int64{"in": {1: 10, 3: 7}}},
		set(1, "a", "1"), set(3, "b", "1"))
	// No changes, offsets only: a batch that changed nothing.
	mustCommit(t, s, Offsets{Group: "g", Generation: -1, Ends: map[string]map[int32]int64{"in": {1: 12}}})
	offs := committed(t, s, "g")
	for p, want := range map[int32]int64{0: -1, 1: 12, 2: -1, 3: 7} {
		o, ok := offs.Lookup("in", p)
		if !ok {
			o.At = -1
		}
		if o.At != want {
			t.Errorf("group g, in/%d: got offset %d, want %d", p, o.At, want)
		}
	}
	// The marker of the commit without changes is not state.
	checkState(t, s, 1, map[string]string{"a": "1"})

	if err := s.Commit(context.Background(), []Change{set(0, string(offsetsMarker), "x")}, Offsets{}); !errors.Is(err, ErrNotCommitted) {
		t.Errorf("a change with the marker's key: got %v, want ErrNotCommitted", err)
	}
	if err := s.Commit(context.Background(), []Change{set(4, "a", "x")}, Offsets{}); !errors.Is(err, ErrNotCommitted) {
		t.Errorf("a change of partition 4 of 4: got %v, want ErrNotCommitted", err)
	}
	if err := s.Commit(context.Background(), nil, Offsets{Ends: map[string]map[int32]int64{"in": {0: 1}}}); !errors.Is(err, ErrNotCommitted) {
		t.Errorf("offsets without a group: got %v, want ErrNotCommitted", err)
	}
}

// TestAborted: a transaction whose offsets the group refuses is aborted,
// its changes with it.
func TestAborted(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1, 2, "in")
	s := open(t, seeds, 2, "copy-1")
	mustCommit(t, s, Offsets{Group: "g", Generation: -1, Ends: map[string]map[int32]int64{"in": {0: 5}}}, set(0, "a", "1"))

	for _, o := range []Offsets{
		// A generation of a group that has none: ILLEGAL_GENERATION,
		// after the group was added to the transaction.
		{Group: "g", Generation: 4, Member: "m", Ends: map[string]map[int32]int64{"in": {0: 9, 1: 9}}},
		// A topic that does not exist: before.
		{Group: "g", Generation: -1, Ends: map[string]map[int32]int64{"nope": {0: 9}}},
	} {
		err := s.Commit(context.Background(), []Change{set(0, "a", "2"), set(1, "b", "2")}, o)
		if !errors.Is(err, ErrNotCommitted) {
			t.Fatalf("Commit with %+v: got %v, want ErrNotCommitted", o, err)
		}
	}
	checkState(t, s, 0, map[string]string{"a": "1"})
	checkState(t, s, 1, map[string]string{})
	if o, _ := committed(t, s, "g").Lookup("in", 0); o.At != 5 {
		t.Errorf("group g, in/0: got offset %d, want 5 (the aborted transactions' 9 not seen)", o.At)
	}
	if o, ok := committed(t, s, "g").Lookup("in", 1); ok && o.At >= 0 {
		t.Errorf("group g, in/1: got offset %d, want none", o.At)
	}

	// A Commit whose context has ended is aborted too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Commit(ctx, []Change{set(1, "b", "4")}, Offsets{}); !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("Commit with a cancelled context: got %v, want ErrNotCommitted", err)
	}

	// The store goes on after an abort.
	mustCommit(t, s, Offsets{}, set(1, "b", "3"))
	checkState(t, s, 1, map[string]string{"b": "3"})
}

// TestFencing: a second instance with the same TxnID fences off the first,
// whose commits then fail, committing nothing.
func TestFencing(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 3, 1, "in")
	first := open(t, seeds, 1, "copy-1")
	mustCommit(t, first, Offsets{}, set(0, "a", "1"))
	second := open(t, seeds, 1, "copy-1")
	err := first.Commit(context.Background(), []Change{set(0, "a", "zombie")}, Offsets{Group: "g", Generation: -1, Ends: map[string]map[int32]int64{"in": {0: 3}}})
	if !errors.Is(err, ErrNotCommitted) {
		t.Fatalf("the fenced instance's Commit: got %v, want ErrNotCommitted", err)
	}
	t.Logf("the fenced instance's error: %v", err)
	mustCommit(t, second, Offsets{}, set(0, "b", "1"))
	checkState(t, second, 0, map[string]string{"a": "1", "b": "1"})
	if o, ok := committed(t, second, "g").Lookup("in", 0); ok && o.At >= 0 {
		t.Errorf("group g, in/0: the fenced instance committed offset %d", o.At)
	}
}

// openTxn begins a transaction of another producer that writes key=value
// to partition p of the changelog and leaves it open; the returned
// function ends it.
func openTxn(t *testing.T, seeds string, p int32, key, value string) func(kgo.TransactionEndTry) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...),
		kgo.TransactionalID("other"), kgo.DefaultProduceTopic("state"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Partition: p, Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return func(end kgo.TransactionEndTry) {
		if err := cl.EndTransaction(context.Background(), end); err != nil {
			t.Errorf("ending the other transaction: %v", err)
		}
	}
}

// TestRestoreWaitsForOpenTransaction: a restore of a partition that an
// open transaction writes to waits for its end and sees its outcome.
func TestRestoreWaitsForOpenTransaction(t *testing.T) {
	for _, end := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		t.Run(fmt.Sprintf("commit=%v", end), func(t *testing.T) {
			_, seeds := kafkatest.Cluster(t, 1, 1)
			s := open(t, seeds, 2, "copy-1")
			mustCommit(t, s, Offsets{}, set(0, "a", "1"), set(1, "b", "1"))
			endTxn := openTxn(t, seeds, 0, "a", "2")
			mustCommit(t, s, Offsets{}, set(0, "c", "1")) // after the open one

			const wait = 300 * time.Millisecond
			ended := make(chan time.Time, 1)
			go func() {
				time.Sleep(wait)
				ended <- time.Now()
				endTxn(end)
			}()
			// Partition 1 is not held.
			checkState(t, s, 1, map[string]string{"b": "1"})
			want := map[string]string{"a": "1", "c": "1"}
			if end == kgo.TryCommit {
				want["a"] = "2"
			}
			checkState(t, s, 0, want)
			select {
			case <-ended:
			default:
				t.Errorf("the restore of partition 0 returned before the open transaction ended")
			}
		})
	}
}

func TestRestoreGivesUp(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1, 1)
	s := open(t, seeds, 1, "copy-1")
	s.cfg.Timeout = 200 * time.Millisecond
	openTxn(t, seeds, 0, "a", "2")
	_, err := s.Restore(context.Background(), 0, func(k, v []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "partition 0: a transaction open") {
		t.Errorf("got %v, want an error naming partition 0 and the open transaction", err)
	}
}

func TestTopic(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1, 1)
	s := open(t, seeds, 3, "copy-1")
	cfgs, err := s.adm.DescribeTopicConfigs(context.Background(), "state")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfgs.On("state", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, kv := range c.Configs {
		if kv.Key == "cleanup.policy" && kv.Value != nil {
			policy = *kv.Value
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy %q, want compact", policy)
	}

	// Open again: the topic is there, as wide or wider than asked.
	open(t, seeds, 2, "copy-2")
	_, err = Open(context.Background(), Config{Seeds: strings.Split(seeds, ","), Topic: "state", Partitions: 4, TxnID: "copy-3", Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "3 partitions, fewer than the source's 4") {
		t.Errorf("a topic narrower than the source: got %v", err)
	}
}

// TestReplication: the topic is replicated three times on a cluster of
// three brokers or more, on each broker of a smaller one.
func TestReplication(t *testing.T) {
	for _, brokers := range []int{1, 2, 3, 4} {
		_, seeds := kafkatest.Cluster(t, brokers, 1)
		s := open(t, seeds, 2, "copy-1")
		topics, err := s.adm.ListTopics(context.Background(), "state")
		if err != nil {
			t.Fatal(err)
		}
		want := min(brokers, 3)
		for _, p := range topics["state"].Partitions.Sorted() {
			if len(p.Replicas) != want {
				t.Errorf("%d brokers: partition %d has %d replicas, want %d", brokers, p.Partition, len(p.Replicas), want)
			}
		}
	}
}

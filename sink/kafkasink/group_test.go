package kafkasink

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/dstream/dstream/sink"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// member joins group on topic "in" of c, as a copy's sbatch does, and
// returns its member id and generation. It stays in the group for the test.
func member(t *testing.T, c *kfake.Cluster, group string) (string, int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics("in"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kafkatest.Joined(t, cl)
}

// writeOffsets writes DIR/offsets/id as sbatch --scale-out does.
func writeOffsets(t *testing.T, dir string, id uint64, g *checkpoint.Group, ranges ...checkpoint.Range) {
	t.Helper()
	log := checkpoint.ReadLog(dir, checkpoint.OffsetsDir)
	if err := os.MkdirAll(log.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(checkpoint.Offsets{BatchID: id, BatchTime: t0 + int64(id)*1000, Sources: ranges, Format: "json", Group: g})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.WriteFile(log.Path(id), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// groupOffsetsOf returns the committed (stable) offsets of group on topic
// "in", by partition; a partition without one is left out.
func groupOffsetsOf(t *testing.T, c *kfake.Cluster, group string) map[int32]int64 {
	t.Helper()
	offs := kafkatest.Committed(t, kafkatest.Seeds(c), group)
	got := map[int32]int64{}
	for _, o := range offs.Sorted() {
		if o.Topic == "in" && o.At >= 0 {
			got[o.Partition] = o.At
		}
	}
	return got
}

func sameOffsets(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range a {
		if q, ok := b[p]; !ok || q != o {
			return false
		}
	}
	return true
}

// TestGroupOffsets: a batch whose offsets/N names a scaled-out source's
// group commits the group's offsets in the batch's transaction: the ends
// of the partitions the copy owned and read from, no others. A batch
// without messages whose offsets moved commits them too. The sink claims
// them in DIR/group-offsets before its first commit.
func TestGroupOffsets(t *testing.T) {
	c, _ := kafkatest.Cluster(t, 1, 4, "in", "out")
	m, gen := member(t, c, "g")
	g := &checkpoint.Group{ID: "g", Generation: gen, Member: m, Topics: []string{"in"}, Partitions: []int32{4},
		Owned: []string{"in/0", "in/1", "in/2"}}
	dir := t.TempDir()
	writeOffsets(t, dir, 0, g,
		checkpoint.Range{Path: "in/0", Start: 0, End: 5},
		checkpoint.Range{Path: "in/1", Start: 3, End: 3}, // nothing read
		checkpoint.Range{Path: "in/2", Start: 2, End: 7},
		checkpoint.Range{Path: "in/3", Start: 0, End: 4}) // not owned
	writeOffsets(t, dir, 1, g, checkpoint.Range{Path: "in/0", Start: 5, End: 9}) // filtered away
	writeOffsets(t, dir, 2, g, checkpoint.Range{Path: "in/1", Start: 3, End: 3}) // nothing read

	s := mustSink(t, kafkatest.URL(c, "out"), sink.Options{Checkpoint: dir})
	if err := send(t, s, 0, `{"v":"a"}`, `{"v":"b"}`); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, checkpoint.OffsetsClaim)); err != nil || string(b) != "ssink\n" {
		t.Errorf("%s: got %q (%v), want ssink's claim", checkpoint.OffsetsClaim, b, err)
	}
	if got, want := groupOffsetsOf(t, c, "g"), map[int32]int64{0: 5, 2: 7}; !sameOffsets(got, want) {
		t.Errorf("after batch 0: group g has %v, want %v (owned partitions read from only)", got, want)
	}
	if err := send(t, s, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := groupOffsetsOf(t, c, "g"), map[int32]int64{0: 9, 2: 7}; !sameOffsets(got, want) {
		t.Errorf("after the empty batch 1: group g has %v, want %v", got, want)
	}
	if err := send(t, s, 2); err != nil {
		t.Fatal(err)
	}
	if got, want := groupOffsetsOf(t, c, "g"), map[int32]int64{0: 9, 2: 7}; !sameOffsets(got, want) {
		t.Errorf("after batch 2: group g has %v, want %v", got, want)
	}
	if got, want := values(read(t, c, "out")), `0:{"v":"a"} 0:{"v":"b"}`; !sameValues(got, want) {
		t.Errorf("topic out: %s, want %s", got, want)
	}
}

// TestGroupOffsetsClaimed: when a stage upstream claimed the group's
// offsets (DIR/group-offsets naming it), the sink commits none of them
// and leaves the claim as it is.
func TestGroupOffsetsClaimed(t *testing.T) {
	c, _ := kafkatest.Cluster(t, 1, 2, "in", "out")
	m, gen := member(t, c, "g")
	g := &checkpoint.Group{ID: "g", Generation: gen, Member: m, Topics: []string{"in"}, Partitions: []int32{2}, Owned: []string{"in/0", "in/1"}}
	dir := t.TempDir()
	claim := filepath.Join(dir, checkpoint.OffsetsClaim)
	if err := os.WriteFile(claim, []byte("sreduce\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeOffsets(t, dir, 0, g, checkpoint.Range{Path: "in/0", Start: 0, End: 5})
	writeOffsets(t, dir, 1, g, checkpoint.Range{Path: "in/1", Start: 0, End: 2})
	s := mustSink(t, kafkatest.URL(c, "out"), sink.Options{Checkpoint: dir})
	if err := send(t, s, 0, `{"v":"a"}`); err != nil {
		t.Fatal(err)
	}
	if err := send(t, s, 1); err != nil {
		t.Fatal(err)
	}
	if got := groupOffsetsOf(t, c, "g"); len(got) > 0 {
		t.Errorf("group g has %v, want none: sreduce commits them", got)
	}
	if b, _ := os.ReadFile(claim); string(b) != "sreduce\n" {
		t.Errorf("the claim became %q", b)
	}
}

// TestGroupOffsetsStaleGeneration: a batch read in a generation the group
// has moved on from fails, naming the group and its generation, and
// nothing of it is visible to read_committed consumers; a batch without
// messages fails the same way.
func TestGroupOffsetsStaleGeneration(t *testing.T) {
	c, _ := kafkatest.Cluster(t, 1, 2, "in", "out")
	m, gen := member(t, c, "g")
	g := &checkpoint.Group{ID: "g", Generation: gen - 1, Member: m, Topics: []string{"in"}, Partitions: []int32{2}, Owned: []string{"in/0", "in/1"}}
	for _, recs := range [][]string{{`{"v":"stale"}`}, nil} {
		dir := t.TempDir()
		writeOffsets(t, dir, 0, g, checkpoint.Range{Path: "in/0", Start: 0, End: 5})
		s := mustSink(t, kafkatest.URL(c, "out"), sink.Options{Checkpoint: dir})
		err := send(t, s, 0, recs...)
		if !errors.Is(err, kerr.IllegalGeneration) || !strings.Contains(err.Error(), "group g (generation "+strconv.Itoa(int(gen-1))) {
			t.Errorf("%d records: got %v, want ILLEGAL_GENERATION naming group g and generation %d", len(recs), err, gen-1)
		}
		s.Close()
		if _, err := os.Stat(filepath.Join(dir, checkpoint.CommitsDir, "0")); err == nil {
			t.Errorf("%d records: the failed batch was committed in the checkpoint", len(recs))
		}
	}
	if got := values(read(t, c, "out")); got != "" {
		t.Errorf("topic out: %s, want nothing of the failed batch", got)
	}
	if got := groupOffsetsOf(t, c, "g"); len(got) > 0 {
		t.Errorf("group g has %v, want none", got)
	}
}

// writeChanges leaves batch id's changelog records, as sreduce behind a
// scaled-out source does when its sink is this one.
func writeChanges(t *testing.T, dir string, id uint64, c checkpoint.Changes) {
	t.Helper()
	d := filepath.Join(dir, checkpoint.ChangesDir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	if err := os.WriteFile(filepath.Join(d, strconv.FormatUint(id, 10)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestChangesInTransaction: a stateful stage's changelog records for a
// batch (DIR/changes/N) go in the batch's transaction, each to the
// partition the stage chose, with the messages and the group's offsets;
// also for a batch without messages; the file goes once committed. A batch
// that fails leaves none of the three visible.
func TestChangesInTransaction(t *testing.T) {
	c, _ := kafkatest.Cluster(t, 1, 4, "in", "out", "cl")
	m, gen := member(t, c, "g")
	g := &checkpoint.Group{ID: "g", Generation: gen, Member: m, Topics: []string{"in"}, Partitions: []int32{4}, Owned: []string{"in/0", "in/3"}}
	dir := t.TempDir()
	writeOffsets(t, dir, 0, g, checkpoint.Range{Path: "in/3", Start: 0, End: 4})
	writeChanges(t, dir, 0, checkpoint.Changes{Topic: "cl", Changes: []checkpoint.Change{{Partition: 3, Key: []byte("x"), Value: []byte("1")}}})
	writeOffsets(t, dir, 1, g, checkpoint.Range{Path: "in/0", Start: 0, End: 2})
	writeChanges(t, dir, 1, checkpoint.Changes{Topic: "cl", Changes: []checkpoint.Change{{Partition: 0, Key: []byte("y"), Value: []byte("2")}, {Partition: 3, Key: []byte("x")}}})

	s := mustSink(t, kafkatest.URL(c, "out"), sink.Options{Checkpoint: dir})
	if err := send(t, s, 0, `{"k":"x","count":1}`); err != nil {
		t.Fatal(err)
	}
	if err := send(t, s, 1); err != nil { // no message, changes and offsets
		t.Fatal(err)
	}
	var got []string
	for _, r := range read(t, c, "cl") {
		got = append(got, strconv.Itoa(int(r.Partition))+":"+string(r.Key)+"="+string(r.Value))
	}
	if want := "0:y=2 3:x=1 3:x="; strings.Join(got, " ") != want {
		t.Errorf("changelog cl: %q, want %q", strings.Join(got, " "), want)
	}
	if got, want := groupOffsetsOf(t, c, "g"), map[int32]int64{0: 2, 3: 4}; !sameOffsets(got, want) {
		t.Errorf("group g has %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.ChangesDir, "0")); err == nil {
		t.Error("the changes of committed batch 0 are still there")
	}

	// A stale generation: the batch fails, and its changes are not seen.
	stale := *g
	stale.Generation = gen - 1
	dir2 := t.TempDir()
	writeOffsets(t, dir2, 0, &stale, checkpoint.Range{Path: "in/0", Start: 2, End: 3})
	writeChanges(t, dir2, 0, checkpoint.Changes{Topic: "cl", Changes: []checkpoint.Change{{Partition: 0, Key: []byte("y"), Value: []byte("3")}}})
	s2 := mustSink(t, kafkatest.URL(c, "out"), sink.Options{Checkpoint: dir2})
	if err := send(t, s2, 0, `{"k":"y","count":3}`); !errors.Is(err, kerr.IllegalGeneration) {
		t.Errorf("stale generation: %v, want ILLEGAL_GENERATION", err)
	}
	s2.Close()
	if n := len(read(t, c, "cl")); n != 3 {
		t.Errorf("changelog cl has %d records after the failed batch, want 3", n)
	}
}

package reduce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/changelog"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/dstream/dstream/stage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scaleCopy is one copy's checkpoint directory behind a scaled-out source,
// as sbatch --scale-out leaves it, and its engine.
type scaleCopy struct {
	dir string
	g   checkpoint.Group
	r   *Engine
	out bytes.Buffer
	w   *framing.Writer
}

func newScaleCopy(t *testing.T, seeds string) *scaleCopy { return newScaleCopyTo(t, seeds, "postgres") }

// newScaleCopyTo is newScaleCopy with a sink of kind sink (ssink's
// destination flag).
func newScaleCopyTo(t *testing.T, seeds, sink string) *scaleCopy {
	t.Helper()
	c := &scaleCopy{dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(c.dir, checkpoint.SinkFile), []byte(sink+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.g = checkpoint.Group{ID: "g", Seeds: strings.Split(seeds, ","), Topics: []string{"mid"}, Partitions: []int32{4}, PartitionField: "_partition", Generation: -1}
	b, _ := json.Marshal(c.g)
	if err := os.WriteFile(filepath.Join(c.dir, checkpoint.ScaleOutFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	c.w = framing.NewWriter(&c.out)
	cfg := agg.Config{Keys: []string{"k"}, Aggs: []agg.Spec{{Kind: agg.Count, Name: "count"}}}
	r, err := New(Options{Agg: cfg, Mode: Update, Checkpoint: c.dir, Name: "sreduce", Notes: io.Discard}, c.w, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c.r = r
	return c
}

// batch runs batch id through the copy, owning the partitions owned in
// generation gen, with the records of ranges (partition → [start, end))
// and returns what it wrote, as JSON, or the error.
func (c *scaleCopy) batch(t *testing.T, id uint64, gen int32, owned []string, ranges map[string][2]int64, recs ...string) (string, error) {
	t.Helper()
	a, _ := json.Marshal(checkpoint.Assignment{Generation: gen, Owned: owned})
	if err := os.WriteFile(filepath.Join(c.dir, checkpoint.AssignmentFile), a, 0o644); err != nil {
		t.Fatal(err)
	}
	e := checkpoint.Offsets{BatchID: id, BatchTime: int64(id) * 1000, Group: &c.g}
	e.Group.Owned = owned
	for name, r := range ranges {
		e.Sources = append(e.Sources, checkpoint.Range{Path: name, Start: r[0], End: r[1]})
	}
	log := checkpoint.ReadLog(c.dir, checkpoint.OffsetsDir) // sbatch's, which holds its lock
	if err := os.MkdirAll(log.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := log.Write(id, e); err != nil {
		t.Fatal(err)
	}
	b := stage.Batch{ID: id, Time: e.BatchTime}
	if err := c.r.Begin(b); err != nil {
		return "", err
	}
	f := frametest.Frame(t, recs...)
	if err := c.r.Block(b, f.Records()); err != nil {
		return "", err
	}
	if err := c.r.End(b); err != nil {
		return "", err
	}
	c.w.Flush()
	lines := strings.Split(strings.TrimSpace(frametest.RenderCut(t, c.out.Bytes())), "\n")
	return lines[len(lines)-1], nil
}

// A copy's state goes to the changelog with the group's offsets, batch by
// batch; a second copy that takes a partition over restores its state and
// writes its keys again; a record of a partition not owned, and a key seen
// in two partitions, are errors.
func TestScaleOut(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1, 4, "mid")
	a := newScaleCopy(t, seeds)
	out, err := a.batch(t, 0, 1, []string{"mid/0", "mid/1"}, map[string][2]int64{"mid/0": {0, 2}, "mid/1": {0, 1}},
		`{"k":"x","_partition":0}`, `{"k":"y","_partition":1}`, `{"k":"x","_partition":0}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := `0@0: {"k":"x","count":2} {"k":"y","count":1}`; out != want {
		t.Errorf("copy a, batch 0:\n%s\nwant\n%s", out, want)
	}
	offsets(t, seeds, map[int32]int64{0: 2, 1: 1})

	// Copy b takes partition 0 over in generation 2 (a let it go).
	b := newScaleCopy(t, seeds)
	out, err = b.batch(t, 0, 2, []string{"mid/0"}, map[string][2]int64{"mid/0": {2, 3}}, `{"k":"x","_partition":0}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := `0@0: {"k":"x","count":3}`; out != want {
		t.Errorf("copy b, taking partition 0 over:\n%s\nwant\n%s", out, want)
	}
	offsets(t, seeds, map[int32]int64{0: 3, 1: 1})
	out, err = a.batch(t, 1, 2, []string{"mid/1"}, map[string][2]int64{"mid/1": {1, 2}}, `{"k":"y","_partition":1}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := `1@1000: {"k":"y","count":2}`; out != want {
		t.Errorf("copy a, partition 0 gone:\n%s\nwant\n%s", out, want)
	}

	// Back to a, one generation later: partition 0 is restored as b left it.
	out, err = a.batch(t, 2, 3, []string{"mid/0", "mid/1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `2@2000: {"k":"x","count":3}`; out != want {
		t.Errorf("copy a, partition 0 back:\n%s\nwant\n%s", out, want)
	}

	if _, err := a.batch(t, 3, 3, []string{"mid/0", "mid/1"}, nil, `{"k":"z","_partition":2}`); err == nil || !strings.Contains(err.Error(), "does not own") {
		t.Errorf("a record of a partition not owned: %v", err)
	}
	c := newScaleCopy(t, seeds)
	if _, err := c.batch(t, 0, 9, []string{"mid/2", "mid/3"}, nil, `{"k":"w","_partition":2}`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.batch(t, 1, 9, []string{"mid/2", "mid/3"}, nil, `{"k":"w","_partition":3}`); err == nil || !strings.Contains(err.Error(), "came from partition 2 before, now from 3") {
		t.Errorf("a key in two partitions: %v", err)
	}
	d := newScaleCopy(t, seeds)
	if _, err := d.batch(t, 0, 1, []string{"mid/2"}, nil, `{"k":"w"}`); err == nil || !strings.Contains(err.Error(), `no integer field "_partition"`) {
		t.Errorf("a record without its partition: %v", err)
	}
}

// With a Kafka sink the stage commits nothing itself: it leaves each
// batch's changelog records for the sink's transaction (DIR/changes/N),
// claims no offsets, and does not write a restored partition's keys again.
func TestScaleOutHandOff(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1, 4, "mid")
	a := newScaleCopyTo(t, seeds, "kafka")
	if _, err := a.batch(t, 0, 1, []string{"mid/0"}, map[string][2]int64{"mid/0": {0, 1}}, `{"k":"x","_partition":0}`); err != nil {
		t.Fatal(err)
	}
	var c checkpoint.Changes
	data, err := os.ReadFile(filepath.Join(a.dir, checkpoint.ChangesDir, "0"))
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.Topic != ChangelogTopic("g", "sreduce") || len(c.Changes) != 1 || c.Changes[0].Partition != 0 {
		t.Errorf("changes of batch 0: %+v", c)
	}
	if _, err := os.Stat(filepath.Join(a.dir, checkpoint.OffsetsClaim)); err == nil {
		t.Error("the stage claimed the group's offsets, which the Kafka sink commits")
	}
	offsets(t, seeds, map[int32]int64{0: -1})
	// What the sink would have written, here by hand: then a copy that
	// takes partition 0 over restores x, without writing it again.
	store := a.r.scale.store
	if err := store.Commit(context.Background(), []changelog.Change{{Partition: 0, Key: c.Changes[0].Key, Value: c.Changes[0].Value}}, changelog.Offsets{Group: "g", Generation: -1}); err != nil {
		t.Fatal(err)
	}
	b := newScaleCopyTo(t, seeds, "kafka")
	out, err := b.batch(t, 0, 2, []string{"mid/0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `0@0:`; out != want {
		t.Errorf("copy b, taking partition 0 over: %q, want %q (no keys written again)", out, want)
	}
	out, err = b.batch(t, 1, 2, []string{"mid/0"}, map[string][2]int64{"mid/0": {1, 2}}, `{"k":"x","_partition":0}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := `1@1000: {"k":"x","count":2}`; out != want {
		t.Errorf("copy b, its first record: %q, want %q", out, want)
	}
}

// offsets checks the group g's committed offsets of topic mid (-1: none).
func offsets(t *testing.T, seeds string, want map[int32]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "g")
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatal(err)
	}
	for p, off := range want {
		o, ok := got.Lookup("mid", p)
		if off < 0 && (!ok || o.At < 0) {
			continue // none, as wanted
		}
		if !ok || o.At != off {
			t.Errorf("group g, mid/%d: offset %d (%v), want %d", p, o.At, ok, off)
		}
	}
}

// BenchmarkScaleBlock is the records of a scaled-out batch going to their
// groups, each checked against its partition (scaleBlock): one op is a
// batch of 100k records over 10k keys in 4 partitions, without the
// changelog's commit.
func BenchmarkScaleBlock(b *testing.B) {
	cfg := agg.Config{Keys: []string{"k"}, Aggs: []agg.Spec{{Kind: agg.Count, Name: "count"}}}
	r, err := New(Options{Agg: cfg, Mode: Update}, framing.NewWriter(io.Discard), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	r.scale = &scale{field: "_partition", owned: map[int32]bool{0: true, 1: true, 2: true, 3: true}}
	recs := make([][]byte, 100_000)
	for i := range recs {
		k := i * 7919 % 10_000
		recs[i] = frametest.Record(b, fmt.Sprintf(`{"k":"user%d","_partition":%d}`, k, k%4))
	}
	fs := frametest.Blocks(recs)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		batch := stage.Batch{ID: uint64(i)}
		r.t.ClearTouched()
		for j := range fs {
			if err := r.scaleBlock(batch, fs[j].Records()); err != nil {
				b.Fatal(err)
			}
		}
	}
}

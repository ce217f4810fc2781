package source

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/dstream/dstream/stage"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produce writes n records to topic: key kI, value vI, header h=I.
func produce(t testing.TB, seeds, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i),
			Headers: []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}}})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// runKafka runs the source over o to its end and returns its output.
func runKafka(t *testing.T, o Options) (string, error) {
	t.Helper()
	var out, errs bytes.Buffer
	e := &stage.Env{Name: "sbatch", Out: framing.NewWriter(&out), Stderr: &errs}
	err := Run(e, o)
	e.Out.Flush()
	return frametest.RenderCut(t, out.Bytes()), err
}

// values returns the sorted "value" fields of a rendered stream.
func values(s string) []string {
	var vs []string
	for _, f := range strings.Split(s, `"value":"`)[1:] {
		vs = append(vs, f[:strings.IndexByte(f, '"')])
	}
	sort.Strings(vs)
	return vs
}

// --once reads every partition up to its end at the start (Spark's
// Trigger.AvailableNow): each record once, with Spark's metadata fields.
func TestKafkaOnce(t *testing.T) {
	c, seeds := kafkatest.Cluster(t, 3, 4, "clicks")
	produce(t, seeds, "clicks", 0, 1000)
	got, err := runKafka(t, Options{Inputs: []string{kafkatest.URL(c, "clicks")}, Format: "lines", Once: true, Interval: 1000, Start: "earliest"})
	if err != nil {
		t.Fatal(err)
	}
	vs := values(got)
	if len(vs) != 1000 {
		t.Fatalf("%d records, want 1000", len(vs))
	}
	if n := strings.Count(got, "\n"); n != 1 {
		t.Fatalf("%d batches, want 1", n)
	}
	for _, f := range []string{`"key":"k`, `"topic":"clicks"`, `"partition":`, `"offset":`, `"timestamp":`, `"headers":{"h":"`} {
		if !strings.Contains(got, f) {
			t.Errorf("no %s in the records: %.300s", f, got)
		}
	}
}

// With --format json the value's fields make the record, the metadata
// under --meta-field's prefix.
func TestKafkaJSONMeta(t *testing.T) {
	c, seeds := kafkatest.Cluster(t, 1, 1, "events")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "events", Key: []byte("u1"), Value: []byte(`{"user":"u1","n":3}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ meta, want string }{
		{"", `{"user":"u1","n":3}`},
		{"kafka_", `{"user":"u1","n":3,"kafka_key":"u1","kafka_topic":"events","kafka_partition":0,"kafka_offset":0,"kafka_timestamp":`},
	} {
		got, err := runKafka(t, Options{Inputs: []string{kafkatest.URL(c, "events")}, Format: "json", MetaField: tc.meta, Once: true, Interval: 1000, Start: "earliest"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("meta %q: %s, want %s", tc.meta, got, tc.want)
		}
	}
}

// A topic that does not exist is an error at the start, naming it.
func TestKafkaMissingTopic(t *testing.T) {
	c, _ := kafkatest.Cluster(t, 1, 1, "there")
	_, err := runKafka(t, Options{Inputs: []string{kafkatest.URL(c, "nothere")}, Format: "lines", Once: true, Interval: 1000})
	if err == nil || !strings.Contains(err.Error(), `topic "nothere" does not exist`) {
		t.Fatalf("err %v", err)
	}
}

// batchValues splits a rendered stream into its batches: "ID@TIME" and the
// sorted values of its records (their order across partitions is free).
func batchValues(s string) []string {
	var bs []string
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		head, _, _ := strings.Cut(line, ":")
		bs = append(bs, head+" "+strings.Join(values(line), ","))
	}
	return bs
}

// A restart replays each batch after the sink's last commit from its
// offsets in the checkpoint: the same ids, times and records; then the
// group's offsets in Kafka are those of the last batch committed.
func TestKafkaReplay(t *testing.T) {
	c, seeds := kafkatest.Cluster(t, 3, 4, "clicks")
	produce(t, seeds, "clicks", 0, 1000)
	ck := t.TempDir()
	o := Options{Inputs: []string{kafkatest.URL(c, "clicks")}, Format: "lines", Once: true, Count: 100, Interval: 1000, Start: "earliest", Group: "g", Checkpoint: ck}
	first, err := runKafka(t, o)
	if err != nil {
		t.Fatal(err)
	}
	b1 := batchValues(first)
	if len(b1) != 10 {
		t.Fatalf("%d batches, want 10:\n%s", len(b1), first)
	}
	frametest.Commit(t, ck, 4)
	again, err := runKafka(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(batchValues(again), "\n"), strings.Join(b1[5:], "\n"); got != want {
		t.Fatalf("replayed:\n%.500s\nwant the batches 5 to 9 of the first run:\n%.500s", got, want)
	}
	// The group's offsets are those at the end of batch 4: 500 records.
	frametest.Commit(t, ck, 9)
	produce(t, seeds, "clicks", 1000, 10)
	o.Checkpoint, o.Count = "", 0
	rest, err := runKafka(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(values(rest)); n != 510 {
		t.Fatalf("the group's offsets left %d records, want 510 (those after batch 4's commit)", n)
	}
}

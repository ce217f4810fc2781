package kafkasink

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/dstream/dstream/internal/sinktest"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// t0 is the batch time of the first batch in tests: 2023-11-14T22:13:20Z.
const t0 = int64(1700000000000)

// javaMurmur2 is Kafka's Utils.murmur2, written again from the Java code
// (ints, unsigned shifts), to check kgo's partitioner against: the test
// vectors are Kafka's own (UtilsTest.testMurmur2).
func javaMurmur2(data []byte) int32 {
	const seed, m, r = int32(-1756908916), int32(0x5bd1e995), 24 // seed 0x9747b28c
	length := int32(len(data))
	h := seed ^ length
	for i := 0; i+4 <= len(data); i += 4 {
		k := int32(data[i]) | int32(data[i+1])<<8 | int32(data[i+2])<<16 | int32(data[i+3])<<24
		k *= m
		k ^= int32(uint32(k) >> r)
		k *= m
		h *= m
		h ^= k
	}
	rest := len(data) % 4
	tail := data[len(data)-rest:]
	switch rest {
	case 3:
		h ^= int32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= int32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= int32(tail[0])
		h *= m
	}
	h ^= int32(uint32(h) >> 13)
	h *= m
	h ^= int32(uint32(h) >> 15)
	return h
}

// javaPartition is where Java's producer puts a message with key:
// Utils.toPositive(Utils.murmur2(key)) % numPartitions.
func javaPartition(key []byte, partitions int32) int32 {
	return (javaMurmur2(key) & 0x7fffffff) % partitions
}

func TestJavaMurmur2(t *testing.T) {
	for key, want := range map[string]int32{ // Kafka's UtilsTest
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := javaMurmur2([]byte(key)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
}

// newSink opens a sink writing to url with o.
func newSink(t testing.TB, url string, o sink.Options) (*sink.Sink, error) {
	t.Helper()
	o.Dest, o.Target = &Kafka, url
	o.Stdout, o.Stderr = io.Discard, io.Discard
	return sink.New(o)
}

func mustSink(t testing.TB, url string, o sink.Options) *sink.Sink {
	t.Helper()
	s, err := newSink(t, url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// send writes a batch of records (JSON objects) through s.
func send(t testing.TB, s *sink.Sink, id uint64, recs ...string) error {
	t.Helper()
	return sinktest.Write(t, s, stage.Batch{ID: id, Time: t0 + int64(id)*1000}, recs...)
}

func read(t testing.TB, c *kfake.Cluster, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := kafkatest.Read(ctx, kafkatest.Seeds(c), topic)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func header(r *kgo.Record, name string) string {
	for _, h := range r.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return "<none>"
}

// TestKeysAndPartitions writes keyed records to a topic of 6 partitions on
// 3 brokers: each lands where Java's producer puts its key, with the
// batch's headers; records without the key field, or with a null, get a
// null key.
func TestKeysAndPartitions(t *testing.T) {
	const parts = 6
	c, _ := kafkatest.Cluster(t, 3, parts, "keys")
	s := mustSink(t, kafkatest.URL(c, "keys"), sink.Options{Keys: []string{"k"}})
	var recs []string
	want := map[string]string{} // value -> key, "<null>" for none
	for i := range 200 {
		recs = append(recs, fmt.Sprintf(`{"k":"key-%d","i":%d}`, i, i))
		want[fmt.Sprint(i)] = fmt.Sprintf("key-%d", i)
	}
	recs = append(recs, `{"k":"foobar","i":1000}`, `{"k":21,"i":1001}`, `{"i":1002}`, `{"k":null,"i":1003}`, `{"k":true,"i":1004}`, `{"k":{"a":[1]},"i":1005}`)
	want["1000"], want["1001"], want["1002"], want["1003"], want["1004"], want["1005"] = "foobar", "21", "<null>", "<null>", "true", `{"a":[1]}`
	if err := send(t, s, 7, recs[:100]...); err != nil {
		t.Fatal(err)
	}
	if err := send(t, s, 8, recs[100:]...); err != nil {
		t.Fatal(err)
	}
	got := read(t, c, "keys")
	if len(got) != len(recs) {
		t.Fatalf("%d messages, want %d", len(got), len(recs))
	}
	used := map[int32]bool{}
	for _, r := range got {
		v := string(r.Value)
		n := v[strings.LastIndex(v, `"i":`)+4 : len(v)-1]
		key := "<null>"
		if r.Key != nil {
			key = string(r.Key)
			if p := javaPartition(r.Key, parts); r.Partition != p {
				t.Errorf("key %q in partition %d, Java puts it in %d", key, r.Partition, p)
			}
			used[r.Partition] = true
		}
		if key != want[n] {
			t.Errorf("%s: key %q, want %q", v, key, want[n])
		}
		id, _ := strconv.Atoi(n)
		batch := 7
		if id >= 100 {
			batch = 8
		}
		if h := header(r, HeaderBatchID); h != fmt.Sprint(batch) {
			t.Errorf("%s: %s %s, want %d", v, HeaderBatchID, h, batch)
		}
		if h := header(r, HeaderBatchTime); h != fmt.Sprint(t0+int64(batch)*1000) {
			t.Errorf("%s: %s %s, want %d", v, HeaderBatchTime, h, t0+int64(batch)*1000)
		}
	}
	if len(used) != parts {
		t.Errorf("keys in %d partitions of %d", len(used), parts)
	}
	// The vectors of Kafka's own tests, where Java puts them.
	for _, k := range []string{"foobar", "21"} {
		for _, r := range got {
			if string(r.Key) == k && r.Partition != javaPartition([]byte(k), parts) {
				t.Errorf("%s in partition %d", k, r.Partition)
			}
		}
	}
}

// TestFormats: a message's value is one record in the format, without the
// newline that ends a line.
func TestFormats(t *testing.T) {
	c, _ := kafkatest.Cluster(t, 1, 1, "json", "lines", "msgpack")
	rec := `{"value":"a b","n":1}`
	for _, tc := range []struct{ format, want string }{
		{"json", rec},
		{"lines", "a b"},
		{"msgpack", string(frametest.Record(t, rec))},
	} {
		s := mustSink(t, kafkatest.URL(c, tc.format), sink.Options{Format: tc.format})
		if err := send(t, s, 0, rec, rec); err != nil {
			t.Fatal(err)
		}
		got := read(t, c, tc.format)
		if len(got) != 2 || string(got[0].Value) != tc.want || string(got[1].Value) != tc.want {
			t.Errorf("--format %s: %d messages, first %q, want 2 of %q", tc.format, len(got), got[0].Value, tc.want)
		}
	}
}

// TestOptions: the usage errors of --kafka come before anything is
// opened; a topic missing and brokers that do not answer are errors at
// the start, naming them.
func TestOptions(t *testing.T) {
	defer func(d time.Duration) { timeout = d }(timeout)
	timeout = time.Second
	c, _ := kafkatest.Cluster(t, 1, 1, "t")
	seeds := kafkatest.Seeds(c)
	for _, tc := range []struct {
		url  string
		o    sink.Options
		want string
	}{
		{"http://x/t", sink.Options{}, `--kafka "http://x/t": want a kafka:// URL`},
		{"kafka://h:1", sink.Options{}, "no topic"},
		{"kafka://h:1/a/b", sink.Options{}, `topic "a/b": Kafka allows only`},
		{"kafka://h:x:1/t", sink.Options{}, `bad broker address "h:x:1"`},
		{"kafka://h:1/t", sink.Options{Format: "csv"}, "--format csv does not go with --kafka"},
		{"kafka://h:1/t", sink.Options{Keys: []string{"a,b"}}, "--key a,b: --kafka takes one field"},
		{"kafka://h:1/t", sink.Options{Keys: []string{""}}, "--key needs a field name"},
		{"kafka://" + seeds + "/missing", sink.Options{}, "topic missing does not exist"},
		{"kafka://127.0.0.1:1,127.0.0.1:2/t", sink.Options{}, "no broker of 127.0.0.1:1,127.0.0.1:2 could be reached"},
	} {
		start := time.Now()
		_, err := newSink(t, tc.url, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: %v, want %q", tc.url, tc.o, err, tc.want)
		}
		if d := time.Since(start); d > 5*timeout {
			t.Errorf("%s: %v to fail", tc.url, d)
		}
	}
	if seeds, topic, err := parseURL("kafka://a,[::1]:7,b:8/t.x"); err != nil || strings.Join(seeds, " ") != "a:9092 [::1]:7 b:8" || topic != "t.x" {
		t.Errorf("parseURL: %q %q %v", seeds, topic, err)
	}
}

// TestProduceFails: messages the brokers refuse fail their batch, naming
// it and counting what was not acknowledged. With a checkpoint the batch's
// transaction is aborted: the messages acknowledged before the failure are
// not seen, and the next run writes the batch once.
func TestProduceFails(t *testing.T) {
	for _, ckpt := range []bool{false, true} {
		t.Run(fmt.Sprint("checkpoint=", ckpt), func(t *testing.T) {
			c, _ := kafkatest.Cluster(t, 2, 4, "t")
			url := kafkatest.URL(c, "t")
			o := sink.Options{Keys: []string{"k"}}
			if ckpt {
				o.Checkpoint = t.TempDir()
			}
			// The partition of key "x" fails; key y's, led by the other
			// broker, is written.
			bad := javaPartition([]byte("x"), 4)
			y := ""
			for i := 0; y == ""; i++ {
				if k := fmt.Sprint("y", i); javaPartition([]byte(k), 4) != bad {
					y = k
				}
			}
			// kfake may lead both partitions from one broker: then the bad
			// one moves to the other, before the sink reads the metadata.
			leaders := partitionLeaders(t, c, "t")
			if good := leaders[javaPartition([]byte(y), 4)]; leaders[bad] == good {
				other := int32(0)
				if good == 0 {
					other = 1
				}
				if err := c.MoveTopicPartition("t", bad, other); err != nil {
					t.Fatal(err)
				}
			}
			s := mustSink(t, url, o)
			if err := send(t, s, 0, `{"a":1}`); err != nil {
				t.Fatal(err)
			}
			var failing atomic.Bool
			failing.Store(true)
			c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				req := kr.(*kmsg.ProduceRequest)
				hit := false
				for _, rt := range req.Topics {
					for _, rp := range rt.Partitions {
						hit = hit || rp.Partition == bad
					}
				}
				if !failing.Load() || !hit {
					return nil, nil, false
				}
				resp := req.ResponseKind().(*kmsg.ProduceResponse)
				for _, rt := range req.Topics {
					st := kmsg.NewProduceResponseTopic()
					st.Topic, st.TopicID = rt.Topic, rt.TopicID
					for _, rp := range rt.Partitions {
						sp := kmsg.NewProduceResponseTopicPartition()
						sp.Partition, sp.ErrorCode = rp.Partition, kerr.InvalidRecord.Code
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
				return resp, nil, true
			})
			batch1 := []string{`{"a":2,"k":"` + y + `"}`, `{"a":3,"k":"x"}`}
			err := send(t, s, 1, batch1...)
			want := "--kafka " + url + ": batch 1: 1 of 2 messages not acknowledged: INVALID_RECORD"
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
			s.Close()
			got, want := values(read(t, c, "t")), `0:{"a":1} 1:`+batch1[0]
			if ckpt {
				want = `0:{"a":1}`
			}
			if !sameValues(got, want) {
				t.Errorf("after batch 1 failed: %s, want %s", got, want)
			}
			if !ckpt {
				return
			}
			failing.Store(false)
			s = mustSink(t, url, o)
			for id := range uint64(3) {
				recs := []string{`{"a":1}`}
				if id == 1 {
					recs = batch1
				}
				if err := send(t, s, id, recs...); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			got = values(read(t, c, "t"))
			if !sameValues(got, `0:{"a":1} 1:`+batch1[0]+` 1:`+batch1[1]+` 2:{"a":1}`) {
				t.Errorf("after the restart: %s, want batches 0, 1 and 2 once", got)
			}
		})
	}
}

// TestBrokersGone: a cluster that goes away in the middle of a batch fails
// the batch after timeout without an acknowledgement, naming the brokers.
func TestBrokersGone(t *testing.T) {
	defer func(d time.Duration) { timeout = d }(timeout)
	timeout = time.Second
	c, _ := kafkatest.Cluster(t, 2, 4, "t")
	url, seeds := kafkatest.URL(c, "t"), kafkatest.Seeds(c)
	s := mustSink(t, url, sink.Options{})
	b := stage.Batch{ID: 5, Time: t0}
	if err := s.Begin(b); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := s.Block(b, frametest.Frame(t, `{"a":1}`, `{"a":2}`).Records()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := s.End(b)
	want := fmt.Sprintf("--kafka %s: batch 5: 2 of 2 messages not acknowledged", url)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), seeds) {
		t.Errorf("got %v, want %q ... naming %s", err, want, seeds)
	}
	if d := time.Since(start); d > 5*timeout {
		t.Errorf("%v to fail", d)
	}
}

func checkpointID(t testing.TB, dir string) string {
	t.Helper()
	id, err := checkpoint.ID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func jsonFormat() *codec.Format { return codec.Lookup("json") }

// partitionLeaders are the brokers that lead the partitions of topic.
func partitionLeaders(t testing.TB, c *kfake.Cluster, topic string) map[int32]int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int32{}
	for p, d := range md.Topics[topic].Partitions {
		leaders[p] = d.Leader
	}
	return leaders
}

// sameValues reports whether two lists of values have the same ones,
// in any order (partitions are read one after the other).
func sameValues(a, b string) bool {
	as, bs := strings.Fields(a), strings.Fields(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(as, bs)
}

// values lists the values of messages, and their batch ids.
func values(recs []*kgo.Record) string {
	var vs []string
	for _, r := range recs {
		vs = append(vs, header(r, HeaderBatchID)+":"+string(r.Value))
	}
	return strings.Join(vs, " ")
}

// TestExactlyOnce: with a checkpoint each batch is a transaction that
// records the batch in Kafka. A restart that sends again batches whose
// checkpoint commit was lost skips them; a run that crashed in the middle
// of a batch leaves nothing of it that a read_committed consumer sees, and
// the next run writes it once.
func TestExactlyOnce(t *testing.T) {
	c, _ := kafkatest.Cluster(t, 3, 1, "eo")
	url := kafkatest.URL(c, "eo")
	dir := t.TempDir()
	s := mustSink(t, url, sink.Options{Checkpoint: dir})
	for id := range uint64(3) {
		if err := send(t, s, id, fmt.Sprintf(`{"v":"%d"}`, id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := send(t, s, 3); err != nil { // empty
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash after Kafka committed batches 1 to 3 and before the
	// checkpoint did.
	for _, id := range []string{"1", "2", "3"} {
		if err := os.Remove(filepath.Join(dir, "commits", id)); err != nil {
			t.Fatal(err)
		}
	}
	s = mustSink(t, url, sink.Options{Checkpoint: dir})
	for id := uint64(1); id <= 4; id++ {
		recs := []string{fmt.Sprintf(`{"v":"%d"}`, id)}
		if id == 3 {
			recs = nil // as replayed: the same batch
		}
		if err := send(t, s, id, recs...); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	want := `0:{"v":"0"} 1:{"v":"1"} 2:{"v":"2"} 4:{"v":"4"}` // batch 3 was empty
	if got := values(read(t, c, "eo")); got != want {
		t.Errorf("after the restart: %s, want batches 0, 1 and 2 once", got)
	}
	// A run that dies in the middle of batch 5, its messages sent: its
	// transaction is left open. The next run's producer fences it off
	// and aborts it.
	ckpt := checkpointID(t, dir)
	w, err := open(&sink.Options{Target: url}, jsonFormat(), nil)
	if err != nil {
		t.Fatal(err)
	}
	zombie := w.(*producer)
	if err := zombie.Start(ckpt, dir); err != nil {
		t.Fatal(err)
	}
	defer zombie.cl.Close()
	b := stage.Batch{ID: 5, Time: t0 + 5000}
	if err := zombie.Begin(b); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"5", "zombie"} {
		if err := zombie.Record(frametest.Record(t, `{"v":"`+v+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zombie.cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = mustSink(t, url, sink.Options{Checkpoint: dir})
	if err := send(t, s, 5, `{"v":"5"}`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	want += ` 5:{"v":"5"}`
	if got := values(read(t, c, "eo")); got != want {
		t.Errorf("after a run died in a batch: %s, want %s", got, want)
	}
	// The zombie's transaction cannot commit.
	if err := zombie.End(b, 2); err == nil {
		t.Errorf("the fenced producer committed its batch")
	}
	if got := values(read(t, c, "eo")); got != want {
		t.Errorf("after the fenced producer tried to commit: %s, want %s", got, want)
	}
}

// BenchmarkProduce sends batches of 1000 records {"value": "wordN",
// "count": N} keyed by value to a kfake topic of 4 partitions, each batch
// acknowledged before the next; with a checkpoint, each batch a
// transaction.
func BenchmarkProduce(b *testing.B) {
	const n = 1000
	recs := make([]string, n)
	for i := range recs {
		recs[i] = fmt.Sprintf(`{"value":"word%d","count":%d}`, i%100, i)
	}
	f := frametest.Frame(b, recs...)
	for _, ckpt := range []bool{false, true} {
		b.Run(fmt.Sprint("checkpoint=", ckpt), func(b *testing.B) {
			c, _ := kafkatest.Cluster(b, 1, 4, "bench")
			o := sink.Options{Keys: []string{"value"}}
			if ckpt {
				o.Checkpoint = b.TempDir()
			}
			s := mustSink(b, kafkatest.URL(c, "bench"), o)
			b.SetBytes(int64(len(f.Payload)))
			b.ReportAllocs()
			id := uint64(0)
			for b.Loop() {
				bt := stage.Batch{ID: id, Time: t0 + int64(id)}
				id++
				if err := s.Begin(bt); err != nil {
					b.Fatal(err)
				}
				if err := s.Block(bt, f.Records()); err != nil {
					b.Fatal(err)
				}
				if err := s.End(bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(int(id)*n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int(id)*n), "ns/record")
		})
	}
}

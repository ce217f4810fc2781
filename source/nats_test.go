package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/natstest"
	"github.com/dstream/dstream/stage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsStream makes a JetStream stream of the test's own, with the
// subjects NAME.> (NAME in lower case), deleted at the end of the test,
// and returns its name and a JetStream client. Without a server the test
// is skipped, but in CI (CI=true), where it fails.
func natsStream(t testing.TB) (string, jetstream.JetStream) {
	t.Helper()
	js := natstest.JetStream(t)
	name := natstest.Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".>"}}); err != nil {
		t.Fatalf("NATS at %s: making stream %s: %v", natstest.URL(), name, err)
	}
	natstest.Delete(t, js, name)
	return name, js
}

// natsPublish publishes messages from..from+n-1 to the stream's subject
// SUB (NAME.SUB): value vI (or what value makes of I), header h=I.
func natsPublish(t testing.TB, js jetstream.JetStream, stream, sub string, from, n int, value func(int) string) {
	t.Helper()
	if value == nil {
		value = func(i int) string { return fmt.Sprintf("v%d", i) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subject := strings.ToLower(stream) + "." + sub
	for i := from; i < from+n; i++ {
		m := &nats.Msg{Subject: subject, Data: []byte(value(i)), Header: nats.Header{"h": []string{fmt.Sprint(i)}}}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

func natsURLOf(stream string) string {
	return strings.TrimSuffix(natstest.URL(), "/") + "/" + stream
}

// natsOnce is the options of a --once read of stream from its start.
func natsOnce(stream string) Options {
	return Options{Inputs: []string{natsURLOf(stream)}, Format: "lines", Once: true, Interval: 1000, Start: "earliest", ServerTimeout: 5 * time.Second}
}

// A nats:// URL: servers with the user info for the client, the URL
// without the password or token for messages and the checkpoint.
func TestParseNATSURL(t *testing.T) {
	for _, tc := range []struct{ spec, servers, name, err string }{
		{spec: "nats://h:1/S", servers: "nats://h:1", name: "nats://h:1/S"},
		{spec: "nats://u:pw@h:1,g:2/S", servers: "nats://u:pw@h:1 nats://u:pw@g:2", name: "nats://u:xxxxx@h:1,g:2/S"},
		{spec: "nats://tok@h:1/S", servers: "nats://tok@h:1", name: "nats://xxxxx@h:1/S"},
		{spec: "nats://h:1", err: "want nats://HOST:PORT"},
		{spec: "nats:///S", err: "want nats://HOST:PORT"},
		{spec: "nats://h:1/S/x", err: "want nats://HOST:PORT"},
	} {
		u, err := parseNATSURL(tc.spec)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.spec, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.spec, err)
		case strings.Join(u.servers, " ") != tc.servers || u.name != tc.name || u.stream != "S":
			t.Errorf("%s: servers %q, name %q, stream %q", tc.spec, u.servers, u.name, u.stream)
		}
	}
}

// --once reads the stream up to its last message at the start, each
// message once, with its metadata: subject, sequence, timestamp, headers;
// --subject reads one subject's.
func TestNATSOnce(t *testing.T) {
	stream, js := natsStream(t)
	for i := range 10 {
		natsPublish(t, js, stream, "a", i*100, 50, nil)
		natsPublish(t, js, stream, "b", i*100+50, 50, nil)
	}
	got, err := runKafka(t, natsOnce(stream))
	if err != nil {
		t.Fatal(err)
	}
	if vs := values(got); len(vs) != 1000 {
		t.Fatalf("%d records, want 1000", len(vs))
	}
	if n := strings.Count(got, "\n"); n != 1 {
		t.Fatalf("%d batches, want 1", n)
	}
	subject := strings.ToLower(stream)
	for _, f := range []string{`{"value":"v0","subject":"` + subject + `.a","sequence":1,"timestamp":`, `"sequence":1000,`, `"headers":{"h":"999"}`} {
		if !strings.Contains(got, f) {
			t.Errorf("no %s in the records: %.300s", f, got)
		}
	}
	for _, f := range []string{`"key"`, `"partition"`, `"offset"`} {
		if strings.Contains(got, f) {
			t.Errorf("a field %s in the records: %.300s", f, got)
		}
	}

	o := natsOnce(stream)
	o.Subject = subject + ".b"
	got, err = runKafka(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if vs := values(got); len(vs) != 500 || strings.Contains(got, `.a"`) {
		t.Fatalf("--subject %s: %d records, want the 500 of .b: %.300s", o.Subject, len(vs), got)
	}
}

// --max-rate slows the reading down, and loses nothing: the producer
// waits before it takes a chunk to fill, not after.
func TestNATSMaxRate(t *testing.T) {
	stream, js := natsStream(t)
	natsPublish(t, js, stream, "a", 0, 300, nil)
	o := natsOnce(stream)
	o.MaxRate = 1000
	start := time.Now()
	got, err := runKafka(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if vs := values(got); len(vs) != 300 {
		t.Errorf("%d records, want 300", len(vs))
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("300 records at --max-rate 1000 took %v", d)
	}
}

// With --format json the value's fields make the record, the metadata
// under --meta-field's prefix.
func TestNATSJSONMeta(t *testing.T) {
	stream, js := natsStream(t)
	natsPublish(t, js, stream, "ev", 0, 1, func(int) string { return `{"user":"u1","n":3}` })
	subject := strings.ToLower(stream) + ".ev"
	for _, tc := range []struct{ meta, want string }{
		{"", `{"user":"u1","n":3}`},
		{"nats_", `{"user":"u1","n":3,"nats_subject":"` + subject + `","nats_sequence":1,"nats_timestamp":`},
	} {
		o := natsOnce(stream)
		o.Format, o.MetaField = "json", tc.meta
		got, err := runKafka(t, o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("meta %q: %s, want %s", tc.meta, got, tc.want)
		}
	}
}

// A stream that does not exist is an error at the start, naming it; a
// server that does not answer, an error naming it after --server-timeout.
func TestNATSMissing(t *testing.T) {
	natsStream(t)
	_, err := runKafka(t, natsOnce("NOSUCHSTREAM"))
	if err == nil || !strings.Contains(err.Error(), `stream "NOSUCHSTREAM" does not exist`) {
		t.Errorf("err %v", err)
	}
	o := natsOnce("S")
	o.Inputs[0], o.ServerTimeout = "nats://127.0.0.1:1/S", 300*time.Millisecond
	start := time.Now()
	_, err = runKafka(t, o)
	if err == nil || !strings.Contains(err.Error(), "no answer from the server 127.0.0.1:1") {
		t.Errorf("err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v, want about the server timeout", d)
	}
}

// With a checkpoint, a restart replays the batches the sink did not
// commit with their ids and messages, the sequences of other subjects
// (--subject) gaps in their ranges, then reads on.
func TestNATSCheckpointReplay(t *testing.T) {
	for _, sub := range []string{"", "a"} {
		t.Run("subject="+sub, func(t *testing.T) {
			stream, js := natsStream(t)
			pub := func(from, n int) {
				for i := from; i < from+n; i++ {
					natsPublish(t, js, stream, "a", i, 1, nil)
					natsPublish(t, js, stream, "b", i+1000, 1, nil) // skipped with --subject
				}
			}
			o := natsOnce(stream)
			o.Checkpoint = t.TempDir()
			if sub != "" {
				o.Subject = strings.ToLower(stream) + "." + sub
			}
			run := func() []string {
				t.Helper()
				got, err := runKafka(t, o)
				if err != nil {
					t.Fatal(err)
				}
				return strings.Split(strings.TrimSpace(got), "\n")
			}
			pub(0, 30)
			first := run() // batch 0, not committed
			pub(30, 20)
			second := run() // batch 0 again, batch 1
			if len(first) != 1 || len(second) != 2 || second[0] != first[0] {
				t.Fatalf("batch 0 read again differs:\n%.200s\n%.200s", first, second)
			}
			pub(50, 5)
			third := run() // batches 0, 1 again, batch 2
			if len(third) != 3 || third[0] != first[0] || third[1] != second[1] {
				t.Fatalf("batches 0 and 1 read again differ:\n%.200s\n%.200s", second, third)
			}
			want := 55
			if sub == "" {
				want = 110
			}
			if n := len(values(strings.Join(third, "\n"))); n != want {
				t.Errorf("%d records in the three batches, want %d", n, want)
			}
			for i, b := range third {
				if !strings.HasPrefix(b, fmt.Sprintf("%d@", i)) {
					t.Errorf("batch %d: %.50s", i, b)
				}
			}
		})
	}
}

// A checkpoint belongs to one --subject: another would replay other
// messages in the same ranges.
func TestNATSCheckpointSubject(t *testing.T) {
	stream, js := natsStream(t)
	natsPublish(t, js, stream, "a", 0, 10, nil)
	o := natsOnce(stream)
	o.Checkpoint, o.Subject = t.TempDir(), strings.ToLower(stream)+".a"
	if _, err := runKafka(t, o); err != nil {
		t.Fatal(err)
	}
	o.Subject = strings.ToLower(stream) + ".>"
	if _, err := runKafka(t, o); err == nil || !strings.Contains(err.Error(), "was written by a different configuration") {
		t.Errorf("err %v", err)
	}
}

// A batch whose messages are gone from the stream cannot be replayed:
// an error naming the batch.
func TestNATSReplayGone(t *testing.T) {
	stream, js := natsStream(t)
	natsPublish(t, js, stream, "a", 0, 10, nil)
	o := natsOnce(stream)
	o.Checkpoint = t.TempDir()
	if _, err := runKafka(t, o); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	_, err = runKafka(t, o)
	if err == nil || !strings.Contains(err.Error(), "batch 0 cannot be replayed: its last message, sequence 10, is gone") {
		t.Errorf("err %v", err)
	}
}

// natsTracker opens the tracker of o and its live feed, and returns them
// with the function that closes both (at the end of the test, if not
// before).
func natsTracker(t *testing.T, o Options) (*brokerTracker, Feed, func()) {
	t.Helper()
	tr, err := openNATS(Opening{Env: &stage.Env{Name: "sbatch", Stderr: os.Stderr}, Options: &o})
	if err != nil {
		t.Fatal(err)
	}
	bt := tr.(*brokerTracker)
	ins, err := bt.Inputs()
	if err != nil {
		bt.Close()
		t.Fatal(err)
	}
	live := ins[len(ins)-1].Feed
	closeAll := sync.OnceFunc(func() {
		live.Close()
		bt.Close()
	})
	t.Cleanup(closeAll)
	return bt, live, closeAll
}

// taker fetches messages from a feed and moves a tracker past them, as
// the batcher does.
type taker struct {
	bt   *brokerTracker
	f    Feed
	left []Message // fetched, not taken yet
}

// take takes the next n messages.
func (k *taker) take(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(k.left) < n && time.Now().Before(deadline) {
		var err error
		if k.left, err = k.f.Fetch(nil, k.left); err != nil {
			t.Fatal(err)
		}
	}
	if len(k.left) < n {
		t.Fatalf("%d messages, want %d", len(k.left), n)
	}
	for _, m := range k.left[:n] {
		k.bt.Reached(m.Pos, false)
	}
	k.left = k.left[n:]
}

// ackFloor is the stream sequence up to which the durable's messages are
// acked, and how many wait for their ack.
func ackFloor(t *testing.T, js jetstream.JetStream, stream, durable string) (uint64, int) {
	t.Helper()
	// Acks are published without a reply: let the server take them.
	time.Sleep(100 * time.Millisecond)
	c, err := js.Consumer(context.Background(), stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ci.AckFloor.Stream, ci.NumAckPending
}

// With a checkpoint the durable's acks follow the sink's commits, never
// ahead of them.
func TestNATSDurableFollowsCommits(t *testing.T) {
	stream, js := natsStream(t)
	natsPublish(t, js, stream, "a", 0, 30, nil)
	ck := t.TempDir()
	o := Options{Inputs: []string{natsURLOf(stream)}, Format: "lines", Interval: 1000, Start: "earliest", Checkpoint: ck, Group: "wc"}
	bt, live, _ := natsTracker(t, o)
	k := &taker{bt: bt, f: live}
	k.take(t, 20)
	if err := bt.Write(0, 1000, Position{}); err != nil {
		t.Fatal(err)
	}
	k.take(t, 10)
	if err := bt.Write(1, 2000, Position{}); err != nil {
		t.Fatal(err)
	}
	if floor, _ := ackFloor(t, js, stream, "wc"); floor != 0 {
		t.Fatalf("acked up to %d before any commit", floor)
	}
	committer, err := checkpoint.OpenCommitter(ck)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range []uint64{20, 30} {
		if err := committer.Commit(uint64(id), int64(id+1)*1000); err != nil {
			t.Fatal(err)
		}
		if err := bt.commitDone(); err != nil {
			t.Fatal(err)
		}
		if floor, pending := ackFloor(t, js, stream, "wc"); floor != want || pending != 0 {
			t.Errorf("after commit %d: acked up to %d (%d waiting), want %d", id, floor, pending, want)
		}
	}
	if _, err := os.Stat(filepath.Join(ck, "offsets", "1")); err != nil {
		t.Error(err)
	}
}

// Without a checkpoint the durable is the feed: a batch's messages are
// acked once it has left, and a new run reads on after them, first the
// messages fetched ahead and not taken, given back at the end of the run.
func TestNATSDurableAtLeastOnce(t *testing.T) {
	stream, js := natsStream(t)
	natsPublish(t, js, stream, "a", 0, 20, nil)
	o := Options{Inputs: []string{natsURLOf(stream)}, Format: "lines", Interval: 1000, Start: "earliest", Group: "wc"}
	bt, live, closeAll := natsTracker(t, o)
	(&taker{bt: bt, f: live}).take(t, 20)
	if err := bt.Write(0, 1000, Position{}); err != nil {
		t.Fatal(err)
	}
	if floor, _ := ackFloor(t, js, stream, "wc"); floor != 0 {
		t.Fatalf("acked up to %d before the batch left", floor)
	}
	bt.Sent(0)
	if floor, pending := ackFloor(t, js, stream, "wc"); floor != 20 || pending != 0 {
		t.Errorf("acked up to %d (%d waiting), want 20 (0)", floor, pending)
	}
	natsPublish(t, js, stream, "a", 20, 10, nil) // fetched ahead, or not yet
	time.Sleep(100 * time.Millisecond)
	closeAll()

	o.Once = true
	got, err := runKafka(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if vs := values(got); len(vs) != 10 || vs[0] != "v20" || vs[9] != "v29" {
		t.Errorf("the next run read %v, want v20..v29", vs)
	}
	if floor, pending := ackFloor(t, js, stream, "wc"); floor != 30 || pending != 0 {
		t.Errorf("acked up to %d (%d waiting), want 30", floor, pending)
	}
}

// BenchmarkNATSOnce reads 50,000 messages of 60 bytes from the local
// server with --once: the ordered consumer, the feed's goroutine, the
// records made of the messages and their metadata.
func BenchmarkNATSOnce(b *testing.B) {
	stream, js := natsStream(b)
	const n = 50_000
	subject := strings.ToLower(stream) + ".a"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	value := []byte("the quick brown fox jumps over the lazy dog 0123456789 abcd")
	for range n {
		if _, err := js.PublishAsync(subject, value); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	}
	o := natsOnce(stream)
	b.SetBytes(n * int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		e := &stage.Env{Name: "sbatch", Out: framing.NewWriter(io.Discard), Stderr: io.Discard}
		if err := Run(e, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

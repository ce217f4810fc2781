package natssink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/internal/natstest"
	"github.com/dstream/dstream/internal/sinktest"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	"github.com/nats-io/nats.go/jetstream"
)

// t0 is the batch time of the first batch in tests: 2023-11-14T22:13:20Z.
const t0 = int64(1700000000000)

// newSink opens a sink to subject on the test server with the options of o
// that are set.
func newSink(t testing.TB, subject string, o sink.Options) (*sink.Sink, *bytes.Buffer) {
	return sinktest.Open(t, &NATS, natstest.URL()+"/"+subject, o)
}

// text is msgs as lines "HEADERS BODY", the headers of dstream's in order.
func text(msgs []natstest.Msg, run string) string {
	var b strings.Builder
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if run != "" {
			id = strings.Replace(id, run, "RUN", 1)
		}
		fmt.Fprintf(&b, "%s id=%s batch=%s time=%s %s\n", m.Subject, id,
			m.Header.Get(HeaderBatchID), m.Header.Get(HeaderBatchTime), m.Data)
	}
	return b.String()
}

// Each record is a message on the subject, in --format, with its id and
// its batch's id and time in headers; with a checkpoint, ids start with
// the checkpoint's id.
func TestPublish(t *testing.T) {
	js := natstest.JetStream(t)
	name := natstest.Stream(t, js)
	dir := t.TempDir()
	s, stderr := newSink(t, name, sink.Options{Checkpoint: dir})
	if err := sinktest.Write(t, s, stage.Batch{ID: 0, Time: t0}, `{"value":"a"}`, `{"value":"b","n":2}`); err != nil {
		t.Fatal(err)
	}
	if err := sinktest.Write(t, s, stage.Batch{ID: 1, Time: t0 + 1000}); err != nil {
		t.Fatal(err)
	}
	if err := sinktest.Write(t, s, stage.Batch{ID: 2, Time: t0 + 2000}, `{"value":"c"}`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ckpt := readID(t, dir)
	got := text(natstest.Messages(t, js, name), ckpt)
	want := name + ` id=RUN-0-1 batch=0 time=1700000000000 {"value":"a"}
` + name + ` id=RUN-0-2 batch=0 time=1700000000000 {"value":"b","n":2}
` + name + ` id=RUN-2-1 batch=2 time=1700000002000 {"value":"c"}
`
	if got != want {
		t.Errorf("messages:\n%s\nwant\n%s", got, want)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr %q", stderr)
	}
}

// Other formats: lines is the value alone, msgpack the record.
func TestFormats(t *testing.T) {
	js := natstest.JetStream(t)
	for _, tc := range []struct{ format, want string }{
		{"lines", "x y"},
		{"msgpack", string(frametest.Record(t, `{"value":"x y"}`))},
	} {
		name := natstest.Stream(t, js)
		s, _ := newSink(t, name, sink.Options{Format: tc.format})
		if err := sinktest.Write(t, s, stage.Batch{ID: 0, Time: t0}, `{"value":"x y"}`); err != nil {
			t.Fatal(err)
		}
		msgs := natstest.Messages(t, js, name)
		if len(msgs) != 1 || string(msgs[0].Data) != tc.want {
			t.Errorf("--format %s: %q, want one message %q", tc.format, msgs, tc.want)
		}
	}
}

func readID(t testing.TB, dir string) string {
	t.Helper()
	id, err := checkpoint.ID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// startWriter opens the writer of --nats to subject for a run whose
// checkpoint id is ckpt, as sink.New does, without a Sink's checkpoint:
// as a run that published a batch and died before committing it.
func startWriter(t testing.TB, subject, ckpt string) (*writer, *bytes.Buffer) {
	t.Helper()
	var stderr bytes.Buffer
	o := &sink.Options{Target: natstest.URL() + "/" + subject, Stderr: &stderr}
	w, err := NATS.Open(o, codec.Lookup("json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.(sink.Starter).Start(ckpt, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.(io.Closer).Close() })
	return w.(*writer), &stderr
}

// publish writes batch b of recs through w.
func publish(t testing.TB, w sink.Writer, b stage.Batch, recs ...string) error {
	t.Helper()
	if err := w.Begin(b); err != nil {
		return err
	}
	for _, r := range recs {
		if err := w.Record(frametest.Record(t, r)); err != nil {
			return err
		}
	}
	return w.End(b, uint64(len(recs)))
}

// A batch published again by a run with the same checkpoint (a replay
// after a crash before its commit) is stored once: its messages have the
// same ids, within the stream's duplicate window. A run without a
// checkpoint has ids of its own.
func TestReplayStoredOnce(t *testing.T) {
	js := natstest.JetStream(t)
	name := natstest.Stream(t, js)
	recs := []string{`{"value":"a"}`, `{"value":"b"}`, `{"value":"c"}`}
	b := stage.Batch{ID: 7, Time: t0}
	w1, _ := startWriter(t, name, "ck1")
	if err := publish(t, w1, b, recs...); err != nil {
		t.Fatal(err)
	}
	w1.Close()
	w2, stderr := startWriter(t, name, "ck1")
	if err := publish(t, w2, b, recs[:2]...); err != nil { // the replay, cut short
		t.Fatal(err)
	}
	if err := publish(t, w2, b, recs...); err != nil { // and whole
		t.Fatal(err)
	}
	if w2.Written() != 0 {
		t.Errorf("Written %d after a replay, want 0", w2.Written())
	}
	if want := "ssink: note: batch 7: 3 of its 3 records were in stream " + name + " already (a replay within its duplicate window), not stored again\n"; !strings.HasSuffix(stderr.String(), want) {
		t.Errorf("stderr %q, want it to end with %q", stderr, want)
	}
	want := name + ` id=ck1-7-1 batch=7 time=1700000000000 {"value":"a"}
` + name + ` id=ck1-7-2 batch=7 time=1700000000000 {"value":"b"}
` + name + ` id=ck1-7-3 batch=7 time=1700000000000 {"value":"c"}
`
	if got := text(natstest.Messages(t, js, name), ""); got != want {
		t.Errorf("messages:\n%s\nwant\n%s", got, want)
	}
	// Two runs without a checkpoint number their batches from 0 both:
	// each run's records are stored.
	for range 2 {
		w, _ := startWriter(t, name, "")
		if err := publish(t, w, stage.Batch{ID: 0, Time: t0}, `{"value":"d"}`); err != nil {
			t.Fatal(err)
		}
		if w.Written() != 1 {
			t.Errorf("Written %d, want 1", w.Written())
		}
	}
	if msgs := natstest.Messages(t, js, name); len(msgs) != 5 {
		t.Errorf("%d messages after two runs without a checkpoint, want 5:\n%s", len(msgs), text(msgs, ""))
	}
}

// A message JetStream refuses fails its batch, naming the batch and the
// first record refused; the batch's End waits for the acks of all.
func TestRefused(t *testing.T) {
	js := natstest.JetStream(t)
	name := natstest.Name(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}, MaxMsgs: 2, Discard: jetstream.DiscardNew}); err != nil {
		t.Fatal(err)
	}
	natstest.Delete(t, js, name)
	w, _ := startWriter(t, name, "")
	err := publish(t, w, stage.Batch{ID: 3, Time: t0}, `{"value":"a"}`, `{"value":"b"}`, `{"value":"c"}`, `{"value":"d"}`)
	want := "batch 3, record 3: " + natstest.URL() + ": publishing to " + name + ": nats: API error: code=503 err_code=10077 description=maximum messages exceeded (and 1 more records of the batch)"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if msgs := natstest.Messages(t, js, name); len(msgs) != 2 {
		t.Errorf("%d messages, want 2", len(msgs))
	}
}

// No stream that captures the subject is an error at start-up, unless
// --create-stream names one to create; a stream of that name that
// captures other subjects is an error.
func TestStream(t *testing.T) {
	js := natstest.JetStream(t)
	name := natstest.Name(t)
	o := sink.Options{Dest: &NATS, Target: natstest.URL() + "/" + name, Stdout: io.Discard, Stderr: io.Discard}
	_, err := sink.New(o)
	var se *stage.Error
	if err == nil || err.Error() != natstest.URL()+": no JetStream stream captures subject "+name || !errors.As(err, &se) ||
		!strings.Contains(se.Hint, "--create-stream NAME") {
		t.Errorf("no stream: %v", err)
	}

	natstest.Delete(t, js, name)
	o.CreateStream = name
	s, err := sink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := sinktest.Write(t, s, stage.Batch{ID: 0, Time: t0}, `{"value":"a"}`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if msgs := natstest.Messages(t, js, name); len(msgs) != 1 {
		t.Errorf("%d messages in the stream created, want 1", len(msgs))
	}
	// Again: the stream is there, and taken as it is.
	s, err = sink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	o.Target += ".other"
	_, err = sink.New(o)
	if want := natstest.URL() + ": --create-stream " + name + ": a stream of that name exists and does not capture subject " + name + ".other"; err == nil || err.Error() != want {
		t.Errorf("a stream of the name with other subjects: %v, want %s", err, want)
	}
}

// Bad credentials are an error at start-up, at once.
func TestBadCredentials(t *testing.T) {
	u := natstest.AuthServer(t, "me", "secret")
	host := strings.TrimPrefix(u, "nats://")
	for _, tc := range []struct{ url, want string }{
		{"nats://me:wrong@" + host + "/x", "nats://me@" + host + ": nats: Authorization Violation"},
		{"nats://" + host + "/x", "nats://" + host + ": nats: Authorization Violation"},
	} {
		start := time.Now()
		_, err := sink.New(sink.Options{Dest: &NATS, Target: tc.url, ConnectTimeout: 10 * time.Second, Stdout: io.Discard, Stderr: io.Discard})
		if err == nil || err.Error() != tc.want || strings.Contains(err.Error(), "wrong") {
			t.Errorf("%s: %v, want %s", tc.url, err, tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: the error took %v: tried again?", tc.url, d)
		}
	}
	// The right ones, with a stream made for the test.
	_, err := sink.New(sink.Options{Dest: &NATS, Target: "nats://me:secret@" + host + "/x", CreateStream: "x", Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Errorf("the right password: %v", err)
	}
}

// A server that is not there is tried again, with a note, until
// --connect-timeout passes; then an error names it.
func TestServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var stderr bytes.Buffer
	start := time.Now()
	_, err = sink.New(sink.Options{Dest: &NATS, Target: "nats://u:secret@" + addr + "/x", ConnectTimeout: 700 * time.Millisecond, Stdout: io.Discard, Stderr: &stderr})
	d := time.Since(start)
	show := "nats://u@" + addr
	if err == nil || err.Error() != show+": cannot connect for 700ms (--connect-timeout): dial tcp "+addr+": connect: connection refused" {
		t.Errorf("error %v", err)
	}
	if want := "ssink: note: " + show + ": cannot connect (connection refused), trying again for 700ms (--connect-timeout)\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %v, want about 700ms", d)
	}
}

// The command line is checked before anything is opened.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		o    sink.Options
		want string
	}{
		{sink.Options{Target: "http://127.0.0.1:4222/x"}, `--nats "http://127.0.0.1:4222/x": want a nats:// URL with a host`},
		{sink.Options{Target: "nats://127.0.0.1:4222"}, `no subject: put it after the host`},
		{sink.Options{Target: "nats://127.0.0.1:4222/a..b"}, `an empty token in the subject`},
		{sink.Options{Target: "nats://127.0.0.1:4222/a.>"}, `a wildcard in the subject`},
		{sink.Options{Target: "nats://127.0.0.1:4222/a?b=c"}, `takes no ?query`},
		{sink.Options{Target: "nats://127.0.0.1:4222/a", CreateStream: "a.b"}, `--create-stream "a.b": a stream name has no spaces, dots`},
		{sink.Options{Target: "nats://127.0.0.1:4222/a", Format: "csv"}, `--format csv does not go with --nats, which sends a message per record`},
		{sink.Options{Target: "nats://127.0.0.1:4222/a", Format: "console"}, `--format console does not go with --nats`},
	} {
		tc.o.Dest, tc.o.Stdout, tc.o.Stderr = &NATS, io.Discard, io.Discard
		_, err := sink.New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

// BenchmarkPublish publishes batches of 1000 records of a few fields, each
// batch waiting for its acks.
func BenchmarkPublish(b *testing.B) {
	js := natstest.JetStream(b)
	name := natstest.Stream(b, js)
	const n = 1000
	recs := make([]string, n)
	for i := range recs {
		recs[i] = fmt.Sprintf(`{"value":"word%d","count":%d,"avg":%g}`, i%100, i, float64(i)/2)
	}
	f := frametest.Frame(b, recs...)
	s, _ := newSink(b, name, sink.Options{})
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
}

// A server that goes away under ssink: the messages waiting for their ack
// fail the batch, naming it.
func TestServerGone(t *testing.T) {
	defer func(d time.Duration) { ackTimeout = d }(ackTimeout)
	ackTimeout = time.Second
	u, stop := natstest.Server(t, "-js")
	s, err := sink.New(sink.Options{Dest: &NATS, Target: u + "/x", CreateStream: "x", Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := sinktest.Write(t, s, stage.Batch{ID: 0, Time: t0}, `{"v":1}`); err != nil {
		t.Fatal(err)
	}
	b := stage.Batch{ID: 1, Time: t0}
	if err := s.Begin(b); err != nil {
		t.Fatal(err)
	}
	stop()
	err = s.Block(b, frametest.Frame(t, `{"v":2}`).Records())
	if err == nil {
		err = s.End(b)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "batch 1") {
		t.Errorf("error %v, want one naming batch 1", err)
	}
}

// A server without JetStream is an error at start-up.
func TestNoJetStream(t *testing.T) {
	u, _ := natstest.Server(t)
	_, err := sink.New(sink.Options{Dest: &NATS, Target: u + "/x", Stdout: io.Discard, Stderr: io.Discard})
	var se *stage.Error
	if err == nil || !strings.HasPrefix(err.Error(), u+": JetStream is not enabled on the server: ") || !errors.As(err, &se) || !strings.Contains(se.Hint, "-js") {
		t.Errorf("error %v", err)
	}
}

package amqpsink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/internal/amqptest"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/internal/sinktest"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	amqp "github.com/rabbitmq/amqp091-go"
)

// t0 is the batch time of the first batch in tests: 2023-11-14T22:13:20Z.
const t0 = int64(1700000000000)

// target is the --amqp URL of the test server with the query q.
func target(q string) string {
	u := amqptest.URL()
	if !strings.HasSuffix(u, "/") && !strings.Contains(u, "?") {
		u += "/"
	}
	return u + "?" + q
}

// show is the test server's URL as messages show it.
func show() string {
	u, _ := url.Parse(amqptest.URL())
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// newSink opens a sink to the URL target with the options of o that are
// set.
func newSink(t testing.TB, target string, o sink.Options) (*sink.Sink, *bytes.Buffer) {
	return sinktest.Open(t, &AMQP, target, o)
}

// text is msgs as lines "KEY id=ID batch=ID time=TIME TYPE MODE BODY".
func text(msgs []amqp.Delivery, run string) string {
	var b strings.Builder
	for _, m := range msgs {
		id := m.MessageId
		if run != "" {
			id = strings.Replace(id, run, "RUN", 1)
		}
		fmt.Fprintf(&b, "%s id=%s batch=%v time=%v %s %d %s\n", m.RoutingKey, id,
			m.Headers[HeaderBatchID], m.Headers[HeaderBatchTime], m.ContentType, m.DeliveryMode, m.Body)
	}
	return b.String()
}

// Each record is a persistent message to the exchange, in --format, with
// its batch's id and time in headers and an id from the checkpoint, the
// batch and its number.
func TestPublish(t *testing.T) {
	name := amqptest.Exchange(t, "k")
	dir := t.TempDir()
	s, stderr := newSink(t, target("exchange="+name+"&routing_key=k"), sink.Options{Checkpoint: dir})
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
	ckpt, err := checkpoint.ID(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := text(amqptest.Messages(t, name), ckpt)
	want := `k id=RUN-0-1 batch=0 time=1700000000000 application/json 2 {"value":"a"}
k id=RUN-0-2 batch=0 time=1700000000000 application/json 2 {"value":"b","n":2}
k id=RUN-2-1 batch=2 time=1700000002000 application/json 2 {"value":"c"}
`
	if got != want {
		t.Errorf("messages:\n%s\nwant\n%s", got, want)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr %q", stderr)
	}
}

// --routing-key-field takes each message's routing key from a field, as
// text; the default exchange routes by it to the queue of that name.
func TestRoutingKeyField(t *testing.T) {
	name := amqptest.Exchange(t, "1", "x")
	s, _ := newSink(t, target("exchange="+name), sink.Options{RoutingKeyField: "k", Format: "lines"})
	if err := sinktest.Write(t, s, stage.Batch{ID: 0, Time: t0}, `{"value":"a","k":1}`, `{"value":"b","k":"x"}`); err != nil {
		t.Fatal(err)
	}
	want := "1 id=" // and the rest
	got := text(amqptest.Messages(t, name), "")
	if lines := strings.Split(got, "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], want) || !strings.HasSuffix(lines[0], "text/plain; charset=utf-8 2 a") ||
		!strings.HasPrefix(lines[1], "x id=") || !strings.HasSuffix(lines[1], " b") {
		t.Errorf("messages:\n%s", got)
	}
	err := sinktest.Write(t, s, stage.Batch{ID: 1, Time: t0}, `{"value":"c"}`)
	if want := `batch 1, record 1: no field "k" for the routing key (--routing-key-field)`; err == nil || err.Error() != want {
		t.Errorf("a record without the field: %v, want %s", err, want)
	}

	// The default exchange.
	q := amqptest.Name(t)
	amqptest.Queue(t, q)
	s, _ = newSink(t, target(""), sink.Options{RoutingKeyField: "q"})
	if err := sinktest.Write(t, s, stage.Batch{ID: 0, Time: t0}, `{"q":"`+q+`"}`); err != nil {
		t.Fatal(err)
	}
	if msgs := amqptest.Messages(t, q); len(msgs) != 1 {
		t.Errorf("%d messages in queue %s, want 1", len(msgs), q)
	}
}

// A message that no queue takes (returned: ssink publishes mandatory)
// fails its batch, naming the batch and the first record returned; the
// batches before it stay.
func TestUnroutable(t *testing.T) {
	name := amqptest.Exchange(t, "ok")
	s, _ := newSink(t, target("exchange="+name), sink.Options{RoutingKeyField: "k"})
	if err := sinktest.Write(t, s, stage.Batch{ID: 0, Time: t0}, `{"k":"ok"}`); err != nil {
		t.Fatal(err)
	}
	err := sinktest.Write(t, s, stage.Batch{ID: 1, Time: t0}, `{"k":"ok"}`, `{"k":"lost"}`, `{"k":"ok"}`, `{"k":"lost2"}`)
	want := `batch 1, record 2: ` + show() + `: unroutable: exchange "` + name + `" has no queue for routing key "lost" (312 NO_ROUTE) (and 1 more records of the batch)`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
	if msgs := amqptest.Messages(t, name); len(msgs) != 3 {
		t.Errorf("%d messages, want 3", len(msgs))
	}
}

// A queue that refuses messages (full, with overflow reject-publish) nacks
// them: the batch fails naming the first record refused.
func TestNack(t *testing.T) {
	name := amqptest.Name(t)
	ch := amqptest.Channel(t)
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-max-length": int32(2), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	amqptest.DeleteQueue(t, name)
	s, _ := newSink(t, target("routing_key="+name), sink.Options{})
	err := sinktest.Write(t, s, stage.Batch{ID: 4, Time: t0}, `{"v":1}`, `{"v":2}`, `{"v":3}`, `{"v":4}`)
	want := `batch 4, record 3: ` + show() + `: refused by the server (nack) (and 1 more records of the batch)`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

// A batch published again (a replay with the same checkpoint, after a
// crash before its commit) is in the queue twice: RabbitMQ keeps no ids to
// drop duplicates by (at least once). The copies have the same message id,
// by which a consumer can drop them.
func TestReplayAtLeastOnce(t *testing.T) {
	name := amqptest.Exchange(t)
	run := func() {
		o := &sink.Options{Target: target("exchange=" + name + "&routing_key=" + name), Stderr: io.Discard}
		w, err := open(o, codec.Lookup("json"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.(io.Closer).Close()
		if err := w.(sink.Starter).Start("ck1", ""); err != nil {
			t.Fatal(err)
		}
		b := stage.Batch{ID: 5, Time: t0}
		w.Begin(b)
		for _, r := range []string{`{"v":1}`, `{"v":2}`} {
			if err := w.Record(frametest.Record(t, r)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.End(b, 2); err != nil {
			t.Fatal(err)
		}
	}
	run()
	run()
	got := text(amqptest.Messages(t, name), "")
	want := strings.Repeat(name+` id=ck1-5-1 batch=5 time=1700000000000 application/json 2 {"v":1}
`+name+` id=ck1-5-2 batch=5 time=1700000000000 application/json 2 {"v":2}
`, 2)
	if got != want {
		t.Errorf("messages:\n%s\nwant\n%s", got, want)
	}
}

// A missing exchange or queue, bad credentials and a vhost that is not
// there are errors at start-up, at once (but for RabbitMQ's own pause of
// 3 s before it refuses credentials).
func TestStartErrors(t *testing.T) {
	amqptest.Channel(t) // or skip
	u, _ := url.Parse(amqptest.URL())
	host := u.Host
	missing := amqptest.Name(t)
	for _, tc := range []struct {
		url, want, hint string
	}{
		{target("exchange=" + missing), show() + `: no exchange "` + missing + `"`, "rabbitmqadmin declare exchange"},
		{target("routing_key=" + missing), show() + `: no queue "` + missing + `" for the default exchange to route to (routing_key=` + missing + `, no exchange=)`, "amqp-declare-queue"},
		{"amqp://guest:wrong@" + host + "/?routing_key=x", "amqp://guest@" + host + "/: Exception (403) Reason: ", "check the user and password"},
		{"amqp://nobody:x@" + host + "/?routing_key=x", "amqp://nobody@" + host + "/: Exception (403) Reason: ", "check the user and password"},
		{"amqp://guest:guest@" + host + "/nowhere?routing_key=x", "amqp://guest@" + host + "/nowhere: Exception (530) Reason: ", "check the vhost"},
	} {
		start := time.Now()
		_, err := sink.New(sink.Options{Dest: &AMQP, Target: tc.url, ConnectTimeout: 10 * time.Second, Stdout: io.Discard, Stderr: io.Discard})
		var se *stage.Error
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.As(err, &se) || !strings.Contains(se.Hint, tc.hint) || strings.Contains(err.Error(), "wrong") {
			t.Errorf("%s: %v, want %s... and a hint %q", tc.url, err, tc.want, tc.hint)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: the error took %v: tried again?", tc.url, d)
		}
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
	_, err = sink.New(sink.Options{Dest: &AMQP, Target: "amqp://u:secret@" + addr + "/?routing_key=x", ConnectTimeout: 700 * time.Millisecond, Stdout: io.Discard, Stderr: &stderr})
	d := time.Since(start)
	show := "amqp://u@" + addr + "/"
	if err == nil || err.Error() != show+": cannot connect for 700ms (--connect-timeout): dial tcp "+addr+": connect: connection refused" {
		t.Errorf("error %v", err)
	}
	if want := "ssink: note: " + show + ": cannot connect (connection refused), trying again for 700ms (--connect-timeout)\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %v, want about 700ms", d)
	}
	// A stop asked for while waiting ends the wait.
	stop := make(chan struct{})
	time.AfterFunc(200*time.Millisecond, func() { close(stop) })
	start = time.Now()
	_, err = sink.New(sink.Options{Dest: &AMQP, Target: "amqp://" + addr + "/?routing_key=x", ConnectTimeout: time.Minute, Stop: stop, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "stopped while waiting for the server") || time.Since(start) > 5*time.Second {
		t.Errorf("a stop: %v after %v", err, time.Since(start))
	}
}

// The command line is checked before anything is opened.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		o    sink.Options
		want string
	}{
		{sink.Options{Target: "http://127.0.0.1:5672/"}, `--amqp "http://127.0.0.1:5672/": want an amqp:// URL with a host`},
		{sink.Options{Target: "amqp://127.0.0.1:5672/"}, `--amqp amqp://127.0.0.1:5672/: no exchange=E, and no routing key`},
		{sink.Options{Target: "amqp://127.0.0.1:5672/?routing_key=a", RoutingKeyField: "k"}, `--routing-key-field k does not go with routing_key=a in the --amqp URL`},
		{sink.Options{Target: "amqp://127.0.0.1:5672/?routing_key=a", Format: "csv"}, `--format csv does not go with --amqp, which sends a message per record`},
		{sink.Options{Target: "amqp://127.0.0.1:5672/?routing_key=a&heartbeat=x"}, `heartbeat is not an uint16`},
	} {
		tc.o.Dest, tc.o.Stdout, tc.o.Stderr = &AMQP, io.Discard, io.Discard
		_, err := sink.New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

// BenchmarkPublish publishes batches of 1000 records of a few fields, each
// batch waiting for its confirms.
func BenchmarkPublish(b *testing.B) {
	name := amqptest.Exchange(b)
	const n = 1000
	recs := make([]string, n)
	for i := range recs {
		recs[i] = fmt.Sprintf(`{"value":"word%d","count":%d,"avg":%g}`, i%100, i, float64(i)/2)
	}
	f := frametest.Frame(b, recs...)
	s, _ := newSink(b, target("exchange="+name+"&routing_key="+name), sink.Options{})
	ch := amqptest.Channel(b)
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
		if id%20 == 0 { // keep the queue short
			ch.QueuePurge(name, false)
		}
	}
	b.ReportMetric(float64(int(id)*n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int(id)*n), "ns/record")
}

// An exchange deleted under ssink: the server closes the channel at the
// next message, and the batch fails saying why, naming it.
func TestExchangeDeleted(t *testing.T) {
	name := amqptest.Exchange(t)
	s, _ := newSink(t, target("exchange="+name+"&routing_key="+name), sink.Options{})
	if err := sinktest.Write(t, s, stage.Batch{ID: 0, Time: t0}, `{"v":1}`); err != nil {
		t.Fatal(err)
	}
	if err := amqptest.Channel(t).ExchangeDelete(name, false, false); err != nil {
		t.Fatal(err)
	}
	err := sinktest.Write(t, s, stage.Batch{ID: 1, Time: t0}, `{"v":2}`)
	want := "batch 1: " + show() + `: the channel closed with 1 messages of the batch not confirmed: Exception (404) Reason: "NOT_FOUND - no exchange '` + name + `' in vhost '/'"`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

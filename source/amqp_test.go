package source

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/amqptest"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/stage"
	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpQueue declares a queue of the test's own, deleted at its end, and
// returns its name and a channel to publish on. Without a server the test
// is skipped, but in CI (CI=true), where it fails.
func amqpQueue(t *testing.T) (string, *amqp.Channel) {
	t.Helper()
	name := amqptest.Name(t)
	amqptest.Queue(t, name)
	return name, amqptest.Channel(t)
}

// amqpURL is the input URL of queue q on the server at addr ("": the
// test server's).
func amqpInput(q, addr string) string {
	u, _ := url.Parse(amqptest.URL())
	if addr != "" {
		u.Host = addr
	}
	u.RawQuery = url.Values{"queue": {q}}.Encode()
	return u.String()
}

// publish publishes messages from to from+n-1 into queue q through
// exchange amq.direct: value vI, message id mI, header h=I.
func publish(t *testing.T, ch *amqp.Channel, q string, from, n int) {
	t.Helper()
	if err := ch.QueueBind(q, q, "amq.direct", false, nil); err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		err := ch.Publish("amq.direct", q, true, false, amqp.Publishing{
			Body: fmt.Appendf(nil, "v%d", i), MessageId: fmt.Sprintf("m%d", i),
			Timestamp: time.Unix(1700000000+int64(i), 0), Headers: amqp.Table{"h": int32(i), "s": "x"},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Published is not yet queued: wait until RabbitMQ counts them.
	waitCount(t, q, from+n, func(c int) bool { return c >= n })
}

// queueCount is the count of messages ready in queue q.
func queueCount(t *testing.T, q string) int {
	t.Helper()
	ch := amqptest.Channel(t)
	defer ch.Close()
	st, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st.Messages
}

// waitCount waits up to 5 s for the count of queue q to satisfy ok.
func waitCount(t *testing.T, q string, want int, ok func(int) bool) {
	t.Helper()
	var c int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c = queueCount(t, q); ok(c) {
			return
		}
	}
	t.Fatalf("queue %s holds %d messages, want %d", q, c, want)
}

// runAMQP runs the source over o to its end and returns its output and
// its notes.
func runAMQP(t *testing.T, o Options) (string, string, error) {
	t.Helper()
	if o.Format == "" {
		o.Format = "lines"
	}
	if o.Interval == 0 {
		o.Interval = 1000
	}
	var out, errs bytes.Buffer
	e := &stage.Env{Name: "sbatch", Out: framing.NewWriter(&out), Stderr: &errs}
	err := Run(e, o)
	e.Out.Flush()
	return frametest.RenderCut(t, out.Bytes()), errs.String(), err
}

// --once reads the messages the queue has at the start, as one batch,
// with AMQP's metadata; without a checkpoint they are acknowledged once
// the batch has left.
func TestAMQPOnce(t *testing.T) {
	q, ch := amqpQueue(t)
	publish(t, ch, q, 0, 100)
	got, notes, err := runAMQP(t, Options{Inputs: []string{amqpInput(q, "")}, Once: true})
	if err != nil {
		t.Fatal(err, notes)
	}
	if n := strings.Count(got, "\n"); n != 1 {
		t.Fatalf("%d batches, want 1", n)
	}
	vs := values(got)
	if len(vs) != 100 {
		t.Fatalf("%d records, want 100", len(vs))
	}
	want := fmt.Sprintf(`{"value":"v7","message_id":"m7","exchange":"amq.direct","routing_key":%q,"redelivered":false,"timestamp":"2023-11-14T22:13:27Z","headers":{"h":"7","s":"x"}}`, q)
	if !strings.Contains(got, want) {
		t.Errorf("no %s in %.400s", want, got)
	}
	waitCount(t, q, 0, func(c int) bool { return c == 0 })
}

// With --format json the value's fields make the record, the metadata
// under --meta-field's prefix.
func TestAMQPJSONMeta(t *testing.T) {
	q, ch := amqpQueue(t)
	if err := ch.Publish("", q, true, false, amqp.Publishing{Body: []byte(`{"user":"u1","n":3}`)}); err != nil {
		t.Fatal(err)
	}
	waitCount(t, q, 1, func(c int) bool { return c == 1 })
	got, notes, err := runAMQP(t, Options{Inputs: []string{amqpInput(q, "")}, Format: "json", MetaField: "amqp_", Once: true})
	if err != nil {
		t.Fatal(err, notes)
	}
	want := fmt.Sprintf(`{"user":"u1","n":3,"amqp_message_id":null,"amqp_exchange":"","amqp_routing_key":%q,"amqp_redelivered":false,"amqp_timestamp":null}`, q)
	if !strings.Contains(got, want) {
		t.Errorf("%s, want %s", got, want)
	}
}

// With a checkpoint, a message is acknowledged once the sink has committed
// a batch holding it: those of a batch not committed come back at the next
// start, redelivered, in a batch with a new id (never the old one's).
func TestAMQPAcksFollowCommits(t *testing.T) {
	defer func(w time.Duration) { commitWait = w }(commitWait)
	commitWait = 300 * time.Millisecond
	q, ch := amqpQueue(t)
	publish(t, ch, q, 0, 10)
	dir := t.TempDir()
	o := Options{Inputs: []string{amqpInput(q, "")}, Once: true, Count: 5, Checkpoint: dir}

	// The sink commits batch 0 of the two, once both are written.
	sink := func(wait string, id uint64) chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(dir, "offsets", wait)); err == nil {
					frametest.Commit(t, dir, id)
					return
				}
			}
			t.Errorf("no offsets/%s", wait)
		}()
		return done
	}
	done := sink("1", 0)
	got, notes, err := runAMQP(t, o)
	<-done
	if err != nil {
		t.Fatal(err, notes)
	}
	if !strings.HasPrefix(got, "0@") || !strings.Contains(got, "\n1@") || len(values(got)) != 10 {
		t.Fatalf("first run: %s", got)
	}
	if !strings.Contains(notes, "the sink did not commit batch 1 within") {
		t.Errorf("first run's notes: %q", notes)
	}
	// Batch 1 was not acknowledged: RabbitMQ has its 5 messages again.
	waitCount(t, q, 5, func(c int) bool { return c == 5 })

	done = sink("2", 2)
	got, notes, err = runAMQP(t, o)
	<-done
	if err != nil {
		t.Fatal(err, notes)
	}
	if !strings.HasPrefix(got, "2@") || strings.Count(got, "\n") != 1 {
		t.Fatalf("second run: batches %s, want batch 2 alone", got)
	}
	if vs := values(got); strings.Join(vs, " ") != "v5 v6 v7 v8 v9" {
		t.Errorf("second run: %v, want v5 to v9", vs)
	}
	if strings.Count(got, `"redelivered":true`) != 5 {
		t.Errorf("second run: not all redelivered: %s", got)
	}
	if !strings.Contains(notes, "the sink did not commit batch 1: their messages come again from the broker (redelivered), in the batches from 2 on") {
		t.Errorf("second run's notes: %q", notes)
	}
	waitCount(t, q, 0, func(c int) bool { return c == 0 })
}

// A queue that does not exist is an error at the start, naming it, unless
// --declare declares it.
func TestAMQPMissingQueue(t *testing.T) {
	amqptest.Channel(t) // skips without a server
	q := amqptest.Name(t)
	_, _, err := runAMQP(t, Options{Inputs: []string{amqpInput(q, "")}, Once: true})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`queue %q does not exist in vhost "/"`, q)) || !strings.Contains(hintOf(err), "--declare") {
		t.Fatalf("err %v (hint %q)", err, hintOf(err))
	}
	amqptest.DeleteQueue(t, q)
	got, notes, err := runAMQP(t, Options{Inputs: []string{amqpInput(q, "")}, Once: true, Declare: true})
	if err != nil {
		t.Fatal(err, notes)
	}
	if len(values(got)) != 0 || strings.Count(got, "\n") != 1 {
		t.Errorf("got %q, want one empty batch", got)
	}
	if c := queueCount(t, q); c != 0 {
		t.Errorf("the declared queue holds %d messages", c)
	}
}

// A login refused and an unknown vhost are errors at the start, which do
// not show the password.
func TestAMQPRefused(t *testing.T) {
	q, _ := amqpQueue(t)
	u, _ := url.Parse(amqpInput(q, ""))
	u.User = url.UserPassword(u.User.Username(), "not-the-password")
	_, _, err := runAMQP(t, Options{Inputs: []string{u.String()}, Once: true, ServerTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "refused user") || strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("bad password: err %v", err)
	}
	u, _ = url.Parse(amqpInput(q, ""))
	u.Path = "/no-such-vhost"
	_, _, err = runAMQP(t, Options{Inputs: []string{u.String()}, Once: true, ServerTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), `into vhost "no-such-vhost"`) {
		t.Errorf("bad vhost: err %v", err)
	}
}

// A server that does not answer is retried with a note, then an error
// naming it after --server-timeout.
func TestAMQPUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	_, notes, err := runAMQP(t, Options{Inputs: []string{"amqp://guest:guest@" + addr + "/?queue=q"}, Once: true, ServerTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "no answer from RabbitMQ at "+addr+" for 1s") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("gave up after %v, want 1s", d)
	}
	if !strings.Contains(notes, "trying again for up to 1s") {
		t.Errorf("notes %q", notes)
	}
}

// A server that comes up after the start is waited for; a connection lost
// in the middle is made again, and what was delivered on it and not
// acknowledged comes again: every message is read, some twice.
func TestAMQPReconnect(t *testing.T) {
	q, ch := amqpQueue(t)
	publish(t, ch, q, 0, 20)
	server, _ := url.Parse(amqptest.URL())
	p := startProxy(t, server.Host)
	go func() {
		time.Sleep(300 * time.Millisecond)
		p.cut()
	}()
	got, notes, err := runAMQP(t, Options{Inputs: []string{amqpInput(q, p.addr())}, Once: true, MaxRate: 20})
	if err != nil {
		t.Fatal(err, notes)
	}
	seen := map[string]bool{}
	for _, v := range values(got) {
		seen[v] = true
	}
	for i := range 20 {
		if !seen[fmt.Sprintf("v%d", i)] {
			t.Errorf("v%d was not read: %s", i, got)
		}
	}
	if !strings.Contains(notes, "connection lost") || !strings.Contains(notes, "connected again") {
		t.Errorf("notes %q", notes)
	}
	waitCount(t, q, 0, func(c int) bool { return c == 0 })
}

// The URL and the options, checked before any connection.
func TestAMQPUsage(t *testing.T) {
	for _, tt := range []struct {
		o   Options
		err string
	}{
		{Options{Inputs: []string{"amqp://h:5672/"}}, "no queue"},
		{Options{Inputs: []string{"amqp://u:secret@h:5672/?queue=a&queue=b"}}, "amqp://u:xxxxx@h:5672/?queue=a&queue=b: no queue, or more than one"},
		{Options{Inputs: []string{"amqp://h:port/?queue=q"}}, "invalid port"},
		{Options{Inputs: []string{"amqp://h/?queue=q"}, Format: "csv"}, "--format csv"},
		{Options{Inputs: []string{"amqp://h/?queue=q"}, Group: "g"}, "--group names a Kafka consumer group"},
		{Options{Inputs: []string{"amqp://h/?queue=q"}, Count: 70000}, "-n 70000: a batch of a RabbitMQ queue holds at most 65535 messages"},
		{Options{Inputs: []string{"amqp://h/?queue=q"}, Count: 100, Prefetch: 50}, "at most --prefetch 50"},
		{Options{Inputs: []string{"amqp://h/?queue=q"}, Prefetch: -1}, "--prefetch -1: want 1 to 65535"},
		{Options{Inputs: []string{"amqp://h/?queue=q"}, Follow: true}, "a RabbitMQ queue is read on anyway"},
		{Options{Inputs: []string{"a.log"}, Declare: true}, "--declare is not an option of a.log"},
	} {
		_, _, err := runAMQP(t, tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.err) || exitCode(err) != 2 {
			t.Errorf("%v: err %v, want a usage error with %q", tt.o.Inputs, err, tt.err)
		}
	}
}

// hintOf is the hint of err, "" if none.
func hintOf(err error) string {
	var e *stage.Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

// proxy passes TCP connections on to a server, and cuts them on demand.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

// cut closes every connection passed on so far.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// BenchmarkAMQPRecord is the per-message work of the feed: a delivery made
// a Message (its headers as text), then a record with AMQP's metadata.
func BenchmarkAMQPRecord(b *testing.B) {
	d := amqp.Delivery{Body: []byte("the quick brown fox jumps over the lazy dog 0123456789"), MessageId: "m1", Exchange: "amq.direct",
		RoutingKey: "events", DeliveryTag: 1, Timestamp: time.Unix(1700000000, 0), Headers: amqp.Table{"h": int32(7), "s": "x"}}
	f := &amqpFeed{a: &amqpBroker{}}
	o := &Options{Format: "lines"}
	var msgs []Message
	var rec []byte
	b.ReportAllocs()
	for b.Loop() {
		msgs = f.add(msgs[:0], &d)
		var err error
		if rec, err = messageRecord(rec[:0], &msgs[0], o, &amqpMeta, "amqp"); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(d.Body)))
}

// BenchmarkAMQPOnce reads 20,000 messages of RabbitMQ with --once (the
// publishing is not timed).
func BenchmarkAMQPOnce(b *testing.B) {
	conn, err := amqp.Dial(amqptest.URL())
	if err != nil {
		b.Skipf("RabbitMQ at %s: %v", amqptest.URL(), err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	q := "sbatch-bench-" + rand.Text()[:8]
	if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	defer ch.QueueDelete(q, false, false, false)
	const n = 20_000
	body := []byte("the quick brown fox jumps over the lazy dog 0123456789")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for range n {
			if err := ch.Publish("", q, false, false, amqp.Publishing{Body: body}); err != nil {
				b.Fatal(err)
			}
		}
		for {
			st, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			if st.Messages == n {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		b.StartTimer()
		e := &stage.Env{Name: "sbatch", Out: framing.NewWriter(io.Discard), Stderr: io.Discard}
		if err := Run(e, Options{Inputs: []string{amqpInput(q, "")}, Format: "lines", Once: true, Interval: 1000}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

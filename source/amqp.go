package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitMQ: amqp://USER:PASS@HOST:PORT/VHOST?queue=Q reads the queue Q
// with manual acknowledgements. A queue cannot be read again: what is
// acknowledged is gone, what is not comes back by itself (redelivered)
// when the connection that got it is gone. So the source acknowledges a
// message only once a batch holding it is safe: with a checkpoint, when
// the sink has committed the batch; without one, when the batch has left.
// That is at least once: the messages of batches not committed come again
// at the next start (and after a lost connection) in new batches.
//
// The queue is one stream of the tracker (brokertrack.go), named after the
// queue. An offset counts deliveries: a delivery's offset is the delivery
// tag (which RabbitMQ numbers from 1 on each channel) plus the base of its
// channel, the last offset handed on before that channel was opened. So
// offsets rise across connections and across runs (Live starts after the
// checkpoint's last end), and the tracker's ranges say "deliveries up to
// offset O": the end of a committed batch maps back to a delivery tag of
// the channel in use, acknowledged with multiple=true (every delivery up to
// it on that channel, all of them in that batch or before). An end below
// the channel's base is of a channel that is gone, whose deliveries
// RabbitMQ has put back in the queue: nothing to acknowledge.
//
// The tracker replays nothing (redeliverer): on restart, the batches after
// the sink's last commit are not read again; their messages, never
// acknowledged, come back redelivered in the batches after the last one
// written.
func init() {
	Register(&Kind{
		Scheme:  "amqp",
		Tracked: true,
		Broker:  true,
		Flags:   []string{"declare", "prefetch"},
		NoFollow: func(string) error {
			return stage.UsageError("--follow reads a file as it grows: a RabbitMQ queue is read on anyway")
		},
		Track: openAMQP,
	})
}

// amqpMeta are the metadata fields of a RabbitMQ record, AMQP's names. The
// delivery tag is left out: it numbers deliveries on one channel, which a
// reader cannot use.
var amqpMeta = Meta{Key: "message_id", Exchange: "exchange", Topic: "routing_key", Redelivered: "redelivered", Time: "timestamp", Headers: "headers"}

const (
	// amqpPrefetch is the default of --prefetch, the most deliveries not
	// acknowledged: two chunks of the producer, so that one is taken while
	// the next arrives. RabbitMQ sends no more until some are acknowledged,
	// which bounds what is buffered ahead of the batcher.
	amqpPrefetch = 2 * chunkRecords
	// amqpPrefetchMax is the largest prefetch count: basic.qos has 16 bits
	// for it.
	amqpPrefetchMax = math.MaxUint16
	// amqpTimeout is how long RabbitMQ may not answer when
	// --server-timeout is not given; amqpDialTimeout bounds one attempt.
	amqpTimeout     = 30 * time.Second
	amqpDialTimeout = 5 * time.Second
	// amqpWait is how long a Fetch waits for a delivery before it looks at
	// a stop.
	amqpWait = 200 * time.Millisecond
)

var (
	// amqpIdleEnd: --once ends after so long without a delivery, short of
	// the count the queue had at the start (another consumer took some).
	amqpIdleEnd = time.Second
	// amqpStallNote: a note says so when the deliveries not acknowledged
	// have been at --prefetch for so long (RabbitMQ sends no more).
	amqpStallNote = 10 * time.Second
)

// amqpURL is a parsed amqp:// URL.
type amqpURL struct {
	dial   string // the URL to dial: the input's, without the queue parameter
	name   string // the input's URL with its password masked, for messages
	server string // HOST:PORT
	vhost  string
	user   string
	queue  string
}

func parseAMQPURL(spec string) (amqpURL, error) {
	var a amqpURL
	bad := func(why string) error {
		return stage.Hint(stage.UsageError("%s: %s: want amqp://USER:PASS@HOST:PORT/VHOST?queue=QUEUE", a.name, why),
			"for example: sbatch -i 1s 'amqp://guest:guest@127.0.0.1:5672/?queue=events' (the vhost / is the default; another one is the path: /VHOST)")
	}
	u, err := url.Parse(spec)
	if err != nil {
		a.name = "the amqp:// input" // the URL may hold a password
		return a, bad(errors.Unwrap(err).Error())
	}
	a.name = u.Redacted()
	q := u.Query()
	if qs := q["queue"]; len(qs) != 1 || qs[0] == "" {
		return a, bad("no queue, or more than one")
	}
	a.queue = q.Get("queue")
	q.Del("queue")
	u.RawQuery = q.Encode()
	a.dial = u.String()
	uri, err := amqp.ParseURI(a.dial)
	if err != nil {
		return a, bad(err.Error())
	}
	a.server = net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
	a.vhost, a.user = uri.Vhost, uri.Username
	return a, nil
}

// amqpBroker is the Broker of an amqp:// input.
type amqpBroker struct {
	u           amqpURL
	o           *Options
	declare     bool
	prefetch    int
	prefetchSet bool
	timeout     time.Duration // --server-timeout
	streams     *Streams
	stream      int // the queue's number in streams
	notes       io.Writer
	stop        <-chan struct{}

	// The connection in use, under mu: Commit runs on the tracker's
	// goroutines, the feed's Fetch on the producer's.
	mu        sync.Mutex
	conn      *amqp.Connection
	ch        *amqp.Channel
	ready     int    // the queue's messages ready when ch was opened
	base      int64  // the offset of delivery tag 0 on ch
	last      int64  // the offset of the last delivery handed on
	delivered uint64 // the last delivery tag handed on, on ch
	acked     uint64 // the last delivery tag acknowledged, on ch
	closing   bool
}

// Redelivers marks the broker as a redeliverer (brokertrack.go): the
// tracker replays nothing.
func (a *amqpBroker) Redelivers() bool { return true }

func openAMQP(op Opening) (Tracker, error) {
	o := *op.Options
	u, err := parseAMQPURL(o.Inputs[0])
	if err != nil {
		return nil, err
	}
	if err := checkFeedFormat(o.Format, u.name); err != nil {
		return nil, err
	}
	switch {
	case o.Group != "":
		return nil, stage.Hint(stage.UsageError("--group names a Kafka consumer group: a RabbitMQ queue shares its messages among its consumers by itself"),
			"leave --group out: copies of sbatch reading one queue each get a share of its messages")
	case o.Start != "":
		return nil, stage.UsageError("--start: a RabbitMQ queue gives its messages from its head, those not acknowledged yet; there is no offset to start at")
	}
	a := &amqpBroker{u: u, o: &o, streams: &Streams{}, notes: op.Env.Stderr, stop: op.Env.Stop.RequestedC(), timeout: o.ServerTimeout}
	if a.timeout <= 0 {
		a.timeout = amqpTimeout
	}
	if err := a.options(); err != nil {
		return nil, err
	}
	if err := a.connect(a.stop, false); err != nil {
		if errors.Is(err, errStopped) {
			err = fmt.Errorf("%s: stopped while waiting for RabbitMQ at %s", u.name, u.server)
		}
		return nil, err
	}
	t, err := openBrokerTracker(o, u.name, a, a.streams, op.Env.Stderr)
	if err != nil {
		a.Close()
		return nil, err
	}
	return t, nil
}

// options reads --declare and --prefetch, and checks -n against the
// prefetch: a batch cut by count needs all its messages delivered before
// any is acknowledged.
func (a *amqpBroker) options() error {
	a.declare = a.o.Declare
	n := a.o.Count
	if p := a.o.Prefetch; p != 0 {
		if p < 1 || p > amqpPrefetchMax {
			return stage.UsageError("--prefetch %d: want 1 to %d messages (RabbitMQ's limit)", p, amqpPrefetchMax)
		}
		if n > p {
			return stage.Hint(stage.UsageError("-n %d: a batch of a RabbitMQ queue holds at most --prefetch %d messages", n, p),
				"its messages stay unacknowledged until the batch is out (with --checkpoint: committed), and RabbitMQ delivers no more than --prefetch of those: raise --prefetch, or lower -n")
		}
		a.prefetch, a.prefetchSet = p, true
		return nil
	}
	if n > amqpPrefetchMax {
		return stage.Hint(stage.UsageError("-n %d: a batch of a RabbitMQ queue holds at most %d messages", n, amqpPrefetchMax),
			"its messages stay unacknowledged until the batch is out (with --checkpoint: committed), and RabbitMQ delivers at most %d of those (--prefetch)", amqpPrefetchMax)
	}
	a.prefetch = min(amqpPrefetchMax, max(amqpPrefetch, 2*n))
	return nil
}

// errStopped ends a wait for the server at a stop.
var errStopped = errors.New("stopped")

// connect opens a connection and a channel to the queue, trying again
// with backoff while RabbitMQ does not answer, for up to --server-timeout;
// an answer that says no (a login refused, a missing queue) is an error at
// once. It returns errStopped if stop comes first. again: the connection
// was lost, and the first attempt waits as the others do, which gives
// RabbitMQ the time to put back in the queue what the lost one had.
func (a *amqpBroker) connect(stop <-chan struct{}, again bool) error {
	deadline := time.Now().Add(a.timeout)
	var back stage.Backoff
	if again && sleepStop(stop, back.Next()) {
		return errStopped
	}
	waited := false
	for {
		err := a.open()
		if err == nil {
			if waited && !again { // else the caller says so
				fmt.Fprintf(a.notes, "sbatch: note: %s: connected\n", a.u.name)
			}
			return nil
		}
		if no := a.refused(err); no != nil {
			return no
		}
		left := time.Until(deadline)
		if left <= 0 {
			return stage.Hint(fmt.Errorf("%s: no answer from RabbitMQ at %s for %v: %w", a.u.name, a.u.server, a.timeout, err),
				"check that RabbitMQ is up at that address (--server-timeout sets how long sbatch waits)")
		}
		if !waited {
			fmt.Fprintf(a.notes, "sbatch: note: %s: no answer from RabbitMQ at %s (%v), trying again for up to %v\n", a.u.name, a.u.server, err, a.timeout)
			waited = true
		}
		if sleepStop(stop, min(back.Next(), left)) {
			return errStopped
		}
	}
}

// sleepStop sleeps for d, and tells whether stop came first.
func sleepStop(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return true
	case <-t.C:
		return false
	}
}

// open dials RabbitMQ and opens a channel on which the queue exists
// (declared, with --declare, if it does not).
func (a *amqpBroker) open() error {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("sbatch " + a.u.name)
	conn, err := amqp.DialConfig(a.u.dial, amqp.Config{Dial: amqp.DefaultDial(min(a.timeout, amqpDialTimeout)), Properties: props})
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	var q amqp.Queue
	if err == nil {
		q, err = ch.QueueDeclarePassive(a.u.queue, false, false, false, false, nil)
	}
	if isAMQP(err, amqp.NotFound) && a.declare {
		// The failed declaration closed the channel.
		if ch, err = conn.Channel(); err == nil {
			q, err = ch.QueueDeclare(a.u.queue, true, false, false, false, nil)
		}
	}
	if err != nil {
		conn.Close()
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conn, a.ch, a.ready = conn, ch, q.Messages
	a.base, a.delivered, a.acked = a.last, 0, 0
	return nil
}

func isAMQP(err error, code int) bool {
	var e *amqp.Error
	return errors.As(err, &e) && e.Code == code
}

// refused returns the error of a refusal that no wait mends, or nil.
func (a *amqpBroker) refused(err error) error {
	var e *amqp.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code {
	case amqp.AccessRefused:
		return stage.Hint(fmt.Errorf("%s: RabbitMQ at %s refused user %q: %s", a.u.name, a.u.server, a.u.user, e.Reason),
			"check the user and the password in the URL (amqp://USER:PASS@HOST:PORT/VHOST?queue=Q) and the user's permissions on vhost %q", a.u.vhost)
	case amqp.NotAllowed:
		return stage.Hint(fmt.Errorf("%s: RabbitMQ at %s does not let user %q into vhost %q: %s", a.u.name, a.u.server, a.u.user, a.u.vhost, e.Reason),
			"check the vhost, the path of the URL (none or / is the default vhost /), and the user's permissions")
	case amqp.NotFound:
		return stage.Hint(fmt.Errorf("%s: queue %q does not exist in vhost %q of RabbitMQ at %s", a.u.name, a.u.queue, a.u.vhost, a.u.server),
			"declare it first (amqp-declare-queue -q %s), or give --declare to have sbatch declare it (durable)", a.u.queue)
	case amqp.ResourceLocked, amqp.PreconditionFailed:
		return fmt.Errorf("%s: queue %q: %s", a.u.name, a.u.queue, e.Reason)
	}
	return nil
}

func (a *amqpBroker) Meta() *Meta { return &amqpMeta }

// Live starts consuming the queue. Its offsets go on after from's, the
// last end the checkpoint has. With --once it reads as many messages as
// the queue had ready at the start (one batch: at most --prefetch of
// them).
func (a *amqpBroker) Live(from map[string]int64) (Feed, error) {
	a.mu.Lock()
	if end, ok := from[a.u.queue]; ok {
		a.last = end - 1
	}
	a.base = a.last
	ready := a.ready
	a.mu.Unlock()
	a.stream = a.streams.Index(a.u.queue, a.last+1)
	f := &amqpFeed{a: a, once: a.o.Once, lastAt: time.Now()}
	if f.once {
		f.want = int64(ready)
		if a.o.Count == 0 && a.o.TimeField == "" {
			// One batch, whose messages are acknowledged at its end.
			if !a.prefetchSet {
				a.prefetch = min(amqpPrefetchMax, max(a.prefetch, ready))
			}
			if ready > a.prefetch {
				fmt.Fprintf(a.notes, "sbatch: note: %s: --once reads %d of the %d messages of queue %q: a batch holds at most --prefetch %d (--once -n N reads them all, in batches of N)\n",
					a.u.name, a.prefetch, ready, a.u.queue, a.prefetch)
				f.want = int64(a.prefetch)
			}
		}
		if f.want == 0 {
			return f, nil
		}
	}
	if err := a.consume(f); err != nil {
		return nil, err
	}
	return f, nil
}

// amqpConsumer is the consumer tag of sbatch on its channel.
const amqpConsumer = "dstream-sbatch"

// consume starts the deliveries of the channel in use to f.
func (a *amqpBroker) consume(f *amqpFeed) error {
	a.mu.Lock()
	ch := a.ch
	a.mu.Unlock()
	err := ch.Qos(a.prefetch, 0, false)
	if err == nil {
		f.chClosed = ch.NotifyClose(make(chan *amqp.Error, 1))
		f.cancelled = ch.NotifyCancel(make(chan string, 1))
		f.ch, f.lastTag = ch, 0
		f.dels, err = ch.Consume(a.u.queue, amqpConsumer, false, false, false, false, nil)
	}
	if err != nil {
		if no := a.refused(err); no != nil {
			return no
		}
		return fmt.Errorf("%s: consuming queue %q: %w", a.u.name, a.u.queue, err)
	}
	return nil
}

// Replay is never called: the tracker of a redeliverer replays nothing.
func (a *amqpBroker) Replay(batch uint64, _ []checkpoint.Range) Feed {
	return errFeed{fmt.Errorf("batch %d: a RabbitMQ queue cannot be read again", batch)}
}

// errFeed is a feed that fails.
type errFeed struct{ err error }

func (f errFeed) Fetch(<-chan struct{}, []Message) ([]Message, error) { return nil, f.err }
func (errFeed) Close() error                                          { return nil }

// Commit acknowledges the deliveries up to the end ends[queue], those of
// the channel in use: multiple=true takes every delivery before it on the
// channel, all of them in batches up to the one ending there.
func (a *amqpBroker) Commit(ends map[string]int64) error {
	end, ok := ends[a.u.queue]
	if !ok {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == nil || end-1 <= a.base {
		return nil // delivered on a channel that is gone: put back in the queue
	}
	tag := uint64(end - 1 - a.base)
	if tag <= a.acked {
		return nil
	}
	if tag > a.delivered {
		panic(fmt.Sprintf("source: acknowledging delivery tag %d, past the last delivered, %d", tag, a.delivered))
	}
	if err := a.ch.Ack(tag, true); err != nil {
		return fmt.Errorf("acknowledging the messages up to delivery tag %d: %w", tag, err)
	}
	a.acked = tag
	return nil
}

// Close closes the connection: RabbitMQ puts back in the queue what was
// delivered and not acknowledged.
func (a *amqpBroker) Close() error {
	a.mu.Lock()
	a.closing = true
	conn := a.conn
	a.conn, a.ch = nil, nil
	a.mu.Unlock()
	if conn != nil {
		conn.CloseDeadline(time.Now().Add(amqpDialTimeout))
	}
	return nil
}

// amqpFeed hands on the deliveries of the queue, connecting again when
// the connection is lost.
type amqpFeed struct {
	a         *amqpBroker
	ch        *amqp.Channel
	dels      <-chan amqp.Delivery
	chClosed  chan *amqp.Error // the channel's close, with the connection's
	cancelled chan string      // RabbitMQ cancelled the consumer (the queue was deleted)

	lastTag uint64 // the last delivery tag added, on ch

	once   bool
	want   int64 // with once: the deliveries to read
	got    int64
	lastAt time.Time // of the last delivery, or the start

	fullSince time.Time // the deliveries not acknowledged reached --prefetch
	stallNote bool      // the note of a full window was written
}

func (f *amqpFeed) Fetch(stop <-chan struct{}, dst []Message) ([]Message, error) {
	if f.once && f.got >= f.want {
		return dst, io.EOF
	}
	wait := time.NewTimer(amqpWait)
	defer wait.Stop()
	select {
	case <-stop:
		return dst, io.EOF
	case d, ok := <-f.dels:
		if !ok {
			return dst, f.reconnect(stop)
		}
		dst = f.add(dst, &d)
	case <-wait.C:
		return dst, f.idle()
	}
	// Then what has come, without waiting.
	for len(dst) < chunkRecords && !(f.once && f.got >= f.want) {
		select {
		case d, ok := <-f.dels:
			if !ok {
				f.handed()
				return dst, nil // the next Fetch connects again
			}
			dst = f.add(dst, &d)
			continue
		default:
		}
		break
	}
	f.handed()
	return dst, nil
}

// add appends the message of delivery d.
func (f *amqpFeed) add(dst []Message, d *amqp.Delivery) []Message {
	off := f.a.base + int64(d.DeliveryTag)
	m := Message{Value: d.Body, Topic: d.RoutingKey, Exchange: d.Exchange, Redelivered: d.Redelivered, Time: d.Timestamp,
		Offset: off, Pos: Position{f.a.stream, off + 1}, Headers: amqpHeaders(d.Headers)}
	if d.MessageId != "" {
		m.Key = []byte(d.MessageId)
	}
	f.got++
	f.lastTag = d.DeliveryTag
	f.lastAt = time.Now()
	f.fullSince, f.stallNote = time.Time{}, false
	return append(dst, m)
}

// handed records the deliveries handed on, for Commit (the last tag) and
// for the next channel's base (the last offset).
func (f *amqpFeed) handed() {
	a := f.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == f.ch && f.lastTag > a.delivered {
		a.delivered = f.lastTag
		a.last = a.base + int64(f.lastTag)
	}
}

// idle is the end of a wait without a delivery: with --once, the end of
// the feed after amqpIdleEnd (unless RabbitMQ holds back for want of
// acknowledgements); a note when the deliveries not acknowledged stay at
// --prefetch.
func (f *amqpFeed) idle() error {
	a := f.a
	a.mu.Lock()
	full := a.delivered-a.acked >= uint64(a.prefetch)
	a.mu.Unlock()
	if !full {
		f.fullSince = time.Time{}
		if f.once && time.Since(f.lastAt) >= amqpIdleEnd {
			fmt.Fprintf(a.notes, "sbatch: note: %s: --once read %d of the %d messages queue %q had: no more came for %v (another consumer took them?)\n",
				a.u.name, f.got, f.want, a.u.queue, amqpIdleEnd)
			return io.EOF
		}
		return nil
	}
	if f.fullSince.IsZero() {
		f.fullSince = time.Now()
	}
	if !f.stallNote && time.Since(f.fullSince) >= amqpStallNote {
		fmt.Fprintf(a.notes, "sbatch: note: %s: %d messages are delivered and not acknowledged, --prefetch's limit: RabbitMQ sends no more until a batch is out (with --checkpoint: committed by the sink)\n", a.u.name, a.prefetch)
		f.stallNote = true
	}
	return nil
}

// reconnect connects again after the deliveries ended: the connection or
// the channel was closed, or RabbitMQ cancelled the consumer. It returns
// io.EOF at a stop or when the broker is closing.
func (f *amqpFeed) reconnect(stop <-chan struct{}) error {
	why := "closed"
	select {
	case e, ok := <-f.chClosed:
		if ok && e != nil {
			why = e.Reason
		}
	default:
	}
	select {
	case _, ok := <-f.cancelled:
		if ok {
			why = "RabbitMQ cancelled the consumer (was the queue deleted?)"
		}
	default:
	}
	a := f.a
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		return io.EOF
	}
	unacked := a.delivered - a.acked
	conn := a.conn
	a.conn, a.ch = nil, nil
	a.mu.Unlock()
	conn.CloseDeadline(time.Now().Add(amqpDialTimeout)) // if only the channel was closed
	fmt.Fprintf(a.notes, "sbatch: note: %s: connection lost (%s), reconnecting; the %d messages handed on and not acknowledged come again (redelivered)\n", a.u.name, why, unacked)
	if err := a.connect(stop, true); err != nil {
		if errors.Is(err, errStopped) {
			return io.EOF
		}
		return err
	}
	fmt.Fprintf(a.notes, "sbatch: note: %s: connected again\n", a.u.name)
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	if f.once {
		// What was not acknowledged is back in the queue's count.
		f.want = f.got + int64(ready)
	}
	return a.consume(f)
}

// Close stops the deliveries; those not acknowledged go back to the queue
// when the connection closes.
func (f *amqpFeed) Close() error {
	if f.ch != nil {
		f.ch.Cancel(amqpConsumer, false)
	}
	return nil
}

// amqpHeaders are the headers of a message, by name, each value as text:
// strings and byte arrays as they are, numbers and booleans as Go prints
// them, times in RFC 3339, tables and arrays as JSON.
func amqpHeaders(t amqp.Table) []Header {
	if len(t) == 0 {
		return nil
	}
	hs := make([]Header, 0, len(t))
	for _, k := range slices.Sorted(maps.Keys(t)) {
		hs = append(hs, Header{k, headerText(t[k])})
	}
	return hs
}

func headerText(v any) []byte {
	switch v := v.(type) {
	case string:
		return []byte(v)
	case []byte:
		return v
	case nil:
		return nil
	case time.Time:
		return []byte(v.UTC().Format(time.RFC3339Nano))
	case amqp.Decimal:
		return []byte(strconv.FormatFloat(float64(v.Value)/math.Pow10(int(v.Scale)), 'f', int(v.Scale), 64))
	case amqp.Table, []any:
		if b, err := json.Marshal(v); err == nil {
			return b
		}
	}
	return fmt.Append(nil, v)
}

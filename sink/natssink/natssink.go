// Package natssink is ssink's NATS JetStream destination (--nats
// nats://HOST:PORT/SUBJECT): each record a message on the subject, stored
// by the JetStream stream that captures it, published asynchronously and
// acknowledged by the end of its batch. Each message's Nats-Msg-Id names
// the record across runs (the checkpoint, the batch, the record's number),
// so that within the stream's duplicate window a batch replayed after a
// restart is stored once: exactly once with sbatch --checkpoint.
package natssink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS publishes each record to a JetStream subject (--nats URL).
var NATS = sink.Destination{
	Flag:          "nats",
	Usage:         "publish each record as a message to JetStream at `URL` (nats://[USER:PASSWORD@]HOST:PORT/SUBJECT) in --format (default json), acknowledged by its batch's end; its Nats-Msg-Id has a replayed batch stored once",
	Category:      "Brokers",
	Needs:         "a URL: nats://HOST:PORT/SUBJECT",
	Encodes:       true,
	DefaultFormat: "json",
	Takes:         []string{"create-stream", "connect-timeout"},
	Open:          open,
}

// The headers of each message besides Nats-Msg-Id (jetstream.MsgIDHeader):
// the batch's id and time (unix ms), in decimal.
const (
	HeaderBatchID   = "dstream-batch-id"
	HeaderBatchTime = "dstream-batch-time"
)

// maxPending bounds the messages published and not yet acknowledged: a
// record waits for the oldest ones past it.
const maxPending = 1024

// ackTimeout bounds the wait for the acknowledgement of a message: a
// message not acknowledged in that time is an error of its batch.
var ackTimeout = 30 * time.Second

// requestTimeout bounds a request to JetStream's API at start-up.
const requestTimeout = 10 * time.Second

// writer is the sink.Writer of --nats.
type writer struct {
	o       *sink.Options
	server  string // the URL without the subject: nats.Connect's
	show    string // server without a password, for messages
	subject string
	create  string // --create-stream
	enc     *sink.MessageEncoder
	notes   io.Writer // o.Stderr: notes of a lost connection, a replay

	nc     *nats.Conn
	js     jetstream.JetStream
	stream string        // the stream that captures subject
	closed chan struct{} // closed when nc is closed for good
	run    string        // sink.RunID: the first part of message ids
	id     []byte

	// The batch in hand. The acks come on nats.go's goroutine: done and
	// dups count them, failure keeps the first failure and wake says that
	// one came.
	batch     stage.Batch
	n         uint64   // records published
	bid, btim []string // the header values
	expect    []string // the stream, in Nats-Expected-Stream
	done      atomic.Uint64
	dups      atomic.Uint64
	failed    atomic.Bool
	mu        sync.Mutex
	failure   error  // the first failure: of record failedN
	failedN   uint64 // its record number
	nFailed   uint64 // the failures of the batch
	wake      chan struct{}
	written   uint64 // the records of the last batch stored (not duplicates)
}

// open checks the URL and --create-stream; Start connects.
func open(o *sink.Options, f *codec.Format, _ *bufio.Writer) (sink.Writer, error) {
	w := &writer{o: o, create: o.CreateStream, wake: make(chan struct{}, 1), notes: o.Stderr}
	if w.notes == nil {
		w.notes = io.Discard
	}
	var err error
	if w.server, w.show, w.subject, err = parseURL(o.Target); err != nil {
		return nil, stage.Hint(stage.UsageError("--nats %q: %v", o.Target, err),
			"--nats wants nats://[USER:PASSWORD@]HOST:PORT/SUBJECT, e.g. nats://127.0.0.1:4222/events")
	}
	if w.create != "" {
		if err := checkStreamName(w.create); err != nil {
			return nil, stage.UsageError("--create-stream %q: %v", w.create, err)
		}
	}
	if w.enc, err = sink.NewMessageEncoder("nats", f, o.Codec); err != nil {
		return nil, err
	}
	return w, nil
}

// parseURL splits a --nats URL into the server's URL, that URL without its
// password (or token) and the subject.
func parseURL(target string) (server, show, subject string, err error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", "", "", errors.New("not a URL")
	}
	if u.Scheme != "nats" && u.Scheme != "tls" || u.Host == "" {
		return "", "", "", errors.New("want a nats:// URL with a host")
	}
	subject = strings.TrimPrefix(u.Path, "/")
	if err := checkSubject(subject); err != nil {
		return "", "", "", err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", errors.New("a nats:// URL takes no ?query or #fragment")
	}
	u.Path, u.RawPath = "", ""
	server = u.String()
	if _, ok := u.User.Password(); ok {
		u.User = url.User(u.User.Username())
	} else {
		u.User = nil // a token
	}
	return server, u.String(), subject, nil
}

// checkSubject checks a subject to publish to: tokens of printable
// characters separated by dots, no wildcard.
func checkSubject(s string) error {
	if s == "" {
		return errors.New("no subject: put it after the host, nats://HOST:PORT/SUBJECT")
	}
	for _, tok := range strings.Split(s, ".") {
		switch {
		case tok == "":
			return errors.New("an empty token in the subject (two dots, or a dot at an end)")
		case tok == "*" || tok == ">":
			return errors.New("a wildcard in the subject: messages are published to one subject")
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return errors.New("a space or control character in the subject")
		}
	}
	return nil
}

// checkStreamName checks a JetStream stream name (as nats-server does).
func checkStreamName(s string) error {
	if strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(".*>/\\", r)
	}) {
		return errors.New("a stream name has no spaces, dots, *, >, / or \\")
	}
	return nil
}

// Start connects (trying again while the server is not there, see
// sink.Connect), and finds the stream that captures the subject, or
// creates it with --create-stream.
func (w *writer) Start(ckpt, _ string) error {
	w.run = sink.RunID(ckpt)
	err := sink.Connect(w.o, w.show, func(ctx context.Context) error {
		closed := make(chan struct{})
		d := &dialer{}
		nc, err := nats.Connect(w.server,
			nats.Name("ssink"),
			nats.SetCustomDialer(d),
			nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					fmt.Fprintf(w.notes, "ssink: note: %s: disconnected (%v), reconnecting\n", w.show, err)
				}
			}),
			nats.ReconnectHandler(func(*nats.Conn) {
				fmt.Fprintf(w.notes, "ssink: note: %s: connected again\n", w.show)
			}),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				fmt.Fprintf(w.notes, "ssink: note: %s: %v\n", w.show, err)
			}))
		w.nc, w.closed = nc, closed
		if errors.Is(err, nats.ErrNoServers) {
			if derr := d.lastErr(); derr != nil {
				err = derr // "connection refused", which sink.Connect knows
			}
		}
		return err
	})
	if err != nil {
		return connectError(w.show, err)
	}
	w.js, err = jetstream.New(w.nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(ackTimeout),
		jetstream.WithPublishAsyncAckHandler(w.acked),
		jetstream.WithPublishAsyncErrHandler(w.failedMsg))
	if err == nil {
		err = w.findStream()
	}
	if err != nil {
		w.nc.Close()
		return err
	}
	w.expect = []string{w.stream}
	return nil
}

// dialer is nats.go's dialer, which keeps the last error for Start:
// nats.Connect says only "no servers available for connection".
type dialer struct {
	mu  sync.Mutex
	err error
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial(network, address)
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
	return c, err
}

func (d *dialer) lastErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// connectError words a failed connection; nats.go's own errors ("nats:
// authorization violation") say what went wrong.
func connectError(show string, err error) error {
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
		return stage.Hint(fmt.Errorf("%s: %w", show, err), "check the user and password (or token) of the --nats URL: nats://USER:PASSWORD@HOST:PORT/SUBJECT")
	}
	var se *stage.Error
	if errors.As(err, &se) {
		return err // sink.Connect gave up, naming the server
	}
	return fmt.Errorf("%s: %w", show, err)
}

// findStream finds the stream that captures the subject; without one it
// creates the stream --create-stream names, or fails saying how to make
// one.
func (w *writer) findStream() error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	name, err := w.js.StreamNameBySubject(ctx, w.subject)
	switch {
	case err == nil:
		w.stream = name
		return nil
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders):
		return stage.Hint(fmt.Errorf("%s: JetStream is not enabled on the server: %w", w.show, err),
			"start nats-server with JetStream (-js), or point --nats at a server that has it")
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%s: finding the stream of subject %s: %w", w.show, w.subject, err)
	case w.create == "":
		return stage.Hint(fmt.Errorf("%s: no JetStream stream captures subject %s", w.show, w.subject),
			"give --create-stream NAME to have ssink create one, or create it (nats stream add NAME --subjects %s)", w.subject)
	}
	_, err = w.js.CreateStream(ctx, jetstream.StreamConfig{Name: w.create, Subjects: []string{w.subject}})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return stage.Hint(fmt.Errorf("%s: --create-stream %s: a stream of that name exists and does not capture subject %s", w.show, w.create, w.subject),
			"add %s to the subjects of stream %s, or give --create-stream another name", w.subject, w.create)
	}
	if err != nil {
		return fmt.Errorf("%s: --create-stream %s: %w", w.show, w.create, err)
	}
	w.stream = w.create
	return nil
}

func (w *writer) Begin(b stage.Batch) error {
	w.batch, w.n = b, 0
	w.done.Store(0)
	w.dups.Store(0)
	w.failed.Store(false)
	w.failure, w.failedN, w.nFailed = nil, 0, 0
	w.bid = []string{strconv.FormatUint(b.ID, 10)}
	w.btim = []string{strconv.FormatInt(b.Time, 10)}
	return nil
}

// Record publishes rec, once fewer than maxPending messages wait for
// their ack. After a failure of the batch it publishes nothing more: End
// reports the failure.
func (w *writer) Record(rec []byte) error {
	body, err := w.enc.Encode(rec)
	if err != nil {
		return err
	}
	if w.failed.Load() {
		return nil // End reports the failure
	}
	if err := w.wait(maxPending - 1); err != nil {
		return err
	}
	w.n++
	w.id = sink.AppendMessageID(w.id[:0], w.run, w.batch.ID, w.n)
	msg := &nats.Msg{
		Subject: w.subject,
		Data:    bytes.Clone(body), // held until its ack, for a retry
		Header: nats.Header{
			jetstream.MsgIDHeader:          {string(w.id)},
			jetstream.ExpectedStreamHeader: w.expect,
			HeaderBatchID:                  w.bid,
			HeaderBatchTime:                w.btim,
		},
	}
	if _, err := w.js.PublishMsgAsync(msg); err != nil {
		w.n--
		return fmt.Errorf("%s: publishing to %s: %w", w.show, w.subject, err)
	}
	return nil
}

// wait waits until at most pending messages of the batch wait for their
// ack.
func (w *writer) wait(pending uint64) error {
	for w.n-w.done.Load() > pending {
		select {
		case <-w.wake:
		case <-w.closed:
			return fmt.Errorf("%s: the connection is closed with %d records of the batch not acknowledged: %v", w.show, w.n-w.done.Load(), w.nc.LastError())
		}
	}
	return nil
}

// acked counts an ack (on nats.go's goroutine).
func (w *writer) acked(_ jetstream.JetStream, _ *nats.Msg, ack *jetstream.PubAck) {
	if ack.Duplicate {
		w.dups.Add(1)
	}
	w.done.Add(1)
	w.signal()
}

// failedMsg counts a failure (on nats.go's goroutine): an error answer,
// no answer within ackTimeout, a lost connection.
func (w *writer) failedMsg(_ jetstream.JetStream, m *nats.Msg, err error) {
	n, _ := sink.MessageNumber(m.Header.Get(jetstream.MsgIDHeader))
	w.mu.Lock()
	w.nFailed++
	if w.failure == nil || n < w.failedN {
		w.failure, w.failedN = err, n
	}
	w.mu.Unlock()
	w.failed.Store(true)
	w.done.Add(1)
	w.signal()
}

func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// End waits for the acks of all the batch's messages: a batch ends only
// when JetStream has stored all its records. A failure names the batch and
// the first record that failed. (Each message times out on its own after
// ackTimeout, so the wait ends.)
func (w *writer) End(b stage.Batch, _ uint64) error {
	if err := w.wait(0); err != nil {
		return fmt.Errorf("%v: %w", b, err)
	}
	if w.failed.Load() {
		w.mu.Lock()
		defer w.mu.Unlock()
		more := ""
		if w.nFailed > 1 {
			more = fmt.Sprintf(" (and %d more records of the batch)", w.nFailed-1)
		}
		return fmt.Errorf("%v, record %d: %s: publishing to %s: %w%s", b, w.failedN, w.show, w.subject, w.failure, more)
	}
	w.written = w.n - w.dups.Load()
	if d := w.dups.Load(); d > 0 {
		fmt.Fprintf(w.notes, "ssink: note: %v: %d of its %d records were in stream %s already (a replay within its duplicate window), not stored again\n", b, d, w.n, w.stream)
	}
	return nil
}

// Written is the records of the last batch that JetStream stored: those
// it had already (a replay) are not counted.
func (w *writer) Written() uint64 { return w.written }

// Flush, on the way out after an error, has nothing to throw away: what
// was published of the batch in hand is in the stream, and a replay of the
// batch does not store it again.
func (w *writer) Flush() error { return nil }

// Close closes the connection.
func (w *writer) Close() error {
	if w.nc != nil {
		w.nc.Close()
	}
	return nil
}

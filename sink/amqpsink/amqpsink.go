// Package amqpsink is ssink's RabbitMQ destination (--amqp
// amqp://USER:PASSWORD@HOST:PORT/VHOST?exchange=E&routing_key=K): each
// record a persistent message published to an exchange with publisher
// confirms, all of a batch confirmed by the end of the batch. A message that
// RabbitMQ refuses (a nack) or cannot route anywhere (returned: ssink
// publishes with the mandatory flag) fails its batch. RabbitMQ keeps no ids
// to drop duplicates by, so a batch replayed after a restart is published
// again: at least once.
package amqpsink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQP publishes each record to a RabbitMQ exchange (--amqp URL).
var AMQP = sink.Destination{
	Flag:          "amqp",
	Usage:         "publish each record as a persistent message to RabbitMQ at `URL` (amqp://USER:PASSWORD@HOST:PORT/VHOST?exchange=E&routing_key=K) in --format (default json), confirmed by its batch's end",
	Category:      "Brokers",
	Needs:         "a URL: amqp://USER:PASSWORD@HOST:PORT/VHOST?exchange=E&routing_key=K",
	Encodes:       true,
	DefaultFormat: "json",
	Takes:         []string{"routing-key-field", "connect-timeout"},
	Open:          open,
}

// The headers of each message: its batch's id and time (unix ms), as
// integers. Its message id (the message-id property) is
// sink.AppendMessageID's.
const (
	HeaderBatchID   = "dstream-batch-id"
	HeaderBatchTime = "dstream-batch-time"
)

// maxPending bounds the messages published and not yet confirmed: a
// record waits for the oldest ones past it.
const maxPending = 1024

// handshakeTimeout bounds the handshake of a connection, and
// requestTimeout a request of the start-up's.
const (
	handshakeTimeout = 10 * time.Second
	requestTimeout   = 10 * time.Second
)

// confirmTimeout bounds the wait for a confirm: a server that confirms
// nothing in that time fails the batch.
var confirmTimeout = 30 * time.Second

// writer is the sink.Writer of --amqp.
type writer struct {
	o        *sink.Options
	dial     string // the URL without exchange and routing_key: amqp091's
	show     string // dial without its password, for messages
	exchange string
	key      string // the routing key; "" with keyField
	keyField string // --routing-key-field
	ctype    string // the content type of --format's messages
	enc      *sink.MessageEncoder

	conn     *amqp.Connection
	ch       *amqp.Channel
	confirms chan amqp.Confirmation
	returns  chan amqp.Return
	closes   chan *amqp.Error
	timer    *time.Timer // of wait, reused
	run      string      // sink.RunID: the first part of message ids
	id       []byte
	keyBuf   []byte

	// The channel's delivery tags count its messages from 1: published
	// is the last one sent, confirmed the last one whose confirm came.
	published, confirmed uint64

	// The batch in hand.
	batch   stage.Batch
	first   uint64 // the delivery tag of its first message
	headers amqp.Table
	nacked  uint64 // the number of the first record nacked, 0 for none
	nNacked uint64
	ret     *amqp.Return // the first record returned
	retN    uint64       // its number
	nRet    uint64
}

// open checks the URL and --routing-key-field; Start connects.
func open(o *sink.Options, f *codec.Format, _ *bufio.Writer) (sink.Writer, error) {
	w := &writer{o: o, keyField: o.RoutingKeyField}
	var err error
	var hasKey bool
	if w.dial, w.show, w.exchange, w.key, hasKey, err = parseURL(o.Target); err != nil {
		return nil, stage.Hint(stage.UsageError("--amqp %q: %v", o.Target, err),
			"--amqp wants amqp://USER:PASSWORD@HOST:PORT/VHOST?exchange=E&routing_key=K, e.g. amqp://guest:guest@127.0.0.1:5672/?exchange=events&routing_key=all")
	}
	switch {
	case hasKey && w.keyField != "":
		return nil, stage.UsageError("--routing-key-field %s does not go with routing_key=%s in the --amqp URL: give one", w.keyField, w.key)
	case w.exchange == "" && !hasKey && w.keyField == "":
		return nil, stage.Hint(stage.UsageError("--amqp %s: no exchange=E, and no routing key to the queue of the default exchange", w.show),
			"give exchange=E (and routing_key=K) in the URL; or routing_key=QUEUE, or --routing-key-field F, for the default exchange, which routes to the queue of that name")
	}
	if w.enc, err = sink.NewMessageEncoder("amqp", f, o.Codec); err != nil {
		return nil, err
	}
	w.ctype = f.MessageType
	return w, nil
}

// parseURL splits an --amqp URL into the URL amqp091 dials, that URL
// without its password, the exchange and the routing key (and whether the
// URL gives one).
func parseURL(target string) (dial, show, exchange, key string, hasKey bool, err error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", "", "", "", false, errors.New("not a URL")
	}
	if u.Scheme != "amqp" && u.Scheme != "amqps" || u.Host == "" {
		return "", "", "", "", false, errors.New("want an amqp:// URL with a host")
	}
	q := u.Query()
	exchange, key, hasKey = q.Get("exchange"), q.Get("routing_key"), q.Has("routing_key")
	q.Del("exchange")
	q.Del("routing_key")
	u.RawQuery = q.Encode()
	dial = u.String()
	if _, err := amqp.ParseURI(dial); err != nil {
		return "", "", "", "", false, err
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return dial, u.String(), exchange, key, hasKey, nil
}

// Start connects (trying again while the server is not there, see
// sink.Connect), checks that the exchange (or the queue of the routing
// key, for the default exchange) exists, and puts the channel in confirm
// mode.
func (w *writer) Start(ckpt, _ string) error {
	w.run = sink.RunID(ckpt)
	err := sink.Connect(w.o, w.show, func(ctx context.Context) error {
		var err error
		w.conn, err = amqp.DialConfig(w.dial, amqp.Config{
			Properties: amqp.Table{"connection_name": "ssink"},
			Dial: func(network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				// The handshake's; amqp091 clears it once open.
				c.SetDeadline(time.Now().Add(handshakeTimeout))
				return c, nil
			},
		})
		return err
	})
	if err != nil {
		return w.connectError(err)
	}
	if err := w.check(); err != nil {
		w.conn.Close()
		return err
	}
	return nil
}

// connectError words a failed connection.
func (w *writer) connectError(err error) error {
	var ae *amqp.Error
	var se *stage.Error
	switch {
	case errors.As(err, &se):
		return err // sink.Connect gave up, naming the server
	case errors.As(err, &ae) && ae.Code == amqp.AccessRefused:
		return stage.Hint(fmt.Errorf("%s: %w", w.show, err), "check the user and password of the --amqp URL: amqp://USER:PASSWORD@HOST:PORT/VHOST")
	case errors.As(err, &ae) && ae.Code == amqp.NotAllowed:
		return stage.Hint(fmt.Errorf("%s: %w", w.show, err), "check the vhost of the --amqp URL (after the host: /VHOST, %%2F for /), and that the user may use it")
	}
	return fmt.Errorf("%s: %w", w.show, err)
}

// check makes the channel: the exchange must be there (or the queue, for
// the default exchange and a routing key), checked with a passive declare.
func (w *writer) check() error {
	var err error
	if w.ch, err = w.conn.Channel(); err != nil {
		return fmt.Errorf("%s: opening a channel: %w", w.show, err)
	}
	switch {
	case w.exchange != "":
		// A passive declare checks only that the exchange is there: the
		// kind and flags are not compared.
		err = w.ch.ExchangeDeclarePassive(w.exchange, amqp.ExchangeDirect, true, false, false, false, nil)
		if notFound(err) {
			return stage.Hint(fmt.Errorf("%s: no exchange %q", w.show, w.exchange),
				"declare it (rabbitmqadmin declare exchange name=%s type=direct, and bind a queue to it), or name an existing one in the URL's exchange=", w.exchange)
		}
	case w.keyField == "":
		_, err = w.ch.QueueDeclarePassive(w.key, true, false, false, false, nil)
		if notFound(err) {
			return stage.Hint(fmt.Errorf("%s: no queue %q for the default exchange to route to (routing_key=%s, no exchange=)", w.show, w.key, w.key),
				"declare the queue (amqp-declare-queue -d -q %s), or give the URL an exchange=", w.key)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", w.show, err)
	}
	// Why the bounds: amqp091 sends confirms and returns to these on the
	// connection's one reader, which waits for room; maxPending is the
	// most that are not read.
	w.confirms = w.ch.NotifyPublish(make(chan amqp.Confirmation, maxPending))
	w.returns = w.ch.NotifyReturn(make(chan amqp.Return, maxPending))
	w.closes = w.ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := w.ch.Confirm(false); err != nil {
		return fmt.Errorf("%s: publisher confirms: %w", w.show, err)
	}
	return nil
}

func notFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}

func (w *writer) Begin(b stage.Batch) error {
	w.batch, w.first = b, w.published+1
	w.nacked, w.nNacked, w.ret, w.retN, w.nRet = 0, 0, nil, 0, 0
	// One table for the batch's messages: amqp091 only reads it.
	w.headers = amqp.Table{HeaderBatchID: int64(b.ID), HeaderBatchTime: b.Time}
	return nil
}

// Record publishes rec, once fewer than maxPending messages wait for
// their confirm.
func (w *writer) Record(rec []byte) error {
	body, err := w.enc.Encode(rec)
	if err != nil {
		return err
	}
	key := w.key
	if w.keyField != "" {
		if key, err = w.routingKey(rec); err != nil {
			return err
		}
	}
	if err := w.wait(maxPending - 1); err != nil {
		return err
	}
	n := w.published + 1 - w.first + 1
	w.id = sink.AppendMessageID(w.id[:0], w.run, w.batch.ID, n)
	// amqp091 writes the message out before it returns: body may be
	// reused.
	err = w.ch.Publish(w.exchange, key, true, false, amqp.Publishing{
		Headers:      w.headers,
		ContentType:  w.ctype,
		DeliveryMode: amqp.Persistent,
		MessageId:    string(w.id),
		Body:         body,
	})
	if err != nil {
		return fmt.Errorf("%s: publishing: %w", w.show, w.closedWhy(err))
	}
	w.published++
	return nil
}

// routingKey is the value of --routing-key-field in rec, as text.
func (w *writer) routingKey(rec []byte) (string, error) {
	v, ok, err := record.Get(rec, w.keyField)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", fmt.Errorf("no field %q for the routing key (--routing-key-field)", w.keyField)
	case record.KindOf(v) == record.KindNil:
		return "", fmt.Errorf("field %q is null: no routing key (--routing-key-field)", w.keyField)
	}
	w.keyBuf = record.FormatText(w.keyBuf[:0], v)
	if len(w.keyBuf) > 255 {
		return "", fmt.Errorf("field %q: a routing key has at most 255 bytes, this one %d (--routing-key-field)", w.keyField, len(w.keyBuf))
	}
	return string(w.keyBuf), nil
}

// wait reads confirms and returns until at most pending messages wait for
// their confirm.
func (w *writer) wait(pending uint64) error {
	if w.published-w.confirmed <= pending {
		return nil
	}
	if w.timer == nil {
		w.timer = time.NewTimer(confirmTimeout)
	} else {
		w.timer.Reset(confirmTimeout)
	}
	defer w.timer.Stop()
	for w.published-w.confirmed > pending {
		w.drainReturns()
		select {
		case c, ok := <-w.confirms:
			if !ok {
				return w.lost()
			}
			w.confirm(c)
			w.timer.Reset(confirmTimeout)
		case r, ok := <-w.returns:
			if !ok {
				w.returns = nil // closed with the channel: confirms says so
				continue
			}
			w.returned(r)
		case <-w.timer.C:
			return fmt.Errorf("%s: no confirm within %v for %d messages", w.show, confirmTimeout, w.published-w.confirmed)
		}
	}
	return nil
}

// confirm counts a confirm; a nack is the failure of its record.
func (w *writer) confirm(c amqp.Confirmation) {
	w.confirmed = c.DeliveryTag
	if !c.Ack && c.DeliveryTag >= w.first {
		if w.nNacked == 0 {
			w.nacked = c.DeliveryTag - w.first + 1
		}
		w.nNacked++
	}
}

// returned keeps a message returned unroutable.
func (w *writer) returned(r amqp.Return) {
	n, _ := sink.MessageNumber(r.MessageId)
	if w.nRet == 0 || n < w.retN {
		w.ret, w.retN = &r, n
	}
	w.nRet++
}

// drainReturns takes the returns that are there. RabbitMQ returns a
// message before it confirms it, and amqp091 passes them on in that
// order: once a message's confirm is read, its return is here.
func (w *writer) drainReturns() {
	for {
		select {
		case r, ok := <-w.returns:
			if !ok {
				w.returns = nil // closed with the channel
				return
			}
			w.returned(r)
		default:
			return
		}
	}
}

// lost is the error of a channel closed under the batch: by the server
// (an exchange deleted, a connection closed) or a network failure.
func (w *writer) lost() error {
	return fmt.Errorf("%s: the channel closed with %d messages of the batch not confirmed: %w",
		w.show, w.published-w.confirmed, w.closedWhy(amqp.ErrClosed))
}

// closedWhy is the reason the server gave for closing the channel, if it
// gave one, else err.
func (w *writer) closedWhy(err error) error {
	select {
	case e, ok := <-w.closes:
		if ok && e != nil {
			return e
		}
	default:
	}
	return err
}

// End waits for the confirms of all the batch's messages: a batch ends
// only when RabbitMQ has taken all its records. A nack or a message
// returned unroutable fails the batch, naming it and the first record.
func (w *writer) End(b stage.Batch, _ uint64) error {
	if err := w.wait(0); err != nil {
		return fmt.Errorf("%v: %w", b, err)
	}
	w.drainReturns()
	switch {
	case w.nRet > 0:
		return fmt.Errorf("%v, record %d: %s: unroutable: exchange %q has no queue for routing key %q (%d %s)%s",
			b, w.retN, w.show, w.ret.Exchange, w.ret.RoutingKey, w.ret.ReplyCode, w.ret.ReplyText, more(w.nRet))
	case w.nNacked > 0:
		return fmt.Errorf("%v, record %d: %s: refused by the server (nack)%s", b, w.nacked, w.show, more(w.nNacked))
	}
	return nil
}

func more(n uint64) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" (and %d more records of the batch)", n-1)
}

// Flush, on the way out after an error, has nothing to throw away: what
// was published of the batch in hand is in RabbitMQ's queues, and a replay
// of the batch publishes it again.
func (w *writer) Flush() error { return nil }

// Close closes the connection.
func (w *writer) Close() error {
	if w.conn != nil {
		w.conn.Close()
	}
	return nil
}

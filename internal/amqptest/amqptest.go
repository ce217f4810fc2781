// Package amqptest gives the RabbitMQ tests exchanges and queues of their
// own on the RabbitMQ server on loopback, deleted at the end of the test,
// and reads back what a queue holds.
package amqptest

import (
	"fmt"
	"github.com/dstream/dstream/internal/servertest"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// URL is the RabbitMQ server the tests use, on loopback: the machine's,
// or DSTREAM_AMQP_URL.
func URL() string {
	if u := os.Getenv("DSTREAM_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// Start says how to start the server of URL, for the message of a test
// that cannot reach it.
const Start = "start it with scripts/services.sh, or: rabbitmq-server -detached"

// Unreachable skips the test saying why and how to start the server, but
// in CI (CI=true), where it fails.
func Unreachable(t testing.TB, err error) {
	t.Helper()
	servertest.Unavailable(t, fmt.Sprintf("RabbitMQ at %s: %v; %s", URL(), err, Start))
}

// Channel connects to the server of URL and opens a channel, both closed
// at the end of the test. Without a server the test is skipped, but in CI,
// where it fails.
func Channel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.DialConfig(URL(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		Unreachable(t, err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// Name is a name for the test's exchange and queue, unique to the run:
// the test's name in letters, digits, - and _, and a random suffix.
func Name(t testing.TB) string { return servertest.Name(t) }

// Exchange declares a direct exchange and a durable queue, both named
// Name, the queue bound to the exchange with the routing key keys (the
// name without one), and returns the name; both are deleted at the end of
// the test.
func Exchange(t testing.TB, keys ...string) string {
	t.Helper()
	name := Name(t)
	ch := Channel(t)
	if err := ch.ExchangeDeclare(name, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
		t.Fatalf("declaring exchange %s: %v", name, err)
	}
	DeleteExchange(t, name)
	Queue(t, name)
	if len(keys) == 0 {
		keys = []string{name}
	}
	for _, k := range keys {
		if err := ch.QueueBind(name, k, name, false, nil); err != nil {
			t.Fatalf("binding queue %s: %v", name, err)
		}
	}
	return name
}

// Queue declares a durable queue name, deleted at the end of the test.
func Queue(t testing.TB, name string) {
	t.Helper()
	ch := Channel(t)
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		t.Fatalf("declaring queue %s: %v", name, err)
	}
	DeleteQueue(t, name)
}

// DeleteQueue deletes queue name at the end of the test, if it is there.
func DeleteQueue(t testing.TB, name string) {
	t.Cleanup(func() {
		cleanUp(t, func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete(name, false, false, false)
			return err
		}, "deleting queue "+name)
	})
}

// DeleteExchange deletes exchange name at the end of the test, if it is
// there.
func DeleteExchange(t testing.TB, name string) {
	t.Cleanup(func() {
		cleanUp(t, func(ch *amqp.Channel) error { return ch.ExchangeDelete(name, false, false) }, "deleting exchange "+name)
	})
}

// cleanUp runs f on a channel of a connection of its own, in a cleanup.
func cleanUp(t testing.TB, f func(*amqp.Channel) error, what string) {
	conn, err := amqp.DialConfig(URL(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = f(ch)
	}
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// Messages takes every message of queue name, in order (and acks them).
func Messages(t testing.TB, name string) []amqp.Delivery {
	t.Helper()
	ch := Channel(t)
	var msgs []amqp.Delivery
	for {
		d, ok, err := ch.Get(name, true)
		if err != nil {
			t.Fatalf("reading queue %s: %v", name, err)
		}
		if !ok {
			return msgs
		}
		msgs = append(msgs, d)
	}
}

package dstream_test

import (
	"strings"
	"testing"

	"github.com/dstream/dstream/internal/amqptest"
	"github.com/dstream/dstream/internal/natstest"
	"github.com/dstream/dstream/internal/pgtest"
)

// services are the scripts that need a server on loopback besides the
// stages, by name, and what the parent test sets up for each: it skips the
// script without its server (but in CI, where it fails), makes the names
// the script uses its own, and returns them for the script's environment;
// what it made is deleted once the script has run.
var services = map[string]func(t *testing.T) []string{
	// NATS_URL is the server; NAME a stream and subject name of the run's
	// own, for --create-stream (the stream is deleted at the end).
	"ssink-nats": func(t *testing.T) []string {
		js := natstest.JetStream(t)
		name := natstest.Name(t)
		natstest.Delete(t, js, name)
		return []string{"NATS_URL=" + natstest.URL(), "NAME=" + name}
	},
	// AMQP_URL is the server, without the final / that amqp-tools take
	// for an empty vhost; NAME a direct exchange and a durable queue bound
	// to it with the routing key NAME.
	// PG_URL is a PostgreSQL schema of the run's own.
	"kafka-scale-out": func(t *testing.T) []string {
		u, db := pgtest.Schema(t)
		db.Close()
		return []string{"PG_URL=" + u}
	},
	"ssink-amqp": func(t *testing.T) []string {
		name := amqptest.Exchange(t)
		return []string{"AMQP_URL=" + strings.TrimSuffix(amqptest.URL(), "/"), "NAME=" + name}
	},
}

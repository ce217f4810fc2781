// Package servertest holds the rule every test that needs a server on
// loopback (PostgreSQL, NATS, RabbitMQ) follows when it cannot reach it:
// skip, saying how to start it, but in CI (CI=true), where a test that
// cannot run is a failure.
package servertest

import (
	"os"
	"testing"
)

// Unavailable skips the test with msg, or fails it in CI.
func Unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

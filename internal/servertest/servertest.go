// Package servertest holds the rule every test that needs a server on
// loopback (PostgreSQL, NATS, RabbitMQ) follows when it cannot reach it:
// skip, saying how to start it, but in CI (CI=true), where a test that
// cannot run is a failure.
package servertest

import (
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode"
)

// Unavailable skips the test with msg, or fails it in CI.
func Unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Name is a name of the test's own on a shared server (a stream, a queue,
// a schema): the test's name in letters, digits, - and _, and a random
// suffix, unique to the run.
func Name(t testing.TB) string {
	var b [4]byte
	rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' {
			return '_'
		}
		return r
	}, t.Name())
	return fmt.Sprintf("dstream_%.40s_%x", name, b)
}

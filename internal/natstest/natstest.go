// Package natstest gives the NATS tests JetStream streams of their own on
// the NATS server on loopback, deleted at the end of the test, and reads
// back what a stream holds.
package natstest

import (
	"context"
	"fmt"
	"github.com/dstream/dstream/internal/servertest"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// URL is the NATS server with JetStream the tests use, on loopback: the
// machine's, or DSTREAM_NATS_URL.
func URL() string {
	if u := os.Getenv("DSTREAM_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// Start says how to start the server of URL, for the message of a test
// that cannot reach it.
const Start = "start it with scripts/services.sh, or: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"

// Unreachable skips the test saying why and how to start the server, but
// in CI (CI=true), where it fails.
func Unreachable(t testing.TB, err error) {
	t.Helper()
	servertest.Unavailable(t, fmt.Sprintf("NATS with JetStream at %s: %v; %s", URL(), err, Start))
}

// JetStream connects to the server of URL, closed at the end of the
// test. Without a server (or without JetStream) the test is skipped, but
// in CI, where it fails.
func JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(URL(), nats.Timeout(2*time.Second))
	if err != nil {
		Unreachable(t, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = js.AccountInfo(ctx)
		cancel()
	}
	if err != nil {
		Unreachable(t, err)
	}
	return js
}

// Name is a name for the test's stream and subject, unique to the run:
// the test's name in letters, digits, - and _, and a random suffix.
func Name(t testing.TB) string { return servertest.Name(t) }

// Stream creates a stream for the test that captures the subject of the
// same name, and returns that name; the stream is deleted at the end of
// the test.
func Stream(t testing.TB, js jetstream.JetStream) string {
	t.Helper()
	name := Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}}); err != nil {
		t.Fatalf("creating stream %s: %v", name, err)
	}
	Delete(t, js, name)
	return name
}

// Delete deletes stream name at the end of the test, if it is there then:
// for the streams the test has ssink create (--create-stream).
func Delete(t testing.TB, js jetstream.JetStream, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, name); err != nil && err != jetstream.ErrStreamNotFound {
			t.Errorf("deleting stream %s: %v", name, err)
		}
	})
}

// Msg is a message stored in a stream.
type Msg struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// Messages reads every message of stream name, in order.
func Messages(t testing.TB, js jetstream.JetStream, name string) []Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info := s.CachedInfo()
	var msgs []Msg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream %s, message %d: %v", name, seq, err)
		}
		msgs = append(msgs, Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	return msgs
}

// Server starts a nats-server of its own for the test, with the arguments
// args (-js for JetStream), on a free loopback port, and returns its URL
// (nats://127.0.0.1:PORT) and a function that stops it (also called at
// the end of the test). Without the nats-server program the test is
// skipped (but in CI).
func Server(t testing.TB, args ...string) (string, func()) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if bin = "/usr/sbin/nats-server"; !executable(bin) {
			Unreachable(t, fmt.Errorf("no nats-server program: %w", err))
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", dir,
		"-l", filepath.Join(dir, "log")}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server on %s did not start: %v", addr, err)
		}
	}
	return "nats://" + addr, stop
}

// AuthServer starts a server with JetStream as Server does that takes
// only user u with password p, and returns its URL, with no credentials.
func AuthServer(t testing.TB, u, p string) string {
	t.Helper()
	url, _ := Server(t, "-js", "--user", u, "--pass", p)
	return url
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&0o111 != 0
}

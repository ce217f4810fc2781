package main

import (
	"net"
	"strings"
	"testing"

	"github.com/dstream/dstream/internal/amqptest"
	"github.com/dstream/dstream/internal/natstest"
)

// The command line of --nats and --amqp is checked before anything is
// opened: exit 2.
func TestBrokerUsage(t *testing.T) {
	t.Parallel()
	n, a := "nats://127.0.0.1:1/x", "amqp://127.0.0.1:1/?routing_key=x"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats", ""}, "ssink: error: --nats needs a URL: nats://HOST:PORT/SUBJECT"},
		{[]string{"--nats", "nats://127.0.0.1:1"}, `ssink: error: --nats "nats://127.0.0.1:1": no subject`},
		{[]string{"--amqp", ""}, "ssink: error: --amqp needs a URL: amqp://"},
		{[]string{"--nats", n, "--amqp", a}, "ssink: error: --nats and --amqp are two outputs: run two ssink stages (after tee) for both"},
		{[]string{"--nats", n, "--sqlite", "t.db"}, "ssink: error: --sqlite does not go with --files, --exec, --post, --kafka, --nats or --amqp"},
		{[]string{"--nats", n, "--format", "csv"}, "ssink: error: --format csv does not go with --nats, which sends a message per record\nssink: hint: a csv row needs its header: use --format json, lines or msgpack"},
		{[]string{"--amqp", a, "--format", "console"}, "ssink: error: --format console does not go with --amqp"},
		{[]string{"--nats", n, "--rows", "3"}, "ssink: error: --rows applies to --format console, not json"},
		{[]string{"--amqp", a, "--create-stream", "S"}, "ssink: error: --create-stream applies to --nats"},
		{[]string{"--nats", n, "--routing-key-field", "k"}, "ssink: error: --routing-key-field applies to --amqp"},
		{[]string{"--format", "json", "--connect-timeout", "1s"}, "ssink: error: --connect-timeout applies to --kafka, --nats or --amqp\n"},
		{[]string{"--nats", n, "--connect-timeout", "-1s"}, "ssink: error: --connect-timeout -1s: want 0 or more"},
		{[]string{"--nats", n, "--txn-timeout", "1s"}, "ssink: error: --txn-timeout applies to --kafka\n"},
		{[]string{"--kafka", "kafka://127.0.0.1:1/t", "--txn-timeout", "0s"}, "ssink: error: --txn-timeout 0s: want a positive number of milliseconds"},
		{[]string{"--nats", n, "--create-stream", ""}, "ssink: error: --create-stream needs a stream name"},
		{[]string{"--amqp", "amqp://127.0.0.1:1/", "--routing-key-field", ""}, "ssink: error: --routing-key-field needs a field name"},
		{[]string{"--amqp", "amqp://127.0.0.1:1/?routing_key=a", "--routing-key-field", "k"}, "ssink: error: --routing-key-field k does not go with routing_key=a in the --amqp URL: give one"},
	} {
		out, errOut, code := run(stream(t, batch{0, t0, lines("a")}), tc.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2, %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

// A server that is not there, with --connect-timeout 0, is tried once:
// exit 1 naming it (without its password), and a hint.
func TestBrokerDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats", "nats://me:secret@" + addr + "/x"}, "ssink: error: nats://me@" + addr + ": cannot connect: dial tcp " + addr + ": connect: connection refused\n" +
			"ssink: hint: is the server running and listening at nats://me@" + addr + "? --connect-timeout 0 tries once\n"},
		{[]string{"--amqp", "amqp://me:secret@" + addr + "/?exchange=e"}, "ssink: error: amqp://me@" + addr + "/: cannot connect: dial tcp " + addr + ": connect: connection refused\n"},
	} {
		out, errOut, code := run(stream(t, batch{0, t0, lines("a")}), append(tc.args, "--connect-timeout", "0")...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, tc.want) || strings.Contains(errOut, "secret") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1, %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

// ssink --nats end to end, with --progress: the rows JetStream stored.
func TestNATS(t *testing.T) {
	js := natstest.JetStream(t)
	name := natstest.Stream(t, js)
	in := stream(t, batch{0, t0, lines("a", "b")}, batch{1, t0 + 1000, nil}, batch{2, t0 + 2000, lines("c")})
	out, errOut, code := run(in, "--nats", natstest.URL()+"/"+name, "--batch-field", "b", "--progress", "-")
	if code != 0 || out != "" || strings.Count(errOut, `"numOutputRows":`) != 3 || !strings.Contains(errOut, `"numInputRows":2,"numOutputRows":2`) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var got []string
	for _, m := range natstest.Messages(t, js, name) {
		got = append(got, m.Header.Get("dstream-batch-id")+":"+string(m.Data))
	}
	if want := `0:{"value":"a","b":1700000000000} 0:{"value":"b","b":1700000000000} 2:{"value":"c","b":1700000002000}`; strings.Join(got, " ") != want {
		t.Errorf("messages %q, want %s", got, want)
	}
}

// ssink --amqp end to end.
func TestAMQP(t *testing.T) {
	name := amqptest.Exchange(t)
	in := stream(t, batch{0, t0, lines("a", "b")}, batch{1, t0 + 1000, lines("c")})
	out, errOut, code := run(in, "--amqp", strings.TrimSuffix(amqptest.URL(), "/")+"/?exchange="+name+"&routing_key="+name)
	if code != 0 || out != "" || errOut != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var got []string
	for _, m := range amqptest.Messages(t, name) {
		got = append(got, string(m.Body))
	}
	if want := `{"value":"a"} {"value":"b"} {"value":"c"}`; strings.Join(got, " ") != want {
		t.Errorf("messages %q, want %s", got, want)
	}
}

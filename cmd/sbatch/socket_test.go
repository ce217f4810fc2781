package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
)

// sbatch tcp://HOST:PORT connects to a server and reads its lines until it
// closes the connection, as Spark's socketTextStream.
func TestConnectSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("one\ntwo\n"))
		c.Close()
	}()
	var out, stderr bytes.Buffer
	if code := command.Run([]string{"sbatch", "--once", "tcp://" + l.Addr().String()}, nil, &out, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := values(&out); strings.Join(got, ",") != "one,two" {
		t.Errorf("records %q, want one, two", got)
	}
}

// values returns the value fields of the records of a framed stream.
func values(out *bytes.Buffer) []string {
	r := framing.NewReader(out)
	var got []string
	for {
		f, err := r.ReadFrame()
		if err != nil {
			return got
		}
		if f.Kind == framing.KindRecords {
			recs := f.Records()
			for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
				v, _, _ := record.Get(rec, "value")
				s, _ := record.Str(v)
				got = append(got, string(s))
			}
		}
	}
}

// freeAddr returns a loopback address that nothing listens on.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// --reconnect-timeout gives up after so long without a connection, at the
// start or after a loss, naming the socket; what arrived before leaves in
// its batch.
func TestReconnectTimeout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   func(t *testing.T) string // the input, and a server for it
		values string
		notes  []string // each with %s for the socket
	}{
		{"never connected", func(t *testing.T) string { return "tcp://" + freeAddr(t) }, "",
			[]string{"sbatch: note: %s: cannot connect (connect: connection refused), trying again\n"}},
		{"lost", func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				c, err := l.Accept()
				l.Close() // the server goes away, and does not come back
				if err != nil {
					return
				}
				c.Write([]byte("one\n"))
				c.Close()
			}()
			return "tcp://" + l.Addr().String()
		}, "one", []string{"sbatch: note: %s: connection lost (closed by the peer), reconnecting\n"}},
		{"nobody connects", func(t *testing.T) string { return "tcp-listen://" + freeAddr(t) }, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec(t)
			var out, stderr bytes.Buffer
			code := command.Run([]string{"sbatch", "--reconnect", "--reconnect-timeout", "300ms", "-i", "50ms", spec}, nil, &out, &stderr)
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, stderr.String())
			}
			if want := "sbatch: error: " + spec + ": no connection for 300ms (--reconnect-timeout): "; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q, want it to hold %q", stderr.String(), want)
			}
			for _, note := range tc.notes {
				if note = strings.ReplaceAll(note, "%s", spec); !strings.Contains(stderr.String(), note) {
					t.Errorf("stderr %q, want it to hold %q", stderr.String(), note)
				}
			}
			if got := strings.Join(values(&out), ","); got != tc.values {
				t.Errorf("records %q, want %q", got, tc.values)
			}
		})
	}
}

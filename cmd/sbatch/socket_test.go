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
	r := framing.NewReader(&out)
	var got []string
	for {
		f, err := r.ReadFrame()
		if err != nil {
			break
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
	if strings.Join(got, ",") != "one,two" {
		t.Errorf("records %q, want one, two", got)
	}
}

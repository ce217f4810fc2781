package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dstream/dstream/internal/frametest"
)

// framed is a stream of batches of JSON records, batch i at time 1000*(i+1).
func framed(t *testing.T, batches ...[]string) []byte {
	t.Helper()
	bs := make([]frametest.Batch, len(batches))
	for i, recs := range batches {
		bs[i] = frametest.Batch{ID: uint64(i), Time: int64(i+1) * 1000, Recs: recs}
	}
	return frametest.Stream(t, bs)
}

// --post sends each batch as one request, over a real connection to a
// server on loopback.
func TestPost(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.Header.Get("Content-Type")+" id="+r.Header.Get("X-Dstream-Batch-Id")+
			" time="+r.Header.Get("X-Dstream-Batch-Time")+"\n"+string(body))
		mu.Unlock()
	}))
	defer srv.Close()
	in := framed(t, []string{`{"a":1}`, `{"a":2}`}, nil, []string{`{"a":3}`})
	var out, stderr bytes.Buffer
	if code := command.Run([]string{"ssink", "--post", srv.URL + "/ingest"}, bytes.NewReader(in), &out, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := []string{
		"POST application/x-ndjson id=0 time=1000\n{\"a\":1}\n{\"a\":2}\n",
		"POST application/x-ndjson id=1 time=2000\n",
		"POST application/x-ndjson id=2 time=3000\n{\"a\":3}\n",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("requests:\n%q\nwant:\n%q", got, want)
	}
}

// An answer but 2xx stops ssink, naming the batch and the answer; so does
// a server that is not there.
func TestPostErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Dstream-Batch-Id") == "1" {
			http.Error(w, "disk full", http.StatusInsufficientStorage)
		}
	}))
	in := framed(t, []string{`{"a":1}`}, []string{`{"a":2}`}, []string{`{"a":3}`})
	var out, stderr bytes.Buffer
	code := command.Run([]string{"ssink", "--post", srv.URL}, bytes.NewReader(in), &out, &stderr)
	if want := "ssink: error: batch 1: --post " + srv.URL + ": 507 Insufficient Storage: disk full\n"; code != 1 || stderr.String() != want {
		t.Errorf("exit %d, %q; want 1, %q", code, stderr.String(), want)
	}
	url := srv.URL
	srv.Close()
	stderr.Reset()
	code = command.Run([]string{"ssink", "--post", url}, bytes.NewReader(in), &out, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "ssink: error: batch 0: --post: Post ") || !strings.Contains(stderr.String(), "ssink: hint: check that the server at "+url+" is up") {
		t.Errorf("server gone: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := command.Run([]string{"ssink", "--post", "localhost:80"}, bytes.NewReader(in), &out, &stderr); code != 2 {
		t.Errorf("a URL without a scheme: exit %d, %q", code, stderr.String())
	}
}

// A server that resets the connection (SO_LINGER 0, then Close) instead of
// answering: the batch did not arrive, which is an error naming the batch
// and the URL, not the quiet end of a closed pipe.
func TestPostReset(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 100)) // part of the request
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	url := "http://" + l.Addr().String() + "/ingest"
	in := framed(t, []string{`{"a":1}`}, []string{`{"a":2}`})
	var out, stderr bytes.Buffer
	code := command.Run([]string{"ssink", "--post", url}, bytes.NewReader(in), &out, &stderr)
	if code != 1 || !strings.HasPrefix(stderr.String(), `ssink: error: batch 0: --post: Post "`+url+`": `) {
		t.Errorf("exit %d, %q", code, stderr.String())
	}
}

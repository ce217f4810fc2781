package servesink

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
)

func TestParseChart(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Chart
		err  string
	}{
		{in: "line:x=batch,y=count", want: Chart{Kind: Line, Title: "count by batch", X: "batch", Y: "count"}},
		{in: "line:y=n,title=Words", want: Chart{Kind: Line, Title: "Words", X: "batch", Y: "n"}},
		{in: "bar:key=value,y=count,top=5", want: Chart{Kind: Bar, Title: "top 5 value by count", Y: "count", Key: "value", Top: 5}},
		{in: "bar:key=w,y=c", want: Chart{Kind: Bar, Title: "top 20 w by c", Y: "c", Key: "w", Top: 20}},
		{in: "pie:y=count", err: `unknown kind "pie"`},
		{in: "line:x=value,y=count", err: "x=value: a line chart's x is the batch time"},
		{in: "line:x=batch", err: "no y=FIELD"},
		{in: "bar:y=count", err: "no key=FIELD"},
		{in: "bar:key=v,y=c,top=0", err: "top=0: want a number from 1 to 1000"},
		{in: "line:y=c,top=3", err: "a line chart takes no top="},
		{in: "line:y", err: `"y": want NAME=VALUE`},
	} {
		got, err := ParseChart(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseChart(%q) = %v, want error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseChart(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestJoinCharts(t *testing.T) {
	// What the command line's list flag makes of two --chart values.
	in := []string{"line:x=batch", "y=count", "bar:key=value", "y=count", "top=3", "title=a:b"}
	want := []string{"line:x=batch,y=count", "bar:key=value,y=count,top=3,title=a:b"}
	if got := joinCharts(in); !slices.Equal(got, want) {
		t.Errorf("joinCharts = %q, want %q", got, want)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		o   sink.Options
		err string
	}{
		{sink.Options{Target: "8080"}, `--serve "8080": want HOST:PORT`},
		{sink.Options{Target: "127.0.0.1:0", Keep: -1}, "--keep -1: want 1 or more batches"},
		{sink.Options{Target: "127.0.0.1:0", Charts: []string{"bar:y=c"}}, "no key=FIELD"},
	} {
		_, err := open(&tc.o, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("open(%+v) = %v, want a usage error with %q", tc.o, err, tc.err)
		}
	}
}

// serve starts a --serve writer on a free port of loopback.
func serve(t testing.TB, keep int, charts ...string) *writer {
	t.Helper()
	sw, err := open(&sink.Options{Target: "127.0.0.1:0", Keep: keep, Charts: charts}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := sw.(*writer)
	if err := w.Start("", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// word is a record {"value": v, "count": n}.
func word(v string, n int64) []byte {
	var b record.Builder
	b.Value("value", v)
	b.Value("count", n)
	return slices.Clone(b.Bytes())
}

// write writes a batch of recs.
func write(t testing.TB, w *writer, id uint64, recs ...[]byte) {
	t.Helper()
	b := stage.Batch{ID: id, Time: 1_700_000_000_000 + int64(id)*1000}
	if err := w.Begin(b); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(b, uint64(len(recs))); err != nil {
		t.Fatal(err)
	}
}

// sse is a reader of /events.
type sse struct {
	r    *bufio.Reader
	body io.Closer
}

func subscribe(t *testing.T, w *writer, lastID string) *sse {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+w.Addr().String()+"/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("/events: Content-Type %q", ct)
	}
	return &sse{bufio.NewReader(resp.Body), resp.Body}
}

// next reads one event: its lines up to the blank line, joined by "\n".
func (s *sse) next(t *testing.T) string {
	t.Helper()
	var lines []string
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading /events after %q: %v", lines, err)
		}
		l = strings.TrimSuffix(l, "\n")
		if l == "" {
			if len(lines) == 0 {
				continue
			}
			return strings.Join(lines, "\n")
		}
		lines = append(lines, l)
	}
}

func TestEvents(t *testing.T) {
	w := serve(t, 10, "line:x=batch,y=count", "bar:key=value,y=count,top=2")
	run := w.hub.run
	write(t, w, 0, word("a", 3), word("b", 1), word("c", 2))

	s := subscribe(t, w, "")
	if got, want := s.next(t), "retry: 2000\nevent: config\ndata: {\"run\":\""+run+`","keep":10,"charts":[`+
		`{"kind":"line","title":"count by batch","x":"batch","y":"count"},`+
		`{"kind":"bar","title":"top 2 value by count","y":"count","key":"value","top":2}]}`; got != want {
		t.Errorf("first event:\n%s\nwant\n%s", got, want)
	}
	// The batch written before the page opened.
	want0 := "id: " + run + "-1\nevent: batch\ndata: " +
		`{"id":0,"time":1700000000000,"records":3,"rows":[{"value":"a","count":3},{"value":"b","count":1},{"value":"c","count":2}],` +
		`"charts":[{"y":6},{"bars":[{"key":"a","y":3},{"key":"c","y":2}]}]}`
	if got := s.next(t); got != want0 {
		t.Errorf("history:\n%s\nwant\n%s", got, want0)
	}
	// A batch as it comes; an empty one.
	write(t, w, 1)
	want1 := "id: " + run + "-2\nevent: batch\ndata: " + `{"id":1,"time":1700000001000,"records":0,"rows":[],"charts":[{},{}]}`
	if got := s.next(t); got != want1 {
		t.Errorf("live:\n%s\nwant\n%s", got, want1)
	}

	// A second reader, reconnecting after the first batch, gets the
	// config and then only the second.
	s2 := subscribe(t, w, run+"-1")
	s2.next(t)
	if got := s2.next(t); got != want1 {
		t.Errorf("after Last-Event-ID %s-1:\n%s\nwant\n%s", run, got, want1)
	}
	// An id of another run: the whole history.
	s3 := subscribe(t, w, "0123-1")
	s3.next(t)
	if got := s3.next(t); got != want0 {
		t.Errorf("after another run's id:\n%s\nwant\n%s", got, want0)
	}

	// At the end of the input each stream ends with "end".
	w.Close()
	for _, s := range []*sse{s, s2} {
		if got := s.next(t); got != "event: end\ndata:" {
			t.Errorf("after Close: %q, want the end event", got)
		}
		if _, err := s.r.ReadByte(); err != io.EOF {
			t.Errorf("after the end event: %v, want EOF", err)
		}
	}
}

func TestBatches(t *testing.T) {
	w := serve(t, 2)
	for id := range uint64(3) {
		write(t, w, id, word(fmt.Sprint("w", id), int64(id)))
	}
	get := func(query string) (int, []byte) {
		resp, err := http.Get("http://" + w.Addr().String() + "/batches" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	type batch struct {
		ID      uint64           `json:"id"`
		Records uint64           `json:"records"`
		Rows    []map[string]any `json:"rows"`
	}
	var got struct {
		Config  struct{ Keep int } `json:"config"`
		Batches []batch            `json:"batches"`
	}
	for _, tc := range []struct {
		query string
		ids   []uint64
	}{{"", []uint64{1, 2}}, {"?last=1", []uint64{2}}, {"?last=5", []uint64{1, 2}}} {
		code, body := get(tc.query)
		if code != 200 {
			t.Fatalf("/batches%s: %d %s", tc.query, code, body)
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("/batches%s: %v: %s", tc.query, err, body)
		}
		var ids []uint64
		for _, b := range got.Batches {
			ids = append(ids, b.ID)
		}
		if !slices.Equal(ids, tc.ids) || got.Config.Keep != 2 {
			t.Errorf("/batches%s: batches %v, keep %d; want %v, keep 2", tc.query, ids, got.Config.Keep, tc.ids)
		}
	}
	if got.Batches[0].Rows[0]["value"] != "w1" {
		t.Errorf("/batches: rows %v, want w1's", got.Batches[0].Rows)
	}
	if code, body := get("?last=x"); code != 400 || !strings.Contains(string(body), "last=x") {
		t.Errorf("/batches?last=x: %d %s, want 400 naming it", code, body)
	}
}

// TestTableRows: the table has the first TableRows records of a batch,
// the charts all of them.
func TestTableRows(t *testing.T) {
	w := serve(t, 1, "line:y=count", "bar:key=value,y=count,top=1")
	var recs [][]byte
	for i := range 100 {
		recs = append(recs, word(fmt.Sprint("w", i), int64(i)))
	}
	write(t, w, 7, recs...)
	var b struct {
		Records int
		Rows    []json.RawMessage
		Charts  []plotJSON
	}
	if err := json.Unmarshal(w.hub.since(0, 0)[0].data, &b); err != nil {
		t.Fatal(err)
	}
	if b.Records != 100 || len(b.Rows) != TableRows || *b.Charts[0].Y != 4950 || b.Charts[1].Bars[0] != (barJSON{"w99", 99}) {
		t.Errorf("batch of 100: records %d, rows %d, charts %+v %+v", b.Records, len(b.Rows), *b.Charts[0].Y, b.Charts[1].Bars)
	}
}

// TestLargeRecords: a batch of large records keeps fewer rows (at most
// maxRowBytes of JSON), and a long key is cut at a rune's start.
func TestLargeRecords(t *testing.T) {
	w := serve(t, 1, "bar:key=value,y=count,top=1")
	big := strings.Repeat("é", 100<<10) // 200 KiB
	write(t, w, 0, word(big, 1), word(big, 2), word("x", 3))
	var b struct {
		Records int
		Rows    []map[string]any
		Charts  []plotJSON
	}
	if err := json.Unmarshal(w.hub.since(0, 0)[0].data, &b); err != nil {
		t.Fatal(err)
	}
	if b.Records != 3 || len(b.Rows) != 1 || b.Rows[0]["count"] != 1.0 {
		t.Errorf("records %d, rows %d; want 3 records, the first row only", b.Records, len(b.Rows))
	}
	if got := b.Charts[0].Bars[0]; got.Key != "x" {
		t.Errorf("top bar %q, want x", got.Key)
	}
	write(t, w, 1, word("a"+big, 1))
	if err := json.Unmarshal(w.hub.since(0, 0)[0].data, &b); err != nil {
		t.Fatal(err)
	}
	if got := b.Charts[0].Bars[0].Key; got != "a"+strings.Repeat("é", (maxKey-1)/2) {
		t.Errorf("a long key cut to %d bytes %q..., want %d", len(got), got[:10], maxKey-1)
	}
}

// TestStalledClient: a client that stops reading /events holds up
// neither the sink nor the other clients; when it reads again it gets the
// kept batches, after a "lost" event for those it missed.
func TestStalledClient(t *testing.T) {
	w := serve(t, 5)
	// The stalled client: asks for the stream and reads nothing for now.
	c, err := net.Dial("tcp", w.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	reader := subscribe(t, w, "")
	reader.next(t) // config
	deadline := time.Now().Add(5 * time.Second)
	for w.hub.clientCount() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled client is not registered")
		}
		time.Sleep(10 * time.Millisecond)
	}

	const batches = 2000
	lastBatch := fmt.Sprintf(`"id":%d,`, batches-1)
	// readLast reads events until the last batch's, and says whether a
	// "lost" event came before it.
	readLast := func(r *bufio.Reader, out chan<- string) {
		lost := ""
		for {
			ev, err := readEvent(r)
			if err != nil {
				out <- err.Error()
				return
			}
			if strings.HasPrefix(ev, "event: lost") {
				lost = ev
			}
			if strings.Contains(ev, lastBatch) {
				out <- "last batch; lost: " + strings.ReplaceAll(lost, "\n", " ")
				return
			}
		}
	}
	reading := make(chan string, 1)
	go readLast(reader.r, reading)

	// 2000 batches of 20 records of 4 KiB, 160 MiB: much more than the
	// socket buffers take.
	big := strings.Repeat("x", 4<<10)
	var recs [][]byte
	for i := range TableRows {
		recs = append(recs, word(fmt.Sprint(i, big), 1))
	}
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		for id := range uint64(batches) {
			write(t, w, id, recs...)
		}
		done <- time.Since(start)
	}()
	select {
	case d := <-done:
		t.Logf("%d batches in %v with a stalled client", batches, d)
	case <-time.After(60 * time.Second):
		t.Fatal("the sink waits for a client that does not read")
	}
	select {
	case got := <-reading:
		if !strings.HasPrefix(got, "last batch") {
			t.Fatalf("the reading client: %s", got)
		}
		t.Logf("the reading client: %s", got)
	case <-time.After(60 * time.Second):
		t.Fatal("the reading client did not get the last batch")
	}

	// The stalled client reads again: the rest of what it was sent, a
	// "lost" event and the kept batches.
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	stalled := make(chan string, 1)
	go readLast(bufio.NewReader(resp.Body), stalled)
	select {
	case got := <-stalled:
		if !strings.HasPrefix(got, "last batch; lost: event: lost data: ") {
			t.Fatalf("the stalled client: %s, want a lost event and the last batch", got)
		}
		t.Logf("the stalled client: %s", got)
	case <-time.After(60 * time.Second):
		t.Fatal("the stalled client did not get the last batch")
	}
}

// readEvent reads one event of an SSE stream.
func readEvent(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		if l == "\n" {
			if b.Len() > 0 {
				return b.String(), nil
			}
			continue
		}
		b.WriteString(l)
	}
}

// BenchmarkRecord: batches of 1000 records through the sink with a line
// and a bar chart, no browser.
func BenchmarkRecord(b *testing.B) {
	w := serve(b, 100, "line:x=batch,y=count", "bar:key=value,y=count,top=20")
	var recs [][]byte
	for i := range 1000 {
		recs = append(recs, word(fmt.Sprint("word", i%500), int64(i%97)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		write(b, w, uint64(i), recs...)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

// clientCount returns the number of clients of /events.
func (h *hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

package dash

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// line is a progress line of stage name: batch id, started at t0 + id
// seconds + offset, taking dur, with in records.
func line(name string, pid int, id uint64, offset, dur time.Duration, in uint64) []byte {
	start := t0.Add(time.Duration(id)*time.Second + offset)
	b, _ := json.Marshal(map[string]any{
		"source": name == "sbatch", "name": name, "pid": pid, "batchId": id, "batchTime": t0.Add(time.Duration(id+1) * time.Second).UnixMilli(),
		"timestamp": start.Format("2006-01-02T15:04:05.000Z"), "numInputRows": in, "numOutputRows": in,
		"numSkippedRows": id % 2, "durationMs": map[string]int64{"triggerExecution": dur.Milliseconds()},
	})
	return b
}

// TestRowsAndBottleneck: three stages, a batch a second each; the middle
// one takes 800ms a batch: it is the bottleneck, and the rates are the
// records over the span of the batches.
func TestRowsAndBottleneck(t *testing.T) {
	d := New("test")
	for id := range uint64(5) {
		// sbatch -i 1s: its batches last the whole second, waiting for
		// input; no bottleneck for that.
		d.Feed(line("sbatch", 1, id, 0, 1000*time.Millisecond, 100))
		d.Feed(line("smap", 2, id, 10*time.Millisecond, 800*time.Millisecond, 100))
		d.Feed(line("ssink", 3, id, 1300*time.Millisecond, 5*time.Millisecond, 100))
	}
	d.Feed([]byte(`{"name":"smap","pid":9,"timestamp":"2026-01-02T03:04:20.000Z","error":"batch 7: boom"}`))
	d.Feed([]byte("not json"))
	d.Feed([]byte(`{"no":"name"}`))
	s := d.Snapshot(true)
	var keys []string
	for _, r := range s.Rows {
		keys = append(keys, r.Key)
	}
	if got := strings.Join(keys, " "); got != "sbatch[1] smap[2] ssink[3] smap[9]" {
		t.Fatalf("rows %s", got)
	}
	if s.Bottleneck != "smap[2]" || !s.Rows[1].Bottleneck || s.Rows[0].Bottleneck {
		t.Errorf("bottleneck %q", s.Bottleneck)
	}
	m := s.Rows[1]
	if m.Batches != 5 || m.LastBatch != 4 || m.RecordsIn != 500 || m.Errors != 2 {
		t.Errorf("smap row %+v", m)
	}
	if m.InputRate != 100 || m.BatchMs != 800 || m.ProcRate != 125 || m.Busy != 0.8 {
		t.Errorf("smap rates: in %v/s, batch %vms, processing %v/s, busy %v", m.InputRate, m.BatchMs, m.ProcRate, m.Busy)
	}
	// ssink's last batch (id 4, time t0+5s) ended at t0+5.3s+5ms.
	if r := s.Rows[2]; r.DelayMs != 305 {
		t.Errorf("ssink delay %d", r.DelayMs)
	}
	if s.BadLines != 2 || len(s.Points["smap[2]"]) != 5 {
		t.Errorf("bad lines %d, points %d", s.BadLines, len(s.Points["smap[2]"]))
	}
	var b strings.Builder
	Table(&b, s, false, 0)
	if s.Rows[3].Failed != "batch 7: boom" || s.Rows[3].Batches != 0 || !strings.Contains(b.String(), "smap[9] failed: batch 7: boom") {
		t.Errorf("failed stage %+v, table:\n%s", s.Rows[3], b.String())
	}
	var narrow strings.Builder
	Table(&narrow, s, false, 20)
	for _, l := range strings.Split(narrow.String(), "\n") {
		if len(l) > 20 {
			t.Errorf("line longer than 20: %q", l)
		}
	}
	if !strings.Contains(b.String(), "*smap[2]") || !strings.Contains(b.String(), "bottleneck: smap[2], busy 80% of the time, 800ms a batch") {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestHistoryBounded: a long run keeps the last History batches.
func TestHistoryBounded(t *testing.T) {
	d := New("test")
	for id := range uint64(History + 10) {
		d.Feed(line("smap", 1, id, 0, time.Millisecond, 1))
	}
	p := d.Snapshot(true).Points["smap[1]"]
	if len(p) != History || p[0].BatchID != 10 {
		t.Fatalf("%d points from batch %d", len(p), p[0].BatchID)
	}
}

// TestServeAndFiles: lines come from connections (each stage one) and from
// a file followed as it grows.
func TestServeAndFiles(t *testing.T) {
	d := New("test")
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Serve(ctx, l)
	for i, name := range []string{"sbatch", "smap"} {
		c, err := net.Dial("unix", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "%s\n%s\n", line(name, i+1, 0, 0, 0, 3), line(name, i+1, 1, 0, 0, 4))
		c.Close()
	}
	path := filepath.Join(t.TempDir(), "p")
	os.WriteFile(path, append(line("ssink", 9, 0, 0, 0, 1), '\n'), 0o644)
	go d.ReadFile(ctx, path, true, 10*time.Millisecond)
	waitRows(t, d, "sbatch[1]:2 smap[2]:2 ssink[9]:1")
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	b := line("ssink", 9, 1, 0, 0, 1)
	f.Write(b[:10]) // half a line: not taken until its end
	time.Sleep(30 * time.Millisecond)
	f.Write(append(b[10:], '\n'))
	f.Close()
	waitRows(t, d, "sbatch[1]:2 smap[2]:2 ssink[9]:2")
	if s := d.Snapshot(false); s.BadLines != 0 {
		t.Errorf("%d bad lines", s.BadLines)
	}
}

func waitRows(t *testing.T, d *Dash, want string) {
	t.Helper()
	var got string
	for range 200 {
		var rs []string
		for _, r := range d.Snapshot(false).Rows {
			rs = append(rs, fmt.Sprintf("%s:%d", r.Key, r.Batches))
		}
		if got = strings.Join(rs, " "); got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("rows %s, want %s", got, want)
}

func TestHandler(t *testing.T) {
	d := New("test")
	d.Feed(line("smap", 1, 0, 0, time.Millisecond, 7))
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if page := get("/"); !strings.Contains(page, "<title>sdash</title>") {
		t.Errorf("page: %.200s", page)
	}
	var s Snapshot
	if err := json.Unmarshal([]byte(get("/api/snapshot")), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Rows) != 1 || s.Rows[0].RecordsIn != 7 || len(s.Points["smap[1]"]) != 1 {
		t.Errorf("snapshot %+v", s)
	}
}

// FuzzFeed: no line, however broken, stops the collector or breaks a
// snapshot.
func FuzzFeed(f *testing.F) {
	f.Add(line("smap", 1, 0, 0, time.Millisecond, 3))
	f.Add([]byte(`{"name":"smap","pid":9,"error":"boom"}`))
	f.Add([]byte(`{"name":"x","durationMs":{"triggerExecution":-5},"stateOperators":[{}]}`))
	f.Add([]byte("not json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New("fuzz")
		d.Feed(b)
		d.Feed(b)
		s := d.Snapshot(true)
		var out strings.Builder
		Table(&out, s, true, 40)
		if _, err := json.Marshal(s); err != nil {
			t.Fatal(err)
		}
	})
}

// TestBottleneckOneBatch: with one batch each (sbatch --once), every stage
// was busy all along: the slowest is the bottleneck.
func TestBottleneckOneBatch(t *testing.T) {
	d := New("test")
	d.Feed(line("sbatch", 1, 0, 0, 900*time.Millisecond, 1000))
	d.Feed(line("smap", 2, 0, 0, 100*time.Millisecond, 1000))
	d.Feed(line("sreduce", 3, 0, 0, 500*time.Millisecond, 1000))
	d.Feed(line("ssink", 4, 0, 0, 200*time.Millisecond, 10))
	if s := d.Snapshot(false); s.Bottleneck != "sreduce[3]" {
		t.Errorf("bottleneck %q, want sreduce[3]", s.Bottleneck)
	}
}

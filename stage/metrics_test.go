package stage

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitLines waits until the file at path holds n lines, and returns them.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d progress lines of %d:\n%s", len(lines), n, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsEqualProgress: a scrape of --metrics, parsed with
// Prometheus's own text parser, holds the totals of the --progress lines.
func TestMetricsEqualProgress(t *testing.T) {
	addr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "p.jsonl")
	s := stream(t, 3, 0, 5, 40)
	r, w := osPipe(t)
	done := make(chan int)
	var errb bytes.Buffer
	go func() {
		done <- copyStage().Run([]string{"copy", "--metrics", addr, "--progress", path}, r, io.Discard, &errb)
	}()
	// All but the end of the stream: the stage is still running when
	// scraped.
	w.Write(s[:len(s)-framing.FrameHeaderLen])
	lines := waitLines(t, path, 4)

	var in, out float64
	for _, l := range lines {
		var p struct{ NumInputRows, NumOutputRows float64 }
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatal(err)
		}
		in, out = in+p.NumInputRows, out+p.NumOutputRows
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	counter := func(name string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil || len(f.Metric) != 1 {
			t.Fatalf("no single %s in the scrape", name)
		}
		m := f.Metric[0]
		if lp := m.GetLabel(); len(lp) != 1 || lp[0].GetName() != "stage" || lp[0].GetValue() != "copy" {
			t.Errorf("%s labels %v, want stage=copy", name, lp)
		}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			return float64(m.GetHistogram().GetSampleCount())
		}
		return m.GetCounter().GetValue()
	}
	for _, c := range []struct {
		name string
		want float64
	}{
		{"dstream_records_in_total", in},
		{"dstream_records_out_total", out},
		{"dstream_batches_total", float64(len(lines))},
		{"dstream_batch_duration_seconds", float64(len(lines))},
		{"dstream_errors_total", 0},
	} {
		if got := counter(c.name); got != c.want {
			t.Errorf("%s = %v, want %v (the --progress total)", c.name, got, c.want)
		}
	}
	if in != 48 {
		t.Errorf("progress counts %v records in, want 48", in)
	}
	w.Write(s[len(s)-framing.FrameHeaderLen:])
	w.Close()
	if code := <-done; code != 0 {
		t.Fatal(errb.String())
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("the metrics endpoint outlives the stage")
	}
}

func TestMetricsBadAddress(t *testing.T) {
	code, _, stderr := runCmd(copyStage(), bytes.NewReader(stream(t, 1)), "--metrics", "nope")
	if code != ExitUsage || !strings.Contains(stderr, "--metrics") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// TestProgressToCollector: --progress unix:///PATH sends the lines, each
// with the stage's name and pid, to a listening collector.
func TestProgressToCollector(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []string)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(got)
			return
		}
		var lines []string
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		got <- lines
	}()
	code, _, stderr := runCmd(copyStage(), bytes.NewReader(stream(t, 2, 0, 1)), "--progress", "unix://"+sock)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var lines []string
	select {
	case lines = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the stage's end did not close the connection")
	}
	if len(lines) != 3 {
		t.Fatalf("collector got %d lines: %q", len(lines), lines)
	}
	for i, l := range lines {
		var p struct {
			Name    string
			Pid     int
			BatchID int
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatal(err)
		}
		if p.Name != "copy" || p.Pid != os.Getpid() || p.BatchID != i {
			t.Errorf("line %d: %s", i, l)
		}
	}
}

// TestProgressCollectorAway: a collector that is not there, or that stops
// reading, neither fails nor slows the stage; one note says so.
func TestProgressCollectorAway(t *testing.T) {
	counts := make([]int, 3000) // more lines than a socket buffers
	in := stream(t, counts...)
	t.Run("down", func(t *testing.T) {
		start := time.Now()
		code, out, stderr := runCmd(copyStage(), bytes.NewReader(in), "--progress", "tcp://"+freeAddr(t))
		if code != 0 || out != string(in) {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if strings.Count(stderr, "note:") != 1 || !strings.Contains(stderr, "copy: note: --progress tcp://") {
			t.Errorf("stderr: %s", stderr)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("stops reading", func(t *testing.T) {
		// A unix socket buffers less than loopback TCP: the lines fill
		// it, then the queue, and are dropped.
		l, err := net.Listen("unix", filepath.Join(t.TempDir(), "p.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err == nil {
				defer c.Close()
				time.Sleep(10 * time.Second) // never reads
			}
		}()
		start := time.Now()
		code, out, stderr := runCmd(copyStage(), bytes.NewReader(in), "--progress", "unix://"+l.Addr().String())
		if code != 0 || out != string(in) {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("port taken", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		code, _, stderr := runCmd(copyStage(), bytes.NewReader(in), "--metrics", l.Addr().String())
		if code != ExitFailure || !strings.Contains(stderr, "copy: hint: another process listens on") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
	t.Run("listening endpoint", func(t *testing.T) {
		code, _, stderr := runCmd(copyStage(), bytes.NewReader(in), "--progress", "tcp-listen://127.0.0.1:0")
		if code != ExitUsage {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
}

// BenchmarkMetricsReport: what --metrics adds to each batch.
func BenchmarkMetricsReport(b *testing.B) {
	m := NewMetrics("bench")
	wm := int64(1000)
	s := &Stats{Batch: Batch{ID: 1, Time: 1000}, Start: time.Now(), InputRows: 1000, OutputRows: 900,
		State: &StateStats{NumRowsTotal: 10}, Watermark: &wm}
	b.ReportAllocs()
	for b.Loop() {
		m.Report("bench", s)
	}
}

// TestProgressError: a failing stage's last progress line says why.
func TestProgressError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	code, _, _ := runCmd(copyStage(), bytes.NewReader(stream(t, 1)), "--progress", path, "--fail")
	if code != ExitFailure {
		t.Fatalf("exit %d", code)
	}
	lines := waitLines(t, path, 1)
	var l struct {
		Name, Error string
		Pid         int
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &l); err != nil || l.Name != "copy" || l.Error != "asked to fail" || l.Pid != os.Getpid() {
		t.Errorf("last line %s (%v)", lines[len(lines)-1], err)
	}
}

// TestProgressCollectorComesBack: a collector that starts after the stage
// (or restarts) gets the lines from then on: the stage dials again, with
// a backoff, and notes the first failure once.
func TestProgressCollectorComesBack(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p.sock")
	r, w := osPipe(t)
	done := make(chan int)
	var errb bytes.Buffer
	go func() {
		done <- copyStage().Run([]string{"copy", "--progress", "unix://" + sock}, r, io.Discard, &errb)
	}()
	// 400 empty batches, without the end of the stream, sent in 400 parts
	// (which cut the frames anywhere: the stage reads on where it was).
	s := stream(t, make([]int, 400)...)
	end := s[len(s)-framing.FrameHeaderLen:]
	s = s[:len(s)-framing.FrameHeaderLen]
	per := len(s) / 400
	send := func(from, to int) {
		w.Write(s[from*per : to*per])
	}
	send(0, 10) // nobody listens yet
	time.Sleep(50 * time.Millisecond)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1000)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			got <- sc.Text()
		}
	}()
	deadline := time.After(10 * time.Second)
	for i := 10; ; i++ {
		if i < 400 {
			send(i, i+1)
		}
		select {
		case l := <-got:
			if !strings.Contains(l, `"name":"copy"`) {
				t.Errorf("line %s", l)
			}
			w.Write(s[min(i+1, 400)*per:])
			w.Write(end)
			w.Close()
			if code := <-done; code != 0 {
				t.Fatal(errb.String())
			}
			if n := strings.Count(errb.String(), "note:"); n != 1 {
				t.Errorf("%d notes: %s", n, errb.String())
			}
			return
		case <-deadline:
			t.Fatal("no line reached the collector that came late")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

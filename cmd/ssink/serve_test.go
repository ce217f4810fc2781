package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/browsertest"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeBrowser runs ssink --serve and drives headless chromium against
// its page: the page loads, shows the first batch, and shows a later
// batch's numbers, in the table and the charts, without a reload; at the
// end of the input it says so.
func TestServeBrowser(t *testing.T) {
	ctx := browsertest.Browser(t, 1200, 800)

	// ssink in process, its input a pipe the test writes batches into.
	pr, pw := io.Pipe()
	defer pr.Close()
	stderr := &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- command.Run([]string{"ssink", "--serve", "127.0.0.1:0",
			"--chart", "line:x=batch,y=count,title=words per batch",
			"--chart", "bar:key=value,y=count,top=5,title=top words"}, pr, io.Discard, stderr)
	}()
	in := framing.NewWriter(pw)
	write := func(id uint64, recs ...string) {
		t.Helper()
		if err := in.BeginBatch(id, t0+int64(id)*1000); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := in.WriteRecord(msgpackOf(t, r)); err != nil {
				t.Fatal(err)
			}
		}
		if err := in.EndBatch(); err != nil {
			t.Fatal(err)
		}
		if err := in.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	write(0, `{"value":"spark","count":3}`, `{"value":"stream","count":5}`, `{"value":"shell","count":1}`)
	serving := regexp.MustCompile(`serving the stream at (http://\S+)`)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(10 * time.Millisecond) {
		if m := serving.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("ssink --serve does not say where it serves: stderr %q", stderr)
		}
	}

	until := browsertest.Until
	text := func(css string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			t.Fatalf("the text of %s: %v", css, err)
		}
		return s
	}
	// The first call starts the browser, whose life is that call's
	// context's: the polls' timeouts bound the waits.
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		until(`document.getElementById("batch-title").textContent.includes("Batch: 0 (2023-11-14T22:13:20.000Z)")`),
		// A mark that a reload would wipe out.
		chromedp.Evaluate[chromedp.Void](`window.loadedOnce = true`),
	)
	if err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
	cells := text("#table tbody")
	for _, want := range []string{"spark", "stream", "shell"} {
		if !strings.Contains(cells, want) {
			t.Errorf("first batch's table %q: no %q", cells, want)
		}
	}

	write(1, `{"value":"stream","count":4242}`, `{"value":"shell","count":17}`)
	if err := chromedp.Do(ctx, until(`document.getElementById("batch-title").textContent.includes("Batch: 1 (")`)); err != nil {
		t.Fatalf("waiting for the second batch: %v", err)
	}
	cells, header := text("#table tbody"), text("#table thead")
	lineData, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`Chart.getChart(document.querySelectorAll("#charts canvas")[0]).data.datasets[0].data`))
	if err != nil {
		t.Fatal(err)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Chart.getChart(document.querySelectorAll("#charts canvas")[1]).data.labels`))
	if err != nil {
		t.Fatal(err)
	}
	if loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.loadedOnce === true`)); err != nil || !loaded {
		t.Errorf("the page was loaded again (%v) for the second batch", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cells, "4242") || !strings.Contains(cells, "17") || strings.Contains(cells, "spark") {
		t.Errorf("second batch's table %q: want 4242 and 17, not the first batch's spark", cells)
	}
	if !strings.Contains(header, "value") || !strings.Contains(header, "count") {
		t.Errorf("table header %q: want value and count", header)
	}
	if fmt.Sprint(lineData) != "[9 4259]" {
		t.Errorf("line chart %v, want [9 4259]", lineData)
	}
	if strings.Join(bars, " ") != "stream shell" {
		t.Errorf("bar chart labels %q, want stream shell", bars)
	}
	t.Logf("screenshot: %s", browsertest.Screenshot(t, "ssink-serve.png", png))

	// The end of the input: ssink exits, the page says so.
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("ssink --serve: exit %d, stderr %q", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ssink --serve did not exit at the end of its input")
	}
	if err := chromedp.Do(ctx, until(`document.getElementById("status").textContent === "input ended"`)); err != nil {
		t.Errorf("the page at the end of the input: %v", err)
	}
}

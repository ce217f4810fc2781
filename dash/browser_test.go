package dash

import (
	"github.com/dstream/dstream/internal/browsertest"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowser drives headless chromium against sdash's page: it loads,
// shows a row per stage, and shows later batches without a reload. The
// screenshot goes to $DSTREAM_SCREENSHOTS (kept as a CI artifact), else to
// the test's temporary directory.
func TestBrowser(t *testing.T) {
	ctx := browsertest.Browser(t, 1400, 800)
	d := New("test")
	feed := func(from, to uint64) {
		for id := from; id < to; id++ {
			d.Feed(line("sbatch", 1, id, 0, time.Second, 100))
			d.Feed(line("smap", 2, id, 10*time.Millisecond, 800*time.Millisecond, 100))
			d.Feed(line("ssink", 3, id, 1300*time.Millisecond, 5*time.Millisecond, 100))
		}
	}
	feed(0, 2)
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()

	until := browsertest.Until
	row := func(key string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("stage-`+key+`").textContent`))
		if err != nil {
			t.Fatalf("the row of %s: %v", key, err)
		}
		return s
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		until(`document.querySelectorAll("#stages tbody tr").length === 3`),
		chromedp.Evaluate[chromedp.Void](`window.loadedOnce = true`), // a reload would wipe it out
	); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	if r := row("smap[2]"); !strings.HasPrefix(r, "smap[2]1") || !strings.Contains(r, "800 ms") {
		t.Errorf("smap's row after batch 1: %q", r)
	}

	feed(2, 6)
	if err := chromedp.Do(ctx, until(`document.getElementById("stage-ssink[3]").textContent.startsWith("ssink[3]5")`)); err != nil {
		t.Fatalf("waiting for batch 5: %v (ssink's row: %q)", err, row("ssink[3]"))
	}
	if r := row("smap[2]"); !strings.HasPrefix(r, "smap[2]5") || !strings.Contains(r, "600") {
		t.Errorf("smap's row after batch 5: %q (want batch 5, 600 records in)", r)
	}
	bottleneck, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("tr.bottleneck").id`))
	if err != nil || bottleneck != "stage-smap[2]" {
		t.Errorf("bottleneck row %q (%v), want smap's", bottleneck, err)
	}
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#rate polyline").length`))
	if err != nil || lines != 3 {
		t.Errorf("%d lines in the rate chart (%v), want 3", lines, err)
	}
	if loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.loadedOnce === true`)); err != nil || !loaded {
		t.Errorf("the page was loaded again (%v)", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", browsertest.Screenshot(t, "sdash-serve.png", png))
}

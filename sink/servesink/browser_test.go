package servesink

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/dstream/dstream/internal/servertest"
)

// chromium returns the path of Debian's chromium, or skips the test (fails
// it in CI) without one.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		servertest.Unavailable(t, "no chromium for the browser test: install it with scripts/install.sh (or apt-get install chromium)")
	}
	return path
}

// screenshots is where the browser tests write their screenshots:
// $DSTREAM_SCREENSHOTS (kept as CI artifacts), or the test's temporary
// directory.
func screenshots(t *testing.T) string {
	if dir := os.Getenv("DSTREAM_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// TestBrowser drives headless chromium against the page: it loads, shows
// the first batch, and shows a later batch's numbers, in the table and the
// charts, without a reload.
func TestBrowser(t *testing.T) {
	path := chromium(t)
	w := serve(t, 100, "line:x=batch,y=count,title=words per batch", "bar:key=value,y=count,top=5,title=top words")
	write(t, w, 0, word("spark", 3), word("stream", 5), word("shell", 1))

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 800),
	)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	// until waits for a JavaScript condition to hold on the page.
	until := func(cond string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(20*time.Second))
	}
	text := func(css string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			t.Fatalf("the text of %s: %v", css, err)
		}
		return s
	}
	// The first call starts the browser, and its context lives as long as
	// the browser: the test's deadline bounds it.
	url := "http://" + w.Addr().String() + "/"
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

	write(t, w, 1, word("stream", 4242), word("shell", 17))
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
	if len(lineData) != 2 || lineData[0] != 9 || lineData[1] != 4259 {
		t.Errorf("line chart %v, want [9 4259]", lineData)
	}
	if strings.Join(bars, " ") != "stream shell" {
		t.Errorf("bar chart labels %q, want stream shell", bars)
	}
	file := filepath.Join(screenshots(t), "ssink-serve.png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
}

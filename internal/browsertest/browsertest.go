// Package browsertest gives the tests of dstream's web pages (ssink
// --serve, sdash --serve) a headless Chromium, Debian's, that
// scripts/install.sh installs, driven with chromedp. Without Chromium a
// test is skipped, but in CI (CI=true), where it fails.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/dstream/dstream/internal/servertest"
)

// Browser starts a headless Chromium with a window of width x height and
// a fresh profile, closed at the end of the test, and returns the context
// to run its actions in. The flags keep it off the network (this machine
// has none besides loopback) and out of its sandbox (tests run as root).
func Browser(t testing.TB, width, height int) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		servertest.Unavailable(t, "no chromium for the browser test: install it with scripts/install.sh (or apt-get install chromium)")
	}
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
		chromedp.WindowSize(width, height),
	)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	return ctx
}

// Until waits (20 s at most) for a JavaScript condition to hold on the page.
func Until(cond string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(20*time.Second))
}

// Screenshot writes png as NAME into $DSTREAM_SCREENSHOTS (scripts/test.sh
// sets it; CI keeps them), or into the test's temporary directory, and
// returns the path.
func Screenshot(t testing.TB, name string, png []byte) string {
	t.Helper()
	dir := os.Getenv("DSTREAM_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// liveWatcher is the watcher of dir, as sbatch --watch DIR runs it (not
// --once), with Glob *.log; notes collects what it tells stderr.
func liveWatcher(t *testing.T, dir string, notes *strings.Builder) *watcher {
	t.Helper()
	tr, err := openWatchTracker(Options{Inputs: []string{"watch://" + dir}, Format: "lines", Interval: 100, Glob: "*.log"})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	w := tr.(*watchTracker).More(stop, notes).(*watcher)
	t.Cleanup(func() {
		close(stop)
		w.Close()
	})
	return w
}

// moveIn makes a file the way a writer should: under a name starting with
// a dot, renamed when complete.
func moveIn(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// nextSoon is next, failing after 10 s without a file.
func nextSoon(t *testing.T, w *watcher, why string) string {
	t.Helper()
	return await(t, startNext(w), why)
}

// startNext calls w.Next in a goroutine, which sends the base name of the
// file it returns (or what else it returns).
func startNext(w *watcher) <-chan string {
	got := make(chan string, 1)
	go func() {
		in, ok, err := w.Next()
		switch {
		case err != nil:
			got <- "error: " + err.Error()
		case !ok:
			got <- "(the end)"
		default:
			in.R.Close()
			got <- filepath.Base(in.Name)
		}
	}()
	return got
}

// await is the file of startNext, failing after 10 s without one.
func await(t *testing.T, got <-chan string, why string) string {
	t.Helper()
	select {
	case name := <-got:
		return name
	case <-time.After(10 * time.Second):
		t.Fatalf("no file in 10 s: %s", why)
		return ""
	}
}

// TestWatchEvents: a file renamed into a watched directory is found by
// the watch on it, not only by the listings: with the listings an hour
// apart, it still comes. Names that are skipped (a leading dot) or do not
// match --glob are not taken, as by a listing.
func TestWatchEvents(t *testing.T) {
	dir := watchDir(t, "a.log", "1\n")
	var notes strings.Builder
	w := liveWatcher(t, dir, &notes)
	if w.events == nil {
		t.Skipf("no watch on the directory here: %s", notes.String())
	}
	w.every = time.Hour
	if name := nextSoon(t, w, "the listing at the start finds a.log"); name != "a.log" {
		t.Fatalf("got %s, want a.log, there at the start", name)
	}
	moveIn(t, dir, "b.txt", "not *.log\n")
	moveIn(t, dir, "c.log", "2\n")
	if name := nextSoon(t, w, "the watch did not tell of c.log, and the next listing is an hour away"); name != "c.log" {
		t.Fatalf("got %s, want c.log (b.txt does not match --glob)", name)
	}
	if notes.Len() > 0 {
		t.Errorf("notes: %s", notes.String())
	}
}

// TestWatchFallback: when the watch's queue overflowed, the directory is
// listed at once; when the watch fails, it is listed every watchPoll, with
// a note.
func TestWatchFallback(t *testing.T) {
	dir := watchDir(t, "a.log", "1\n")
	var notes strings.Builder
	w := liveWatcher(t, dir, &notes)
	// A watch that tells of nothing but its errors.
	w.closeWatch()
	errs := make(chan error, 1)
	w.events, w.errs, w.every = make(chan fsnotify.Event), errs, time.Hour
	if name := nextSoon(t, w, "the listing at the start finds a.log"); name != "a.log" {
		t.Fatalf("got %s, want a.log", name)
	}

	moveIn(t, dir, "b.log", "2\n")
	errs <- fsnotify.ErrEventOverflow
	if name := nextSoon(t, w, "an overflow of the watch's queue is not followed by a listing"); name != "b.log" {
		t.Fatalf("got %s, want b.log", name)
	}

	errs <- errors.New("boom")
	got := startNext(w)
	// So that a listing finds nothing first (the test shows less, not
	// something else, if it is too short).
	time.Sleep(3 * watchPoll / 2)
	moveIn(t, dir, "c.log", "3\n")
	if name := await(t, got, "a failed watch is not followed by listings every watchPoll"); name != "c.log" {
		t.Fatalf("got %s, want c.log", name)
	}
	if want := "sbatch: note: --watch " + dir + ": cannot watch for new files (boom): listing the directory every 100ms\n"; notes.String() != want {
		t.Errorf("notes %q, want %q", notes.String(), want)
	}
}

package source

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dstream/dstream/stage"
)

// A watched directory: watch://DIR, which sbatch --watch DIR names. It is
// always read through its tracker (watchtrack.go), with or without a
// checkpoint: which files a batch took decides what the next one may take
// (--max-files), and, with a checkpoint, what a restart replays and skips.
func init() {
	Register(&Kind{
		Scheme:  "watch",
		Tracked: true,
		NoFollow: func(string) error {
			return stage.UsageError("--watch reads each file once, whole: it does not go with --follow")
		},
		Track: func(op Opening) (Tracker, error) { return openWatchTracker(*op.Options) },
	})
}

// watchPoll is how often a watched directory is listed when it has no new
// file. Why polling and not fsnotify: a listing every 100 ms costs little,
// works on every file system (inotify misses files written over NFS), needs
// no limit raised for large directories, and the listing is needed anyway
// at start-up and as the fallback when inotify's queue overflows; with
// events on top, a file would be found by two paths that must agree on its
// order, which the checkpoint records.
const watchPoll = 100 * time.Millisecond

// watchFile is a file of the directory not read yet.
type watchFile struct {
	path string // as found: the directory as given, joined with the name
	abs  string
	mod  time.Time
}

// olderFirst orders files by modification time, then by name: the order in
// which they are read (reversed with --latest-first). Both are recorded by
// the checkpoint, which replays a batch's files in the order it lists them.
func olderFirst(a, b watchFile) int {
	if c := a.mod.Compare(b.mod); c != 0 {
		return c
	}
	return strings.Compare(a.abs, b.abs)
}

// watcher yields the new files of a directory as inputs (Spark's file
// source, textFileStream): those there at the start, oldest first (newest
// first with latest), then each new one as it appears, until the stage must
// stop (or, with once, when none is left). A file is read once, whole, when
// it is seen: writers move complete files in (rename), as Spark asks. Names
// starting with "." or "_" are skipped, as Spark skips them (temporary
// files, _SUCCESS), and so are names that glob does not match. A file that
// the tracker has read (in this run or, by its log, in an earlier one) is
// never read again.
type watcher struct {
	t       *watchTracker
	dir     string
	glob    string
	latest  bool
	once    bool
	stop    <-chan struct{}
	pending []watchFile
}

// Next returns the next file to read, or false when there is none to wait
// for. With --max-files it waits until the batch in hand may take one more
// file.
func (w *watcher) Next() (Input, bool, error) {
	for {
		if len(w.pending) > 0 {
			if !w.t.mayTake() {
				select {
				case <-w.stop:
					return Input{}, false, nil
				case <-w.t.cut:
				}
				if w.latest {
					// Files that came meanwhile go first.
					if err := w.scan(); err != nil {
						return Input{}, false, err
					}
				}
				continue
			}
			f := w.pending[0]
			w.pending = w.pending[1:]
			fh, err := os.Open(f.path)
			if os.IsNotExist(err) {
				continue // gone before its turn
			}
			if err != nil {
				return Input{}, false, fmt.Errorf("cannot read input: %w", err)
			}
			return Input{Name: f.path, R: fh, Stream: w.t.add(f.abs, f.path), At: fh}, true, nil
		}
		if err := w.scan(); err != nil {
			return Input{}, false, err
		}
		if len(w.pending) > 0 {
			continue
		}
		if w.once {
			return Input{}, false, nil
		}
		select {
		case <-w.stop:
			return Input{}, false, nil
		case <-time.After(watchPoll):
		}
	}
}

// Close does nothing: a file is open only while it is read.
func (w *watcher) Close() error { return nil }

// scan adds the new files of the directory to pending, in their order.
func (w *watcher) scan() error {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("--watch: %w", err)
	}
	queued := make(map[string]bool, len(w.pending))
	for _, f := range w.pending {
		queued[f.abs] = true
	}
	var fresh []watchFile
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || !e.Type().IsRegular() {
			continue
		}
		if w.glob != "" {
			if ok, _ := filepath.Match(w.glob, n); !ok {
				continue
			}
		}
		path := filepath.Join(w.dir, n)
		abs := filepath.Join(w.t.abs, n)
		if queued[abs] || w.t.seen(abs) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone since the listing
		}
		fresh = append(fresh, watchFile{path, abs, info.ModTime()})
	}
	if len(fresh) == 0 {
		return nil
	}
	w.pending = append(w.pending, fresh...)
	if w.latest {
		// Newest first, among all those not taken yet (Spark's
		// latestFirst): a file that came late goes before older ones.
		slices.SortFunc(w.pending, func(a, b watchFile) int { return olderFirst(b, a) })
	} else {
		slices.SortFunc(fresh, olderFirst)
		copy(w.pending[len(w.pending)-len(fresh):], fresh)
	}
	return nil
}

package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

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

// How a watched directory finds its new files. A watch on it (fsnotify:
// inotify on Linux) tells of each name that appears, created or renamed
// in, at once; the directory is listed at the start, and then every
// watchFallback besides, for the files a watch does not see (written over
// NFS, which inotify misses; lost when the kernel's queue overflows, which
// is also followed by a listing at once). Where no watch can be set up,
// or one fails (no inotify instance left, the directory removed), it is
// listed every watchPoll. Both paths find a file by its name, and a name
// found by both is taken once: which files a batch read, and in which
// order, is what the checkpoint records, however they were found.
const (
	watchPoll     = 100 * time.Millisecond
	watchFallback = time.Second
)

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
	notes   io.Writer
	pending []watchFile

	// The watch on the directory: its events and errors, nil without one.
	fsw    io.Closer
	events <-chan fsnotify.Event
	errs   <-chan error
	every  time.Duration // how often the directory is listed
	due    time.Time     // when it is listed next: at once at the start
}

// newWatcher makes the watcher of t's directory and, unless once, its
// watch, set up before the first listing so that no file falls between
// the two.
func newWatcher(t *watchTracker, stop <-chan struct{}, notes io.Writer) *watcher {
	w := &watcher{t: t, dir: t.watched, glob: t.o.Glob, latest: t.o.LatestFirst, once: t.o.Once,
		stop: stop, notes: notes, every: watchPoll}
	if w.once {
		return w
	}
	fsw, err := fsnotify.NewWatcher()
	if err == nil {
		if err = fsw.Add(w.dir); err != nil {
			fsw.Close()
		}
	}
	if err != nil {
		w.unwatch(err)
		return w
	}
	w.fsw, w.events, w.errs, w.every = fsw, fsw.Events, fsw.Errors, watchFallback
	return w
}

// unwatch drops the watch, which failed with err (or could not be set up),
// and lists the directory every watchPoll from now on, with a note.
func (w *watcher) unwatch(err error) {
	w.closeWatch()
	w.every, w.due = watchPoll, time.Time{}
	fmt.Fprintf(w.notes, "sbatch: note: --watch %s: cannot watch for new files (%v): listing the directory every %v\n", w.dir, err, watchPoll)
}

func (w *watcher) closeWatch() {
	if w.fsw != nil {
		w.fsw.Close()
	}
	w.fsw, w.events, w.errs = nil, nil, nil
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
					return w.end(nil)
				case <-w.t.cut:
				}
				if w.latest {
					// Files that came meanwhile go first.
					if err := w.scan(); err != nil {
						return w.end(err)
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
				return w.end(fmt.Errorf("cannot read input: %w", err))
			}
			return Input{Name: f.path, R: fh, Stream: w.t.add(f.abs, f.path), At: fh}, true, nil
		}
		// Without a watch, as each time it is due, a listing.
		if w.events == nil || !time.Now().Before(w.due) {
			if err := w.scan(); err != nil {
				return w.end(err)
			}
			w.due = time.Now().Add(w.every)
			if len(w.pending) > 0 {
				continue
			}
		}
		if w.once {
			return w.end(nil)
		}
		if stop := w.wait(); stop {
			return w.end(nil)
		}
	}
}

// wait waits for a new name in the directory, or for its next listing; it
// reports true when the stage must stop.
func (w *watcher) wait() (stop bool) {
	timer := time.NewTimer(time.Until(w.due))
	defer timer.Stop()
	select {
	case <-w.stop:
		return true
	case <-timer.C:
	case ev, ok := <-w.events:
		if !ok {
			w.unwatch(errors.New("the watch was closed"))
			return false
		}
		w.noticed(ev)
	case err, ok := <-w.errs:
		switch {
		case !ok:
			w.unwatch(errors.New("the watch was closed"))
		case errors.Is(err, fsnotify.ErrEventOverflow):
			w.due = time.Time{} // events were lost: a listing finds their files
		default:
			w.unwatch(err)
		}
	}
	return false
}

// noticed takes event ev and those queued behind it: the new names among
// them become pending files, in their order, as a listing that found them
// would add them.
func (w *watcher) noticed(ev fsnotify.Event) {
	dir := filepath.Clean(w.dir)
	var names []string
	for {
		switch {
		case ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename):
			// The directory itself went: so did its watch. A listing
			// tells what became of it.
			w.unwatch(errors.New("the directory was removed or renamed"))
			return
		case ev.Has(fsnotify.Create) && filepath.Dir(ev.Name) == dir:
			names = append(names, filepath.Base(ev.Name))
		}
		var ok bool
		select {
		case ev, ok = <-w.events:
		default:
		}
		if !ok {
			break
		}
	}
	queued := w.queued()
	var fresh []watchFile
	for _, n := range names {
		if !w.wanted(n, queued) {
			continue
		}
		info, err := os.Lstat(filepath.Join(w.dir, n))
		if err != nil || !info.Mode().IsRegular() {
			continue // gone since, or not a file
		}
		queued[filepath.Join(w.t.abs, n)] = true
		fresh = append(fresh, w.file(n, info))
	}
	w.admit(fresh)
}

// end ends the watcher (its watch closed), returning err.
func (w *watcher) end(err error) (Input, bool, error) {
	w.closeWatch()
	return Input{}, false, err
}

// Close closes the watch on the directory (a file is open only while it
// is read).
func (w *watcher) Close() error {
	w.closeWatch()
	return nil
}

// scan adds the new files of the directory to pending, in their order.
func (w *watcher) scan() error {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("--watch: %w", err)
	}
	queued := w.queued()
	var fresh []watchFile
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !w.wanted(n, queued) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone since the listing
		}
		fresh = append(fresh, w.file(n, info))
	}
	w.admit(fresh)
	return nil
}

// queued is the set of the files pending, by absolute path.
func (w *watcher) queued() map[string]bool {
	queued := make(map[string]bool, len(w.pending))
	for _, f := range w.pending {
		queued[f.abs] = true
	}
	return queued
}

// wanted tells whether the file of the directory named n is one to read:
// its name is not skipped, it matches --glob, and it is neither pending
// nor read.
func (w *watcher) wanted(n string, queued map[string]bool) bool {
	if strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") {
		return false
	}
	if w.glob != "" {
		if ok, _ := filepath.Match(w.glob, n); !ok {
			return false
		}
	}
	abs := filepath.Join(w.t.abs, n)
	return !queued[abs] && !w.t.seen(abs)
}

func (w *watcher) file(n string, info fs.FileInfo) watchFile {
	return watchFile{filepath.Join(w.dir, n), filepath.Join(w.t.abs, n), info.ModTime()}
}

// admit adds the new files fresh to pending, in their order.
func (w *watcher) admit(fresh []watchFile) {
	if len(fresh) == 0 {
		return
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
}

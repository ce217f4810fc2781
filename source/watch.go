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

// A watched directory: watch://DIR, which sbatch --watch DIR names.
func init() {
	Register(&Kind{
		Scheme: "watch",
		Open: func(spec string, op Opening) (Source, error) {
			_, dir, _ := strings.Cut(spec, "://")
			return newWatcher(dir, op.Options.Once, op.Env.Stop.RequestedC())
		},
		NoFollow: func(string) error {
			return stage.UsageError("--watch reads each file once, whole: it does not go with --follow")
		},
		NoReplay: func(string) error {
			return stage.Hint(stage.UsageError("--watch does not go with --checkpoint yet"),
				"a checkpoint replays named files: give them as arguments (sbatch --checkpoint DIR FILE...), or leave --checkpoint out")
		},
	})
}

// watchPoll is how often a watched directory is listed when it has no new
// file. Why polling and not fsnotify: a listing every 100 ms costs little,
// works on every file system (inotify misses files written over NFS), and
// needs no limit raised for large directories.
const watchPoll = 100 * time.Millisecond

// watcher yields the files of a directory as sources (Spark's file source,
// textFileStream): those there at the start, oldest first, then each new
// one as it appears, until the stage must stop (or, with once, when none is
// left). A file is read once, whole, when it is seen: writers move complete
// files in (rename), as Spark asks. Names starting with "." or "_" are
// skipped, as Spark skips them (temporary files, _SUCCESS).
type watcher struct {
	dir     string
	once    bool
	stop    <-chan struct{}
	seen    map[string]bool
	pending []string
}

func newWatcher(dir string, once bool, stop <-chan struct{}) (*watcher, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("--watch: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("--watch %s: not a directory", dir)
	}
	return &watcher{dir: dir, once: once, stop: stop, seen: map[string]bool{}}, nil
}

// Next returns the next file to read, or false when there is none to wait
// for.
func (w *watcher) Next() (Input, bool, error) {
	for {
		if len(w.pending) > 0 {
			name := w.pending[0]
			w.pending = w.pending[1:]
			f, err := os.Open(name)
			if os.IsNotExist(err) {
				continue // gone before its turn
			}
			if err != nil {
				return Input{}, false, fmt.Errorf("cannot read input: %w", err)
			}
			return Input{Name: name, R: f}, true, nil
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

// scan adds the new files of the directory to pending, oldest first.
func (w *watcher) scan() error {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("--watch: %w", err)
	}
	type file struct {
		name string
		mod  time.Time
	}
	var fresh []file
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(w.dir, n)
		if w.seen[path] {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone since the listing
		}
		w.seen[path] = true
		fresh = append(fresh, file{path, info.ModTime()})
	}
	slices.SortFunc(fresh, func(a, b file) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	for _, f := range fresh {
		w.pending = append(w.pending, f.name)
	}
	return nil
}

package source

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dstream/dstream/stage"
)

// followPoll is how often a followed file that has no more data is looked
// at again. Why polling and not fsnotify: a stat every 50 ms costs nothing
// measurable, sees a file replaced by rename as surely as one appended to,
// and works on every file system (inotify misses writes over NFS).
const followPoll = 50 * time.Millisecond

// follower reads a file as it grows (tail -F): at its end it waits for more
// instead of ending, until the stage must stop. A file replaced by another
// of its name (a rotated log) or truncated is read again from its start,
// with a note on stderr; with --checkpoint, whose offsets follow one file by
// its path, either is an error.
type follower struct {
	f      *os.File
	path   string
	off    int64 // bytes read from f
	stop   <-chan struct{}
	strict bool // --checkpoint: a replaced or truncated file is an error
	notes  io.Writer
}

func newFollower(f *os.File, path string, off int64, stop <-chan struct{}, strict bool, notes io.Writer) *follower {
	return &follower{f: f, path: path, off: off, stop: stop, strict: strict, notes: notes}
}

func (r *follower) Read(p []byte) (int, error) {
	for {
		n, err := r.f.Read(p)
		r.off += int64(n)
		if n > 0 || err != nil && err != io.EOF {
			return n, err
		}
		again, err := r.changed()
		if err != nil {
			return 0, err
		}
		if again {
			continue
		}
		select {
		case <-r.stop:
			return 0, io.EOF
		case <-time.After(followPoll):
		}
	}
}

// changed looks at the file at the end of what was read: it reports true,
// having reopened it, if it was replaced or truncated.
func (r *follower) changed() (bool, error) {
	now, err := os.Stat(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // between a rotation's rename and the new file
	}
	if err != nil {
		return false, err
	}
	cur, err := r.f.Stat()
	if err != nil {
		return false, err
	}
	var what string
	switch {
	case !os.SameFile(now, cur):
		// The rest of the old file was read before this: its end came first.
		what = "was replaced"
	case now.Size() < r.off:
		what = "was truncated"
	default:
		return false, nil
	}
	if r.strict {
		return false, stage.Hint(fmt.Errorf("the file %s after %d bytes, while followed", what, r.off),
			"a checkpoint follows a file by its path and byte offset, so the file may only grow: leave --checkpoint out to follow a log that is rotated")
	}
	f, err := os.Open(r.path)
	if err != nil {
		return false, err
	}
	r.f.Close()
	r.f, r.off = f, 0
	fmt.Fprintf(r.notes, "sbatch: note: %s %s: reading it from its start\n", r.path, what)
	return true, nil
}

func (r *follower) Close() error { return r.f.Close() }

// follow makes the input, the last FILE, a follower.
func follow(in *Input, o Options, e *stage.Env) error {
	var f *os.File
	switch r := in.R.(type) {
	case *os.File:
		f = r
	case closeAlso:
		f, _ = r.ReadCloser.(*os.File)
		if f != nil {
			defer func() { in.R = closeAlso{in.R, r.also} }()
		}
	}
	if f == nil || in.Replay {
		return fmt.Errorf("sbatch: cannot follow %s", in.Name) // not met: see openFileInput, fileTracker.Inputs
	}
	in.R = newFollower(f, in.Name, in.Start, e.Stop.RequestedC(), o.Checkpoint != "", e.Stderr)
	return nil
}

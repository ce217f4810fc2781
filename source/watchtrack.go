package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
)

// The tracker of a watched directory: sbatch --watch DIR [--checkpoint CK]
// (docs/design.md, Checkpoint). It keeps the log of the files each batch
// read, as Spark's file source does: CK/offsets/N lists, in the order they
// were read, the byte ranges of the files batch N covers, in the format of
// the tracker of files (offsets.go). A file is read once, whole, so the
// range of a file a batch takes whole is [0, its size); a batch cut inside
// a big file ends its range there, and the next batch goes on from that
// byte.
//
// On restart the batches after the sink's last commit are replayed from
// those ranges (same ids, times and bytes; a file listed that is gone or
// shorter is an error naming it, unless its range is empty), the file the last batch ended in is read
// on from where it ended, and then the directory's files that no entry
// lists are read: a file in the log is never read again, a file that came
// while the pipeline was down is. Since old entries are purged, the paths
// they list are first kept in CK/offsets/files (seenFile), a compact log
// of every file read.
//
// Streams (Position.Stream) are the files in the order this run met them:
// those of the entries it replays or goes on from, then each new one. -1
// is the position before the first file.
type watchTracker struct {
	lastRun                 // dir is "" without a checkpoint
	log     *checkpoint.Log // DIR/offsets, nil without a checkpoint
	fp      string
	format  string
	watched string // the watched directory, as given
	abs     string // and absolute
	o       Options

	// cut has a value after each batch written: a watcher waiting for the
	// batch in hand to take one more file looks again.
	cut chan struct{}

	mu        sync.Mutex // the files are added by the producer, read by the batcher
	files     []string   // absolute paths, by stream
	names     []string   // as found, for messages
	index     map[string]int
	sizes     []int64  // the size of each file read to its end; -1 before
	lastBatch []uint64 // the last batch that lists each file
	listed    []bool   // some batch lists the file
	queued    []bool   // the file is in cleanq
	logged    map[string]bool
	from      Position
	begun     int   // files that a batch written has begun
	cleanq    []int // files read whole, to clean once their last batch is committed
	writes    int
}

// seenFile is the compact log of the files read, CK/offsets/files: every
// path listed by an entry that was purged (and some not purged yet).
const seenFile = "files"

type seenLog struct {
	Config string   `json:"config"`
	Files  []string `json:"files"`
}

func openWatchTracker(o Options) (Tracker, error) {
	_, dir, _ := strings.Cut(o.Inputs[0], "://")
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("--watch: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("--watch %s: not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("--watch: %w", err)
	}
	t := &watchTracker{lastRun: lastRun{dir: o.Checkpoint, start: Position{Stream: -1}},
		watched: dir, abs: abs, format: o.Format, o: o, cut: make(chan struct{}, 1),
		index: map[string]int{}, logged: map[string]bool{}}
	t.fp = fingerprint(&o, []string{"watch://" + abs})
	if o.Clean == "archive" {
		if err := os.MkdirAll(o.Archive, 0o755); err != nil {
			return nil, fmt.Errorf("--clean archive: %w", err)
		}
	}
	if t.dir != "" {
		if err := t.load(); err != nil {
			return nil, err
		}
	}
	t.from = t.start
	t.begun = t.start.Stream + 1
	return t, nil
}

// load reads what the last run left in the checkpoint directory: the
// batches to replay, where to go on, the files read.
func (t *watchTracker) load() error {
	var err error
	if t.log, err = checkpoint.OpenLog(t.dir, checkpoint.OffsetsDir); err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	if err := t.loadSeen(); err != nil {
		return err
	}
	var done []string // files of committed batches, to clean
	err = t.lastRun.load(t.log, t.read, func(e *checkpoint.Offsets, replayed bool) {
		for _, r := range e.Sources {
			t.logged[r.Path] = true
			if !replayed {
				done = append(done, r.Path)
			}
		}
	})
	if err != nil || t.last == nil {
		return err
	}
	for _, e := range append(t.replay, *t.last) {
		for _, r := range e.Sources {
			i := t.add(r.Path, t.nameOf(r.Path))
			t.listed[i] = true
			t.lastBatch[i] = max(t.lastBatch[i], e.BatchID)
		}
	}
	if n := len(t.last.Sources); n > 0 {
		r := t.last.Sources[n-1]
		t.start = Position{Stream: t.index[r.Path], Off: r.End}
	}
	if t.o.Clean != "" {
		// The files before the one the last run stopped in were read whole.
		for i := range t.start.Stream {
			t.queued[i] = true
			t.cleanq = append(t.cleanq, i)
		}
		// Those of batches committed before the crash that the last run
		// did not clean yet.
		for _, p := range done {
			if _, ours := t.index[p]; !ours {
				if err := t.cleanFile(p); err != nil {
					return err
				}
			}
		}
		if err := t.clean(); err != nil {
			return err
		}
	}
	return t.purge()
}

// nameOf is the name of an absolute path for messages: under the watched
// directory as given.
func (t *watchTracker) nameOf(abs string) string {
	if rel, err := filepath.Rel(t.abs, abs); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.Join(t.watched, rel)
	}
	return abs
}

// read reads offsets entry id and checks that this configuration wrote it.
func (t *watchTracker) read(id uint64, e *checkpoint.Offsets) error {
	if err := t.log.Read(id, e); err != nil {
		return stage.Hint(fmt.Errorf("--checkpoint: %w", err), "remove %s to start over", t.dir)
	}
	if e.Config != t.fp {
		err := &checkpoint.MismatchError{Path: t.log.Path(id), Have: e.Config, Want: t.fp}
		return stage.Hint(err, "a checkpoint belongs to one way of reading the input (format, trigger and watched directory): run with the same ones, or give another --checkpoint directory (or remove %s to start over)", t.dir)
	}
	if e.BatchID != id {
		return stage.Hint(fmt.Errorf("%s: %w: it describes batch %d", t.log.Path(id), checkpoint.ErrCorrupt, e.BatchID), "remove %s to start over", t.dir)
	}
	for _, r := range e.Sources {
		if !filepath.IsAbs(r.Path) || r.Start < 0 || r.End < r.Start {
			return stage.Hint(fmt.Errorf("%s: %w: range %s [%d, %d)", t.log.Path(id), checkpoint.ErrCorrupt, r.Path, r.Start, r.End), "remove %s to start over", t.dir)
		}
	}
	return nil
}

// loadSeen reads the compact log of the files read.
func (t *watchTracker) loadSeen() error {
	path := filepath.Join(t.log.Dir(), seenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	var s seenLog
	if err := json.Unmarshal(b, &s); err != nil {
		return stage.Hint(fmt.Errorf("%s: %w: %v", path, checkpoint.ErrCorrupt, err), "remove %s to start over", t.dir)
	}
	if s.Config != t.fp {
		err := &checkpoint.MismatchError{Path: path, Have: s.Config, Want: t.fp}
		return stage.Hint(err, "a checkpoint belongs to one way of reading the input (format, trigger and watched directory): run with the same ones, or give another --checkpoint directory (or remove %s to start over)", t.dir)
	}
	for _, p := range s.Files {
		t.logged[p] = true
	}
	return nil
}

// add makes abs the next stream (or finds it) and returns its number.
func (t *watchTracker) add(abs, name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[abs]; ok {
		return i
	}
	i := len(t.files)
	t.index[abs] = i
	t.files = append(t.files, abs)
	t.names = append(t.names, name)
	t.sizes = append(t.sizes, -1)
	t.lastBatch = append(t.lastBatch, 0)
	t.listed = append(t.listed, false)
	t.queued = append(t.queued, false)
	return i
}

// seen tells whether the file abs was read, in this run or before.
func (t *watchTracker) seen(abs string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ours := t.index[abs]
	return ours || t.logged[abs]
}

// mayTake tells whether the batch in hand may begin one more file
// (--max-files).
func (t *watchTracker) mayTake() bool {
	if t.o.MaxFiles <= 0 {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.files) < t.begun+t.o.MaxFiles
}

// Inputs opens the ranges of the batches to replay and the rest of the
// file the last run stopped in; More yields the files after them.
func (t *watchTracker) Inputs() (_ []Input, err error) {
	var ins []Input
	defer func() {
		if err != nil {
			for _, in := range ins {
				in.R.Close()
			}
		}
	}()
	for _, e := range t.replay {
		if len(e.Sources) == 0 {
			// An empty batch before the first file.
			ins = append(ins, Input{Name: t.watched, R: nopClose{strings.NewReader("")}, Stream: -1, Replay: true, ReplayEnd: true})
			continue
		}
		for j, r := range e.Sources {
			i := t.index[r.Path]
			if r.Start == r.End {
				// An empty range (an empty batch, whose position is the
				// end of the file the batch before read): none of the
				// file is needed, and --clean may have deleted it once
				// that batch was committed.
				ins = append(ins, Input{Name: t.names[i], R: nopClose{strings.NewReader("")}, Stream: i, Replay: true, ReplayEnd: j == len(e.Sources)-1})
				continue
			}
			f, err := t.open(i, r.End, e.BatchID)
			if err != nil {
				return nil, err
			}
			ins = append(ins, Input{Name: t.names[i], R: section{io.NewSectionReader(f, r.Start, r.End-r.Start), f},
				Stream: i, Start: r.Start, End: r.End, At: f, Replay: true, ReplayEnd: j == len(e.Sources)-1})
		}
	}
	if s := t.start; s.Stream >= 0 {
		if _, err := os.Stat(t.files[s.Stream]); errors.Is(err, os.ErrNotExist) {
			// Cleaned, or removed after its batches were committed: what
			// was read of it is out. (Asked before open, whose error
			// says that a batch needs the file.)
			return ins, nil
		}
		f, err := t.open(s.Stream, s.Off, t.last.BatchID)
		if err != nil {
			return nil, err
		}
		if _, err := f.Seek(s.Off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot read input: %w", err)
		}
		ins = append(ins, Input{Name: t.names[s.Stream], R: f, Stream: s.Stream, Start: s.Off, At: f})
	}
	return ins, nil
}

// open opens file i, which batch id read up to byte end.
func (t *watchTracker) open(i int, end int64, id uint64) (*os.File, error) {
	f, err := os.Open(t.files[i])
	if errors.Is(err, os.ErrNotExist) {
		return nil, stage.Hint(fmt.Errorf("%s is gone, and batch %d of the checkpoint %s read it up to byte %d", t.names[i], id, t.dir, end),
			"put the file back under its name to replay the batch, or start the pipeline over with a new --checkpoint directory and an empty sink")
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read input: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot read input: %w", err)
	}
	if fi.Size() < end && !codec.RowOffsets(t.format) {
		f.Close()
		return nil, stage.Hint(fmt.Errorf("%s has %d bytes, but batch %d of the checkpoint %s read it up to byte %d: it was truncated or replaced", t.names[i], fi.Size(), id, t.dir, end),
			"a watched file is read once, whole, and may not change after: put the file that was read back under its name, or start the pipeline over with a new --checkpoint directory and an empty sink")
	}
	return f, nil
}

// section is a range of a file to replay, which closes the file.
type section struct {
	*io.SectionReader
	f *os.File
}

func (s section) Close() error { return s.f.Close() }

// More yields the files of the directory that no batch has read.
func (t *watchTracker) More(stop <-chan struct{}, notes io.Writer) Source {
	return newWatcher(t, stop, notes)
}

// Reached keeps the size of each file read to its end.
func (t *watchTracker) Reached(at Position, end bool) {
	if end && at.Stream >= 0 {
		t.mu.Lock()
		t.sizes[at.Stream] = at.Off
		t.mu.Unlock()
	}
}

// Write writes DIR/offsets/id (with a checkpoint) for the batch cut at at,
// lets the watcher take more files, and cleans the files whose batches are
// committed.
func (t *watchTracker) Write(id uint64, time int64, at Position) error {
	t.mu.Lock()
	e := checkpoint.Offsets{BatchID: id, BatchTime: time, Format: t.format, Config: t.fp}
	var newly []string
	for f := max(t.from.Stream, 0); f <= at.Stream; f++ {
		r := checkpoint.Range{Path: t.files[f], End: t.sizes[f]}
		if f == t.from.Stream {
			r.Start = t.from.Off
		}
		if f == at.Stream {
			r.End = at.Off
		}
		if f == at.Stream || r.Start < r.End || !t.listed[f] {
			// (Else read whole by the batches before.)
			e.Sources = append(e.Sources, r)
			if r.End > r.Start || !t.listed[f] {
				t.lastBatch[f] = id
			}
			if !t.listed[f] {
				t.listed[f] = true
				newly = append(newly, r.Path)
			}
		}
		if t.o.Clean != "" && !t.queued[f] && (f < at.Stream || t.sizes[f] == at.Off) {
			t.queued[f] = true
			t.cleanq = append(t.cleanq, f)
		}
	}
	t.from = at
	t.begun = max(t.begun, at.Stream+1)
	t.mu.Unlock()
	select {
	case t.cut <- struct{}{}:
	default:
	}
	if t.log == nil {
		return nil
	}
	if err := t.log.Write(id, e); err != nil {
		return err
	}
	t.mu.Lock()
	for _, p := range newly {
		t.logged[p] = true
	}
	t.mu.Unlock()
	if err := t.clean(); err != nil {
		return err
	}
	if t.writes++; t.writes%purgeEvery == 0 {
		return t.purge()
	}
	return nil
}

// clean deletes or archives (--clean) the files read whole whose last
// batch the sink has committed: never before the commit, so a replay finds
// them.
func (t *watchTracker) clean() error {
	if t.o.Clean == "" || len(t.cleanq) == 0 {
		return nil
	}
	c, ok, err := checkpoint.LastCommit(t.dir)
	if err != nil || !ok {
		return err
	}
	t.mu.Lock()
	var due []string
	t.cleanq = slices.DeleteFunc(t.cleanq, func(f int) bool {
		if t.lastBatch[f] <= c {
			due = append(due, t.files[f])
			return true
		}
		return false
	})
	t.mu.Unlock()
	for _, p := range due {
		if err := t.cleanFile(p); err != nil {
			return err
		}
	}
	return nil
}

// cleanFile deletes the file at path, or moves it into the archive
// directory; a file already gone is cleaned.
func (t *watchTracker) cleanFile(path string) error {
	var err error
	if t.o.Clean == "delete" {
		err = os.Remove(path)
	} else {
		err = os.Rename(path, filepath.Join(t.o.Archive, filepath.Base(path)))
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return stage.Hint(fmt.Errorf("--clean %s: %w", t.o.Clean, err),
			"the files of batches the sink committed are cleaned: check the permissions of the directories (an archive must be on the file system of the watched directory)")
	}
	return nil
}

// purge removes the offsets no restart needs (see fileTracker.purge),
// having first kept the files they list in the compact log.
func (t *watchTracker) purge() error {
	c, ok, err := checkpoint.LastCommit(t.dir)
	if err != nil || !ok || c < keepCommitted {
		return err
	}
	t.mu.Lock()
	s := seenLog{Config: t.fp}
	for p := range t.logged {
		s.Files = append(s.Files, p)
	}
	t.mu.Unlock()
	slices.Sort(s.Files)
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	path := filepath.Join(t.log.Dir(), seenFile)
	if err := checkpoint.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("checkpoint: writing %s: %w", path, err)
	}
	return t.log.Purge(c - keepCommitted)
}

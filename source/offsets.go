package source

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
)

// The tracker of files: sbatch --checkpoint DIR FILE... (docs/design.md,
// Checkpoint). Before batch N leaves, sbatch writes DIR/offsets/N: the
// byte ranges of the input files the batch covers and its batch time. Files are replayable: on restart, sbatch reads the
// last commit C of the sink (DIR/commits), replays every batch after C from
// its offsets with the same id, time and bytes, and goes on reading where
// the last batch written ended, with the ids after it.
//
// Where the input stands is a Position: a file (an index into the FILE
// arguments) and a byte offset in it. The producer tells, for each record,
// the offset where it ends, and when a file has been read to its end; the
// batcher moves the position as it takes records, and a batch covers the
// input from the position after the batch before it to the position at its
// cut. Bytes that hold no record (a CSV header, blank JSON lines, a bad
// record skipped) belong to the batch whose range they fall in, and are
// read again, and skipped again, when it is replayed.

// fileTracker keeps the part of the checkpoint directory of a source of
// files.
type fileTracker struct {
	lastRun
	log    *checkpoint.Log // DIR/offsets
	files  []string        // the FILE arguments, absolute
	names  []string        // the FILE arguments, as given (for messages)
	format string
	fp     string // the configuration's fingerprint

	from  Position // the start of the batch in hand
	sizes []int64  // the size of each file read to its end
}

// purgeEvery is how often (in batches) old offsets are removed;
// keepCommitted is how many before the last commit stay.
const (
	purgeEvery    = 16
	keepCommitted = 10
)

// checkFiles refuses a file named twice: its offsets could not tell the
// two apart.
func checkFiles(files []string) error {
	seen := map[string]bool{}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return stage.Usage(err)
		}
		if seen[abs] {
			return stage.UsageError("--checkpoint: the file %s is named twice", f)
		}
		seen[abs] = true
	}
	return nil
}

// fingerprint names what must not change between runs on one checkpoint:
// how the input is read and cut into batches, and which files it is.
func fingerprint(o *Options, files []string) string {
	var trig []string
	switch {
	case o.TimeField != "":
		trig = append(trig, fmt.Sprintf("time-field=%q unit=%dms interval=%dms", o.TimeField, o.Unit, o.Interval))
	case o.Continuous:
		trig = append(trig, "continuous")
	case o.Once && o.Count == 0:
		trig = append(trig, "once")
	default:
		if o.Count > 0 {
			trig = append(trig, fmt.Sprintf("count=%d", o.Count))
		}
		if o.Count == 0 || o.IntervalSet {
			trig = append(trig, fmt.Sprintf("interval=%dms", o.Interval))
		}
	}
	fs, _ := json.Marshal(files)
	return fmt.Sprintf("sbatch/1 format=%s %s files=%s", o.Format, strings.Join(trig, " "), fs)
}

// openTracker reads what the last run left in the checkpoint directory and
// plans this run: the batches to replay, and where to go on.
func openTracker(o Options) (Tracker, error) {
	if err := checkFiles(o.Inputs); err != nil {
		return nil, err
	}
	t := &fileTracker{lastRun: lastRun{dir: o.Checkpoint}, names: o.Inputs, format: o.Format, sizes: make([]int64, len(o.Inputs))}
	for _, f := range o.Inputs {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		t.files = append(t.files, abs)
	}
	t.fp = fingerprint(&o, t.files)
	var err error
	if t.log, err = checkpoint.OpenLog(t.dir, checkpoint.OffsetsDir); err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	if err := t.load(t.log, t.read, nil); err != nil || t.last == nil {
		return t, err
	}
	// Where the last batch ended: the last range it lists.
	r := t.last.Sources[len(t.last.Sources)-1]
	t.start = Position{Stream: t.index(r.Path), Off: r.End}
	t.from = t.start
	return t, t.purge(t.last.BatchID)
}

// read reads offsets entry id and checks that this configuration wrote it.
func (t *fileTracker) read(id uint64, e *checkpoint.Offsets) error {
	if err := t.log.Read(id, e); err != nil {
		return stage.Hint(fmt.Errorf("--checkpoint: %w", err), "remove %s to start over", t.dir)
	}
	if e.Config != t.fp {
		err := &checkpoint.MismatchError{Path: t.log.Path(id), Have: e.Config, Want: t.fp}
		return stage.Hint(err, "a checkpoint belongs to one way of reading the input (format, trigger and files): run with the same ones, or give another --checkpoint directory (or remove %s to start over)", t.dir)
	}
	if e.BatchID != id || len(e.Sources) == 0 {
		return stage.Hint(fmt.Errorf("%s: %w: it describes batch %d from %d ranges", t.log.Path(id), checkpoint.ErrCorrupt, e.BatchID, len(e.Sources)), "remove %s to start over", t.dir)
	}
	for _, r := range e.Sources {
		if t.index(r.Path) < 0 || r.Start < 0 || r.End < r.Start {
			return stage.Hint(fmt.Errorf("%s: %w: range %s [%d, %d)", t.log.Path(id), checkpoint.ErrCorrupt, r.Path, r.Start, r.End), "remove %s to start over", t.dir)
		}
	}
	return nil
}

// index is the number of the file path in the FILE arguments, -1 if none.
func (t *fileTracker) index(path string) int {
	for i, f := range t.files {
		if f == path {
			return i
		}
	}
	return -1
}

// lastRun is what a tracker read of the last run in DIR/offsets: the last
// batch written (nil if none), the batches after the last commit, to
// replay, and where the last run stopped.
type lastRun struct {
	dir    string // the checkpoint directory
	last   *checkpoint.Offsets
	replay []checkpoint.Offsets
	start  Position
}

func (r *lastRun) Dir() string { return r.dir }

// load reads the last run from the offsets log: the last batch written and
// the batches to replay, every one after the sink's last commit (with no
// commit at all, every one from 0: the pipeline's sink commits into this
// directory, as the stream's Checkpoint frame makes it, so a batch without a
// commit did not get out, whether or not the sink ever started). read reads
// and checks an entry; each, if not nil, is given every entry of the log,
// those before the replay too (replayed false). r.last stays nil when the
// log is empty.
func (r *lastRun) load(log *checkpoint.Log, read func(uint64, *checkpoint.Offsets) error, each func(e *checkpoint.Offsets, replayed bool)) error {
	ids, err := log.List()
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	committed, anyCommit, err := checkpoint.LastCommit(r.dir)
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	if len(ids) == 0 {
		if anyCommit {
			return r.foreign(fmt.Errorf("checkpoint %s: the sink committed up to batch %d, but there are no offsets: the batch ids of this source would start again at 0", r.dir, committed))
		}
		return nil
	}
	last := ids[len(ids)-1]
	r.last = new(checkpoint.Offsets)
	if err := read(last, r.last); err != nil {
		return err
	}
	if anyCommit && committed > last {
		return r.foreign(fmt.Errorf("checkpoint %s: the sink committed up to batch %d, but the offsets end at batch %d", r.dir, committed, last))
	}
	from := uint64(0)
	if anyCommit {
		from = committed + 1
	}
	if from < ids[0] {
		what := "there is no commit"
		if anyCommit {
			what = fmt.Sprintf("the last commit is of batch %d", committed)
		}
		return stage.Hint(fmt.Errorf("checkpoint %s: %s, so batches from %d on are to be replayed, but the offsets begin at batch %d (%s was removed or damaged)", r.dir, what, from, ids[0], checkpoint.ReadLog(r.dir, checkpoint.CommitsDir).Dir()),
			"batches %d to %d cannot be replayed: if the sink has them, restore its commits; else start the pipeline over with a new --checkpoint directory and an empty sink", from, ids[0]-1)
	}
	next := from
	for _, id := range ids {
		if id < from {
			if each != nil {
				var e checkpoint.Offsets
				if err := read(id, &e); err != nil {
					return err
				}
				each(&e, false)
			}
			continue
		}
		if id != next {
			return stage.Hint(fmt.Errorf("checkpoint %s: batch %d is to be replayed, and its offsets %s are missing", r.dir, next, log.Path(next)),
				"start the pipeline over with a new --checkpoint directory and an empty sink")
		}
		next++
		var e checkpoint.Offsets
		if id == last {
			e = *r.last
		} else if err := read(id, &e); err != nil {
			return err
		}
		if each != nil {
			each(&e, true)
		}
		r.replay = append(r.replay, e)
	}
	return nil
}

func (r *lastRun) foreign(err error) error {
	return stage.Hint(err, "the directory holds the commits of another pipeline: give this one a new --checkpoint directory")
}

func (r *lastRun) Replay() []stage.Batch {
	bs := make([]stage.Batch, len(r.replay))
	for i, e := range r.replay {
		bs[i] = stage.Batch{ID: e.BatchID, Time: e.BatchTime}
	}
	return bs
}

// Resume: the id of the first batch this run writes after the replay, and
// the time of the last batch written before it.
func (r *lastRun) Resume() (Position, uint64, int64, bool) {
	if r.last == nil {
		return r.start, 0, 0, false
	}
	return r.start, r.last.BatchID + 1, r.last.BatchTime, true
}

// Inputs opens the input of this run: the ranges of the batches to replay,
// then the files from where the last run stopped. A file that is shorter
// now than the checkpoint says it was read is an error: it was truncated or
// replaced.
func (t *fileTracker) Inputs() (_ []Input, err error) {
	var srcs []Input
	open := make([]*os.File, len(t.files))
	defer func() {
		if err != nil {
			for _, s := range srcs {
				s.R.Close()
			}
			for _, f := range open {
				if f != nil {
					f.Close()
				}
			}
		}
	}()
	file := func(i int, end int64, batch string) (*os.File, error) {
		if open[i] == nil {
			f, err := openFile(t.names[i])
			if err != nil {
				return nil, err
			}
			open[i] = f
		}
		fi, err := open[i].Stat()
		if err != nil {
			return nil, fmt.Errorf("cannot read input: %w", err)
		}
		if fi.Size() < end && !codec.RowOffsets(t.format) {
			return nil, stage.Hint(fmt.Errorf("%s has %d bytes, but the checkpoint %s read it up to byte %d (%s): it was truncated or replaced", t.names[i], fi.Size(), t.dir, end, batch),
				"a checkpoint follows a file by its path and byte offset, and the file may only grow: put the file that was read back under its path to go on, or start the pipeline over with a new --checkpoint directory (%s holds the old one) and an empty sink", t.dir)
		}
		return open[i], nil
	}
	for _, e := range t.replay {
		for j, r := range e.Sources {
			i := t.index(r.Path)
			f, err := file(i, r.End, fmt.Sprintf("batch %d", e.BatchID))
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, Input{Name: t.names[i], R: nopClose{io.NewSectionReader(f, r.Start, r.End-r.Start)},
				Stream: i, Start: r.Start, End: r.End, At: f, Replay: true, ReplayEnd: j == len(e.Sources)-1})
		}
	}
	for i := t.start.Stream; i < len(t.files); i++ {
		start := int64(0)
		batch := ""
		if i == t.start.Stream {
			start = t.start.Off
			if t.last != nil {
				batch = fmt.Sprintf("batch %d", t.last.BatchID)
			}
		}
		f, err := file(i, start, batch)
		if err != nil {
			return nil, err
		}
		if start > 0 {
			if _, err := f.Seek(start, io.SeekStart); err != nil {
				return nil, fmt.Errorf("cannot read input: %w", err)
			}
		}
		open[i] = nil // closed by the producer
		srcs = append(srcs, Input{Name: t.names[i], R: f, Stream: i, Start: start, At: f})
	}
	// Files only replayed are closed once the producer is done with them.
	for i, f := range open {
		if f != nil {
			srcs[len(srcs)-1].R = closeAlso{srcs[len(srcs)-1].R, f}
			open[i] = nil
		}
	}
	return srcs, nil
}

// closeAlso closes another file with its own.
type closeAlso struct {
	io.ReadCloser
	also io.Closer
}

func (c closeAlso) Close() error {
	c.also.Close()
	return c.ReadCloser.Close()
}

// Reached keeps the size of each file read to its end.
func (t *fileTracker) Reached(at Position, end bool) {
	if end {
		t.sizes[at.Stream] = at.Off
	}
}

// Write writes DIR/offsets/id for the batch cut at at, and from time to
// time removes old entries.
func (t *fileTracker) Write(id uint64, time int64, at Position) error {
	e := checkpoint.Offsets{BatchID: id, BatchTime: time, Format: t.format, Config: t.fp}
	for f := t.from.Stream; f <= at.Stream; f++ {
		r := checkpoint.Range{Path: t.files[f], End: t.sizes[f]}
		if f == t.from.Stream {
			r.Start = t.from.Off
		}
		if f == at.Stream {
			r.End = at.Off
		} else if r.Start == r.End {
			continue
		}
		e.Sources = append(e.Sources, r)
	}
	if err := t.log.Write(id, e); err != nil {
		return err
	}
	t.from = at
	if id%purgeEvery == 0 {
		return t.purge(id)
	}
	return nil
}

func (t *fileTracker) purge(uint64) error { return purgeOffsets(t.dir, t.log) }

// purgeOffsets removes the offsets no restart needs: those more than
// keepCommitted before the sink's last commit. Before the sink's first
// commit all stay: a restart replays them.
func purgeOffsets(dir string, log *checkpoint.Log) error {
	c, ok, err := checkpoint.LastCommit(dir)
	switch {
	case err != nil:
		return err
	case ok && c >= keepCommitted:
		return log.Purge(c - keepCommitted)
	}
	return nil
}

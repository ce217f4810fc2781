package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
)

// sbatch --checkpoint DIR (docs/design.md, Checkpoint). Before batch N leaves, sbatch
// writes DIR/offsets/N: the byte ranges of the input files the batch covers
// and its batch time. Files are replayable: on restart, sbatch reads the
// last commit C of the sink (DIR/commits), replays every batch after C from
// its offsets with the same id, time and bytes, and goes on reading where
// the last batch written ended, with the ids after it.
//
// Where the input stands is a position: a file (an index into the FILE
// arguments) and a byte offset in it. The producer tells, for each record,
// the offset where it ends, and when a file has been read to its end; the
// batcher moves the position as it takes records, and a batch covers the
// input from the position after the batch before it to the position at its
// cut. Bytes that hold no record (a CSV header, blank JSON lines, a bad
// record skipped) belong to the batch whose range they fall in, and are
// read again, and skipped again, when it is replayed.

// position is a place in the input: byte off of file number file.
type position struct {
	file int
	off  int64
}

// tracker keeps sbatch's part of the checkpoint directory.
type tracker struct {
	dir    string
	log    *checkpoint.Log // DIR/offsets
	files  []string        // the FILE arguments, absolute
	names  []string        // the FILE arguments, as given (for messages)
	format string
	fp     string // the configuration's fingerprint

	// From the last run: the last batch written (nil if none) and the
	// batches after the last commit, to replay.
	last   *checkpoint.Offsets
	replay []checkpoint.Offsets

	from, pos position // the start of the batch in hand, and where it stands
	sizes     []int64  // the size of each file read to its end
}

// purgeEvery is how often (in batches) old offsets are removed;
// keepCommitted is how many before the last commit stay.
const (
	purgeEvery    = 16
	keepCommitted = 10
)

// checkFiles refuses the inputs --checkpoint cannot replay.
func checkFiles(cfg *config, set bool) error {
	if !set {
		return nil
	}
	if cfg.checkpoint == "" {
		return stage.UsageError("--checkpoint needs a directory")
	}
	seen := map[string]bool{}
	for _, f := range cfg.files {
		if stage.IsSocket(f) {
			return stage.Hint(stage.UsageError("--checkpoint replays input files, and %s cannot be read again", f),
				"a socket is not replayable: leave --checkpoint out (a crash loses the batches in flight), or have the sender write a file that sbatch --follow reads")
		}
		if f == "-" {
			return stage.Hint(stage.UsageError("--checkpoint replays input files, and stdin cannot be read again"),
				"name the input files as arguments (sbatch --checkpoint DIR FILE...), or leave --checkpoint out: without it a crash loses the batches in flight")
		}
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
func fingerprint(cfg *config, files []string) string {
	var trig []string
	switch {
	case cfg.timeField != "":
		trig = append(trig, fmt.Sprintf("time-field=%q unit=%dms interval=%dms", cfg.timeField, cfg.unit, cfg.interval))
	case cfg.once:
		trig = append(trig, "once")
	default:
		if cfg.count > 0 {
			trig = append(trig, fmt.Sprintf("count=%d", cfg.count))
		}
		if cfg.count == 0 || cfg.intervalSet {
			trig = append(trig, fmt.Sprintf("interval=%dms", cfg.interval))
		}
	}
	fs, _ := json.Marshal(files)
	return fmt.Sprintf("sbatch/1 format=%s %s files=%s", cfg.format, strings.Join(trig, " "), fs)
}

// openTracker reads what the last run left in the checkpoint directory and
// plans this run: the batches to replay, and where to go on.
func openTracker(cfg *config) (*tracker, error) {
	t := &tracker{dir: cfg.checkpoint, names: cfg.files, format: cfg.format, sizes: make([]int64, len(cfg.files))}
	for _, f := range cfg.files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		t.files = append(t.files, abs)
	}
	t.fp = fingerprint(cfg, t.files)
	var err error
	if t.log, err = checkpoint.OpenLog(t.dir, checkpoint.OffsetsDir); err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	ids, err := t.log.List()
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	committed, anyCommit, err := checkpoint.LastCommit(t.dir)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	if len(ids) == 0 {
		if anyCommit {
			return nil, t.foreign(fmt.Errorf("checkpoint %s: the sink committed up to batch %d, but there are no offsets: the batch ids of this source would start again at 0", t.dir, committed))
		}
		return t, nil
	}
	last := ids[len(ids)-1]
	t.last = new(checkpoint.Offsets)
	if err := t.read(last, t.last); err != nil {
		return nil, err
	}
	if anyCommit && committed > last {
		return nil, t.foreign(fmt.Errorf("checkpoint %s: the sink committed up to batch %d, but the offsets end at batch %d", t.dir, committed, last))
	}
	// Every batch after the last commit is replayed; with no commit at all,
	// every batch from 0: the pipeline's sink commits into this directory
	// (the stream's Checkpoint frame makes it), so a batch without a commit
	// did not get out, whether or not the sink ever started.
	from := uint64(0)
	if anyCommit {
		from = committed + 1
	}
	if from < ids[0] {
		what := "there is no commit"
		if anyCommit {
			what = fmt.Sprintf("the last commit is of batch %d", committed)
		}
		return nil, stage.Hint(fmt.Errorf("checkpoint %s: %s, so batches from %d on are to be replayed, but the offsets begin at batch %d (%s was removed or damaged)", t.dir, what, from, ids[0], checkpoint.ReadLog(t.dir, checkpoint.CommitsDir).Dir()),
			"batches %d to %d cannot be replayed: if the sink has them, restore its commits; else start the pipeline over with a new --checkpoint directory and an empty sink", from, ids[0]-1)
	}
	next := from
	for _, id := range ids {
		if id < from {
			continue
		}
		if id != next {
			return nil, stage.Hint(fmt.Errorf("checkpoint %s: batch %d is to be replayed, and its offsets %s are missing", t.dir, next, t.log.Path(next)),
				"start the pipeline over with a new --checkpoint directory and an empty sink")
		}
		next++
		var e checkpoint.Offsets
		if id == last {
			e = *t.last
		} else if err := t.read(id, &e); err != nil {
			return nil, err
		}
		t.replay = append(t.replay, e)
	}
	// Where the last batch ended: the last range it lists.
	r := t.last.Sources[len(t.last.Sources)-1]
	t.pos = position{file: t.index(r.Path), off: r.End}
	t.from = t.pos
	return t, t.purge(last)
}

// read reads offsets entry id and checks that this configuration wrote it.
func (t *tracker) read(id uint64, e *checkpoint.Offsets) error {
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

func (t *tracker) foreign(err error) error {
	return stage.Hint(err, "the directory holds the commits of another pipeline: give this one a new --checkpoint directory")
}

// index is the number of the file path in the FILE arguments, -1 if none.
func (t *tracker) index(path string) int {
	for i, f := range t.files {
		if f == path {
			return i
		}
	}
	return -1
}

// next is the id of the first batch this run writes after the replay, and
// the time of the last batch written before it (0 if none).
func (t *tracker) next() (uint64, int64) {
	if t.last == nil {
		return 0, 0
	}
	return t.last.BatchID + 1, t.last.BatchTime
}

// sources opens the input of this run: the ranges of the batches to replay,
// then the files from where the last run stopped. A file that is shorter
// now than the checkpoint says it was read is an error: it was truncated or
// replaced.
func (t *tracker) sources() (_ []source, err error) {
	var srcs []source
	open := make([]*os.File, len(t.files))
	defer func() {
		if err != nil {
			for _, s := range srcs {
				s.r.Close()
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
		if fi.Size() < end {
			return nil, stage.Hint(fmt.Errorf("%s has %d bytes, but the checkpoint %s read it up to byte %d (%s): it was truncated or replaced", t.names[i], fi.Size(), t.dir, end, batch),
				"a checkpoint follows a file by its path and byte offset, and the file may only grow: name the file that was read (a rotated log under its new name), or remove %s to start over", t.dir)
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
			srcs = append(srcs, source{name: t.names[i], r: nopClose{io.NewSectionReader(f, r.Start, r.End-r.Start)},
				file: i, start: r.Start, at: f, replay: true, replayEnd: j == len(e.Sources)-1})
		}
	}
	for i := t.pos.file; i < len(t.files); i++ {
		start := int64(0)
		batch := ""
		if i == t.pos.file {
			start = t.pos.off
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
		srcs = append(srcs, source{name: t.names[i], r: f, file: i, start: start, at: f})
	}
	// Files only replayed are closed once the producer is done with them.
	for i, f := range open {
		if f != nil {
			srcs[len(srcs)-1].r = closeAlso{srcs[len(srcs)-1].r, f}
			open[i] = nil
		}
	}
	return srcs, nil
}

// closeAlso closes another file with its own.
type closeAlso struct {
	readCloser
	also io.Closer
}

type readCloser interface {
	Read([]byte) (int, error)
	Close() error
}

func (c closeAlso) Close() error {
	c.also.Close()
	return c.readCloser.Close()
}

// record moves the position to the end of record i of chunk c.
func (t *tracker) record(c *chunk, i int) { t.pos = position{c.file, c.ends[i]} }

// taken moves the position past all of chunk c.
func (t *tracker) taken(c *chunk) {
	if c.replay {
		return
	}
	if c.n > 0 {
		t.record(c, c.n-1)
	}
	if c.done {
		t.pos = position{c.file, c.size}
		t.sizes[c.file] = c.size
	}
}

// write writes DIR/offsets/id for the batch cut at the position, and from
// time to time removes old entries.
func (t *tracker) write(id uint64, time int64) error {
	e := checkpoint.Offsets{BatchID: id, BatchTime: time, Format: t.format, Config: t.fp}
	for f := t.from.file; f <= t.pos.file; f++ {
		r := checkpoint.Range{Path: t.files[f], End: t.sizes[f]}
		if f == t.from.file {
			r.Start = t.from.off
		}
		if f == t.pos.file {
			r.End = t.pos.off
		} else if r.Start == r.End {
			continue
		}
		e.Sources = append(e.Sources, r)
	}
	if err := t.log.Write(id, e); err != nil {
		return err
	}
	t.from = t.pos
	if id%purgeEvery == 0 {
		return t.purge(id)
	}
	return nil
}

// purge removes the offsets no restart needs: those more than
// keepCommitted before the sink's last commit. Before the sink's first
// commit all stay: a restart replays them.
func (t *tracker) purge(id uint64) error {
	c, ok, err := checkpoint.LastCommit(t.dir)
	switch {
	case err != nil:
		return err
	case ok && c >= keepCommitted:
		return t.log.Purge(c - keepCommitted)
	}
	return nil
}

// resume replays the batches the sink has not committed, and sets the
// batcher to go on after the last batch of the last run. stopped is true
// when a signal came during the replay: the stream ends there, and the
// batches not replayed yet are replayed at the next start.
func (b *batcher) resume() (stopped bool, err error) {
	for _, e := range b.ck.replay {
		if b.e.Stop.Requested() {
			return true, nil
		}
		if err := b.replayBatch(e); err != nil {
			return false, err
		}
	}
	b.id, b.lastTime = b.ck.next()
	if b.cfg.timeField != "" && b.ck.last != nil {
		b.k, b.after = floorDiv(b.lastTime, b.cfg.interval)-1, true
	}
	return false, nil
}

// replayBatch writes batch e again: the records the producer decodes from
// its ranges, up to the chunk that ends it.
func (b *batcher) replayBatch(e checkpoint.Offsets) error {
	b.stats = stage.Stats{Batch: stage.Batch{ID: e.BatchID, Time: e.BatchTime}, Start: time.Now()}
	if err := b.w.BeginBatch(e.BatchID, e.BatchTime); err != nil {
		return err
	}
	for {
		c := <-b.chunks
		if c.n > 0 {
			b.stats.InputRows += uint64(c.n)
			if err := b.w.WriteRawBlock(c.block, c.n); err != nil {
				return err
			}
		}
		end, err := c.replayEnd, c.err
		if c.eof && err == nil {
			err = fmt.Errorf("batch %d: its input ended before its offsets", e.BatchID) // cannot happen
		}
		b.recycle(c)
		if err != nil {
			return err
		}
		if end {
			break
		}
	}
	if err := b.w.EndBatch(); err != nil {
		return err
	}
	b.stats.OutputRows = b.stats.InputRows
	b.stats.Skipped, b.skipped = b.skipped, 0
	b.e.Progress.Report(&b.stats)
	b.id, b.lastTime = e.BatchID+1, e.BatchTime
	return nil
}

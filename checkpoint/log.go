package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The logs of a checkpoint directory (docs/design.md, Checkpoint):
//
//	DIR/offsets/N   written by the source before batch N leaves it: the
//	                input the batch covers and its batch time (Offsets)
//	DIR/commits/N   written by the sink once batch N is out (Commit)
//
// Each entry is a small JSON document in a file named by the batch id in
// decimal, written atomically. On restart the source replays the batches
// after the last commit from their offsets, with the same ids and times.
const (
	OffsetsDir = "offsets"
	CommitsDir = "commits"
)

// Offsets is the entry DIR/offsets/N: batch N covers exactly the byte ranges
// Sources, in order. The last range is where the source stands after the
// batch (it is listed even when empty, so that an empty batch says so too).
type Offsets struct {
	BatchID   uint64  `json:"batchId"`
	BatchTime int64   `json:"batchTime"`
	Sources   []Range `json:"sources"`
	Format    string  `json:"format"`
	// Config is the fingerprint of the source's configuration: a restart
	// with another one is refused.
	Config string `json:"config"`
	// Group, of a copy of a scaled-out pipeline (sbatch kafka://...
	// --group G --scale-out), is the consumer group the batch was read
	// in; nil otherwise.
	Group *Group `json:"group,omitempty"`
}

// Group is what a batch of a scaled-out Kafka source says of its consumer
// group (docs/scale-out.md). The group, not this directory, is where each
// partition goes on: a batch's Sources are the partitions this copy owned
// when it read the batch, and their ends go to the group in the Kafka
// transaction of the first stage downstream that keeps one (a stateful
// stage's changelog, ssink --kafka), with Generation and Member, so that
// the broker refuses them from a copy the group has moved on from.
type Group struct {
	ID         string   `json:"id"`
	Generation int32    `json:"generation"`
	Member     string   `json:"member"`
	Seeds      []string `json:"seeds"`  // the brokers, HOST:PORT
	Topics     []string `json:"topics"` // the source topics
	// PartitionField is the record field that holds each record's source
	// partition (sbatch --meta-field PREFIX: PREFIXpartition); "" if the
	// records do not carry it.
	PartitionField string `json:"partitionField,omitempty"`
	// Partitions are the counts of partitions of Topics, in order: a
	// stage keeping state per partition makes its changelog topic as wide.
	Partitions []int32 `json:"partitions"`
	// Owned are the partitions ("TOPIC/PARTITION") this copy owned when
	// it read the batch: a stage keeping state per partition restores
	// those it did not own before, and lets go of those it no longer owns.
	Owned []string `json:"owned"`
}

// SplitPartition splits the name of a Kafka partition as a Range's Path
// and Group.Owned give it, "TOPIC/PARTITION".
func SplitPartition(name string) (topic string, p int32, ok bool) {
	i := strings.LastIndexByte(name, '/')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	return name[:i], int32(n), err == nil && n >= 0
}

// OffsetsClaim is the file, in the checkpoint directory, of the stage that
// commits a scaled-out source's offsets to its group in its own Kafka
// transaction (Group). It holds the stage's name. Without it sbatch commits
// them itself once the sink has committed the batch (at least once).
const OffsetsClaim = "group-offsets"

// AssignmentFile is the file, in the checkpoint directory, where sbatch
// --scale-out says which partitions the group gives this copy (an
// Assignment), rewritten at each change. A batch begun after it was
// written holds records of those partitions only, of that generation: a
// stage keeping state per partition reads it at each batch's beginning.
const AssignmentFile = "assignment"

// Assignment is the content of AssignmentFile.
type Assignment struct {
	Generation int32    `json:"generation"`
	Owned      []string `json:"owned"` // "TOPIC/PARTITION", sorted
}

// SinkFile is the file, in the checkpoint directory, where ssink
// --checkpoint names its destination ("kafka", "postgres", ...) as it
// starts: a stage keeping state per partition behind a scaled-out source
// hands its changelog records to a Kafka sink's transaction (ChangesDir)
// instead of committing its own.
const SinkFile = "sink"

// ChangesDir holds, per batch N, the file N of a stateful stage's
// changelog records for the batch (Changes), which ssink --kafka writes in
// the batch's transaction with the batch's messages and the group's
// offsets: state, position and output commit together, as Kafka Streams'
// do. The sink removes the file once the batch is committed.
const ChangesDir = "changes"

// Changes is the content of a file of ChangesDir.
type Changes struct {
	Topic   string   `json:"topic"` // the changelog topic
	Changes []Change `json:"changes"`
}

// Change is a changelog record: Value nil is a tombstone.
type Change struct {
	Partition int32  `json:"p"`
	Key       []byte `json:"k"`
	Value     []byte `json:"v"`
}

// ScaleOutFile is the file, in the checkpoint directory, that sbatch
// --scale-out writes before anything else (a Group, as JSON, without what
// changes: generation, member, partitions owned): the
// directory is one copy's of a pipeline that runs as many, whose sinks then
// share their tables with the other copies' (each keeps its own record of
// the batches it wrote).
const ScaleOutFile = "scale-out"

// Range is the bytes [Start, End) of the file Path (an absolute path).
type Range struct {
	Path  string `json:"path"`
	Start int64  `json:"start"`
	End   int64  `json:"end"`
}

// Commit is the entry DIR/commits/N.
type Commit struct {
	BatchID   uint64 `json:"batchId"`
	BatchTime int64  `json:"batchTime"`
}

// Log is one of the logs of a checkpoint directory: a file per batch id.
type Log struct {
	dir string
}

// OpenLog opens (creating it if needed) the log name (OffsetsDir or
// CommitsDir) of the checkpoint directory root for writing, locks it for the
// life of the process (a second process is refused with an *InUseError),
// and removes temporary files a crash left there.
func OpenLog(root, name string) (*Log, error) {
	l := &Log{dir: filepath.Join(root, name)}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := lockDir(root, l.dir); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			os.Remove(filepath.Join(l.dir, e.Name()))
		}
	}
	return l, nil
}

// ReadLog returns the log name of root for reading, without creating it:
// Exists tells whether it is there.
func ReadLog(root, name string) *Log { return &Log{dir: filepath.Join(root, name)} }

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Exists reports whether the log's directory exists.
func (l *Log) Exists() bool {
	fi, err := os.Stat(l.dir)
	return err == nil && fi.IsDir()
}

// Path is the file of entry id.
func (l *Log) Path(id uint64) string { return filepath.Join(l.dir, strconv.FormatUint(id, 10)) }

// Write writes entry id, v as JSON, atomically and durably.
func (l *Log) Write(id uint64, v any) error { return l.write(id, v, true) }

// write is Write; without sync, the entry is replaced whole or not at all
// if the process dies, but not synced (writeAtomic).
func (l *Log) write(id uint64, v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	err = writeAtomic(l.Path(id), 0o644, sync, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint: writing %s: %w", l.Path(id), err)
	}
	return nil
}

// Read reads entry id into v. A missing entry is an error satisfying
// errors.Is(err, os.ErrNotExist).
func (l *Log) Read(id uint64, v any) error {
	b, err := os.ReadFile(l.Path(id))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w: %v", l.Path(id), ErrCorrupt, err)
	}
	return nil
}

// List returns the ids of the entries, in increasing order; none if the
// directory does not exist.
func (l *Log) List() ([]uint64, error) {
	ents, err := os.ReadDir(l.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		if id, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && strconv.FormatUint(id, 10) == e.Name() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Latest returns the highest id in the log; ok is false if it has none.
func (l *Log) Latest() (id uint64, ok bool, err error) {
	ids, err := l.List()
	if err != nil || len(ids) == 0 {
		return 0, false, err
	}
	return ids[len(ids)-1], true, nil
}

// Purge removes the entries with ids below before.
func (l *Log) Purge(before uint64) error {
	ids, err := l.List()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id >= before {
			break
		}
		if err := os.Remove(l.Path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("checkpoint: purging: %w", err)
		}
	}
	return nil
}

// LastCommit returns the last batch committed in the checkpoint directory
// root: the highest id in DIR/commits. ok is false if there is none.
func LastCommit(root string) (id uint64, ok bool, err error) {
	return ReadLog(root, CommitsDir).Latest()
}

// Committer is a sink's part of the checkpoint directory: it commits each
// batch once it is out, and tells the batches an earlier run already
// committed, which the sink skips (idempotence by batch id).
type Committer struct {
	log  *Log
	last uint64 // the last commit, if any
	any  bool

	// Copy is set by a sink whose destination keeps its own record of the
	// last batch it committed, in the batch's own transaction (the SQL
	// sinks' dstream_commits row, the Kafka sink's transactional marker),
	// and skips a replayed batch by it. The commit file is then a copy,
	// for the source and the stateful stages, written atomically but not
	// synced: a process that dies leaves it whole or absent, and if a crash
	// of the machine loses it, the source replays that batch and the
	// destination skips it. This saves two fsyncs a batch (docs/guarantees.md).
	Copy bool
}

// KeepCommits is how many commits before the last one Commit leaves behind.
const KeepCommits = 100

// ErrNotCommitted reports a batch at or below the last commit that is not
// the batch committed under its id: the source started its ids again.
var ErrNotCommitted = errors.New("checkpoint: batch below the last commit was never committed")

// OpenCommitter opens DIR/commits, creating it: its existence tells the
// source that a sink commits into this checkpoint.
func OpenCommitter(root string) (*Committer, error) {
	l, err := OpenLog(root, CommitsDir)
	if err != nil {
		return nil, err
	}
	c := &Committer{log: l}
	if c.last, c.any, err = l.Latest(); err != nil {
		return nil, err
	}
	return c, nil
}

// Dir is the commits directory.
func (c *Committer) Dir() string { return c.log.Dir() }

// Last returns the last commit; ok is false if there is none.
func (c *Committer) Last() (id uint64, ok bool) { return c.last, c.any }

// Done reports whether batch id, of batch time t, is at or below the last
// commit: it is out already and the sink skips it. It must be the batch
// committed under that id (same time): anything else means that the source
// numbers its batches from 0 again, and is an ErrNotCommitted.
func (c *Committer) Done(id uint64, t int64) (bool, error) {
	if !c.any || id > c.last {
		return false, nil
	}
	var e Commit
	err := c.log.Read(id, &e)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("%w: batch %d arrived after batch %d was committed in %s, and it was not", ErrNotCommitted, id, c.last, c.log.Dir())
	case err != nil:
		return false, err
	case e.BatchTime != t:
		return false, fmt.Errorf("%w: batch %d (time %d) arrived, but the batch %d committed in %s had time %d", ErrNotCommitted, id, t, id, c.log.Dir(), e.BatchTime)
	}
	return true, nil
}

// Commit writes DIR/commits/id, and now and then removes the commits more
// than KeepCommits before it.
func (c *Committer) Commit(id uint64, t int64) error {
	if err := c.log.write(id, Commit{BatchID: id, BatchTime: t}, !c.Copy); err != nil {
		return err
	}
	if !c.any || id > c.last {
		c.last, c.any = id, true
	}
	if id%16 == 0 && id > KeepCommits {
		return c.log.Purge(id - KeepCommits)
	}
	return nil
}

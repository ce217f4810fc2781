// Package checkpoint keeps a pipeline's progress on disk, in the directory
// given with --checkpoint (docs/design.md, Checkpoint). Each stage writes only its own
// part of it; this package gives them atomic writes and, for stateful stages
// (sreduce --running, swindow), versioned state snapshots:
//
//	DIR/state/NAME/N.snapshot   the state after batch N (the last Keep of them)
//
// Every file is written atomically: a temporary file in the same directory,
// fsync, rename over the final name, fsync of the directory. A crash leaves
// the old file or the new one, never a mix; a leftover temporary file is
// removed when the store is opened again.
//
// A snapshot file is:
//
//	magic    "DSSTATE" and a version byte (1)
//	header   msgpack map: "batch" (uint, the last batch the state includes),
//	         "time" (int, that batch's time in unix ms), "fingerprint" (str,
//	         the configuration that wrote it)
//	data     the stage's state, opaque here
//	crc      4 bytes, big-endian CRC-32C of everything before it
//
// A snapshot is read back only by the configuration that wrote it: Load and
// Check compare fingerprints and refuse another with a *MismatchError, so
// that a checkpoint is never silently misread.
package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dstream/dstream/record"
)

// Magic and Version start every snapshot file.
const (
	Magic   = "DSSTATE"
	Version = 1
)

const suffix = ".snapshot"

// Errors.
var (
	ErrCorrupt = errors.New("checkpoint: corrupt snapshot")
	ErrVersion = errors.New("checkpoint: unsupported snapshot version")
)

// MismatchError reports a snapshot written by another configuration.
type MismatchError struct {
	Path string // the snapshot file
	Have string // fingerprint in the file
	Want string // fingerprint of this run
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("checkpoint %s was written by a different configuration (%s), not this one (%s)",
		filepath.Dir(e.Path), e.Have, e.Want)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteFile writes data to path atomically: see WriteAtomic.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, perm, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic writes a file atomically: write writes its content to a
// temporary file in the same directory, which is synced, renamed over path,
// and the directory synced so that the rename itself survives a crash. If
// write or anything else fails, path is left as it was.
func WriteAtomic(path string, perm os.FileMode, write func(w io.Writer) error) error {
	return writeAtomic(path, perm, true, write)
}

// writers are WriteAtomic's buffers: one of 256 KiB per write would cost
// more than writing a commit file does.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 256<<10) }}

// writeAtomic is WriteAtomic; without sync it neither syncs the file nor
// the directory: the file is still replaced whole or not at all when the
// process dies (kill -9), but a crash of the machine may lose it (or, on
// a file system that does not order its writes, leave it empty).
func writeAtomic(path string, perm os.FileMode, sync bool, write func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tmpPrefix+base+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(f)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if !sync {
		return nil
	}
	return SyncDir(dir)
}

// tmpPrefix starts the names of temporary files; a leading dot keeps them
// out of listings and apart from real entries.
const tmpPrefix = ".tmp-"

// SyncDir makes the entries of dir durable (a file created or renamed in
// it), as after an atomic rename.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Header describes a snapshot.
type Header struct {
	Batch       uint64 // the last batch the state includes
	Time        int64  // its batch time, unix ms
	Fingerprint string // the configuration that wrote it
}

// Snapshot is a stateful stage's state after a batch.
type Snapshot struct {
	Header
	Data []byte
}

// Store keeps the snapshots of one stage under DIR/state/NAME.
type Store struct {
	dir  string
	root string
	// Keep is how many snapshots Save leaves behind (at least 1): the one it
	// writes and the newest ones before it. Save also keeps every snapshot
	// a restart may need: from the last committed batch (DIR/commits) on,
	// since a restart replays the batches after the last commit and the
	// stage may have gone far ahead of the sink.
	Keep int
	// Replaying is set when the pipeline's source replays from this
	// checkpoint (its stream carries the checkpoint): until the sink's
	// first commit, a restart replays from batch 0 and needs no snapshot,
	// but once the sink has made DIR/commits every snapshot after its
	// last commit is needed, so none is purged before the sink has begun.
	Replaying bool
}

// ValidName reports whether name can name a stage's state directory: letters,
// digits, '.', '_' and '-', not starting with a dot.
func ValidName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if name[0] == '.' {
		return fmt.Errorf("name %q starts with a dot", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %q: only letters, digits, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

// OpenStore opens (creating it if needed) the state directory of stage name
// in the checkpoint directory root, locks it for the life of the process
// (a second process is refused with an *InUseError), and removes temporary
// files a crash left there.
func OpenStore(root, name string) (*Store, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "state", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := lockDir(root, dir); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return &Store{dir: dir, root: root, Keep: 2}, nil
}

// Dir is the store's directory, DIR/state/NAME.
func (s *Store) Dir() string { return s.dir }

// Path is the file of the snapshot after batch id.
func (s *Store) Path(id uint64) string {
	return filepath.Join(s.dir, strconv.FormatUint(id, 10)+suffix)
}

// List returns the batch ids of the snapshots in the store, in increasing
// order.
func (s *Store) List() ([]uint64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		num, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok {
			continue
		}
		if id, err := strconv.ParseUint(num, 10, 64); err == nil && strconv.FormatUint(id, 10) == num {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Save writes the snapshot after batch h.Batch atomically, its state
// written by write (a block at a time: it need not be in memory whole),
// then purges: it keeps that snapshot, the Keep-1 newest before it and
// those from the last committed batch on, and removes any newer one, which
// belongs to a history that a replay of this batch has replaced.
func (s *Store) Save(h Header, write func(w io.Writer) error) error {
	err := WriteAtomic(s.Path(h.Batch), 0o644, func(w io.Writer) error {
		crc := crc32.New(castagnoli)
		mw := io.MultiWriter(w, crc)
		if _, err := mw.Write(appendHeader(nil, h)); err != nil {
			return err
		}
		if err := write(mw); err != nil {
			return err
		}
		_, err := w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint: saving the state after batch %d: %w", h.Batch, err)
	}
	ids, err := s.List()
	if err != nil {
		return err
	}
	kept := 1
	var keepFrom *uint64 // the oldest snapshot a restart may need, read when one is to go
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		switch {
		case id == h.Batch:
			continue
		case id < h.Batch && kept < max(s.Keep, 1):
			kept++
			continue
		case id < h.Batch:
			if keepFrom == nil {
				from, err := s.keepFrom()
				if err != nil {
					return err
				}
				keepFrom = &from
			}
			if id >= *keepFrom {
				continue
			}
		}
		if err := os.Remove(s.Path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("checkpoint: purging: %w", err)
		}
	}
	return nil
}

// keepFrom is the oldest snapshot a restart may need: that of the last
// committed batch (Restore), and as a margin that of the commit before it,
// so that a commit file lost after the fact (removed by hand, or a sink's
// database ahead of its checkpoint) still finds its state. Before the
// sink's first commit, with a replaying source or a sink that has begun
// (DIR/commits exists), all are kept, since the next commit may be of any
// batch the stage has passed on; otherwise none is needed beyond Keep
// (noCommits).
func (s *Store) keepFrom() (uint64, error) {
	commits := ReadLog(s.root, CommitsDir)
	ids, err := commits.List()
	switch {
	case err != nil:
		return 0, err
	case len(ids) >= 2:
		return ids[len(ids)-2], nil
	case len(ids) == 1 || s.Replaying || commits.Exists():
		return 0, nil
	}
	return noCommits, nil
}

// noCommits is keepFrom when no restart needs a snapshot beyond Keep.
const noCommits = math.MaxUint64

// Load reads the snapshot after batch id, and checks that it was written by
// the configuration fingerprint.
func (s *Store) Load(id uint64, fingerprint string) (*Snapshot, error) {
	path := s.Path(id)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	snap, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if snap.Batch != id {
		return nil, fmt.Errorf("%s: %w: it holds the state after batch %d", path, ErrCorrupt, snap.Batch)
	}
	if snap.Fingerprint != fingerprint {
		return nil, &MismatchError{Path: path, Have: snap.Fingerprint, Want: fingerprint}
	}
	return snap, nil
}

// Check reads only the header of the snapshot after batch id and checks its
// fingerprint, without reading the whole state.
func (s *Store) Check(id uint64, fingerprint string) error {
	path := s.Path(id)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	h, _, err := decodeHeader(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if h.Fingerprint != fingerprint {
		return &MismatchError{Path: path, Have: h.Fingerprint, Want: fingerprint}
	}
	return nil
}

// Encode appends the snapshot file of snap to dst, as Save writes it.
func Encode(dst []byte, snap *Snapshot) []byte {
	start := len(dst)
	dst = appendHeader(dst, snap.Header)
	dst = append(dst, snap.Data...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// appendHeader appends the magic, version and header map.
func appendHeader(dst []byte, h Header) []byte {
	dst = append(dst, Magic...)
	dst = append(dst, Version)
	dst = record.AppendMapHeader(dst, 3)
	dst = record.AppendString(dst, "batch")
	dst = record.AppendUint(dst, h.Batch)
	dst = record.AppendString(dst, "time")
	dst = record.AppendInt(dst, h.Time)
	dst = record.AppendString(dst, "fingerprint")
	return record.AppendString(dst, h.Fingerprint)
}

// Decode parses a snapshot file. Data points into b.
func Decode(b []byte) (*Snapshot, error) {
	if len(b) >= len(Magic)+1+4 {
		body := b[:len(b)-4]
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(body):]) {
			if _, _, err := decodeHeader(b); err != nil {
				return nil, err // not a snapshot, or another version: say so
			}
			return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
		}
		b = body
	}
	snap, n, err := decodeHeader(b)
	if err != nil {
		return nil, err
	}
	snap.Data = b[n:]
	return snap, nil
}

// decodeHeader reads the magic, version and header map at the start of b,
// and returns their length.
func decodeHeader(b []byte) (*Snapshot, int, error) {
	if !bytes.HasPrefix(b, []byte(Magic)) || len(b) < len(Magic)+1 {
		return nil, 0, fmt.Errorf("%w: not a dstream state snapshot", ErrCorrupt)
	}
	if v := b[len(Magic)]; v != Version {
		return nil, 0, fmt.Errorf("%w %d (this program reads version %d)", ErrVersion, v, Version)
	}
	i := len(Magic) + 1
	n, err := record.Skip(b[i:])
	if err != nil {
		return nil, 0, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	var snap Snapshot
	var f record.Fields
	f.Reset(b[i : i+n])
	seen := 0
	for f.Next() {
		v := f.Value()
		var ok bool
		switch string(f.Key()) {
		case "batch":
			if x, isInt := record.Int(v); isInt && x >= 0 {
				snap.Batch, ok = uint64(x), true
			} else if record.KindOf(v) == record.KindUint {
				snap.Batch, ok = binary.BigEndian.Uint64(v[1:]), true
			}
		case "time":
			snap.Time, ok = record.Int(v)
		case "fingerprint":
			var s []byte
			s, ok = record.Str(v)
			snap.Fingerprint = string(s)
		default:
			continue
		}
		if !ok {
			return nil, 0, fmt.Errorf("%w: header field %q", ErrCorrupt, f.Key())
		}
		seen++
	}
	if f.Err() != nil || seen != 3 {
		return nil, 0, fmt.Errorf("%w: header", ErrCorrupt)
	}
	return &snap, i + n, nil
}

// ErrNoState reports that the state a restart needs is not in the store.
var ErrNoState = errors.New("checkpoint: no state to restore")

// Restore finds the snapshot a stateful stage restores when the first batch
// to arrive is first, and loads it. snap is nil when there is nothing to
// restore: first is 0, before which nothing comes, or the sink has
// committed nothing (DIR/commits is empty), so the source replays from its
// first batch. A store of another fingerprint is refused even then, rather
// than written over.
//
// Otherwise the snapshot is exactly that of the last committed batch C: the
// sink committed C after every stage before it had passed C on, and a stage
// passes a batch on only after saving the state that includes it (a stage
// writes only batch ids it received), so the snapshot of C exists and holds
// everything up to what the sink has. The source replays from C+1. A
// missing snapshot of C is an ErrNoState: the state is lost, and restoring
// an older one would silently drop the batches between from every later
// result.
func (s *Store) Restore(first uint64, fingerprint string) (*Snapshot, error) {
	ids, err := s.List()
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		if err := s.Check(ids[len(ids)-1], fingerprint); err != nil {
			return nil, err
		}
	}
	c, ok, err := LastCommit(s.root)
	if err != nil || first == 0 || !ok {
		return nil, err
	}
	if first <= c {
		return nil, fmt.Errorf("%w: batch %d arrived first, but the sink of %s committed up to batch %d: the source does not replay from this checkpoint", ErrNoState, first, s.root, c)
	}
	if _, found := slices.BinarySearch(ids, c); !found {
		return nil, fmt.Errorf("%w: the sink committed up to batch %d, and the state after it, %s, is missing", ErrNoState, c, s.Path(c))
	}
	return s.Load(c, fingerprint)
}

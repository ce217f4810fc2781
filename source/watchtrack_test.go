package source

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
)

// watchDir makes a directory with the files name=content, each a second
// older than the next, in the order given.
func watchDir(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < len(files); i += 2 {
		drop(t, dir, files[i], files[i+1], time.Unix(int64(1000+i), 0))
	}
	return dir
}

func drop(t *testing.T, dir, name, content string, mod time.Time) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func openWatch(t *testing.T, o Options) *watchTracker {
	t.Helper()
	o.Format = "lines"
	o.Interval = 100
	o.Once = true
	tr, err := openWatchTracker(o)
	if err != nil {
		t.Fatal(err)
	}
	return tr.(*watchTracker)
}

// next takes the next new file of the directory; "" when none is left.
func next(t *testing.T, src Source) (string, Input) {
	t.Helper()
	in, ok, err := src.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "", in
	}
	in.R.Close()
	return filepath.Base(in.Name), in
}

func readBatch(t *testing.T, ck string, id uint64) []checkpoint.Range {
	t.Helper()
	var e checkpoint.Offsets
	if err := checkpoint.ReadLog(ck, checkpoint.OffsetsDir).Read(id, &e); err != nil {
		t.Fatal(err)
	}
	for i := range e.Sources {
		e.Sources[i].Path = filepath.Base(e.Sources[i].Path)
	}
	return e.Sources
}

// TestWatchTrackerLog: offsets/N lists the files batch N read, in the order
// read, a batch cut inside a file ending its range there; an empty batch
// before the first file lists none; a restart replays the batches not
// committed, goes on in the file the last batch ended in, and then reads
// only the files no batch read.
func TestWatchTrackerLog(t *testing.T) {
	dir := watchDir(t, "b.log", "b1\n", "a.log", "a1\na2\n")
	ck := t.TempDir()
	o := Options{Inputs: []string{"watch://" + dir}, Checkpoint: ck}
	tr := openWatch(t, o)
	k := &cursor{t: tr, pos: Position{Stream: -1}}
	write := func(id uint64, want ...checkpoint.Range) {
		t.Helper()
		if err := k.write(id, int64(id)); err != nil {
			t.Fatal(err)
		}
		if got := readBatch(t, ck, id); !reflect.DeepEqual(got, want) && (len(got) > 0 || len(want) > 0) {
			t.Errorf("batch %d: %v, want %v", id, got, want)
		}
	}
	write(0) // nothing read yet
	src := tr.More(nil, io.Discard)
	name, in := next(t, src)
	if name != "b.log" {
		t.Fatalf("first file %s, want b.log (the oldest)", name)
	}
	k.taken(&chunk{stream: in.Stream, n: 1, ends: []int64{3}, done: true, size: 3})
	name, in = next(t, src)
	if name != "a.log" {
		t.Fatalf("second file %s, want a.log", name)
	}
	c := &chunk{stream: in.Stream, n: 2, ends: []int64{3, 6}}
	k.record(c, 0)
	write(1, rg("b.log", 0, 3), rg("a.log", 0, 3)) // cut inside a.log
	if name, _ := next(t, src); name != "" {
		t.Fatalf("a third file %s", name)
	}

	// Batch 0 committed; 1 is replayed, and a.log goes on from byte 3.
	committer, err := checkpoint.OpenCommitter(ck)
	if err != nil {
		t.Fatal(err)
	}
	if err := committer.Commit(0, 0); err != nil {
		t.Fatal(err)
	}
	drop(t, dir, "c.log", "c1\n", time.Unix(900, 0)) // older, but new
	tr = openWatch(t, o)
	if got, want := tr.Replay(), []stage.Batch{{ID: 1, Time: 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("replay %v, want %v", got, want)
	}
	at, nextID, _, _ := tr.Resume()
	ins, err := tr.Inputs()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range ins {
		b, _ := io.ReadAll(in.R)
		in.R.Close()
		got = append(got, filepath.Base(in.Name)+":"+string(b))
	}
	if want := []string{"b.log:b1\n", "a.log:a1\n", "a.log:a2\n"}; !reflect.DeepEqual(got, want) {
		t.Errorf("inputs %q, want %q", got, want)
	}
	if at.Off != 3 || tr.files[at.Stream] != filepath.Join(dir, "a.log") || nextID != 2 {
		t.Errorf("resume at %v (%s), batch %d; want a.log at 3, batch 2", at, tr.files[at.Stream], nextID)
	}
	src = tr.More(nil, io.Discard)
	if name, _ := next(t, src); name != "c.log" {
		t.Errorf("after the restart: %q, want c.log alone", name)
	}
	if name, _ := next(t, src); name != "" {
		t.Errorf("after the restart: %q again", name)
	}
}

// TestWatchTrackerMaxFiles: a batch begins at most MaxFiles new files; the
// watcher takes the next once a batch is written.
func TestWatchTrackerMaxFiles(t *testing.T) {
	dir := watchDir(t, "1", "x\n", "2", "y\n", "3", "z\n")
	tr := openWatch(t, Options{Inputs: []string{"watch://" + dir}, MaxFiles: 2})
	k := &cursor{t: tr, pos: Position{Stream: -1}}
	src := tr.More(nil, io.Discard)
	for _, want := range []string{"1", "2"} {
		name, in := next(t, src)
		if name != want {
			t.Fatalf("got %s, want %s", name, want)
		}
		k.taken(&chunk{stream: in.Stream, n: 1, ends: []int64{2}, done: true, size: 2})
	}
	if tr.mayTake() {
		t.Fatal("a third file in the batch")
	}
	if err := k.write(0, 0); err != nil {
		t.Fatal(err)
	}
	if !tr.mayTake() {
		t.Fatal("no file for the next batch")
	}
	if name, _ := next(t, src); name != "3" {
		t.Errorf("got %s, want 3", name)
	}
}

// TestWatchTrackerSeenAfterPurge: the files of purged entries stay read,
// by the compact log offsets/files.
func TestWatchTrackerSeenAfterPurge(t *testing.T) {
	dir := watchDir(t, "old", "x\n")
	ck := t.TempDir()
	o := Options{Inputs: []string{"watch://" + dir}, Checkpoint: ck}
	tr := openWatch(t, o)
	k := &cursor{t: tr, pos: Position{Stream: -1}}
	src := tr.More(nil, io.Discard)
	_, in := next(t, src)
	k.taken(&chunk{stream: in.Stream, n: 1, ends: []int64{2}, done: true, size: 2})
	committer, err := checkpoint.OpenCommitter(ck)
	if err != nil {
		t.Fatal(err)
	}
	for id := range uint64(2 * purgeEvery) {
		if id == 1 {
			// From batch 1 on, the entries list mid only.
			drop(t, dir, "mid", "y\n", time.Unix(1500, 0))
			_, in := next(t, src)
			k.taken(&chunk{stream: in.Stream, n: 1, ends: []int64{2}, done: true, size: 2})
		}
		if err := k.write(id, int64(id)); err != nil {
			t.Fatal(err)
		}
		if err := committer.Commit(id, int64(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(ck, checkpoint.OffsetsDir, "0")); !os.IsNotExist(err) {
		t.Fatalf("offsets/0 not purged: %v", err)
	}
	drop(t, dir, "new", "z\n", time.Unix(2000, 0))
	tr = openWatch(t, o)
	if ins, err := tr.Inputs(); err != nil || len(ins) != 1 {
		t.Fatalf("inputs %v, %v: want the rest of mid", ins, err)
	}
	src = tr.More(nil, io.Discard)
	if name, _ := next(t, src); name != "new" {
		t.Errorf("got %q, want new", name)
	}
	if name, _ := next(t, src); name != "" {
		t.Errorf("got %q again", name)
	}
}

// TestWatchTrackerReplayCleaned: an empty batch whose position is at the
// end of a file (one of a gap in event time, or of an idle interval)
// lists that file with an empty range; --clean deletes the file once the
// batch that read it is committed, before that empty batch is. Its replay
// needs none of the file, so that it is gone is no error. (Found by the
// crash matrix, variant watch-clean.)
func TestWatchTrackerReplayCleaned(t *testing.T) {
	dir := watchDir(t, "a.log", "a1\n")
	ck := t.TempDir()
	o := Options{Inputs: []string{"watch://" + dir}, Checkpoint: ck, Clean: "delete"}
	tr := openWatch(t, o)
	k := &cursor{t: tr, pos: Position{Stream: -1}}
	_, in := next(t, tr.More(nil, io.Discard))
	k.taken(&chunk{stream: in.Stream, n: 1, ends: []int64{3}, done: true, size: 3})
	if err := k.write(0, 0); err != nil {
		t.Fatal(err)
	}
	committer, err := checkpoint.OpenCommitter(ck)
	if err != nil {
		t.Fatal(err)
	}
	if err := committer.Commit(0, 0); err != nil {
		t.Fatal(err)
	}
	if err := k.write(1, 1); err != nil { // empty, and cleans a.log
		t.Fatal(err)
	}
	if got, want := readBatch(t, ck, 1), []checkpoint.Range{rg("a.log", 3, 3)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("batch 1: %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.log")); !os.IsNotExist(err) {
		t.Fatalf("a.log not cleaned: %v", err)
	}

	tr = openWatch(t, o)
	if got, want := tr.Replay(), []stage.Batch{{ID: 1, Time: 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("replay %v, want %v", got, want)
	}
	ins, err := tr.Inputs()
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || !ins[0].Replay || !ins[0].ReplayEnd {
		t.Fatalf("inputs %+v: want the empty range of batch 1", ins)
	}
	if b, _ := io.ReadAll(ins[0].R); len(b) > 0 {
		t.Errorf("batch 1 replays %q", b)
	}
	ins[0].R.Close()
}

package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/framing"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dstream/dstream/internal/frametest"
)

// TestRestart stops swindow after each batch in turn (its input cut off, as
// when the stage before it crashes) and starts it again on the same
// checkpoint with the batches after: the two runs write what one
// uninterrupted run writes, in every kind of window.
func TestRestart(t *testing.T) {
	byBatch := seconds("a=1 b=2", "a=3", "", "c=4 a=1", "a=5", "b=6 b=1", "", "c=2")
	byEvent := evBatches("a@1 b@2 a@12", "a@14 b@3", "a@16", "a@4 b@21", "", "c@33 a@29", "b@41")
	for _, c := range []struct {
		bs   []batch
		args []string
	}{
		{byBatch, []string{"-l", "3s", "-s", "1s", "-k", "k", "--count", "--sum", "v"}},
		{byBatch, []string{"-l", "2s", "-s", "1s", "-k", "k", "--max", "v"}},
		{byBatch, []string{"-l", "2s"}},
		{byBatch, []string{"-l", "4s", "-s", "2s", "--count"}},
		{byBatch, []string{"-l", "2s", "-s", "3s", "-k", "k", "--count", "--sum", "v"}},
		{byBatch, []string{"-l", "1s", "-s", "3s"}},
		{byBatch, []string{"-l", "3s", "-s", "2s", "-k", "k", "--max", "v"}},
		{byEvent, []string{"--time-field", "t", "--watermark", "5s", "-l", "10s", "-k", "k", "--count"}},
		{byEvent, []string{"--time-field", "t", "--watermark", "5s", "-l", "10s", "-s", "5s", "-k", "k", "--count", "--mode", "update"}},
		// Sliced: a span kept from batch to batch, subtracting and Two-Stacks.
		{byEvent, []string{"--time-field", "t", "--watermark", "5s", "-l", "10s", "-s", "2s", "-k", "k", "--count", "--distinct", "t"}},
		{byEvent, []string{"--time-field", "t", "--watermark", "12s", "-l", "9s", "-s", "3s", "-k", "k", "--max", "t", "--count"}},
		{byEvent, []string{"--time-field", "t", "-l", "6s", "-s", "2s", "-k", "k", "--min", "t", "--mode", "complete"}},
		// Ordered: first and last, by arrival, over slices of event time.
		{byEvent, []string{"--time-field", "t", "--watermark", "12s", "-l", "9s", "-s", "3s", "-k", "k", "--first", "t", "--last", "t"}},
		{byEvent, []string{"--time-field", "t", "--watermark", "5s", "-l", "10s", "-s", "5s", "--last", "t", "--count", "--mode", "update"}},
		{byBatch, []string{"-l", "4s", "-s", "2s", "-k", "k", "--max", "v", "--count"}},
		{byEvent, []string{"--time-field", "t", "-l", "10s", "-k", "k", "--count", "--collect", "t", "--mode", "complete"}},
		{byEvent, []string{"--time-field", "t", "--watermark", "10s", "--session", "5s", "-k", "k", "--count", "--collect", "t"}},
		{byEvent, []string{"--time-field", "t", "--session", "3s", "--count", "--mode", "update"}},
		{byEvent, []string{"--time-field", "t", "--watermark", "10s", "--session-gap-expr", `k == "a" ? "5s" : k == "c" ? "0s" : "2s"`, "-k", "k", "--count", "--collect", "t"}},
	} {
		whole := swindow(t, c.bs, append(c.args, "--checkpoint", t.TempDir())...)
		for k := range len(c.bs) - 1 {
			dir := sinkDir(t)
			args := append(c.args, "--checkpoint", dir)
			var o, e bytes.Buffer
			if code := command.Run(append([]string{"swindow"}, args...), bytes.NewReader(frametest.Cut(t, frames(c.bs[:k+1]))), &o, &e); code != 1 {
				t.Fatalf("swindow %s, cut after batch %d: exit %d, want 1: %s", strings.Join(args, " "), k, code, e.String())
			}
			first := frametest.RenderCut(t, o.Bytes())
			second := swindow(t, c.bs[replayFrom(t, dir, o.Bytes()):], args...)
			if first+second != whole {
				t.Errorf("swindow %s, restarted after batch %d:\n%s--- then\n%s\nwant:\n%s", strings.Join(c.args, " "), k, first, second, whole)
			}
			// A run that ends its stream (its input read to the end) and a
			// run that goes on from its checkpoint: the same.
			dir = sinkDir(t)
			args = append(c.args, "--checkpoint", dir)
			var o2, e2 bytes.Buffer
			if code := command.Run(append([]string{"swindow"}, args...), bytes.NewReader(stream(t, c.bs[:k+1])), &o2, &e2); code != 0 {
				t.Fatalf("swindow %s: exit %d: %s", strings.Join(args, " "), code, e2.String())
			}
			first = frametest.Render(t, o2.Bytes())
			second = swindow(t, c.bs[replayFrom(t, dir, o2.Bytes()):], args...)
			if first+second != whole {
				t.Errorf("swindow %s, run to batch %d, then on:\n%s--- then\n%s\nwant:\n%s", strings.Join(c.args, " "), k, first, second, whole)
			}
		}
	}
}

// sinkDir is a checkpoint directory where a sink with --checkpoint has
// begun (DIR/commits exists, nothing committed yet): the stages then keep
// every snapshot until the first commit, which may be of any batch they
// passed on (a window of 3 s every 3 batches leaves two batches behind the
// last).
func sinkDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, checkpoint.CommitsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// replayFrom commits the last batch of out, a run's output, in dir, as the
// sink would, and returns the batch the source replays from: the one after.
func replayFrom(t *testing.T, dir string, out []byte) int {
	id, ok := frametest.LastBatch(out)
	if !ok {
		return 0
	}
	frametest.Commit(t, dir, id)
	return int(id) + 1
}

// TestRestartRefusesOtherConfig: a checkpoint of one window is not another's.
func TestRestartRefusesOtherConfig(t *testing.T) {
	dir := t.TempDir()
	bs := seconds("a=1", "a=2")
	swindow(t, bs[:1], "-l", "2s", "-k", "k", "--count", "--checkpoint", dir)
	_, stderr, code := runSwindow(t, stream(t, bs[1:]), "-l", "4s", "-k", "k", "--count", "--checkpoint", dir)
	if code != 1 || !strings.Contains(stderr, "was written by") && !strings.Contains(stderr, "configuration") {
		t.Errorf("exit %d, %q; want exit 1 refusing the checkpoint", code, stderr)
	}
}

// firstSnapshot commits batch 0 in the checkpoint dir and returns the
// path of swindow's snapshot of it, the snapshot, and its fingerprint
// without the version (this one's, 4).
func firstSnapshot(t *testing.T, dir string) (string, *checkpoint.Snapshot, string) {
	t.Helper()
	frametest.Commit(t, dir, 0)
	path := filepath.Join(dir, "state", "swindow", "0.snapshot")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := checkpoint.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	fp, ok := strings.CutPrefix(snap.Fingerprint, "swindow/4 ")
	if !ok {
		t.Fatalf("fingerprint %q: want swindow/4 first", snap.Fingerprint)
	}
	return path, snap, fp
}

// TestRestartRefusesOldState: a state saved in the layout of version 1 (a
// codec of uvarints, before the msgpack of agg's snapshots) is refused
// with the configuration's message, never misread.
func TestRestartRefusesOldState(t *testing.T) {
	dir := t.TempDir()
	bs := seconds("a=1", "a=2")
	args := []string{"-l", "2s", "-k", "k", "--count", "--checkpoint", dir}
	swindow(t, bs[:1], args...)
	path, snap, fp := firstSnapshot(t, dir)
	// Version 1's state after batch 0: the version byte, then uvarints and
	// varints: the flags started and pending, the next window's end (2 s),
	// the last id and time, the last window out and its end, and one held
	// batch (id 0, time 1 s, one record).
	rec := framing.AppendRecord(nil, []byte("\x81\xa1k\xa1a"))
	old := []byte{1, 5}
	old = binary.AppendVarint(old, 2000)
	old = binary.AppendUvarint(old, 0)
	old = binary.AppendVarint(old, 1000)
	old = append(old, 0, 0, 1, 0)
	old = binary.AppendVarint(old, 1000)
	old = append(old, 1, byte(len(rec)))
	old = append(old, rec...)
	snap.Fingerprint, snap.Data = "swindow/1 "+fp, old
	if err := os.WriteFile(path, checkpoint.Encode(nil, snap), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runSwindow(t, stream(t, bs[1:]), args...)
	if code != 1 || !strings.Contains(stderr, "was written by a different configuration (swindow/1 "+fp+"), not this one (swindow/4 "+fp+")") ||
		!strings.Contains(stderr, "swindow: hint: each window configuration keeps its own state") {
		t.Errorf("exit %d, %q; want exit 1 refusing the state of version 1", code, stderr)
	}
}

// TestRestartRefusesOldVersions: a state of version 2, which kept a table
// per fixed window of event time where version 3 keeps one per slice, or
// of version 3, which kept a table per window for first and last where
// version 4 keeps the arrivals of each slice's groups, is refused with the
// configuration's message, never misread.
func TestRestartRefusesOldVersions(t *testing.T) {
	for _, c := range []struct {
		version int
		args    []string
	}{
		{2, []string{"--count"}},
		{3, []string{"--first", "t", "--last", "t"}},
	} {
		dir := t.TempDir()
		bs := evBatches("a@1 b@2", "a@12")
		args := append([]string{"--time-field", "t", "-l", "10s", "-s", "5s", "-k", "k", "--checkpoint", dir}, c.args...)
		swindow(t, bs[:1], args...)
		path, snap, fp := firstSnapshot(t, dir)
		old := fmt.Sprintf("swindow/%d ", c.version)
		snap.Fingerprint = old + fp
		snap.Data[0] = byte(c.version) // the version, a msgpack fixint
		if err := os.WriteFile(path, checkpoint.Encode(nil, snap), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := runSwindow(t, stream(t, bs[1:]), args...)
		if code != 1 || !strings.Contains(stderr, "was written by a different configuration ("+old+fp+"), not this one (swindow/4 "+fp+")") {
			t.Errorf("exit %d, %q; want exit 1 refusing the state of version %d", code, stderr, c.version)
		}
	}
}

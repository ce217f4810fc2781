package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

func stageBatch(b batch) stage.Batch { return stage.Batch{ID: b.id, Time: b.time} }

// blockOf is recs (JSON objects) as a block of records.
func blockOf(t testing.TB, recs []string) []byte {
	t.Helper()
	var blk []byte
	for _, r := range recs {
		m, err := record.AppendJSONObject(nil, []byte(r))
		if err != nil {
			t.Fatal(err)
		}
		blk = framing.AppendRecord(blk, m)
	}
	return blk
}

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
		{byEvent, []string{"--time-field", "t", "--watermark", "5s", "-l", "10s", "-k", "k", "--count"}},
		{byEvent, []string{"--time-field", "t", "--watermark", "5s", "-l", "10s", "-s", "5s", "-k", "k", "--count", "--mode", "update"}},
		{byEvent, []string{"--time-field", "t", "-l", "10s", "-k", "k", "--count", "--collect", "t", "--mode", "complete"}},
		{byEvent, []string{"--time-field", "t", "--watermark", "10s", "--session", "5s", "-k", "k", "--count", "--collect", "t"}},
		{byEvent, []string{"--time-field", "t", "--session", "3s", "--count", "--mode", "update"}},
	} {
		whole := window(t, c.bs, append(c.args, "--checkpoint", t.TempDir())...)
		for k := range len(c.bs) - 1 {
			dir := t.TempDir()
			args := append(c.args, "--checkpoint", dir)
			var o, e bytes.Buffer
			if code := command.Run(append([]string{"swindow"}, args...), bytes.NewReader(frametest.Cut(t, frames(c.bs[:k+1]))), &o, &e); code != 1 {
				t.Fatalf("swindow %s, cut after batch %d: exit %d, want 1: %s", strings.Join(args, " "), k, code, e.String())
			}
			first := frametest.RenderCut(t, o.Bytes())
			second := window(t, c.bs[replayFrom(t, dir, o.Bytes()):], args...)
			if first+second != whole {
				t.Errorf("swindow %s, restarted after batch %d:\n%s--- then\n%s\nwant:\n%s", strings.Join(c.args, " "), k, first, second, whole)
			}
			// A run that ends its stream (its input read to the end) and a
			// run that goes on from its checkpoint: the same.
			dir = t.TempDir()
			args = append(c.args, "--checkpoint", dir)
			var o2, e2 bytes.Buffer
			if code := command.Run(append([]string{"swindow"}, args...), bytes.NewReader(stream(t, c.bs[:k+1])), &o2, &e2); code != 0 {
				t.Fatalf("swindow %s: exit %d: %s", strings.Join(args, " "), code, e2.String())
			}
			first = frametest.Render(t, o2.Bytes())
			second = window(t, c.bs[replayFrom(t, dir, o2.Bytes()):], args...)
			if first+second != whole {
				t.Errorf("swindow %s, run to batch %d, then on:\n%s--- then\n%s\nwant:\n%s", strings.Join(c.args, " "), k, first, second, whole)
			}
		}
	}
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
	window(t, bs[:1], "-l", "2s", "-k", "k", "--count", "--checkpoint", dir)
	_, stderr, code := runSwindow(t, stream(t, bs[1:]), "-l", "4s", "-k", "k", "--count", "--checkpoint", dir)
	if code != 1 || !strings.Contains(stderr, "was written by") && !strings.Contains(stderr, "configuration") {
		t.Errorf("exit %d, %q; want exit 1 refusing the checkpoint", code, stderr)
	}
}

// FuzzLoadState: a damaged saved state is an error, never a panic, in both
// kinds of window.
func FuzzLoadState(f *testing.F) {
	o := func(args ...string) *options { return testOptions(f, args...) }
	bo := o("-l", "2s", "-s", "1s", "-k", "k", "--count", "--sum", "v")
	eo := o("--time-field", "t", "-l", "10s", "-k", "k", "--count")
	so := o("--time-field", "t", "--session", "5s", "-k", "k", "--count")
	bw, _ := newWindower(framing.NewWriter(io.Discard), bo)
	ew, _ := newEventWindower(framing.NewWriter(io.Discard), eo)
	sw, _ := newEventWindower(framing.NewWriter(io.Discard), so)
	// Seeds: real states after a few batches.
	for _, b := range seconds("a=1 b=2", "a=3") {
		feed(f, bw, stageBatch(b), blockOf(f, b.recs), len(b.recs))
	}
	for _, b := range evBatches("a@1 b@12", "a@3") {
		for _, w := range []*eventWindower{ew, sw} {
			feed(f, w, stageBatch(b), blockOf(f, b.recs), len(b.recs))
		}
	}
	f.Add(bw.saveState())
	for _, w := range []*eventWindower{ew, sw} {
		s, _ := w.saveState()
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w1, _ := newWindower(framing.NewWriter(io.Discard), bo)
		if err := w1.loadState(b); err == nil {
			// What loads saves a state that loads into the same.
			s1 := w1.saveState()
			w2, _ := newWindower(framing.NewWriter(io.Discard), bo)
			if err := w2.loadState(s1); err != nil {
				t.Fatalf("a saved state does not load: %v", err)
			}
			if s2 := w2.saveState(); !bytes.Equal(s1, s2) {
				t.Fatalf("save, load, save: %x, then %x", s1, s2)
			}
		}
		for _, opts := range []*options{eo, so} {
			w, _ := newEventWindower(framing.NewWriter(io.Discard), opts)
			if err := w.loadState(b); err == nil {
				s1, err := w.saveState()
				if err != nil {
					t.Fatal(err)
				}
				w2, _ := newEventWindower(framing.NewWriter(io.Discard), opts)
				if err := w2.loadState(s1); err != nil {
					t.Fatalf("a saved state does not load: %v", err)
				}
			}
		}
	})
}

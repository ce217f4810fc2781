package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dstream/dstream/internal/frametest"
)

// runSjoin runs sjoin with the left stream on stdin and returns its output
// rendered, its stderr and its exit code.
func runSjoin(t *testing.T, left []byte, args ...string) (out, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = command.Run(append([]string{"sjoin"}, args...), bytes.NewReader(left), &o, &e)
	return frametest.RenderCut(t, o.Bytes()), e.String(), code
}

// stream frames batches first, first+1, ... at times 1000*(id+1), recs[i]
// the records of the i-th.
func stream(t *testing.T, first int, recs [][]string) []byte {
	bs := make([]frametest.Batch, len(recs))
	for i, r := range recs {
		id := uint64(first + i)
		bs[i] = frametest.Batch{ID: id, Time: int64(id+1) * 1000, Recs: r}
	}
	return frametest.Stream(t, bs)
}

func writeStream(t *testing.T, dir, name string, b []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// StreamingInnerJoinSuite's "stream stream inner join on non-time column":
// the values v of each side as {"key": v, "leftValue": 2v} and {"key": v,
// "rightValue": 3v}, one AddData a batch.
func nonTimeColumn() (left, right [][]string) {
	l := func(vs ...int) []string {
		var r []string
		for _, v := range vs {
			r = append(r, fmt.Sprintf(`{"key":%d,"leftValue":%d}`, v, 2*v))
		}
		return r
	}
	r := func(vs ...int) []string {
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprintf(`{"key":%d,"rightValue":%d}`, v, 3*v))
		}
		return out
	}
	left = [][]string{l(1), nil, l(10), nil, l(1), l(100)}
	right = [][]string{nil, r(1, 10), nil, r(1), nil, r(100)}
	return left, right
}

// A join over event time stopped after any batch and started again with the
// same checkpoint gives the output of one uninterrupted run.
func TestStreamCheckpointRestart(t *testing.T) {
	left, right := nonTimeColumn()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--mode", "stream", "--on", "key"},
		{"--mode", "stream", "--on", "key", "--how", "full", "--time-field", "key", "--watermark", "0s", "--within", "5s"},
	} {
		whole, stderr, code := runSjoin(t, stream(t, 0, left), append(args, "--right", writeStream(t, dir, "all", stream(t, 0, right)))...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		for stop := 1; stop < len(left); stop++ {
			ck := t.TempDir()
			a := append(args, "--checkpoint", ck)
			first, stderr, code := runSjoin(t, stream(t, 0, left[:stop]), append(a, "--right", writeStream(t, dir, "first", stream(t, 0, right[:stop])))...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", a, code, stderr)
			}
			frametest.Commit(t, ck, uint64(stop-1)) // as the sink does
			rest, stderr, code := runSjoin(t, stream(t, stop, left[stop:]), append(a, "--right", writeStream(t, dir, "rest", stream(t, stop, right[stop:])))...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", a, code, stderr)
			}
			// Without a checkpoint, the rows that never matched come out
			// at the end in one more batch; with one they stay in the
			// state for the next run.
			want := whole
			if i := strings.Index(whole, fmt.Sprintf("\n%d@", len(left))); i >= 0 {
				want = whole[:i+1]
			}
			if got := first + rest; got != want {
				t.Errorf("%v, stopped after batch %d:\n%s\nwant\n%s", args, stop-1, got, want)
			}
		}
	}
}

func TestStreamCheckpointMismatch(t *testing.T) {
	left, right := nonTimeColumn()
	dir, ck := t.TempDir(), t.TempDir()
	r := writeStream(t, dir, "r", stream(t, 0, right[:2]))
	if _, stderr, code := runSjoin(t, stream(t, 0, left[:2]), "--mode", "stream", "--on", "key", "--checkpoint", ck, "--right", r); code != 0 {
		t.Fatal(stderr)
	}
	frametest.Commit(t, ck, 1)
	r = writeStream(t, dir, "r2", stream(t, 2, right[2:]))
	_, stderr, code := runSjoin(t, stream(t, 2, left[2:]), "--mode", "stream", "--on", "key", "--how", "left", "--time-field", "key", "--watermark", "1s", "--checkpoint", ck, "--right", r)
	if code != 1 || !strings.Contains(stderr, "was written by a different configuration") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestStreamUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "stream", "--on", "k", "--right", "r", "--watermark", "1s"}, "--watermark and --within read each record's event time: add --time-field F"},
		{[]string{"--mode", "stream", "--on", "k", "--right", "r", "--time-field", "t", "--within", "1s"}, "--within bounds the state only with a watermark"},
		{[]string{"--mode", "stream", "--on", "k", "--right", "r", "--how", "left", "--time-field", "t", "--watermark", "1s"}, "--how left with --mode stream needs --watermark, and --within"},
		{[]string{"--mode", "stream", "--on", "k", "--right", "r", "--cogroup"}, "--cogroup groups the batches of one time"},
		{[]string{"--on", "k", "--right", "r", "--watermark", "1s"}, "--watermark applies to a join over event time: add --mode stream"},
		{[]string{"--on", "k", "--table", "t.csv", "--time-field", "t"}, "--time-field applies to a join of two streams"},
		{[]string{"--mode", "sideways", "--on", "k", "--right", "r"}, `--mode "sideways": want batch or stream`},
		{[]string{"--mode", "stream", "--on", "k", "--right", "r", "--time-field", "t", "--time-unit", "h"}, "--time-unit"},
	} {
		_, stderr, code := runSjoin(t, nil, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

var writeFixtures = flag.Bool("write-fixtures", false, "write the framed fixtures of testdata/sjoin-stream-inner-join-on-non-time-column.ct")

// The restart script test needs streams whose batch ids go on from one run
// to the next, which sbatch cannot make yet: they are framed here and kept
// as fixtures (go test ./cmd/sjoin -write-fixtures writes them).
func TestRestartFixtures(t *testing.T) {
	left, right := nonTimeColumn()
	for _, f := range []struct {
		name  string
		first int
		recs  [][]string
	}{
		{"sjoin-nontime-left-all.dstream", 0, left},
		{"sjoin-nontime-right-all.dstream", 0, right},
		{"sjoin-nontime-left-1.dstream", 0, left[:4]},
		{"sjoin-nontime-right-1.dstream", 0, right[:4]},
		{"sjoin-nontime-left-2.dstream", 4, left[4:5]},
		{"sjoin-nontime-right-2.dstream", 4, right[4:5]},
		{"sjoin-nontime-left-3.dstream", 5, left[5:]},
		{"sjoin-nontime-right-3.dstream", 5, right[5:]},
	} {
		path := filepath.Join("..", "..", "testdata", f.name)
		want := stream(t, f.first, f.recs)
		if *writeFixtures {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not the stream it should be (%v): go test ./cmd/sjoin -write-fixtures", path, err)
		}
	}
}

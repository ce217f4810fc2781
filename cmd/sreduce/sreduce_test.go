package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/internal/frametest"
)

// batch is one input batch: its id (its time is 1000*(id+1)) and records as
// JSON objects.
type batch struct {
	id   uint64
	recs []string
}

// words gives batches of {"value": w, "n": len(w)} records; a batch is a
// space-separated list of words ("" for an empty batch; "”" for the empty
// string).
func words(first uint64, bs ...string) []batch {
	var out []batch
	for i, b := range bs {
		var recs []string
		for _, w := range strings.Fields(b) {
			if w == "''" {
				w = ""
			}
			recs = append(recs, fmt.Sprintf(`{"value":%q,"n":%d}`, w, len(w)))
		}
		out = append(out, batch{first + uint64(i), recs})
	}
	return out
}

// stream frames the batches, batch ID at 1000*(ID+1) ms.
func stream(t testing.TB, bs []batch) []byte {
	fb := make([]frametest.Batch, len(bs))
	for i, b := range bs {
		fb[i] = frametest.Batch{ID: b.id, Time: int64(1000 * (b.id + 1)), Recs: b.recs}
	}
	return frametest.Stream(t, fb)
}

// runReduce runs sreduce on the batches and returns its output, one line per
// batch: "ID@TIME: rec rec ...", records as JSON.
func runReduce(t testing.TB, bs []batch, args ...string) string {
	t.Helper()
	out, stderr, code := runSreduce(t, stream(t, bs), args...)
	if code != 0 {
		t.Fatalf("sreduce %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

func runSreduce(t testing.TB, in []byte, args ...string) (out, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = command.Run(append([]string{"sreduce"}, args...), bytes.NewReader(in), &o, &e)
	if code != 0 {
		return "", e.String(), code
	}
	return frametest.Render(t, o.Bytes()), e.String(), 0
}

func TestAcceptancePerBatch(t *testing.T) {
	got := runReduce(t, words(0, "a a b", "'' ''", ""), "-k", "value", "--count")
	want := `0@1000: {"value":"a","count":2} {"value":"b","count":1}
1@2000: {"value":"","count":2}
2@3000:
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

var runningWant = `0@1000: {"value":"a","count":1}
1@2000: {"value":"a","count":2} {"value":"b","count":1}
2@3000: {"value":"a","count":3} {"value":"b","count":2} {"value":"c","count":1}
3@4000: {"value":"a","count":4} {"value":"b","count":3} {"value":"c","count":1}
4@5000: {"value":"a","count":5} {"value":"b","count":3} {"value":"c","count":1}
5@6000: {"value":"a","count":5} {"value":"b","count":3} {"value":"c","count":1}
`

var runningInput = []string{"a", "a b", "a b c", "a b", "a", ""}

func TestAcceptanceRunning(t *testing.T) {
	got := runReduce(t, words(0, runningInput...), "-k", "value", "--count", "--running")
	if got != runningWant {
		t.Errorf("got\n%s\nwant\n%s", got, runningWant)
	}
}

// A pipeline stopped after any batch and started again with the same
// checkpoint gives the output of one uninterrupted run.
func TestCheckpointRestart(t *testing.T) {
	all := words(0, runningInput...)
	initial := filepath.Join(t.TempDir(), "initial.jsonl")
	if err := os.WriteFile(initial, []byte(`{"value":"a","count":5,"sum_n":5}`+"\n"+`{"value":"z","count":1,"sum_n":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-k", "value", "--count", "--running"},
		{"-k", "value", "--count", "--sum", "n", "--running", "--initial", initial, "--ttl", "2s", "--emit-expired"},
		{"-k", "value", "--count", "--sum", "n", "--running", "--mode", "update", "--initial", initial, "--ttl", "2s", "--emit-expired"},
		{"-k", "value", "--count", "--running", "--mode", "update"},
		{"-k", "value", "--count", "--sum", "n", "--distinct", "value", "--collect", "value", "--first", "value", "--max", "value", "--running"},
	} {
		whole := runReduce(t, all, args...)
		for stop := 1; stop < len(all); stop++ {
			dir := t.TempDir()
			a := append(args, "--checkpoint", dir)
			first := runReduce(t, all[:stop], a...)
			frametest.Commit(t, dir, uint64(stop-1)) // as the sink does
			got := first + runReduce(t, all[stop:], a...)
			if got != whole {
				t.Errorf("%v, stopped after batch %d:\n%s\nwant\n%s", args, stop-1, got, whole)
			}
			ids, err := mustStore(t, dir).List()
			if err != nil || ids[0] > uint64(stop-1) || ids[len(ids)-1] != uint64(len(all)-1) {
				t.Errorf("snapshots left: %v, %v; want at least those from the last commit, %d, on", ids, err, stop-1)
			}
		}
	}
}

const startOver = "start the pipeline over: a new --checkpoint directory and an empty sink (a new table, an empty --files directory)"

func mustStore(t *testing.T, dir string) *checkpoint.Store {
	s, err := checkpoint.OpenStore(dir, "sreduce")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The source replays the batches after the last one committed downstream,
// with the same ids: the state is restored from the last commit, so
// nothing is counted twice; without that snapshot the stage stops rather
// than restore another.
func TestCheckpointReplay(t *testing.T) {
	all := words(0, runningInput...)
	args := []string{"-k", "value", "--count", "--running"}
	whole := runReduce(t, all, args...)
	lines := strings.SplitAfter(whole, "\n")
	dir := t.TempDir()
	a := append(args, "--checkpoint", dir)
	runReduce(t, all[:4], a...) // batches 0..3
	frametest.Commit(t, dir, 2)
	// Batch 3 replayed: restored from snapshot 2, exactly.
	if got := runReduce(t, all[3:], a...); got != strings.Join(lines[3:], "") {
		t.Errorf("replaying from batch 3:\n%s\nwant\n%s", got, strings.Join(lines[3:], ""))
	}
	// Without the snapshot of the last commit, no other is restored.
	os.Remove(filepath.Join(dir, "state", "sreduce", "2.snapshot"))
	_, stderr, code := runSreduce(t, stream(t, all[3:]), a...)
	if code != 1 || !strings.Contains(stderr, "sreduce: error: checkpoint: no state to restore: the sink committed up to batch 2, and the state after it, ") {
		t.Errorf("without snapshot 2: exit %d, %s", code, stderr)
	}
	// A stream starting again at batch 0 starts from an empty state.
	if got := runReduce(t, all, a...); got != whole {
		t.Errorf("from batch 0 again:\n%s\nwant\n%s", got, whole)
	}
}

// With a checkpoint, the initial state is where a run starts that has no
// state to restore: a replay from batch 0, before any commit, starts from it
// again, and a run after a commit goes on from the saved state.
func TestInitialCheckpoint(t *testing.T) {
	all := words(0, "a", "b", "a")
	initial := filepath.Join(t.TempDir(), "initial.jsonl")
	if err := os.WriteFile(initial, []byte(`{"value":"a","count":5}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{"-k", "value", "--count", "--running", "--initial", initial, "--checkpoint", dir}
	want := `0@1000: {"value":"a","count":6}
1@2000: {"value":"a","count":6} {"value":"b","count":1}
2@3000: {"value":"a","count":7} {"value":"b","count":1}
`
	runReduce(t, all[:2], args...) // nothing committed: a crash before the sink's first commit
	if got := runReduce(t, all, args...); got != want {
		t.Errorf("replayed from batch 0:\n%s\nwant\n%s", got, want)
	}
	frametest.Commit(t, dir, 1)
	if err := os.WriteFile(initial, []byte(`{"value":"z","count":9}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, w := runReduce(t, all[2:], args...), strings.SplitAfter(want, "\n")[2]; got != w {
		t.Errorf("after the commit of batch 1:\n%s\nwant\n%s", got, w)
	}
}

// --emit-expired: a group the TTL removes is written once more, after the
// others (after the --top ones), with expired true; the others carry
// expired false. a, last updated at 2000, expires at 4000.
func TestEmitExpired(t *testing.T) {
	in := words(0, "a b c", "a", "", "c", "")
	got := runReduce(t, in, "-k", "value", "--count", "--running", "--ttl", "2s", "--emit-expired", "--top", "1")
	want := `0@1000: {"value":"a","count":1,"expired":false}
1@2000: {"value":"a","count":2,"expired":false}
2@3000: {"value":"a","count":2,"expired":false} {"value":"b","count":1,"expired":true} {"value":"c","count":1,"expired":true}
3@4000: {"value":"c","count":1,"expired":false} {"value":"a","count":2,"expired":true}
4@5000: {"value":"c","count":1,"expired":false}
`
	if got != want {
		t.Errorf("--top 1:\n%s\nwant\n%s", got, want)
	}
}

func TestCheckpointMismatch(t *testing.T) {
	dir := t.TempDir()
	runReduce(t, words(0, "a", "b"), "-k", "value", "--count", "--running", "--checkpoint", dir)
	frametest.Commit(t, dir, 1)
	_, stderr, code := runSreduce(t, stream(t, words(2, "a")), "-k", "value", "--sum", "n", "--running", "--checkpoint", dir)
	state := filepath.Join(dir, "state", "sreduce")
	want := "sreduce: error: checkpoint " + state + ` was written by a different configuration (agg/1 keys=["value"] aggs=count), not this one (agg/1 keys=["value"] aggs=sum("n"))` + "\n" +
		"sreduce: hint: each set of keys and aggregates keeps its own state: give this stage the --name or the options it had, another --name for a new state, or " + startOver + "\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr\n%s\nwant exit 1 and\n%s", code, stderr, want)
	}
	// Even a stream starting at batch 0, which needs no state, is refused
	// rather than overwriting another configuration's state.
	if _, _, code := runSreduce(t, stream(t, words(0, "a")), "-k", "value", "--sum", "n", "--running", "--checkpoint", dir); code != 1 {
		t.Errorf("from batch 0: exit %d, want 1", code)
	}
	// Renaming an output keeps the state.
	got := runReduce(t, words(2, "a"), "-k", "value", "--count-as", "n", "--running", "--checkpoint", dir)
	if want := "2@3000: {\"value\":\"a\",\"n\":2} {\"value\":\"b\",\"n\":1}\n"; got != want {
		t.Errorf("got %s want %s", got, want)
	}
	// Another --name is another state, which has no state of the batches
	// committed: refused.
	_, stderr, code = runSreduce(t, stream(t, words(2, "a")), "-k", "value", "--sum", "n", "--running", "--checkpoint", dir, "--name", "other")
	if code != 1 || !strings.Contains(stderr, "no state to restore") {
		t.Errorf("--name other: exit %d, %s", code, stderr)
	}
}

func TestAggregates(t *testing.T) {
	recs := []string{
		`{"k":"x","n":3,"f":1.5,"s":"b"}`,
		`{"k":"x","n":-1,"s":"a"}`,
		`{"k":"y","n":null,"s":"c","f":2}`,
		`{"k":"x","n":5,"s":"b"}`,
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-k", "k", "--count", "--sum", "n", "--avg", "n"},
			`{"k":"x","count":3,"sum_n":7,"avg_n":2.3333333333333335} {"k":"y","count":1,"sum_n":null,"avg_n":null}`},
		// Order of the flags is the order of the fields.
		{[]string{"--min", "s", "-k", "k", "--max", "n", "--count", "--first", "s", "--last", "n"},
			`{"k":"x","min_s":"a","max_n":5,"count":3,"first_s":"b","last_n":5} {"k":"y","min_s":"c","max_n":null,"count":1,"first_s":"c","last_n":null}`},
		{[]string{"-k", "k", "--distinct", "s", "--collect", "s", "--sum", "total=f,n"},
			`{"k":"x","distinct_s":2,"collect_s":["b","a","b"],"total":1.5,"sum_n":7} {"k":"y","distinct_s":1,"collect_s":["c"],"total":2,"sum_n":null}`},
		// Keyless: the whole batch.
		{[]string{"--count", "--sum", "n", "--sum", "f"}, `{"count":4,"sum_n":7,"sum_f":3.5}`},
		// No aggregate: the distinct keys. Composite keys; a missing field is null.
		{[]string{"-k", "s,f"}, `{"s":"a","f":null} {"s":"b","f":null} {"s":"b","f":1.5} {"s":"c","f":2}`},
		{[]string{"-k", "s", "--count", "--top", "1"}, `{"s":"b","count":2}`},
		{[]string{"-k", "s", "--count", "--sum", "n", "--top", "2", "--by", "sum_n"}, `{"s":"b","count":2,"sum_n":8} {"s":"a","count":1,"sum_n":-1}`},
	} {
		got := runReduce(t, []batch{{0, recs}}, c.args...)
		if want := "0@1000: " + c.want + "\n"; got != want {
			t.Errorf("%v:\ngot  %s\nwant %s", c.args, got, want)
		}
	}
}

func TestKeylessCount(t *testing.T) {
	got := runReduce(t, words(0, "a b", "", "c"), "--count")
	want := "0@1000: {\"count\":2}\n1@2000: {\"count\":0}\n2@3000: {\"count\":1}\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Without --count an empty batch stays empty.
	got = runReduce(t, []batch{{0, []string{`{"n":1}`}}, {1, nil}}, "--sum", "n")
	if want := "0@1000: {\"sum_n\":1}\n1@2000:\n"; got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestBadRecords(t *testing.T) {
	bs := []batch{{0, []string{`{"k":"a","n":1}`, `{"k":"b","n":"x"}`, `{"k":"a","n":9223372036854775807}`, `{"k":"a","n":2}`}}}
	_, stderr, code := runSreduce(t, stream(t, bs), "-k", "k", "--count", "--sum", "n")
	want := `sreduce: error: batch 0, record 2 {"k":"b","n":"x"}: sum_n: "x": not a number (a string)
sreduce: hint: --skip-bad skips such records and counts them in --progress (numSkippedRows)
`
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr\n%s\nwant\n%s", code, stderr, want)
	}
	out, stderr, code := runSreduce(t, stream(t, bs), "-k", "k", "--count", "--sum", "n", "--skip-bad", "--progress", "-")
	if want := "0@1000: {\"k\":\"a\",\"count\":2,\"sum_n\":3}\n"; code != 0 || out != want {
		t.Errorf("--skip-bad: exit %d, %s\n%s\nwant\n%s", code, stderr, out, want)
	}
	if !strings.Contains(stderr, `"numSkippedRows":2`) {
		t.Errorf("--progress does not count the skipped records: %s", stderr)
	}
	bs[0].recs = bs[0].recs[2:]
	_, stderr, _ = runSreduce(t, stream(t, bs), "-k", "k", "--sum", "n")
	if !strings.Contains(stderr, "record 2 {\"k\":\"a\",\"n\":2}: sum_n: 2: integer overflow: the sum so far is 9223372036854775807\n") {
		t.Errorf("overflow: %s", stderr)
	}
}

func TestRunningUpdateTTL(t *testing.T) {
	in := words(0, "a b", "a", "", "c", "a", "")
	got := runReduce(t, in, "-k", "value", "--count", "--running", "--mode", "update")
	want := `0@1000: {"value":"a","count":1} {"value":"b","count":1}
1@2000: {"value":"a","count":2}
2@3000:
3@4000: {"value":"c","count":1}
4@5000: {"value":"a","count":3}
5@6000:
`
	if got != want {
		t.Errorf("update:\n%s\nwant\n%s", got, want)
	}
	// --ttl 2s: a group not updated for 2s of batch time is gone: b
	// (updated at 1000) at 3000, a (2000) at 4000, c (4000) at 6000.
	out, stderr, _ := runSreduce(t, stream(t, in), "-k", "value", "--count", "--running", "--ttl", "2s", "--progress", "-")
	want = `0@1000: {"value":"a","count":1} {"value":"b","count":1}
1@2000: {"value":"a","count":2} {"value":"b","count":1}
2@3000: {"value":"a","count":2}
3@4000: {"value":"c","count":1}
4@5000: {"value":"a","count":1} {"value":"c","count":1}
5@6000: {"value":"a","count":1}
`
	if out != want {
		t.Errorf("--ttl:\n%s\nwant\n%s", out, want)
	}
	var removed []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		i := strings.Index(l, `"numRowsRemoved":`)
		if i < 0 {
			t.Fatalf("no state in progress line %s", l)
		}
		removed = append(removed, l[i+17:i+18])
	}
	if got := strings.Join(removed, ""); got != "001101" {
		t.Errorf("numRowsRemoved per batch %s, want 001101", got)
	}
}

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "nothing to compute"},
		{[]string{"--count", "--mode", "update"}, "--mode applies to running state"},
		{[]string{"--count", "--running", "--mode", "append"}, `--mode "append"`},
		{[]string{"--count", "--top", "3", "--by", "x"}, "--by x: no aggregate of that name (the aggregates are count)"},
		{[]string{"--count", "--sum", "a", "--top", "3"}, "say which one ranks with --by NAME (one of count, sum_a)"},
		{[]string{"-k", "count", "--count"}, `two output fields named "count"`},
		{[]string{"--sum", "x="}, "no field"},
		{[]string{"--count", "extra"}, "unexpected argument"},
		{[]string{"--count", "--name", "../x"}, "--name"},
		{[]string{"--count", "--running", "--ttl", "-1s"}, "--ttl"},
	} {
		_, stderr, code := runSreduce(t, stream(t, nil), c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// The order of aggregates follows the command line however the flags are
// spelled.
func TestScanOrder(t *testing.T) {
	recs := []batch{{0, []string{`{"a":1,"b":2}`}}}
	got := runReduce(t, recs, "--sum=b", "-max", "a", "--count=true", "--count-as=n", "--min", "x=a,b")
	if want := "0@1000: {\"sum_b\":2,\"max_a\":1,\"count\":1,\"n\":1,\"x\":1,\"min_b\":2}\n"; got != want {
		t.Errorf("got %s want %s", got, want)
	}
}

var writeFixtures = flag.Bool("write-fixtures", false, "write the framed fixtures of testdata/sreduce-restart.ct")

// The restart script test needs streams whose batch ids go on from one run
// to the next, which sbatch cannot make yet: they are framed here and kept
// as fixtures (go test ./cmd/sreduce -write-fixtures writes them).
func TestRestartFixtures(t *testing.T) {
	all := words(0, runningInput...)
	for _, f := range []struct {
		name string
		bs   []batch
	}{
		{"sreduce-restart-all.dstream", all},
		{"sreduce-restart-first.dstream", all[:3]},
		{"sreduce-restart-rest.dstream", all[3:]},
	} {
		path := filepath.Join("..", "..", "testdata", f.name)
		want := stream(t, f.bs)
		if *writeFixtures {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not the stream it should be (%v): go test ./cmd/sreduce -write-fixtures", path, err)
		}
	}
}

func TestCheckpointCorrupt(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-k", "value", "--count", "--running", "--checkpoint", dir}
	runReduce(t, words(0, "a", "b"), args...)
	frametest.Commit(t, dir, 1)
	path := filepath.Join(dir, "state", "sreduce", "1.snapshot")
	b, _ := os.ReadFile(path)
	b[len(b)-6] ^= 1
	os.WriteFile(path, b, 0o644)
	_, stderr, code := runSreduce(t, stream(t, words(2, "a")), args...)
	want := "sreduce: error: " + path + ": checkpoint: corrupt snapshot: checksum mismatch\n" +
		"sreduce: hint: the state cannot be rebuilt from this checkpoint (the batches before it are not replayed): restore the file from a backup, or " + startOver + "\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr\n%s\nwant\n%s", code, stderr, want)
	}
	// Without it, the snapshot of batch 0 is not restored instead (batch 1
	// would be lost from every later count): the stage stops.
	os.Remove(path)
	if _, stderr, code := runSreduce(t, stream(t, words(2, "a")), args...); code != 1 || !strings.Contains(stderr, "no state to restore") {
		t.Errorf("without the damaged snapshot: exit %d, %s", code, stderr)
	}
}

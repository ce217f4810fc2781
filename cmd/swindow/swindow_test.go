package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dstream/dstream/internal/frametest"
)

// batch is one input batch: id, batch time (ms) and records as JSON.
type batch struct {
	id   uint64
	time int64
	recs []string
}

// frames is bs as frametest's batches.
func frames(bs []batch) []frametest.Batch {
	fb := make([]frametest.Batch, len(bs))
	for i, b := range bs {
		fb[i] = frametest.Batch{ID: b.id, Time: b.time, Recs: b.recs}
	}
	return fb
}

func stream(t testing.TB, bs []batch) []byte { return frametest.Stream(t, frames(bs)) }

func runSwindow(t testing.TB, in []byte, args ...string) (out, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = command.Run(append([]string{"swindow"}, args...), bytes.NewReader(in), &o, &e)
	if code != 0 {
		return "", e.String(), code
	}
	return frametest.Render(t, o.Bytes()), e.String(), 0
}

func swindow(t testing.TB, bs []batch, args ...string) string {
	t.Helper()
	out, stderr, code := runSwindow(t, stream(t, bs), args...)
	if code != 0 {
		t.Fatalf("swindow %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// kv gives records {"k": k, "v": v} from "k=v" words.
func kv(words string) []string {
	var recs []string
	for _, w := range strings.Fields(words) {
		k, v, _ := strings.Cut(w, "=")
		recs = append(recs, fmt.Sprintf(`{"k":%q,"v":%s}`, k, v))
	}
	return recs
}

// seconds gives batches 0, 1, ... at 1 s, 2 s, ... holding the words.
func seconds(words ...string) []batch {
	bs := make([]batch, len(words))
	for i, w := range words {
		bs[i] = batch{uint64(i), int64(i+1) * 1000, kv(w)}
	}
	return bs
}

func TestTumbling(t *testing.T) {
	bs := seconds("a=1 b=2", "a=3", "", "c=4", "a=5")
	got := swindow(t, bs, "-l", "2s")
	want := `1@2000: {"k":"a","v":1} {"k":"b","v":2} {"k":"a","v":3}
3@4000: {"k":"c","v":4}
4@6000: {"k":"a","v":5}
`
	if got != want {
		t.Errorf("records:\n%s\nwant:\n%s", got, want)
	}
	got = swindow(t, bs, "-l", "2s", "-k", "k", "--count", "--sum", "v")
	want = `1@2000: {"k":"a","count":2,"sum_v":4} {"k":"b","count":1,"sum_v":2}
3@4000: {"k":"c","count":1,"sum_v":4}
4@6000: {"k":"a","count":1,"sum_v":5}
`
	if got != want {
		t.Errorf("count and sum:\n%s\nwant:\n%s", got, want)
	}
}

func TestSliding(t *testing.T) {
	bs := seconds("a=1 b=2", "a=3", "", "c=4", "a=5")
	got := swindow(t, bs, "-l", "3s", "-s", "1s", "-k", "k", "--count", "--max", "v")
	want := `0@1000: {"k":"a","count":1,"max_v":1} {"k":"b","count":1,"max_v":2}
1@2000: {"k":"a","count":2,"max_v":3} {"k":"b","count":1,"max_v":2}
2@3000: {"k":"a","count":2,"max_v":3} {"k":"b","count":1,"max_v":2}
3@4000: {"k":"a","count":1,"max_v":3} {"k":"c","count":1,"max_v":4}
4@5000: {"k":"a","count":1,"max_v":5} {"k":"c","count":1,"max_v":4}
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestEmptyWindows: a keyless --count of an empty window is 0; an empty
// window of groups is an empty batch.
func TestEmptyWindows(t *testing.T) {
	bs := seconds("a=1", "", "", "", "b=1")
	if got, want := swindow(t, bs, "-l", "2s", "--count"), "1@2000: {\"count\":1}\n3@4000: {\"count\":0}\n4@6000: {\"count\":1}\n"; got != want {
		t.Errorf("keyless count:\n%s\nwant:\n%s", got, want)
	}
	if got, want := swindow(t, bs, "-l", "2s", "-k", "k", "--count"), "1@2000: {\"k\":\"a\",\"count\":1}\n3@4000:\n4@6000: {\"k\":\"b\",\"count\":1}\n"; got != want {
		t.Errorf("keyed count:\n%s\nwant:\n%s", got, want)
	}
}

func TestTop(t *testing.T) {
	bs := seconds("a=1 b=1 b=1", "c=1 c=1 c=1 a=1")
	got := swindow(t, bs, "-l", "2s", "-k", "k", "--count", "--top", "2")
	if want := "1@2000: {\"k\":\"c\",\"count\":3} {\"k\":\"a\",\"count\":2}\n"; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestAgainstBruteForce compares swindow with counts and sums computed from
// the window's batches directly, on random streams: incremental (count, sum:
// invertible) and recomputed (with max, which is not).
func TestAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		nb := 1 + rng.IntN(12)
		// Any length and slide: overlapping windows, tumbling ones, and
		// windows shorter than the slide, which leave batches out.
		slide := int64(1+rng.IntN(3)) * 1000
		length := int64(1+rng.IntN(6)) * 1000
		first := int64(1 + rng.IntN(5))
		var bs []batch
		for i := range nb {
			var words []string
			for range rng.IntN(6) {
				words = append(words, fmt.Sprintf("%c=%d", 'a'+rune(rng.IntN(4)), rng.IntN(100)-20))
			}
			bs = append(bs, batch{uint64(i), (first + int64(i)) * 1000, kv(strings.Join(words, " "))})
		}
		want := bruteForce(bs, length, slide)
		args := []string{"-l", fmt.Sprintf("%dms", length), "-s", fmt.Sprintf("%dms", slide), "-k", "k", "--count", "--sum", "v"}
		if got := swindow(t, bs, args...); got != want {
			t.Fatalf("round %d: swindow %s on %v:\n%s\nwant:\n%s", round, strings.Join(args, " "), bs, got, want)
		}
		withMax := swindow(t, bs, append(args, "--max", "v")...)
		if got := dropField(t, withMax, "max_v"); got != want {
			t.Fatalf("round %d, recomputed: swindow %s --max v on %v:\n%s\nwant:\n%s", round, strings.Join(args, " "), bs, got, want)
		}
	}
}

// bruteForce writes the windows as swindow should: at each multiple of slide
// from the first batch's on, up to the one holding the last batch (or, when
// a window shorter than the slide leaves the last batch out, up to the one
// before it), the count and sum of v per k over the batches in (T-length,
// T], with the id of the last batch at or before T.
func bruteForce(bs []batch, length, slide int64) string {
	var sb strings.Builder
	last := bs[len(bs)-1].time
	for end := (bs[0].time + slide - 1) / slide * slide; ; end += slide { // the first multiple of slide at or after it
		if end > last && last <= end-length {
			return sb.String() // the last batch is in no window
		}
		var id uint64
		count, sum := map[string]int{}, map[string]int{}
		for _, b := range bs {
			if b.time <= end {
				id = b.id
			}
			if b.time > end-length && b.time <= end {
				for _, r := range b.recs {
					var k string
					var v int
					fmt.Sscanf(r, `{"k":%q,"v":%d}`, &k, &v)
					count[k]++
					sum[k] += v
				}
			}
		}
		fmt.Fprintf(&sb, "%d@%d:", id, end)
		keys := make([]string, 0, len(count))
		for k := range count {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&sb, ` {"k":%q,"count":%d,"sum_v":%d}`, k, count[k], sum[k])
		}
		sb.WriteString("\n")
		if end >= last {
			return sb.String()
		}
	}
}

// dropField removes the JSON field name (a number) from every record of a
// rendered stream.
func dropField(t *testing.T, s, name string) string {
	t.Helper()
	var out strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		for {
			i := strings.Index(line, `,"`+name+`":`)
			if i < 0 {
				break
			}
			j := i + len(name) + 4
			for j < len(line) && line[j] != '}' && line[j] != ',' {
				j++
			}
			line = line[:i] + line[j:]
		}
		out.WriteString(line)
	}
	return out.String()
}

func TestErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		in   []batch
		code int
		want string
	}{
		{[]string{"--count"}, nil, 2, "give the window's length"},
		{[]string{"-l", "0s"}, nil, 2, "--length 0s: want a positive whole number of milliseconds"},
		{[]string{"-l", "1500us"}, nil, 2, "--length 1.5ms: want a positive whole number"},
		{[]string{"-l", "2s", "-s", "3s", "--time-field", "t", "--count"}, nil, 2, "--slide 3s is longer than --length 2s: windows of event time must cover every time"},
		{[]string{"--session", "1s", "--session-gap-expr", `"1s"`, "--time-field", "t", "--count"}, nil, 2, "--session and --session-gap-expr are two ways to give the gap: give one"},
		{[]string{"--session-gap-expr", `"1s"`, "--count"}, nil, 2, "--session-gap-expr windows event time: add --time-field F"},
		{[]string{"--session-gap-expr", `"1s"`, "-l", "1s", "--time-field", "t", "--count"}, nil, 2, "--length does not go with --session-gap-expr"},
		{[]string{"--session-gap-expr", `1 +`, "--time-field", "t", "--count"}, nil, 2, "--session-gap-expr '1 +': unexpected token EOF"},
		{[]string{"-l", "1s", "x"}, nil, 2, `unexpected argument "x"`},
		{[]string{"-l", "1s", "--top", "2"}, nil, 2, "--top needs an aggregate"},
		// Windows end at 2 s and 3 s between batch 0 (1 s, the end of the
		// first window) and batch 1 (3.5 s): the one of 2 s has no batch
		// to take its id from.
		{[]string{"-l", "1s"}, []batch{{0, 1000, kv("a=1")}, {1, 3500, kv("a=1")}}, 1,
			"the window ending 1970-01-01T00:00:02.000Z holds no batch of its own: batch 0, the last to come, ended the window of 1970-01-01T00:00:01.000Z"},
		{[]string{"-l", "1s"}, []batch{{0, 2000, nil}, {1, 2000, nil}}, 1,
			"batch 1: batch time 1970-01-01T00:00:02.000Z does not come after the last batch's"},
		{[]string{"-l", "1s", "-k", "k", "--sum", "v"}, []batch{{0, 1000, []string{`{"k":"a","v":1}`, `{"k":"a","v":"x"}`}}}, 1,
			`batch 0, record 2 {"k":"a","v":"x"}: `},
		// An integer sum that overflows in a window but in no slice: found
		// when the window is assembled, naming the batch and the window.
		{[]string{"-l", "2s", "-s", "1s", "-k", "k", "--sum", "v", "--max", "v"},
			[]batch{{0, 1000, kv("a=9223372036854775807")}, {1, 2000, kv("a=1")}}, 1,
			"batch 1: the window ending 1970-01-01T00:00:02.000Z: sum_v: integer overflow: 9223372036854775807 plus 1"},
		{[]string{"--time-field", "t", "-l", "4s", "-s", "2s", "-k", "k", "--sum", "v"},
			[]batch{{0, 1000, []string{`{"t":1,"k":"a","v":9223372036854775807}`}}, {1, 2000, []string{`{"t":2.5,"k":"a","v":1}`}}, {2, 3000, []string{`{"t":9,"k":"a","v":1}`}}}, 1,
			"batch 2: the window starting 1970-01-01T00:00:00.000Z: sum_v: integer overflow: 9223372036854775807 plus 1"},
	} {
		_, stderr, code := runSwindow(t, stream(t, c.in), c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("swindow %s: exit %d, %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
}

func TestSkipBad(t *testing.T) {
	bs := []batch{{0, 1000, []string{`{"k":"a","v":1}`, `{"k":"a","v":"x"}`, `{"k":"a","v":2}`}}, {1, 2000, kv("a=4")}}
	for _, extra := range [][]string{nil, {"--min", "v"}} {
		args := append([]string{"-l", "2s", "-s", "1s", "-k", "k", "--sum", "v", "--skip-bad"}, extra...)
		got := dropField(t, swindow(t, bs, args...), "min_v")
		if want := "0@1000: {\"k\":\"a\",\"sum_v\":3}\n1@2000: {\"k\":\"a\",\"sum_v\":7}\n"; got != want {
			t.Errorf("swindow %s:\n%s\nwant:\n%s", strings.Join(args, " "), got, want)
		}
	}
}

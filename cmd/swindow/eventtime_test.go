package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// ev gives records {"t": seconds, "k": k} from "k@t" words.
func ev(words string) []string {
	var recs []string
	for _, w := range strings.Fields(words) {
		k, t, _ := strings.Cut(w, "@")
		recs = append(recs, fmt.Sprintf(`{"t":%s,"k":%q}`, t, k))
	}
	return recs
}

// evBatches gives batches 0, 1, ... at 1 s, 2 s, ... of processing time
// holding the events of each argument.
func evBatches(words ...string) []batch {
	bs := make([]batch, len(words))
	for i, w := range words {
		bs[i] = batch{uint64(i), int64(i+1) * 1000, ev(w)}
	}
	return bs
}

// win shortens window_start and window_end of the rendered output to
// [start,end) in seconds.
func win(s string) string {
	r := strings.NewReplacer(`"window_start":"1970-01-01T00:00:`, `[`, `Z","window_end":"1970-01-01T00:00:`, `,`, `Z",`, `) `)
	return r.Replace(s)
}

func TestEventTimeAppend(t *testing.T) {
	// Windows of 10 s; the watermark 5 s behind the latest event. The event
	// at 3 s in batch 2 is within the watermark (window [0,10) not final
	// until the latest event passes 15 s); the one at 4 s in batch 3 is late.
	bs := evBatches("a@1 b@2 a@12", "a@14 b@3", "a@16", "a@4 b@21", "")
	got := win(swindow(t, bs, "--time-field", "t", "--watermark", "5s", "-l", "10s", "-k", "k", "--count"))
	want := `0@1000:
1@2000:
2@3000: {[00,10) "k":"a","count":1} {[00,10) "k":"b","count":2}
3@4000:
4@5000:
5@30000: {[10,20) "k":"a","count":3} {[20,30) "k":"b","count":1}
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestEventTimeLateFile(t *testing.T) {
	late := filepath.Join(t.TempDir(), "late.jsonl")
	bs := evBatches("a@1 a@12", "a@2 b@3", "a@25")
	swindow(t, bs, "--time-field", "t", "-l", "10s", "-k", "k", "--count", "--late", late)
	got, err := os.ReadFile(late)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"t\":2,\"k\":\"a\"}\n{\"t\":3,\"k\":\"b\"}\n"; string(got) != want {
		t.Errorf("late records: %q, want %q", got, want)
	}
}

func TestEventTimeUpdateAndComplete(t *testing.T) {
	bs := evBatches("a@1 b@2", "a@3 a@11", "b@4", "a@25")
	got := win(swindow(t, bs, "--time-field", "t", "-l", "10s", "-k", "k", "--count", "--mode", "update"))
	// b@4 in batch 2 is late: the watermark (no delay) passed 10 s in batch 1.
	want := `0@1000: {[00,10) "k":"a","count":1} {[00,10) "k":"b","count":1}
1@2000: {[00,10) "k":"a","count":2} {[10,20) "k":"a","count":1}
2@3000:
3@4000: {[20,30) "k":"a","count":1}
`
	if got != want {
		t.Errorf("update:\n%s\nwant:\n%s", got, want)
	}
	got = win(swindow(t, bs, "--time-field", "t", "-l", "10s", "-k", "k", "--count", "--mode", "complete"))
	// Complete mode keeps every window and drops nothing as late.
	want = `0@1000: {[00,10) "k":"a","count":1} {[00,10) "k":"b","count":1}
1@2000: {[00,10) "k":"a","count":2} {[00,10) "k":"b","count":1} {[10,20) "k":"a","count":1}
2@3000: {[00,10) "k":"a","count":2} {[00,10) "k":"b","count":2} {[10,20) "k":"a","count":1}
3@4000: {[00,10) "k":"a","count":2} {[00,10) "k":"b","count":2} {[10,20) "k":"a","count":1} {[20,30) "k":"a","count":1}
`
	if got != want {
		t.Errorf("complete:\n%s\nwant:\n%s", got, want)
	}
}

// TestEventTimeAgainstBruteForce: on random events in random order, with a
// watermark wider than the disorder (so nothing is late), the windows
// append mode writes over the whole stream are each window's counts over
// every event, each window once; and complete mode's last batch is all of
// them.
func TestEventTimeAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 30 {
		slide := int64(1+rng.IntN(3)) * 1000
		length := slide * int64(1+rng.IntN(3))
		// Rising by about 0.5 s, each up to 2 s out of place.
		events, bs := randomEvents(rng, 1+rng.IntN(60), 500, 2000, 1)
		// Brute force: each window's count per key, by window start.
		type wk struct {
			start int64
			k     string
		}
		counts := map[wk]int{}
		for _, e := range events {
			for start := e.t - e.t%slide; start > e.t-length; start -= slide { // e.t >= 0
				counts[wk{start, e.k}]++
			}
		}
		var want []string
		for key, c := range counts {
			want = append(want, fmt.Sprintf("%d %d %s %d", key.start, key.start+length, key.k, c))
		}
		slices.Sort(want)

		args := []string{"--time-field", "t", "--time-unit", "ms", "--watermark", "2s",
			"-l", fmt.Sprintf("%dms", length), "-s", fmt.Sprintf("%dms", slide), "-k", "k", "--count"}
		if got := flat(t, swindow(t, bs, args...)); !slices.Equal(got, want) {
			t.Fatalf("round %d: append over %v:\n%s\nwant:\n%s", round, events, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		out := swindow(t, bs, append(args, "--mode", "complete")...)
		lines := strings.SplitAfter(strings.TrimSuffix(out, "\n"), "\n")
		if got := flat(t, lines[len(lines)-1]); !slices.Equal(got, want) {
			t.Fatalf("round %d: complete's last batch over %v:\n%s\nwant:\n%s", round, events, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// event is a record {"t": t, "k": k} of randomEvents.
type event struct {
	t int64 // ms
	k string
}

// randomEvents makes n events of keys a, b and c, event i at i*step ms
// plus up to disorder ms, rounded down to a multiple of grain ms, in
// batches of 1 to 5 events, one a second.
func randomEvents(rng *rand.Rand, n int, step, disorder, grain int64) ([]event, []batch) {
	events := make([]event, n)
	for i := range events {
		t := int64(i)*step + rng.Int64N(disorder)
		events[i] = event{t - t%grain, string(rune('a' + rng.IntN(3)))}
	}
	var bs []batch
	for i := 0; i < n; {
		m := min(n-i, 1+rng.IntN(5))
		var recs []string
		for _, e := range events[i : i+m] {
			recs = append(recs, fmt.Sprintf(`{"t":%d,"k":%q}`, e.t, e.k))
		}
		bs = append(bs, batch{uint64(len(bs)), int64(len(bs)+1) * 1000, recs})
		i += m
	}
	return events, bs
}

// flat turns rendered windows into sorted lines "START END KEY COUNT", start
// and end in unix ms.
func flat(t *testing.T, rendered string) []string {
	t.Helper()
	var out []string
	for _, rec := range strings.SplitAfter(rendered, "}") {
		i := strings.Index(rec, "{")
		if i < 0 {
			continue
		}
		var start, end, k string
		var c int
		if _, err := fmt.Sscanf(strings.ReplaceAll(rec[i:], ",", " "), `{"window_start":%q "window_end":%q "k":%q "count":%d}`, &start, &end, &k, &c); err != nil {
			t.Fatalf("%q: %v", rec[i:], err)
		}
		out = append(out, fmt.Sprintf("%d %d %s %d", ms(t, start), ms(t, end), k, c))
	}
	slices.Sort(out)
	return out
}

func ms(t *testing.T, rfc string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, rfc)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}

func TestEventTimeErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		in   []batch
		code int
		want string
	}{
		{[]string{"-l", "1s", "--watermark", "1s", "--count"}, nil, 2, "--watermark applies to event-time windows: add --time-field F"},
		{[]string{"-l", "1s", "--time-field", "t"}, nil, 2, "event-time windows aggregate"},
		{[]string{"-l", "1s", "--time-field", "t", "--count", "--mode", "x"}, nil, 2, `--mode "x": want append, update or complete`},
		{[]string{"-l", "1s", "--time-field", "t", "--count", "--time-unit", "h"}, nil, 2, "--time-unit: unknown time unit"},
		{[]string{"-l", "1s", "--time-field", "t", "--count", "--watermark", "-1s"}, nil, 2, "--watermark -1s"},
		{[]string{"-l", "1s", "--time-field", "t", "--count", "--late", "/nonexistent/dir/late"}, nil, 1, "--late: open /nonexistent/dir/late"},
		{[]string{"--session", "5s", "--count"}, nil, 2, "--session windows event time: add --time-field F"},
		{[]string{"--session", "5s", "-l", "1m", "--time-field", "t", "--count"}, nil, 2, "--length does not go with --session"},
		{[]string{"--session", "5s", "--time-field", "t", "--count", "--top", "3"}, nil, 2, "--top does not go with --session"},
		{[]string{"--session", "0s", "--time-field", "t", "--count"}, nil, 2, "--session 0s: want a positive whole number of milliseconds"},
		{[]string{"-l", "1s", "--time-field", "t", "--count"}, []batch{{0, 1000, []string{`{"t":1}`, `{"x":1}`}}}, 1,
			`batch 0, record 2 {"x":1}: no time field "t"`},
		{[]string{"-l", "1s", "--time-field", "t", "--count"}, []batch{{0, 1000, []string{`{"t":"soon"}`}}}, 1,
			`batch 0, record 1 {"t":"soon"}: field "t": `},
	} {
		_, stderr, code := runSwindow(t, stream(t, c.in), c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("swindow %s: exit %d, %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
	// --skip-bad skips records without a usable time, counted.
	bs := []batch{{0, 1000, []string{`{"t":1,"k":"a"}`, `{"x":1}`, `{"t":"soon"}`}}}
	if got, want := win(swindow(t, bs, "-l", "10s", "--time-field", "t", "-k", "k", "--count", "--skip-bad")), "0@1000:\n1@10000: {[00,10) \"k\":\"a\",\"count\":1}\n"; got != want {
		t.Errorf("--skip-bad:\n%s\nwant:\n%s", got, want)
	}
}

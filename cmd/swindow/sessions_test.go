package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSessions(t *testing.T) {
	// Gap 5 s, watermark 10 s behind. a: 1, 3, 7 (one session, 1 to 12),
	// then 20 and 30 (two more); b: 2, then 4 in batch 2, which joins it;
	// c at 9 s. Each session leaves when the watermark passes its end.
	bs := evBatches("a@1 b@2 a@3", "a@7 c@9", "b@4 a@20", "a@30")
	got := win(swindow(t, bs, "--time-field", "t", "--watermark", "10s", "--session", "5s", "-k", "k", "--count", "--collect", "t"))
	want := `0@1000:
1@2000:
2@3000: {[02,09) "k":"b","count":2,"collect_t":[2,4]}
3@4000: {[01,12) "k":"a","count":3,"collect_t":[1,3,7]} {[09,14) "k":"c","count":1,"collect_t":[9]}
4@35000: {[20,25) "k":"a","count":1,"collect_t":[20]} {[30,35) "k":"a","count":1,"collect_t":[30]}
`
	if got != want {
		t.Errorf("append:\n%s\nwant:\n%s", got, want)
	}
	// An event between two sessions of its key, near enough to both,
	// merges them into one.
	bs = evBatches("a@1 a@10", "a@5.5")
	got = win(swindow(t, bs, "--time-field", "t", "--watermark", "10s", "--session", "5s", "-k", "k", "--count", "--mode", "update"))
	want = `0@1000: {[01,06) "k":"a","count":1} {[10,15) "k":"a","count":1}
1@2000: {[01,15) "k":"a","count":3}
`
	if got != want {
		t.Errorf("update, merging:\n%s\nwant:\n%s", got, want)
	}
	// Without a watermark delay the event at 4 s comes after b's session
	// ended (the latest event was 9 s): late.
	bs = evBatches("a@1 b@2 a@3", "a@7 c@9", "b@4 a@20")
	got = win(swindow(t, bs, "--time-field", "t", "--session", "5s", "-k", "k", "--count"))
	want = `0@1000:
1@2000: {[02,07) "k":"b","count":1}
2@3000: {[01,12) "k":"a","count":3} {[09,14) "k":"c","count":1}
3@25000: {[20,25) "k":"a","count":1}
`
	if got != want {
		t.Errorf("no delay:\n%s\nwant:\n%s", got, want)
	}
}

func TestSessionsAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 30 {
		gap := int64(1+rng.IntN(4)) * 1000
		// Times in steps of 250 ms, so that events a gap apart, whose
		// sessions touch and merge, are frequent.
		events, bs := randomEvents(rng, 1+rng.IntN(50), 700, 1500, 250)
		// Brute force: per key, events in time order, a new session where
		// the next event is more than a gap after the last.
		var want []string
		for _, k := range []string{"a", "b", "c"} {
			var ts []int64
			for _, e := range events {
				if e.k == k {
					ts = append(ts, e.t)
				}
			}
			slices.Sort(ts)
			for i := 0; i < len(ts); {
				j := i + 1
				for j < len(ts) && ts[j] <= ts[j-1]+gap {
					j++
				}
				want = append(want, fmt.Sprintf("%d %d %s %d", ts[i], ts[j-1]+gap, k, j-i))
				i = j
			}
		}
		slices.Sort(want)
		args := []string{"--time-field", "t", "--time-unit", "ms", "--watermark", "1500ms", "--session", fmt.Sprintf("%dms", gap), "-k", "k", "--count"}
		if got := flat(t, swindow(t, bs, args...)); !slices.Equal(got, want) {
			t.Fatalf("round %d: sessions over %v:\n%s\nwant:\n%s", round, events, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestSessionGapExpr(t *testing.T) {
	// Batch 0 of two records {"t", "k", "g"}, at 10 and 12 s, for each kind
	// of gap; with the watermark a minute behind, the stream ends before a
	// session is final, and append mode writes them all in one more batch,
	// at the end of the last.
	one := func(g string) []batch {
		return []batch{{0, 1000, []string{`{"t":10,"k":"a","g":` + g + `}`, `{"t":12,"k":"a","g":` + g + `}`}}}
	}
	for _, c := range []struct {
		g, expr string
		want    string
	}{
		// 2 s: the sessions [10,12) and [12,14) touch, and merge.
		{`"2s"`, "g", `1@14000: {[10,14) "k":"a","count":2}`},
		{`"1500ms"`, "g", `1@13500: {[10,11.5) "k":"a","count":1} {[12,13.5) "k":"a","count":1}`},
		{`2`, `duration(string(g) + "s")`, `1@14000: {[10,14) "k":"a","count":2}`},
		// A number is of --time-unit (s).
		{`2`, "g", `1@14000: {[10,14) "k":"a","count":2}`},
		{`1.5`, "g", `1@13500: {[10,11.5) "k":"a","count":1} {[12,13.5) "k":"a","count":1}`},
		// A gap below a millisecond rounds up to one.
		{`"1us"`, "g", `1@12001: {[10,10.001) "k":"a","count":1} {[12,12.001) "k":"a","count":1}`},
		// No gap: the records are in no session.
		{`"0s"`, "g", ``},
		{`"-10s"`, "g", ``},
		{`-1`, "g", ``},
		{`null`, "g", ``},
		{`null`, "h", ``},
	} {
		args := []string{"--time-field", "t", "--watermark", "1m", "--session-gap-expr", c.expr, "-k", "k", "--count"}
		got := win(swindow(t, one(c.g), args...))
		want := "0@1000:\n"
		if c.want != "" {
			want += c.want + "\n"
		}
		if got != want {
			t.Errorf("gap %s, swindow %s:\n%s\nwant:\n%s", c.g, strings.Join(args, " "), got, want)
		}
	}
	// --time-unit ms: times and numeric gaps in milliseconds.
	bs := []batch{{0, 1000, []string{`{"t":10000,"k":"a","g":2000}`, `{"t":12000,"k":"a","g":2000}`}}}
	got := win(swindow(t, bs, "--time-field", "t", "--time-unit", "ms", "--watermark", "1m", "--session-gap-expr", "g", "-k", "k", "--count"))
	if want := "0@1000:\n1@14000: {[10,14) \"k\":\"a\",\"count\":2}\n"; got != want {
		t.Errorf("--time-unit ms:\n%s\nwant:\n%s", got, want)
	}
}

func TestSessionGapExprErrors(t *testing.T) {
	bs := []batch{{0, 1000, []string{`{"t":10,"k":"a","g":"2s"}`, `{"t":11,"k":"a","g":"soon"}`, `{"t":12,"k":"a","g":true}`}}}
	args := []string{"--time-field", "t", "--watermark", "1m", "--session-gap-expr", "g", "-k", "k", "--count"}
	_, stderr, code := runSwindow(t, stream(t, bs), args...)
	if want := `batch 0, record 2 {"t":11,"k":"a","g":"soon"}: --session-gap-expr 'g': gap "soon": want a duration`; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, %s\nwant exit 1 and %q", code, stderr, want)
	}
	// --skip-bad skips both, and counts them.
	got := win(swindow(t, bs, append(args, "--skip-bad")...))
	if want := "0@1000:\n1@12000: {[10,12) \"k\":\"a\",\"count\":1}\n"; got != want {
		t.Errorf("--skip-bad:\n%s\nwant:\n%s", got, want)
	}
}

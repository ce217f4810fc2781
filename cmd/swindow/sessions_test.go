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
		events, bs := randomEvents(rng, 1+rng.IntN(50), 700, 1500)
		// Brute force: per key, events in time order, a new session where
		// the next event is a gap or more after the last.
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
				for j < len(ts) && ts[j] < ts[j-1]+gap {
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

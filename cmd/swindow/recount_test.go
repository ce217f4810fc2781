package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/record"
)

// The tests here compare swindow, whose windows are assembled from slices
// (subtracting or with Two-Stacks), with a recount: each window's records
// folded one by one, in the order they came, into a table of its own. On
// random streams, with every aggregate, keyed and keyless, tumbling and
// sliding windows, of batch time and of event time (late data, watermarks,
// append and complete mode).

// kinds are the aggregates, each over field v but count.
var kinds = []agg.Kind{agg.Count, agg.Sum, agg.Avg, agg.Min, agg.Max, agg.First, agg.Last, agg.Distinct, agg.Collect}

// randomConfig picks keys (k or none) and one to four aggregates; args are
// swindow's flags for them, numeric tells whether v must be a number.
func randomConfig(t *testing.T, rng *rand.Rand) (cfg agg.Config, args []string, numeric bool) {
	keyed := rng.IntN(4) > 0
	var ks []agg.Kind
	for _, i := range rng.Perm(len(kinds))[:1+rng.IntN(4)] {
		ks = append(ks, kinds[i])
	}
	return configOf(t, keyed, ks)
}

// configOf is the configuration of aggregates ks, each over field v but
// count, keyed by k or not, with swindow's flags for it; numeric tells
// whether v must be a number.
func configOf(t *testing.T, keyed bool, ks []agg.Kind) (cfg agg.Config, args []string, numeric bool) {
	if keyed {
		cfg.Keys = []string{"k"}
		args = append(args, "-k", "k")
	}
	for _, k := range ks {
		if k == agg.Count {
			cfg.Aggs = append(cfg.Aggs, agg.Spec{Kind: k, Name: agg.DefaultName(k, "")})
			args = append(args, "--count")
			continue
		}
		s, err := agg.ParseSpec(k, "v")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Aggs = append(cfg.Aggs, s)
		args = append(args, "--"+k.String(), "v")
		numeric = numeric || k == agg.Sum || k == agg.Avg
	}
	return cfg, args, numeric
}

// randomValue is a value of v: integers, halves (their sums are exact in
// any order), null, and unless numeric strings and booleans.
func randomValue(rng *rand.Rand, numeric bool) string {
	n := 4
	if !numeric {
		n = 6
	}
	switch rng.IntN(n) {
	case 0:
		return "null"
	case 1:
		return fmt.Sprintf("%d.5", rng.IntN(7)-3)
	case 4:
		return fmt.Sprintf("%q", string(rune('x'+rng.IntN(3))))
	case 5:
		return "true"
	}
	return fmt.Sprint(rng.IntN(21) - 10)
}

// recount folds recs (JSON) into a new table of cfg, in order.
func recount(t *testing.T, cfg agg.Config, recs []string) *agg.Table {
	tb, err := agg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		rec, err := record.AppendJSONObject(nil, []byte(r))
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.Add(rec); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	return tb
}

// randomTop is --top N --by NAME, one time in four: top is N, or 0, and by
// the index of NAME in cfg.Aggs.
func randomTop(rng *rand.Rand, cfg agg.Config) (top, by int, args []string) {
	if rng.IntN(4) > 0 {
		return 0, 0, nil
	}
	top, by = 1+rng.IntN(2), rng.IntN(len(cfg.Aggs))
	return top, by, []string{"--top", fmt.Sprint(top), "--by", cfg.Aggs[by].Name}
}

// render appends tb's groups as swindow writes them, " JSON" each, with
// window fields first when start < end; only the groups of keys, if not
// nil, and of those the top ranked by aggregate by, if top > 0.
func render(t *testing.T, sb *strings.Builder, tb *agg.Table, start, end int64, keys map[string]bool, top, by int) {
	var gs []int32
	for _, g := range tb.Sorted() {
		if keys == nil || keys[string(tb.Key(g))] {
			gs = append(gs, g)
		}
	}
	if top > 0 {
		gs = tb.Top(gs, top, by)
	}
	for _, g := range gs {
		rec := tb.AppendRecord(nil, g)
		if start < end {
			n, hdr, _ := record.MapLen(rec)
			w := record.AppendMapHeader(nil, n+2)
			w = record.AppendString(w, "window_start")
			w = record.AppendTime(w, time.UnixMilli(start))
			w = record.AppendString(w, "window_end")
			w = record.AppendTime(w, time.UnixMilli(end))
			rec = append(w, rec[hdr:]...)
		}
		js, _, err := record.AppendJSON(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(" " + string(js))
	}
}

// TestBatchTimeAgainstRecount: windows of batch time, batches every 500 ms
// (so that a slice may hold several), any length and slide.
func TestBatchTimeAgainstRecount(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for round := range 150 {
		cfg, aggArgs, numeric := randomConfig(t, rng)
		top, by, topArgs := randomTop(rng, cfg)
		aggArgs = append(aggArgs, topArgs...)
		slide := int64(1+rng.IntN(4)) * 500
		length := int64(1+rng.IntN(10)) * 500
		first := int64(1 + rng.IntN(8))
		var bs []batch
		for i := range 1 + rng.IntN(20) {
			var recs []string
			for range rng.IntN(5) {
				recs = append(recs, fmt.Sprintf(`{"k":%q,"v":%s}`, string(rune('a'+rng.IntN(4))), randomValue(rng, numeric)))
			}
			bs = append(bs, batch{uint64(i), (first + int64(i)) * 500, recs})
		}
		// The recount, windows as bruteForce in swindow_test.go lays them.
		var sb strings.Builder
		last := bs[len(bs)-1].time
		for end := (bs[0].time + slide - 1) / slide * slide; ; end += slide {
			if end > last && last <= end-length {
				break
			}
			var id uint64
			var recs []string
			for _, b := range bs {
				if b.time <= end {
					id = b.id
				}
				if b.time > end-length && b.time <= end {
					recs = append(recs, b.recs...)
				}
			}
			tb := recount(t, cfg, recs)
			if tb.Len() == 0 && len(cfg.Keys) == 0 && cfg.HasCount() {
				tb.Group(nil)
			}
			fmt.Fprintf(&sb, "%d@%d:", id, end)
			render(t, &sb, tb, 0, 0, nil, top, by)
			sb.WriteString("\n")
			if end >= last {
				break
			}
		}
		args := append([]string{"-l", fmt.Sprintf("%dms", length), "-s", fmt.Sprintf("%dms", slide)}, aggArgs...)
		if got, want := swindow(t, bs, args...), sb.String(); got != want {
			t.Fatalf("round %d: swindow %s on %v:\n%s\nwant:\n%s", round, strings.Join(args, " "), bs, got, want)
		}
	}
}

// TestEventTimeAgainstRecount: windows of event time, with a watermark
// that leaves some records late, in each output mode.
func TestEventTimeAgainstRecount(t *testing.T) {
	eventAgainstRecount(t, rand.New(rand.NewPCG(13, 14)), 200, randomConfig)
}

// TestEventTimeFirstLastAgainstRecount: first and last over event time,
// whose slices are combined by order of arrival, not of event time: each
// round has one or both, and other aggregates at random (not collect,
// which keeps a table per window).
func TestEventTimeFirstLastAgainstRecount(t *testing.T) {
	eventAgainstRecount(t, rand.New(rand.NewPCG(15, 16)), 200, func(t *testing.T, rng *rand.Rand) (agg.Config, []string, bool) {
		keyed := rng.IntN(4) > 0
		ks := [][]agg.Kind{{agg.First}, {agg.Last}, {agg.First, agg.Last}, {agg.Last, agg.First}}[rng.IntN(4)]
		for _, k := range []agg.Kind{agg.Count, agg.Sum, agg.Min, agg.Max, agg.Distinct} {
			if rng.IntN(4) == 0 {
				ks = slices.Insert(ks, rng.IntN(len(ks)+1), k)
			}
		}
		return configOf(t, keyed, ks)
	})
}

// eventAgainstRecount runs rounds of random streams of event time through
// swindow and eventRecount, the aggregates of each round from config.
func eventAgainstRecount(t *testing.T, rng *rand.Rand, rounds int, config func(*testing.T, *rand.Rand) (agg.Config, []string, bool)) {
	for round := range rounds {
		cfg, aggArgs, numeric := config(t, rng)
		top, by, topArgs := randomTop(rng, cfg)
		aggArgs = append(aggArgs, topArgs...)
		slide := int64(1+rng.IntN(3)) * 1000
		length := slide + int64(rng.IntN(7))*500 // gcd(length, slide) of 500 ms to the slide
		delay := int64(rng.IntN(4)) * 500
		mode := []string{"append", "complete", "update"}[rng.IntN(3)]
		// Rising by 300 ms, each up to 4 s out of place: some late.
		var bs []batch
		n := 1 + rng.IntN(60)
		for i := 0; i < n; {
			m := min(n-i, rng.IntN(6))
			var recs []string
			for j := range m {
				tm := int64(i+j)*300 + rng.Int64N(4000)
				recs = append(recs, fmt.Sprintf(`{"t":%d,"k":%q,"v":%s}`, tm, string(rune('a'+rng.IntN(3))), randomValue(rng, numeric)))
			}
			bs = append(bs, batch{uint64(len(bs)), int64(len(bs)+1) * 1000, recs})
			i += m
		}
		want := eventRecount(t, bs, cfg, length, slide, delay, mode, top, by)
		args := append([]string{"--time-field", "t", "--time-unit", "ms", "--watermark", fmt.Sprintf("%dms", delay),
			"-l", fmt.Sprintf("%dms", length), "-s", fmt.Sprintf("%dms", slide), "--mode", mode}, aggArgs...)
		if got := swindow(t, bs, args...); got != want {
			t.Fatalf("round %d: swindow %s on %v:\n%s\nwant:\n%s", round, strings.Join(args, " "), bs, got, want)
		}
	}
}

// eventRecount is what swindow writes over event time, computed as
// Structured Streaming defines it: a record goes into each of its windows
// that is not final (its end past the watermark) when it comes, and is
// late if all are; the watermark moves at the end of each batch to the
// latest event time less the delay; append mode writes each window once,
// when final (and those left at the end of the stream), complete mode
// every window at every batch, update mode the groups of the keys each
// batch brought to a window.
func eventRecount(t *testing.T, bs []batch, cfg agg.Config, length, slide, delay int64, mode string, top, by int) string {
	type win struct {
		start int64
		recs  []string
	}
	wins := map[int64]*win{}
	var wm, maxT int64
	haveWM, haveMax := false, false
	final := func(end int64) bool { return mode != "complete" && haveWM && end <= wm }
	var sb strings.Builder
	touched := map[int64]map[string]bool{} // update mode: the keys the batch brought to each window
	keyOf := func(r string) string {
		tb := recount(t, cfg, []string{r})
		return string(tb.Key(tb.Sorted()[0]))
	}
	writeWins := func(pick func(end int64) bool) {
		var starts []int64
		for s := range wins {
			if pick(s + length) {
				starts = append(starts, s)
			}
		}
		slices.Sort(starts)
		for _, s := range starts {
			var keys map[string]bool
			if mode == "update" {
				if keys = touched[s]; keys == nil {
					continue
				}
			}
			render(t, &sb, recount(t, cfg, wins[s].recs), s, s+length, keys, top, by)
		}
	}
	for _, b := range bs {
		for _, r := range b.recs {
			var tm int64
			fmt.Sscanf(r, `{"t":%d`, &tm)
			latest := tm - tm%slide
			if final(latest + length) {
				continue // late
			}
			for s := latest; s > tm-length; s -= slide {
				if final(s + length) {
					continue
				}
				if wins[s] == nil {
					wins[s] = &win{start: s}
				}
				wins[s].recs = append(wins[s].recs, r)
				if touched[s] == nil {
					touched[s] = map[string]bool{}
				}
				touched[s][keyOf(r)] = true
			}
			if !haveMax || tm > maxT {
				maxT, haveMax = tm, true
			}
		}
		if haveMax && (!haveWM || maxT-delay > wm) {
			wm, haveWM = maxT-delay, true
		}
		fmt.Fprintf(&sb, "%d@%d:", b.id, b.time)
		switch mode {
		case "complete":
			writeWins(func(int64) bool { return true })
		case "update":
			writeWins(func(int64) bool { return true })
			for s := range wins {
				if final(s + length) {
					delete(wins, s)
				}
			}
		default:
			writeWins(final)
			for s := range wins {
				if final(s + length) {
					delete(wins, s)
				}
			}
		}
		sb.WriteString("\n")
		clear(touched)
	}
	if mode == "append" && len(wins) > 0 {
		last := bs[len(bs)-1]
		var end int64
		for s := range wins {
			end = max(end, s+length)
		}
		fmt.Fprintf(&sb, "%d@%d:", last.id+1, max(last.time+1, end))
		writeWins(func(int64) bool { return true })
		sb.WriteString("\n")
	}
	return sb.String()
}

package agg

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// combineRecords are n random records of keys k and j, a number n (integers
// and halves: sums of them are exact in any order) and a value v of every
// kind.
func combineRecords(t testing.TB, r *rand.Rand, n int) [][]byte {
	vals := []string{`null`, `1`, `2.5`, `"x"`, `"yy"`, `true`, `[1,{"a":2}]`, `{"m":null}`}
	recs := make([][]byte, n)
	for i := range recs {
		num := fmt.Sprint(r.IntN(9) - 4)
		if r.IntN(5) == 0 {
			num = fmt.Sprintf("%d.5", r.IntN(5))
		}
		recs[i] = mp(t, fmt.Sprintf(`{"k":%s,"j":%d,"n":%s,"v":%s}`, vals[r.IntN(len(vals))], r.IntN(3), num, vals[r.IntN(len(vals))]))
	}
	return recs
}

// TestMergeAgainstAdd: the records cut into slices, a table of each, merged
// in order, are the table of all the records, for every aggregate; and
// taking slices back out (the invertible ones) leaves the table of the
// rest.
func TestMergeAgainstAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	invertible := []Spec{spec(Count, ""), spec(Sum, "n"), spec(Avg, "n"), spec(Distinct, "v")}
	for round := range 50 {
		recs := combineRecords(t, r, r.IntN(60))
		var cuts []int // slice boundaries
		for i := 0; i < len(recs); i += 1 + r.IntN(10) {
			cuts = append(cuts, i)
		}
		cuts = append(cuts, len(recs))
		slices := func(aggs []Spec) []*Table {
			var ts []*Table
			for i := 0; i+1 < len(cuts); i++ {
				s := mustNew(t, []string{"k", "j"}, aggs...)
				for _, rec := range recs[cuts[i]:cuts[i+1]] {
					if err := s.Add(rec); err != nil {
						t.Fatal(err)
					}
				}
				ts = append(ts, s)
			}
			return ts
		}
		all := func(aggs []Spec, recs [][]byte) *Table {
			tb := mustNew(t, []string{"k", "j"}, aggs...)
			for _, rec := range recs {
				if err := tb.Add(rec); err != nil {
					t.Fatal(err)
				}
			}
			return tb
		}
		merged := mustNew(t, []string{"k", "j"}, allAggs()...)
		for _, s := range slices(allAggs()) {
			if err := merged.Merge(s); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := dump(t, merged), dump(t, all(allAggs(), recs)); got != want {
			t.Fatalf("round %d: merged:\n%s\nwant:\n%s", round, got, want)
		}
		// Merged, then the first slices taken back.
		ss := slices(invertible)
		inc := mustNew(t, []string{"k", "j"}, invertible...)
		for _, s := range ss {
			if err := inc.Merge(s); err != nil {
				t.Fatal(err)
			}
		}
		out := r.IntN(len(ss) + 1)
		for _, s := range ss[:out] {
			if err := inc.Unmerge(s); err != nil {
				t.Fatal(err)
			}
		}
		for _, g := range inc.Touched() {
			if inc.Rows(g) == 0 {
				inc.Remove(g)
			}
		}
		if got, want := dump(t, inc), dump(t, all(invertible, recs[cuts[out]:])); got != want {
			t.Fatalf("round %d: after taking back %d slices:\n%s\nwant:\n%s", round, out, got, want)
		}
	}
}

func TestMergeRefuses(t *testing.T) {
	a := mustNew(t, []string{"k"}, spec(Max, "v"))
	b := mustNew(t, []string{"k"}, spec(Min, "v"))
	if err := a.Merge(b); err != ErrConfig {
		t.Errorf("Merge of another config: %v, want ErrConfig", err)
	}
	if err := a.Unmerge(a); err != ErrNotInvertible {
		t.Errorf("Unmerge of max: %v, want ErrNotInvertible", err)
	}
	c := mustNew(t, []string{"k"}, spec(Sum, "n"))
	d := mustNew(t, []string{"k"}, spec(Sum, "n"))
	c.Add(mp(t, `{"k":1,"n":9223372036854775807}`))
	d.Add(mp(t, `{"k":1,"n":1}`))
	if err := c.Merge(d); err == nil {
		t.Error("a sum that overflows merged")
	}
	e := mustNew(t, []string{"k"}, spec(Sum, "n"))
	if err := e.Unmerge(d); err == nil {
		t.Error("took back a group the table does not hold")
	}
}

// BenchmarkMerge: a slice of 10,000 records over 1,000 keys merged into a
// table holding them all, as a window is assembled from its slices.
func BenchmarkMerge(b *testing.B) {
	for _, c := range []struct {
		name string
		aggs []Spec
	}{{"count", []Spec{spec(Count, "")}}, {"count-max", []Spec{spec(Count, ""), spec(Max, "n")}}} {
		b.Run(c.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			s := mustNew(b, []string{"k"}, c.aggs...)
			for range 10_000 {
				s.Add(mp(b, fmt.Sprintf(`{"k":"w%d","n":%d}`, r.IntN(1000), r.IntN(100))))
			}
			dst := mustNew(b, []string{"k"}, c.aggs...)
			b.ReportAllocs()
			for b.Loop() {
				if err := dst.Merge(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package agg

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestMergeArrivalAgainstAdd: records scattered over parts in any order
// (each part taking its records in order of arrival, as swindow's slices
// of event time do), the parts merged in any order and grouping, then
// more records added to the merge, are the table of all the records added
// in order of arrival, for every aggregate but collect.
func TestMergeArrivalAgainstAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	aggs := []Spec{spec(Count, ""), spec(Sum, "n"), spec(Min, "v"), spec(Max, "v"),
		spec(First, "v"), spec(Last, "v"), spec(First, "n"), spec(Distinct, "v")}
	keys := []string{"k", "j"}
	type part struct {
		t *Table
		a *Arrival
	}
	for round := range 200 {
		recs := combineRecords(t, r, r.IntN(80))
		late := r.IntN(len(recs) + 1) // recs[late:] come after the merge
		parts := make([]part, 1+r.IntN(8))
		for i := range parts {
			parts[i] = part{mustNew(t, keys, aggs...), &Arrival{}}
		}
		for i, rec := range recs[:late] {
			p := parts[r.IntN(len(parts))]
			if err := p.t.AddArrival(rec, p.a, uint64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		// Merged at random: two parts into a third, fresh or one of them.
		for len(parts) > 1 {
			i := r.IntN(len(parts))
			x := parts[i]
			parts = append(parts[:i], parts[i+1:]...)
			j := r.IntN(len(parts))
			y := parts[j]
			if r.IntN(2) == 0 {
				z := part{mustNew(t, keys, aggs...), &Arrival{}}
				for _, p := range []part{y, x} {
					if err := z.t.MergeArrival(p.t, z.a, p.a); err != nil {
						t.Fatal(err)
					}
				}
				y = z
			} else if err := y.t.MergeArrival(x.t, y.a, x.a); err != nil {
				t.Fatal(err)
			}
			parts[j] = y
		}
		m := parts[0]
		for i, rec := range recs[late:] {
			if err := m.t.AddArrival(rec, m.a, uint64(late+i+1)); err != nil {
				t.Fatal(err)
			}
		}
		all := mustNew(t, keys, aggs...)
		for _, rec := range recs {
			if err := all.Add(rec); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := dump(t, m.t), dump(t, all); got != want {
			t.Fatalf("round %d: merged:\n%s\nwant:\n%s", round, got, want)
		}
		// The arrivals of the merge are those of the groups' first and
		// last records.
		for _, g := range m.t.Sorted() {
			f, l := m.a.Of(g)
			var wf, wl uint64
			for i, rec := range recs {
				key, err := all.read(rec)
				if err != nil {
					t.Fatal(err)
				}
				if string(key) == string(m.t.Key(g)) {
					if wf == 0 {
						wf = uint64(i + 1)
					}
					wl = uint64(i + 1)
				}
			}
			if f != wf || l != wl {
				t.Fatalf("round %d: group %x arrived %d to %d, want %d to %d", round, m.t.Key(g), f, l, wf, wl)
			}
		}
	}
}

func TestMergeArrivalRefusesCollect(t *testing.T) {
	a, b := mustNew(t, nil, spec(Collect, "v")), mustNew(t, nil, spec(Collect, "v"))
	if err := a.MergeArrival(b, &Arrival{}, &Arrival{}); !errors.Is(err, ErrCollectOrder) {
		t.Fatalf("MergeArrival of collect: %v, want ErrCollectOrder", err)
	}
}

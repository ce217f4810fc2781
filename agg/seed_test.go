package agg

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// seedable are the aggregates that start from their output; the values of
// v are never null, so that avg's count of records is its count of values.
func seedable() []Spec {
	return []Spec{spec(Count, ""), spec(Sum, "v"), spec(Avg, "v"), spec(Min, "v"), spec(Max, "v"),
		spec(First, "v"), spec(Last, "v"), spec(Collect, "v"), spec(Sum, "f"), spec(First, "n"), spec(Min, "n")}
}

// TestSeedGoesOn checks that a table seeded from another's output, then
// given more records, writes what the other writes given them too.
func TestSeedGoesOn(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rec := func() []byte {
		f := "null" // a sum with no value yet, then a float
		if rng.IntN(3) == 0 {
			f = fmt.Sprintf("%.1f", rng.Float64()*10)
		}
		n := "null" // first and min of a field that may be null
		if rng.IntN(2) == 0 {
			n = fmt.Sprint(rng.IntN(5))
		}
		return mp(t, fmt.Sprintf(`{"k":"k%d","v":%d,"f":%s,"n":%s}`, rng.IntN(20), rng.IntN(100)-30, f, n))
	}
	for round := range 20 {
		orig, seeded := mustNew(t, []string{"k"}, seedable()...), mustNew(t, []string{"k"}, seedable()...)
		for range rng.IntN(60) {
			if err := orig.Add(rec()); err != nil {
				t.Fatal(err)
			}
		}
		for _, g := range orig.Sorted() {
			if err := seeded.Seed(orig.AppendRecord(nil, g)); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if got, want := dump(t, seeded), dump(t, orig); got != want {
			t.Fatalf("round %d: seeded:\n%s\nwant:\n%s", round, got, want)
		}
		for range rng.IntN(60) {
			r := rec()
			if err := orig.Add(r); err != nil {
				t.Fatal(err)
			}
			if err := seeded.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := dump(t, seeded), dump(t, orig); got != want {
			t.Fatalf("round %d: seeded, then more records:\n%s\nwant:\n%s", round, got, want)
		}
	}
}

func TestCheckSeed(t *testing.T) {
	for _, c := range []struct {
		aggs []Spec
		want string
	}{
		{seedable(), ""},
		{[]Spec{spec(Distinct, "v")}, "--distinct v cannot start from an initial state"},
		{[]Spec{spec(Avg, "v")}, "--avg v starts from an initial state only beside --sum v and --count"},
		{[]Spec{spec(Avg, "v"), spec(Count, "")}, "--avg v starts from"},
		{[]Spec{spec(Avg, "v"), spec(Count, ""), spec(Sum, "w")}, "--avg v starts from"},
		{[]Spec{spec(Avg, "v"), spec(Count, ""), {Kind: Sum, Field: "v", Name: "total"}}, ""},
	} {
		err := Config{Aggs: c.aggs}.CheckSeed()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: %v, want %q", c.aggs, err, c.want)
		}
	}
}

func TestSeedErrors(t *testing.T) {
	aggs := []Spec{spec(Count, ""), spec(Sum, "v"), spec(Avg, "v"), spec(Collect, "v")}
	for _, c := range []struct{ rec, want string }{
		{`{"k":"a","count":1,"sum_v":2,"collect_v":[2]}`, ""},
		{`{"count":1,"sum_v":2,"collect_v":[2]}`, `field "k": missing`},
		{`{"k":"a","sum_v":2,"collect_v":[2]}`, `field "count": missing`},
		{`{"k":"a","count":1,"collect_v":[2]}`, `field "sum_v": missing`},
		{`{"k":"a","count":1.5,"sum_v":2,"collect_v":[2]}`, `field "count": a count is an integer, 0 or more`},
		{`{"k":"a","count":-1,"sum_v":2,"collect_v":[2]}`, `field "count": a count is an integer`},
		{`{"k":"a","count":1,"sum_v":"2","collect_v":[2]}`, `field "sum_v": not a number (a string)`},
		{`{"k":"a","count":1,"sum_v":2,"collect_v":2}`, `field "collect_v": a collect is a list, not a int`},
		{`{"k":"a","count":0,"sum_v":2,"collect_v":[]}`, `field "avg_v": the sum of v is not null but the count is 0`},
	} {
		tb := mustNew(t, []string{"k"}, aggs...)
		err := tb.Seed(mp(t, c.rec))
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.rec, err, c.want)
		}
		if c.want != "" && tb.Len() != 0 {
			t.Errorf("%s: a group seeded from a refused record", c.rec)
		}
	}
	tb := mustNew(t, []string{"k", "j"}, spec(Count, ""))
	if err := tb.Seed(mp(t, `{"k":"a","j":1,"count":1}`)); err != nil {
		t.Fatal(err)
	}
	err := tb.Seed(mp(t, `{"j":1,"count":2,"k":"a"}`))
	if !errors.Is(err, ErrDuplicateKey) || err.Error() != `a key given twice: {"k":"a","j":1}` {
		t.Errorf("a key given twice: %v", err)
	}
}

// TestSeedTime checks that seeded groups take the table's time, and that
// TouchAll marks them changed at it.
func TestSeedTime(t *testing.T) {
	tb := mustNew(t, []string{"k"}, spec(Count, ""))
	tb.SetTime(5000)
	for _, r := range []string{`{"k":"a","count":1}`, `{"k":"b","count":2}`} {
		if err := tb.Seed(mp(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(tb.Touched()); n != 0 {
		t.Errorf("%d groups touched by Seed", n)
	}
	tb.SetTime(7000)
	tb.ClearTouched()
	tb.TouchAll()
	if n := len(tb.Touched()); n != 2 {
		t.Errorf("TouchAll touched %d groups, want 2", n)
	}
	if n := tb.Expire(6999); n != 0 {
		t.Errorf("Expire(6999) removed %d groups touched at 7000", n)
	}
	if gs := tb.Idle(7000, nil); len(gs) != 2 {
		t.Errorf("Idle(7000): %v, want both groups", gs)
	}
}

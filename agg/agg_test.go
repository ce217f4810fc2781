package agg

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/record"
)

func mp(t testing.TB, js string) []byte {
	t.Helper()
	b, err := record.AppendJSONObject(nil, []byte(js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return b
}

func mustNew(t testing.TB, keys []string, aggs ...Spec) *Table {
	t.Helper()
	tb, err := New(Config{Keys: keys, Aggs: aggs})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func spec(k Kind, field string) Spec { return Spec{Kind: k, Field: field, Name: DefaultName(k, field)} }

// dump returns the table's records in key order as JSON lines.
func dump(t testing.TB, tb *Table) string {
	t.Helper()
	var sb strings.Builder
	for _, g := range tb.Sorted() {
		js, _, err := record.AppendJSON(nil, tb.AppendRecord(nil, g))
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(js)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// values in increasing order of CompareValues; each is raw msgpack.
func orderedValues() [][]byte {
	tm := func(s int64, ns int64) []byte { return record.AppendTime(nil, time.Unix(s, ns)) }
	return [][]byte{
		{0xc0},
		record.AppendBool(nil, false),
		record.AppendBool(nil, true),
		record.AppendFloat(nil, math.Inf(-1)),
		record.AppendInt(nil, math.MinInt64),
		record.AppendFloat(nil, -1.5),
		record.AppendInt(nil, -1),
		record.AppendFloat(nil, -1),
		record.AppendInt(nil, 0),
		{0xcc, 0x01}, // 1 as uint8: equal to fixint 1
		record.AppendFloat(nil, 1),
		{0xca, 0x3f, 0xc0, 0x00, 0x00}, // float32 1.5
		record.AppendInt(nil, 1<<53),
		record.AppendInt(nil, 1<<53+1), // rounds to the same float
		record.AppendInt(nil, math.MaxInt64),
		record.AppendUint(nil, math.MaxUint64),
		record.AppendFloat(nil, math.Inf(1)),
		record.AppendFloat(nil, math.NaN()),
		record.AppendString(nil, ""),
		record.AppendString(nil, "A"),
		record.AppendString(nil, "a"),
		record.AppendString(nil, "ab"),
		record.AppendString(nil, strings.Repeat("b", 40)),
		record.AppendBinary(nil, []byte("a")),
		tm(1, 0),
		tm(1, 5),
		tm(1<<40, 0),
		record.AppendArrayHeader(nil, 0),
		record.AppendMapHeader(nil, 0),
	}
}

func TestCompareValues(t *testing.T) {
	vs := orderedValues()
	for i, a := range vs {
		for j, b := range vs {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			// 0xcc 0x01 and fixint 1 are the same value.
			if (i == 8 && j == 9) || (i == 9 && j == 8) {
				continue
			}
			if got := CompareValues(a, b); got != want {
				t.Errorf("CompareValues(%x, %x) = %d, want %d", a, b, got, want)
			}
		}
	}
	if CompareValues([]byte{0x01}, []byte{0xcc, 0x01}) != 0 {
		t.Error("1 and uint8 1 differ")
	}
}

func TestCanonicalKeys(t *testing.T) {
	same := [][2][]byte{
		{{0x01}, {0xcc, 0x01}},
		{{0x01}, {0xd3, 0, 0, 0, 0, 0, 0, 0, 1}},
		{{0xff}, {0xd0, 0xff}},
		{{0xa1, 'a'}, {0xd9, 0x01, 'a'}},
		{{0xca, 0x3f, 0xc0, 0x00, 0x00}, record.AppendFloat(nil, 1.5)},
		{nil, {0xc0}},
	}
	for _, p := range same {
		a, b := appendCanonical(nil, p[0]), appendCanonical(nil, p[1])
		if string(a) != string(b) {
			t.Errorf("%x and %x: keys %x and %x", p[0], p[1], a, b)
		}
	}
	diff := [][2][]byte{
		{{0x01}, record.AppendFloat(nil, 1)},
		{{0xa1, 'a'}, {0xc4, 0x01, 'a'}},
		{{0xa0}, {0xc0}},
	}
	for _, p := range diff {
		if string(appendCanonical(nil, p[0])) == string(appendCanonical(nil, p[1])) {
			t.Errorf("%x and %x have the same key", p[0], p[1])
		}
	}
}

func TestKeys(t *testing.T) {
	tb := mustNew(t, []string{"a", "b"}, spec(Count, ""))
	for _, r := range []string{
		`{"a":"x","b":1}`, `{"b":1,"a":"x"}`, `{"a":"x"}`, `{"a":"x","b":null}`,
		`{"a":"","b":""}`, `{"a":1,"b":"x"}`, `{"a":1.0,"b":"x"}`, `{"a":"x","b":1,"a":"y"}`,
		`{}`, `{"c":1}`,
	} {
		if err := tb.Add(mp(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	// 1 and 1.0 are two keys (JSON shows both as 1), the integer first.
	want := `{"a":null,"b":null,"count":2}
{"a":1,"b":"x","count":1}
{"a":1,"b":"x","count":1}
{"a":"","b":"","count":1}
{"a":"x","b":null,"count":2}
{"a":"x","b":1,"count":3}
`
	if got := dump(t, tb); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := kinds(t, tb, 1) + " " + kinds(t, tb, 2); got != "a:int b:string count:int a:float b:string count:int" {
		t.Errorf("kinds: %s", got)
	}
}

// kinds returns the fields of the i-th record in key order with the kinds
// of their values, which JSON does not show (1 and 1.0).
func kinds(t testing.TB, tb *Table, i int) string {
	var f record.Fields
	f.Reset(tb.AppendRecord(nil, tb.Sorted()[i]))
	var s []string
	for f.Next() {
		s = append(s, string(f.Key())+":"+record.KindOf(f.Value()).String())
	}
	return strings.Join(s, " ")
}

func TestNotMap(t *testing.T) {
	tb := mustNew(t, []string{"a"}, spec(Count, ""))
	var re *RecordError
	if err := tb.Add([]byte{0x91, 0x01}); !errors.As(err, &re) || !errors.Is(err, record.ErrNotMap) {
		t.Errorf("Add(array) = %v", err)
	}
	if err := tb.Add([]byte{0x81, 0xa1, 'a'}); !errors.As(err, &re) {
		t.Errorf("Add(truncated) = %v", err)
	}
	if tb.Len() != 0 {
		t.Error("a bad record made a group")
	}
}

func TestSums(t *testing.T) {
	tb := mustNew(t, nil, spec(Sum, "n"), spec(Avg, "n"))
	add := func(js string) error { return tb.Add(mp(t, js)) }
	for _, c := range []struct {
		rec, want, kinds string
	}{
		{`{"n":null}`, `{"sum_n":null,"avg_n":null}`, "sum_n:nil avg_n:nil"},
		{`{"n":1}`, `{"sum_n":1,"avg_n":1}`, "sum_n:int avg_n:float"},
		{`{"n":9223372036854775806}`, `{"sum_n":9223372036854775807,"avg_n":4611686018427388000}`, "sum_n:int avg_n:float"},
		{`{"n":-9223372036854775807}`, `{"sum_n":0,"avg_n":0}`, "sum_n:int avg_n:float"},
		{`{"n":0.5}`, `{"sum_n":0.5,"avg_n":0.125}`, "sum_n:float avg_n:float"},
		{`{}`, `{"sum_n":0.5,"avg_n":0.125}`, "sum_n:float avg_n:float"},
		{`{"n":-0.5}`, `{"sum_n":0,"avg_n":0}`, "sum_n:float avg_n:float"},
	} {
		if err := add(c.rec); err != nil {
			t.Fatal(err)
		}
		if got := dump(t, tb); got != c.want+"\n" {
			t.Errorf("after %s: %s, want %s", c.rec, got, c.want)
		}
		if got := kinds(t, tb, 0); got != c.kinds {
			t.Errorf("after %s: %s, want %s", c.rec, got, c.kinds)
		}
	}
	tb = mustNew(t, []string{"k"}, spec(Sum, "n"))
	add(`{"k":1,"n":9223372036854775807}`)
	for _, c := range []struct {
		rec string
		err error
		msg string
	}{
		{`{"k":1,"n":1}`, ErrOverflow, "sum_n: 1: integer overflow: the sum so far is 9223372036854775807"},
		{`{"k":1,"n":"1"}`, ErrNotNumber, `sum_n: "1": not a number (a string)`},
		{`{"k":2,"n":true}`, ErrNotNumber, `sum_n: true: not a number (a bool)`},
		{`{"k":2,"n":18446744073709551615}`, ErrOverflow, `sum_n: 18446744073709551615: integer overflow: above the largest int64`},
	} {
		err := add(c.rec)
		if !errors.Is(err, c.err) || err.Error() != c.msg {
			t.Errorf("%s: %v, want %s", c.rec, err, c.msg)
		}
	}
	if got := dump(t, tb); got != `{"k":1,"sum_n":9223372036854775807}`+"\n" {
		t.Errorf("bad records changed the table: %s", got)
	}
}

func TestValues(t *testing.T) {
	tb := mustNew(t, nil, spec(Min, "v"), spec(Max, "v"), spec(First, "v"), spec(Last, "v"), spec(Distinct, "v"), spec(Collect, "v"))
	for _, r := range []string{`{"v":null}`, `{"v":"b"}`, `{"v":3}`, `{"v":[1]}`, `{"v":2.5}`, `{"v":"b"}`, `{"v":3}`, `{}`} {
		if err := tb.Add(mp(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"min_v":2.5,"max_v":[1],"first_v":null,"last_v":null,"distinct_v":4,"collect_v":["b",3,[1],2.5,"b",3]}` + "\n"
	if got := dump(t, tb); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// Subtracting records gives the aggregates of the records that remain.
func TestSubtract(t *testing.T) {
	aggs := []Spec{spec(Count, ""), spec(Sum, "n"), spec(Avg, "n"), spec(Distinct, "v")}
	r := rand.New(rand.NewPCG(1, 2))
	var recs [][]byte
	for i := range 2000 {
		n := fmt.Sprint(r.IntN(100) - 50)
		if i%7 == 0 {
			n = fmt.Sprintf("%d.25", r.IntN(10))
		}
		if i%11 == 0 {
			n = "null"
		}
		recs = append(recs, mp(t, fmt.Sprintf(`{"k":%d,"n":%s,"v":%d}`, r.IntN(20), n, r.IntN(5))))
	}
	all := mustNew(t, []string{"k"}, aggs...)
	for _, rec := range recs {
		all.Add(rec)
	}
	for _, rec := range recs[:1500] {
		if err := all.Subtract(rec); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range all.Sorted() {
		if all.Rows(g) == 0 {
			all.Remove(g)
		}
	}
	rest := mustNew(t, []string{"k"}, aggs...)
	for _, rec := range recs[1500:] {
		rest.Add(rec)
	}
	got, want := dump(t, all), dump(t, rest)
	if got != want {
		// Float sums may differ in the last bits after subtraction.
		t.Logf("subtracted:\n%s\nadded:\n%s", got, want)
		if strings.Count(got, "\n") != strings.Count(want, "\n") {
			t.Fatal("different groups")
		}
	}
	// Only floats left out: the sum is an integer again.
	tb := mustNew(t, nil, spec(Sum, "n"))
	tb.Add(mp(t, `{"n":1}`))
	tb.Add(mp(t, `{"n":0.1}`))
	tb.Subtract(mp(t, `{"n":0.1}`))
	if got := dump(t, tb); got != `{"sum_n":1}`+"\n" {
		t.Errorf("got %s", got)
	}
	if err := mustNew(t, nil, spec(Min, "n")).Subtract(mp(t, `{"n":1}`)); !errors.Is(err, ErrNotInvertible) {
		t.Errorf("Subtract with min: %v", err)
	}
}

// Sorted keeps the key order as groups come and go and indices are reused.
func TestSortedIncremental(t *testing.T) {
	tb := mustNew(t, []string{"k"}, spec(Count, ""))
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		for range r.IntN(20) {
			tb.Add(mp(t, fmt.Sprintf(`{"k":%d}`, r.IntN(60))))
		}
		for _, g := range slices.Clone(tb.Sorted()) {
			if r.IntN(4) == 0 {
				tb.Remove(g)
			}
		}
		for range r.IntN(10) {
			tb.Add(mp(t, fmt.Sprintf(`{"k":%d}`, r.IntN(60))))
		}
		got := tb.Sorted()
		if len(got) != tb.Len() {
			t.Fatalf("round %d: %d sorted groups, %d in the table", round, len(got), tb.Len())
		}
		if !slices.IsSortedFunc(got, func(a, b int32) int { return CompareKeys(tb.Key(a), tb.Key(b)) }) {
			t.Fatalf("round %d: not sorted", round)
		}
		seen := map[int32]bool{}
		for _, g := range got {
			if seen[g] {
				t.Fatalf("round %d: group %d twice", round, g)
			}
			seen[g] = true
		}
	}
}

func TestTouchedExpire(t *testing.T) {
	tb := mustNew(t, []string{"k"}, spec(Count, ""), spec(Distinct, "v"))
	tb.SetTime(1000)
	tb.Add(mp(t, `{"k":"a","v":1}`))
	tb.Add(mp(t, `{"k":"b","v":1}`))
	tb.ClearTouched()
	tb.SetTime(2000)
	tb.Add(mp(t, `{"k":"b","v":2}`))
	if got := tb.Touched(); len(got) != 1 || string(tb.Key(got[0])) != "\xa1b" {
		t.Errorf("touched %v", got)
	}
	if n := tb.Expire(1000); n != 1 || tb.Len() != 1 {
		t.Errorf("Expire removed %d, %d left", n, tb.Len())
	}
	// A new group reuses a's index; a's distinct values are gone.
	tb.Add(mp(t, `{"k":"c","v":1}`))
	want := `{"k":"b","count":2,"distinct_v":2}
{"k":"c","count":1,"distinct_v":1}
`
	if got := dump(t, tb); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestTop(t *testing.T) {
	tb := mustNew(t, []string{"k"}, spec(Count, ""), spec(Max, "v"))
	for _, r := range []string{`{"k":"a","v":1}`, `{"k":"b"}`, `{"k":"b"}`, `{"k":"c","v":3}`, `{"k":"d","v":1}`, `{"k":"d"}`} {
		tb.Add(mp(t, r))
	}
	keys := func(gs []int32) string {
		var s []string
		for _, g := range gs {
			s = append(s, string(tb.Key(g)[1:]))
		}
		return strings.Join(s, " ")
	}
	if got := keys(tb.Top(slices.Clone(tb.Sorted()), 3, 0)); got != "b d a" {
		t.Errorf("top 3 by count: %s", got)
	}
	if got := keys(tb.Top(slices.Clone(tb.Sorted()), 10, 1)); got != "c a d b" {
		t.Errorf("top by max (null last): %s", got)
	}
}

func allAggs() []Spec {
	return []Spec{spec(Count, ""), spec(Sum, "n"), spec(Avg, "n"), spec(Min, "v"), spec(Max, "v"),
		spec(First, "v"), spec(Last, "v"), spec(Distinct, "v"), spec(Collect, "v")}
}

func snapshotTables(t testing.TB, n int) (*Table, []byte) {
	tb := mustNew(t, []string{"k", "j"}, allAggs()...)
	r := rand.New(rand.NewPCG(5, 6))
	vals := []string{`null`, `1`, `2.5`, `"x"`, `"yy"`, `true`, `[1,{"a":2}]`, `{"m":null}`}
	for i := range n {
		tb.SetTime(int64(i))
		n := fmt.Sprint(r.IntN(9) - 4)
		if i%5 == 0 {
			n = "0.5"
		}
		tb.Add(mp(t, fmt.Sprintf(`{"k":%s,"j":%d,"n":%s,"v":%s}`, vals[r.IntN(len(vals))], r.IntN(3), n, vals[r.IntN(len(vals))])))
	}
	tb.Expire(int64(n / 10)) // leave holes
	return tb, tb.AppendSnapshot(nil)
}

func TestSnapshot(t *testing.T) {
	tb, snap := snapshotTables(t, 300)
	back := mustNew(t, []string{"k", "j"}, allAggs()...)
	if err := back.LoadSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, back), dump(t, tb); got != want {
		t.Fatalf("restored\n%s\nwant\n%s", got, want)
	}
	for _, x := range []*Table{tb, back} {
		x.SetTime(1000)
		x.Add(mp(t, `{"k":"x","j":1,"n":1,"v":"zz"}`))
		x.Add(mp(t, `{"k":"new","n":1,"v":"zz"}`))
		x.Expire(100)
	}
	if got, want := dump(t, back), dump(t, tb); got != want {
		t.Fatalf("after more records, restored\n%s\nwant\n%s", got, want)
	}
	// Every truncation of a snapshot is an error, not a panic.
	for i := range len(snap) {
		if err := back.LoadSnapshot(snap[:i]); err == nil {
			t.Fatalf("snapshot cut at %d of %d loads", i, len(snap))
		}
	}
	if back.Len() != 0 {
		t.Error("a failed load left groups")
	}
}

func FuzzLoadSnapshot(f *testing.F) {
	_, snap := snapshotTables(f, 20) // small: the fuzzer minimizes slowly
	f.Add(snap)
	tb := mustNew(f, []string{"k", "j"}, allAggs()...)
	f.Add(mustNew(f, []string{"k", "j"}, allAggs()...).AppendSnapshot(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := tb.LoadSnapshot(b); err != nil {
			return
		}
		// What loads must give records and a snapshot again.
		for _, g := range tb.Sorted() {
			tb.AppendRecord(nil, g)
		}
		tb.AppendSnapshot(nil)
	})
}

// randomKeys returns n distinct keys of two values each, of every kind,
// strings most often, with common beginnings, zero bytes and every length
// around the 8 bytes of a sort prefix. With prefix, every key's first
// value is a string that starts with it.
func randomKeys(rng *rand.Rand, n int, prefix string) [][]byte {
	value := func(str bool) []byte {
		k := rng.IntN(9)
		if str {
			k = 8
		}
		switch k {
		case 0:
			return record.AppendNil(nil)
		case 1:
			return record.AppendBool(nil, rng.IntN(2) == 0)
		case 2:
			return record.AppendInt(nil, rng.Int64N(2000)-1000)
		case 3:
			return record.AppendFloat(nil, rng.Float64()*100)
		case 4:
			return record.AppendBinary(nil, []byte{byte(rng.IntN(3))})
		case 5:
			return record.AppendTime(nil, time.Unix(rng.Int64N(3), 0))
		default:
			b := []byte(prefix)
			for range rng.IntN(14) {
				b = append(b, "ab\x00\xffz"[rng.IntN(5)])
			}
			return record.AppendStringBytes(nil, b)
		}
	}
	seen := map[string]bool{}
	var keys [][]byte
	for len(keys) < n {
		k := append(value(prefix != ""), value(false)...)
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// TestSortByKeyAgreesWithCompareKeys: SortByKey (prefixes, radix sort,
// then CompareKeys among equal prefixes) orders groups as a comparison
// sort with CompareKeys does, on keys of every kind, on keys that all
// start with a string, and with a long common beginning.
func TestSortByKeyAgreesWithCompareKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name   string
		prefix string
		n      int
	}{
		{"mixed", "", 5000},
		{"mixed small", "", 200},
		{"strings", "k", 5000},
		{"common beginning", "a-long-common-beginning/", 3000},
	} {
		tb := mustNew(t, []string{"a", "b"}, spec(Count, ""))
		var gs []int32
		for _, k := range randomKeys(rng, c.n, c.prefix) {
			gs = append(gs, tb.Group(k))
		}
		rng.Shuffle(len(gs), func(i, j int) { gs[i], gs[j] = gs[j], gs[i] })
		want := slices.Clone(gs)
		slices.SortFunc(want, func(a, b int32) int { return CompareKeys(tb.Key(a), tb.Key(b)) })
		got := slices.Clone(gs)
		tb.SortByKey(got)
		if !slices.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s: at %d: key %x, want %x", c.name, i, tb.Key(got[i]), tb.Key(want[i]))
				}
			}
		}
		// The prefixes alone never contradict CompareKeys.
		ps := tb.sortPrefixes(gs, make([]uint64, len(gs)))
		for range 100000 {
			i, j := rng.IntN(len(ps)), rng.IntN(len(ps))
			a, b := tb.Key(gs[i]), tb.Key(gs[j])
			if c := CompareKeys(a, b); (ps[i] < ps[j] && c >= 0) || (ps[i] > ps[j] && c <= 0) {
				t.Fatalf("prefixes %x, %x but CompareKeys(%x, %x) = %d", ps[i], ps[j], a, b, c)
			}
		}
	}
}

// groupAggs are allAggs without distinct, whose values are table-wide.
func groupAggs() []Spec {
	return slices.DeleteFunc(allAggs(), func(s Spec) bool { return s.Kind == Distinct })
}

// groupTable is a table of groupAggs over n random records.
func groupTable(t testing.TB, n int) *Table {
	tb := mustNew(t, []string{"k", "j"}, groupAggs()...)
	r := rand.New(rand.NewPCG(7, 8))
	vals := []string{`null`, `1`, `2.5`, `"x"`, `"yy"`, `true`, `[1,{"a":2}]`}
	for i := range n {
		tb.SetTime(int64(i))
		tb.Add(mp(t, fmt.Sprintf(`{"k":%s,"j":%d,"n":%d,"v":%s}`, vals[r.IntN(len(vals))], r.IntN(3), r.IntN(9)-4, vals[r.IntN(len(vals))])))
	}
	tb.Expire(int64(n / 10)) // leave holes
	return tb
}

// A table's groups saved one by one (a changelog's values) and added to
// another table, in any order, give the same table; a key it has already
// is an error.
func TestGroupSnapshots(t *testing.T) {
	tb := groupTable(t, 300)
	back := mustNew(t, []string{"k", "j"}, groupAggs()...)
	gs := tb.All(nil)
	slices.Reverse(gs)
	var added []int32
	for _, g := range gs {
		var err error
		if added, err = back.AddSnapshot(added, tb.AppendGroupSnapshot(nil, g)); err != nil {
			t.Fatal(err)
		}
	}
	if len(added) != tb.Len() || back.Len() != tb.Len() {
		t.Fatalf("added %d groups, the table has %d, want %d", len(added), back.Len(), tb.Len())
	}
	if got, want := dump(t, back), dump(t, tb); got != want {
		t.Fatalf("restored\n%s\nwant\n%s", got, want)
	}
	if _, err := back.AddSnapshot(nil, tb.AppendGroupSnapshot(nil, gs[0])); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a key the table has: %v, want ErrCorrupt", err)
	}
	if err := (Config{Keys: []string{"k"}, Aggs: allAggs()}).GroupSnapshots(); err == nil || !strings.Contains(err.Error(), "--distinct v") {
		t.Errorf("GroupSnapshots with a distinct column: %v", err)
	}
	if err := (Config{Keys: []string{"k"}, Aggs: groupAggs()}).GroupSnapshots(); err != nil {
		t.Errorf("GroupSnapshots without distinct: %v", err)
	}
}

// FuzzAddSnapshot: a changelog's value, whatever its bytes, is added to a
// table of groups or refused, and the table stays whole.
func FuzzAddSnapshot(f *testing.F) {
	src := groupTable(f, 20)
	for _, g := range src.All(nil)[:3] {
		f.Add(src.AppendGroupSnapshot(nil, g))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tb := groupTable(t, 20)
		tb.AddSnapshot(nil, b)
		for _, g := range tb.Sorted() {
			tb.AppendRecord(nil, g)
			tb.AppendGroupSnapshot(nil, g)
		}
	})
}

package expr

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/dstream/dstream/internal/benchutil"
	"github.com/dstream/dstream/record"
)

// predSources are the predicates FastBool must recognise; predTest checks
// each on every record against the program run in the VM.
var predSources = []string{
	// comparisons with every kind of constant, on either side
	`x == 1`, `x != 1`, `x < 1`, `x <= 1`, `x > 1`, `x >= 1`,
	`1 < x`, `1 == x`, `3 >= x`, `"b" > x`, `nil != x`, `1.5 <= x`,
	`x == 1.5`, `x < 1.5`, `x >= -1`, `x > -1.5`, `x == - -3`, `x == +3`, `x < -0.0`,
	`x == 500`, `x >= 500`, `x < 500.0`, `x == 9007199254740993`, `x > 9223372036854775807`,
	`x == "a"`, `x != "a"`, `x < "b"`, `x >= "abc"`, `x > ""`, `x <= "héllo"`, `x == "1"`,
	`x == true`, `x != false`, `x == nil`, `x != nil`, `nil == x`,
	// len
	`len(x) > 3`, `len(x) == 3`, `3 < len(x)`, `len(x) >= 4.5`, `len(x) == 0`, `len(x) != 1.0`,
	`len(x) < 4`, `len(x) <= 3`, `len(x) > 4`, `len(x) >= 12`, `len(x) > 2.5`, `len(x) < -1`,
	// string operators
	`x contains "b"`, `x startsWith "a"`, `x endsWith "c"`, `x contains ""`, `x startsWith "é"`,
	`x not contains "b"`, `x not startsWith "a"`,
	// in
	`x in ["a", "abc"]`, `x in ["", "a"]`, `x in [1, 2, 3]`, `x in [1, "a", nil]`, `x in [nil]`,
	`x in []`, `x in [1.5, -1]`, `x in [true]`, `x not in ["a"]`, `x in [500, 503]`,
	// bool fields and logic
	`x`, `not x`, `!x`, `x and y`, `x or y`, `x && !y`,
	`x > 1 and y == "a"`, `x > 1 || y < 2`, `not (x == 1)`, `!(x < 1 && y > 2)`,
	`(x == 1 or x == 3) and y != nil`, `x == 1 and x < 1`, `x == 1 or x < 1`,
	`x != "" and y`, `len(x) > 3 && x startsWith "a"`, `x == nil or len(x) > 2`,
	`x in ["a"] or y in [1] and not (y2 == 1)`,
	// fields written as $env members or named like functions
	`$env.x > 1`, `$env["x"] == "a"`, `count > 1`, `x | len() > 2`,
}

// notPreds are expressions FastBool must leave to the program.
var notPreds = []string{
	`x + 1 > 2`, `x > y`, `x == 1 and true`, `true and x > 1`, `not true`, `x or false`,
	`x matches "a"`, `lower(x) == "a"`, `x in y`, `x in [y]`, `x in [1 + 1]`, `x in 1..3`,
	`x contains y`, `"abc" contains x`, `x.y == 1`, `x[0] == 1`, `let z = 1; x == z`,
	`(x ?? 1) > 0`, `x == 1 ? true : false`, `true`, `1 == 1`, `-x > 1`,
	`len(x) > len(y)`, `count(x, # > 1) > 0`, `$env == nil`, `x?.y == 1`, `len([x]) > 0`,
}

// predValue is one field value of the test records, as raw msgpack.
type predValue struct {
	name  string
	raw   []byte
	plain bool // of a kind FastBool handles: nil, bool, int64, float, string
}

func mp(v any) []byte {
	b, err := record.AppendValue(nil, v)
	if err != nil {
		panic(err)
	}
	return b
}

func wideInt(v int64) []byte { return binary.BigEndian.AppendUint64([]byte{0xd3}, uint64(v)) }
func float32Raw(v float32) []byte {
	return binary.BigEndian.AppendUint32([]byte{0xca}, math.Float32bits(v))
}
func str8(s string) []byte { return append([]byte{0xd9, byte(len(s))}, s...) }

func predValues() []predValue {
	var vs []predValue
	for _, v := range []any{
		nil, true, false,
		int64(0), int64(1), int64(-1), int64(2), int64(3), int64(4), int64(499), int64(500), int64(501), int64(503),
		int64(math.MaxInt64), int64(math.MinInt64), int64(1<<53 + 1), int64(1 << 53),
		1.0, 1.5, -1.5, math.Copysign(0, -1), 3.0, 4.5, 499.9, 500.0, 9007199254740992.0, math.NaN(), math.Inf(1), math.Inf(-1),
		"", "a", "b", "abc", "abcd", "ab", "héé", "héllo", "éa", "\xff\xfe", "1", "500", "true", "apple", "banana", "bcd",
		"𝄞𝄞𝄞", "𝄞𝄞𝄞𝄞", "é𝄞", "\xff\xff\xff\xff", "a longer line of ascii words",
	} {
		vs = append(vs, predValue{fmt.Sprintf("%T(%v)", v, v), mp(v), true})
	}
	return append(vs,
		predValue{"wide int 3", wideInt(3), true},
		predValue{"wide int -1", wideInt(-1), true},
		predValue{"uint8 200", []byte{0xcc, 200}, true},
		predValue{"float32 1.5", float32Raw(1.5), true},
		predValue{"float32 3", float32Raw(3), true},
		predValue{"str8 a", str8("a"), true},
		predValue{"str8 abcd", str8("abcd"), true},
		predValue{"binary a", mp([]byte("a")), false},
		predValue{"uint max", mp(uint64(math.MaxUint64)), false},
		predValue{"array", mp([]any{int64(1), "a"}), false},
		predValue{"empty array", mp([]any{}), false},
		predValue{"map", mp(map[string]any{"a": int64(1)}), false},
		predValue{"time", mp(time.Unix(1, 0)), false},
		predValue{"bad time", []byte{0xd7, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, false},
	)
}

type predRecord struct {
	name  string
	raw   []byte
	plain bool
}

// predRecords are records of fields x and y (and y2), each of every value
// or missing, and a few of other layouts.
func predRecords() []predRecord {
	vs := predValues()
	var rs []predRecord
	build := func(name string, plain bool, kv ...any) {
		var b record.Builder
		for i := 0; i < len(kv); i += 2 {
			b.Raw(kv[i].(string), kv[i+1].([]byte))
		}
		rs = append(rs, predRecord{name, slices.Clone(b.Bytes()), plain})
	}
	build("{}", true)
	for _, x := range vs {
		build(fmt.Sprintf("{x: %s}", x.name), x.plain, "x", x.raw)
		build(fmt.Sprintf("{y: %s}", x.name), x.plain, "y", x.raw)
		for _, y := range vs {
			build(fmt.Sprintf("{x: %s, y: %s}", x.name, y.name), x.plain && y.plain, "x", x.raw, "y", y.raw)
		}
	}
	build("{y, x}", true, "y", mp("a"), "x", mp(int64(3)))
	build("{x twice}", true, "x", mp(int64(3)), "x", mp("a"))
	build("{x twice, second an array}", true, "x", mp(int64(3)), "x", mp([]any{}))
	build("{other, x}", true, "other", mp([]any{int64(1)}), "x", mp("abc"))
	build("{count, y2}", true, "count", mp(int64(2)), "y2", mp(true), "x", mp("a"), "y", mp(int64(1)))
	build("{x: 1, y: 2, y2: 1}", true, "x", mp(int64(1)), "y", mp(int64(2)), "y2", mp(int64(1)))
	return rs
}

// checkPred compares FastBool with BindRecord and Run on one record. When
// complete, it also requires FastBool to handle the record unless the
// program fails or gives something other than a bool.
func checkPred(t *testing.T, p *Program, name string, r []byte, complete bool) (handled bool) {
	t.Helper()
	v, ok := p.FastBool(r)
	var want any
	err := p.BindRecord(r)
	if err == nil {
		want, err = p.Run()
	}
	_, isBool := want.(bool)
	switch {
	case ok && err != nil:
		t.Errorf("%s on %s: fast path %v, program fails: %v", p.Source, name, v, err)
	case ok && want != v:
		t.Errorf("%s on %s: fast path %v, program %#v", p.Source, name, v, want)
	case !ok && complete && err == nil && isBool:
		t.Errorf("%s on %s: fast path declines, program %#v", p.Source, name, want)
	}
	return ok
}

func TestFastBool(t *testing.T) {
	recs := predRecords()
	for _, src := range predSources {
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("Compile(%q): %v", src, err)
		}
		if p.pred == nil {
			t.Errorf("%s: not recognised", src)
			continue
		}
		if !slices.Equal(p.pred.fields, p.Fields()) {
			t.Errorf("%s: reads %q, the program %q", src, p.pred.fields, p.Fields())
		}
		n := 0
		for _, r := range recs {
			if checkPred(t, p, r.name, r.raw, r.plain) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s: no record handled", src)
		}
	}
	for _, src := range notPreds {
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("Compile(%q): %v", src, err)
		}
		if p.pred != nil {
			t.Errorf("%s: recognised", src)
		}
		if _, ok := p.FastBool(recs[len(recs)-1].raw); ok {
			t.Errorf("%s: FastBool handles it", src)
		}
	}
}

// Records that are not valid msgpack maps, or not all of them, decline
// unless the program reads them as well.
func TestFastBoolBadRecords(t *testing.T) {
	p, err := Compile(`x == 1 or y == 2`)
	if err != nil {
		t.Fatal(err)
	}
	good := append([]byte{0x82, 0xa1, 'x', 0x01, 0xa1, 'y'}, 0x02)
	for _, r := range [][]byte{
		nil, {}, {0x91, 0x01}, {0xa1, 'x'}, {0x81}, {0x81, 0xa1}, {0x81, 0xa1, 'x'},
		{0x82, 0xa1, 'x', 0x01}, {0x81, 0x01, 0x01}, {0x81, 0xa1, 'x', 0xd9},
		{0x82, 0xa1, 'x', 0x01, 0xa1, 'y', 0xd9, 0xff},
		{0x82, 0xa1, 'x', 0x01, 0xa1, 'y', 0xc1},             // y: the never-used byte
		{0x82, 0xa1, 'x', 0x01, 0xa1, 'y', 0x81, 0x01, 0x01}, // y: a map with an int key
		good[:len(good)-1], good,
	} {
		checkPred(t, p, fmt.Sprintf("% x", r), r, false)
	}
}

// FuzzPredicate builds records of fields x and y from fuzzed values of
// every kind (or missing) and checks FastBool against the program for the
// predicates of predSources; raw is also tried as a record as it is.
func FuzzPredicate(f *testing.F) {
	f.Add(uint8(3), int64(1), 1.5, "a", uint8(5), int64(-1), 0.0, "abc", []byte{0x81, 0xa1, 'x', 0x01})
	f.Add(uint8(0), int64(500), 499.9, "", uint8(2), int64(0), math.NaN(), "héllo", []byte{})
	f.Add(uint8(7), int64(math.MaxInt64), math.Inf(1), "\xff", uint8(8), int64(1<<53+1), 9007199254740992.0, "b", []byte{0x82, 0xa1, 'y', 0xc3, 0xa1, 'x', 0xa1, 'a'})
	progs := make([]*Program, len(predSources))
	for i, src := range predSources {
		var err error
		if progs[i], err = Compile(src); err != nil {
			f.Fatal(err)
		}
	}
	// value makes a field of the kind k selects; ok is false for missing.
	value := func(k uint8, i int64, fl float64, s string) ([]byte, bool) {
		switch k % 12 {
		case 0:
			return nil, false
		case 1:
			return mp(nil), true
		case 2:
			return mp(i&1 == 1), true
		case 3:
			return mp(i), true
		case 4:
			return wideInt(i), true
		case 5:
			return mp(fl), true
		case 6:
			return float32Raw(float32(fl)), true
		case 7:
			return mp(s), true
		case 8:
			return mp(float64(i)), true
		case 9:
			return mp(uint64(i)), true
		case 10:
			return mp([]byte(s)), true
		}
		return mp([]any{i, s}), true
	}
	f.Fuzz(func(t *testing.T, kx uint8, ix int64, fx float64, sx string, ky uint8, iy int64, fy float64, sy string, raw []byte) {
		var b record.Builder
		if v, ok := value(kx, ix, fx, sx); ok {
			b.Raw("x", v)
		}
		if v, ok := value(ky, iy, fy, sy); ok {
			b.Raw("y", v)
		}
		if kx&0x80 != 0 { // now and then, x twice
			b.Raw("x", mp(sy))
		}
		r := slices.Clone(b.Bytes())
		for _, p := range progs {
			checkPred(t, p, fmt.Sprintf("% x", r), r, false)
			checkPred(t, p, fmt.Sprintf("raw % x", raw), raw, false)
		}
	})
}

func BenchmarkFastBool(b *testing.B) {
	r := append(record.AppendString(append(record.AppendString([]byte{0x82}, "value"), mp("the quick brown fox jumps over the lazy dog and runs on")...), "status"), mp(int64(503))...)
	for _, src := range []string{`value != ""`, `status >= 500`, `len(value) > 3 && value startsWith "a"`, `status in [500, 502, 503] or value contains "fox"`} {
		p, err := Compile(src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := benchutil.CPUTime()
			for b.Loop() {
				if _, ok := p.FastBool(r); !ok {
					b.Fatal("declined")
				}
			}
			b.ReportMetric(float64(benchutil.CPUTime()-cpu0)/float64(b.N), "cpu-ns/record")
		})
		b.Run(src+"/program", func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := benchutil.CPUTime()
			for b.Loop() {
				if err := p.BindRecord(r); err != nil {
					b.Fatal(err)
				}
				if _, err := p.Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchutil.CPUTime()-cpu0)/float64(b.N), "cpu-ns/record")
		})
	}
}

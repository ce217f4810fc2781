package expr

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/vmihailenco/msgpack/v5"
)

// slotSources are expressions that read fields in every way there is: as
// identifiers, as $env members, named like functions, beside let variables
// of the same name, in predicates, optional chains and ??.
var slotSources = []string{
	`value`,
	`len(value) > 3`,
	`n * 2`,
	`count > 5 and type == "click"`,
	`count`,
	`date`,
	`$env["user-agent"] + $env.host`,
	`$env?.host`,
	`$env?.host ?? "none"`,
	`$env.user?.name`,
	`$env["a.b"]`,
	`$env["$env.host"]`,
	`$env["$env.host"] + $env["$env.$env.host"]`,
	`let value = 1; value + $env.value`,
	`let x = n * 2; x + n`,
	`let n = 1; let m = n + 1; n + m`,
	`filter(tags, # != missing)`,
	`map(tags, # + value)`,
	`count(tags, # == "a")`,
	`n > 1 ? value : type`,
	`(ok ? n : f) + 1`,
	`missing ?? n`,
	`x ?? 0`,
	`tags[1]`,
	`user.name`,
	`user?.name ?? "anon"`,
	`t.Year()`,
	`sprintf("%s-%d", value, count)`,
	`{"w": upper(value), "n": len(value)}`,
	`value in ["a", "b", "hello world"]`,
	`n in 1..5`,
	`-n`,
	`not ok`,
	`ok ? 1 : 2`,
	`f + n`,
	`type(value)`,
	`value matches "^h"`,
	`len(value) > 3 && value startsWith "h" || n == 3`,
	`sort(keys($env))`,
}

// extInt decodes as a pointer, *extInt, from msgpack extension 42: a field
// whose value the VM's OpDeref changes.
type extInt int64

func (x *extInt) MarshalMsgpack() ([]byte, error) { return []byte{byte(*x)}, nil }
func (x *extInt) UnmarshalMsgpack(b []byte) error {
	if len(b) != 1 {
		return fmt.Errorf("extInt: %d bytes, want 1", len(b))
	}
	*x = extInt(b[0])
	return nil
}

func init() { msgpack.RegisterExt(42, (*extInt)(nil)) }

// slotRecords are records for slotSources: fields of every kind, missing,
// repeated, and one a pointer (extInt).
func slotRecords(t testing.TB) [][]byte {
	ts := time.Date(2024, 5, 1, 12, 30, 45, 0, time.UTC)
	return [][]byte{
		rec(t, "value", "hello world", "n", int64(3), "f", 1.5, "count", int64(7), "type", "click", "date", "d",
			"t", ts, "tags", []any{"a", "b"}, "user", map[string]any{"name": "ann"}, "ok", true,
			"user-agent", "curl", "host", "h", "a.b", int64(1), "$env.host", "x", "$env.$env.host", "y"),
		rec(t, "value", "hi", "n", int64(-300), "count", int64(1), "type", "view"),
		rec(t),
		rec(t, "value", int64(5), "n", "3", "f", int64(1000), "tags", []any{}, "user", nil, "ok", false, "host", nil),
		rec(t, "n", 2.5, "value", "a", "value", "b", "t", "not a time"),
		append([]byte{0x82, 0xa1, 'n'}, append([]byte{0xd4, 42, 7}, 0xa5, 'v', 'a', 'l', 'u', 'e', 0xa1, 'h')...),
	}
}

// slotPair is a program of slotSources and the same reading the map.
type slotPair struct{ got, want *Program }

func slotPrograms(t testing.TB) []slotPair {
	var ps []slotPair
	for _, src := range slotSources {
		got, err := Compile(src)
		if err != nil {
			t.Fatalf("Compile(%q): %v", src, err)
		}
		want, err := compile(src, false)
		if err != nil {
			t.Fatal(err)
		}
		if want.slots != nil {
			t.Fatalf("%s: the reference reads fields from slots", src)
		}
		ps = append(ps, slotPair{got, want})
	}
	return ps
}

// check runs both programs on r, with and without Alias.
func (sp slotPair) check(t *testing.T, name string, r []byte) {
	t.Helper()
	for _, alias := range []bool{false, true} {
		sp.got.Alias, sp.want.Alias = alias, alias
		gv, gerr := runRecord(sp.got, r)
		wv, werr := runRecord(sp.want, r)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(noNaN(gv), noNaN(wv)) {
			t.Errorf("%s on %s: got %#v, %v; want %#v, %v", sp.got.Source, name, gv, gerr, wv, werr)
		}
	}
}

// noNaN is v with every NaN replaced by a marker, so that DeepEqual takes
// two NaNs (a float field read from the record) for the same value.
func noNaN(v any) any {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) {
			return "NaN"
		}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = noNaN(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = noNaN(e)
		}
		return out
	}
	return v
}

// Reading fields from VM variables gives what reading them from the map
// gives, value or error, record after record.
func TestSlotsAsMap(t *testing.T) {
	recs := slotRecords(t)
	for _, sp := range slotPrograms(t) {
		for i, r := range recs {
			sp.check(t, fmt.Sprint("record ", i), r)
		}
	}
}

// FuzzSlotsAsMap is TestSlotsAsMap on any bytes as a record.
func FuzzSlotsAsMap(f *testing.F) {
	for _, r := range slotRecords(f) {
		f.Add(r)
	}
	ps := slotPrograms(f)
	f.Fuzz(func(t *testing.T, r []byte) {
		for _, sp := range ps {
			sp.check(t, fmt.Sprintf("% x", r), r)
		}
	})
}

func runRecord(p *Program, r []byte) (any, error) {
	if err := p.BindRecord(r); err != nil {
		return nil, err
	}
	return p.Run()
}

// The expressions of the benchmarks and of smap's common uses take the
// fast way: fields in slots, no OpDeref after reading them. A change of
// expr's code generation that undoes this fails here, not silently.
func TestSlotsUsed(t *testing.T) {
	for _, src := range []string{
		`len(value) > 3`,
		`status >= 500 and path startsWith "/api"`,
		`count > 10 and type == "x"`,
		`$env["user-agent"] + $env.host`,
		`{"w": upper(value), "n": len(value)}`,
	} {
		p, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		if p.slots == nil || p.fast == nil {
			t.Errorf("%s: slots %v, fast %v; want both\n%s", src, p.slots != nil, p.fast != nil, p.prog.Disassemble())
			continue
		}
		for ip, op := range p.fast.Bytecode {
			switch op {
			case vm.OpLoadFast, vm.OpLoadEnv, vm.OpDeref:
				t.Errorf("%s: instruction %d is %v\n%s", src, ip, op, p.fast.Disassemble())
			}
		}
	}
	p, err := Compile(`keys($env)`)
	if err != nil {
		t.Fatal(err)
	}
	if p.slots != nil {
		t.Errorf("keys($env) reads fields from slots")
	}
}

// An OpDeref that a jump lands on stays: the value there may come from
// elsewhere than the field read just before it.
func TestDropDerefsKeepsJumpTargets(t *testing.T) {
	p, err := Compile(`(ok ? n : f) + 1`) // the OpDeref after f is where the branch of n goes on
	if err != nil {
		t.Fatal(err)
	}
	if p.fast == nil {
		t.Fatalf("no OpDeref dropped:\n%s", p.prog.Disassemble())
	}
	n := 0
	for _, op := range p.fast.Bytecode {
		if op == vm.OpDeref {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d OpDeref left, want 1:\n%s", n, p.fast.Disassemble())
	}
}

// The values boxes makes are those any makes.
func TestBoxes(t *testing.T) {
	var b boxes
	for _, c := range []struct{ got, want any }{
		{b.string("abc"), "abc"},
		{b.string(""), ""},
		{b.int(-1), int64(-1)},
		{b.int(7), int64(7)},
		{b.int(1 << 40), int64(1 << 40)},
		{b.float(2.5), 2.5},
	} {
		if c.got != c.want || reflect.TypeOf(c.got) != reflect.TypeOf(c.want) || fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("boxed %#v, want %#v", c.got, c.want)
		}
		m := map[any]bool{c.want: true}
		if !m[c.got] {
			t.Errorf("boxed %#v is not the map key %#v", c.got, c.want)
		}
	}
}

// A field's any shares no memory with the previous record's: a result kept
// from one record reads the same after the next is bound.
func TestBoxesNotReused(t *testing.T) {
	p, err := Compile(`[value, n, f]`)
	if err != nil {
		t.Fatal(err)
	}
	var kept []any
	for i := range 3 * boxChunk {
		r := rec(t, "value", fmt.Sprint("v", i), "n", int64(1000+i), "f", float64(i)+0.5)
		v, err := runRecord(p, r)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, v)
	}
	for i, v := range kept {
		want := []any{fmt.Sprint("v", i), int64(1000 + i), float64(i) + 0.5}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("record %d: kept %#v, want %#v", i, v, want)
		}
	}
}

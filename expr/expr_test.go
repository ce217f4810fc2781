package expr

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/record"
)

// rec builds a record from alternating keys and values.
func rec(t testing.TB, kv ...any) []byte {
	t.Helper()
	var b record.Builder
	for i := 0; i < len(kv); i += 2 {
		if err := b.Value(kv[i].(string), kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return append([]byte(nil), b.Bytes()...)
}

func run(t testing.TB, src string, r []byte) (any, error) {
	t.Helper()
	p, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	if err := p.BindRecord(r); err != nil {
		t.Fatalf("BindRecord: %v", err)
	}
	return p.Run()
}

func TestFields(t *testing.T) {
	tests := []struct {
		src    string
		fields []string
		all    bool
	}{
		{`true`, nil, false},
		{`len(value) > 3`, []string{"value"}, false},
		{`a + b * a`, []string{"a", "b"}, false},
		{`count > 10 and type == "x"`, []string{"count", "type"}, false},
		{`count(tags, # > 1)`, []string{"tags"}, false},
		{`let x = v * 2; x + y`, []string{"v", "y"}, false},
		{`let v = 1; v`, nil, false},
		{`$env["user-agent"] + $env.host`, []string{"user-agent", "host"}, false},
		{`keys($env)`, nil, true},
		{`"a" in $env`, nil, true},
		{`user.name`, []string{"user"}, false},
		{`t.Format("2006")`, []string{"t"}, false},
		{`filter(items, .price > limit)`, []string{"items", "limit"}, false},
		{`{"w": value, "n": len(value)}`, []string{"value"}, false},
		{`value | split(" ") | map(upper(#))`, []string{"value"}, false},
		{`sprintf("%s-%d", a, n)`, []string{"a", "n"}, false},
		{`x ?? 0`, []string{"x"}, false},
		{`items[1:n]`, []string{"items", "n"}, false},
	}
	for _, tt := range tests {
		p, err := Compile(tt.src)
		if err != nil {
			t.Errorf("Compile(%q): %v", tt.src, err)
			continue
		}
		if got := p.Fields(); !reflect.DeepEqual(got, tt.fields) && (len(got) != 0 || len(tt.fields) != 0) {
			t.Errorf("Compile(%q).Fields() = %q, want %q", tt.src, got, tt.fields)
		}
		if p.ReadsAll() != tt.all {
			t.Errorf("Compile(%q).ReadsAll() = %v, want %v", tt.src, p.ReadsAll(), tt.all)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`len(value) >`, "unexpected token EOF (1:12)\n | len(value) >\n | ...........^"},
		{`sprint("%d", n)`, "unknown function sprint (1:1)\n | sprint(\"%d\", n)\n | ^"},
		{`regexpExtract(value, "([a-z]")`, "error parsing regexp: missing closing ): `([a-z]` (1:22)"},
		{`value matches "(["`, "error parsing regexp"},
		{`fields(1)`, "cannot use int as argument (type string) to call fields"},
		{`upper(1, 2)`, "too many arguments to call upper"},
		{`1 +`, "unexpected token EOF"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.src)
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("Compile(%q) = %v, want a *CompileError", tt.src, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%q) error:\n%s\nwant it to contain:\n%s", tt.src, err, tt.want)
		}
	}
}

func TestRun(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 30, 45, 0, time.UTC)
	r := rec(t, "value", "hello world", "n", int64(3), "f", 1.5, "count", int64(7), "type", "click",
		"t", ts, "tags", []any{"a", "b"}, "user", map[string]any{"name": "ann"}, "nil", nil, "ok", true)
	tests := []struct {
		src  string
		want any
	}{
		{`value`, "hello world"},
		{`n`, int64(3)},
		{`n * 2`, 6},
		{`f * 2`, 3.0},
		{`count > 5`, true},
		{`type == "click"`, true},
		{`count + n`, 10},
		{`t`, ts},
		{`tags[1]`, "b"},
		{`user.name`, "ann"},
		{`nil`, nil},
		{`ok`, true},
		{`missing`, nil},
		{`missing ?? "dflt"`, "dflt"},
		{`"count" in $env`, true},
		{`"missing" in $env`, false},
		{`$env["value"]`, "hello world"},
		{`len(value)`, 11},
		{`split(value, " ")`, []string{"hello", "world"}},
		{`[n, n * 2]`, []any{int64(3), 6}},
		{`count(tags, # == "a")`, 1},
	}
	for _, tt := range tests {
		got, err := run(t, tt.src, r)
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %#v (%T), want %#v (%T)", tt.src, got, got, tt.want, tt.want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	r := rec(t, "value", "ab", "n", int64(3))
	tests := []struct {
		src, want string
		missing   []string
	}{
		{`len(x) > 3`, `invalid argument for len (type <nil>) (1:1) (the record has no field "x")`, []string{"x"}},
		{`split(n, " ")`, "interface conversion: interface {} is int64, not string (1:1)", nil},
		{`value > 3`, "invalid operation: string > int (1:7)", nil},
		{`fields(n)`, "fields: argument 1: want a string, got int64 (3)", nil},
		{`int(value)`, "invalid operation: int(ab)", nil},
	}
	for _, tt := range tests {
		_, err := run(t, tt.src, r)
		var re *RunError
		if !errors.As(err, &re) {
			t.Errorf("%s: error %v, want a *RunError", tt.src, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q, want it to contain %q", tt.src, err, tt.want)
		}
		if !reflect.DeepEqual(re.Missing, tt.missing) {
			t.Errorf("%s: missing %q, want %q", tt.src, re.Missing, tt.missing)
		}
	}
}

// A program run on one record and then another sees only the second.
func TestRebind(t *testing.T) {
	p, err := Compile(`a ?? "none"`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		r    []byte
		want any
	}{
		{rec(t, "a", "x"), "x"},
		{rec(t, "b", "y"), "none"},
		{rec(t, "a", int64(1), "a", int64(2)), int64(1)}, // the first of duplicate keys
	} {
		if err := p.BindRecord(c.r); err != nil {
			t.Fatal(err)
		}
		if got, err := p.Run(); err != nil || got != c.want {
			t.Errorf("got %v, %v; want %v", got, err, c.want)
		}
	}
	all, err := Compile(`len($env)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		r    []byte
		want int
	}{{rec(t, "a", 1, "b", 2), 2}, {rec(t, "c", 1), 1}, {rec(t, "c", 1, "c", 2), 1}} {
		if err := all.BindRecord(c.r); err != nil {
			t.Fatal(err)
		}
		if got, err := all.Run(); err != nil || got != c.want {
			t.Errorf("len($env) = %v, %v; want %v", got, err, c.want)
		}
	}
}

func TestAlias(t *testing.T) {
	r := rec(t, "value", "hello")
	p, err := Compile(`value`)
	if err != nil {
		t.Fatal(err)
	}
	p.Alias = true
	if err := p.BindRecord(r); err != nil {
		t.Fatal(err)
	}
	v, _ := p.Run()
	copy(r[len(r)-5:], "HELLO")
	if v != "HELLO" {
		t.Errorf("with Alias the string should point into the record: %q", v)
	}
	p.Alias = false
	if err := p.BindRecord(r); err != nil {
		t.Fatal(err)
	}
	v, _ = p.Run()
	copy(r[len(r)-5:], "hello")
	if v != "HELLO" {
		t.Errorf("without Alias the string should be a copy: %q", v)
	}
}

func TestConstant(t *testing.T) {
	for _, c := range []struct {
		src  string
		want any
		ok   bool
	}{{`true`, true, true}, {`1 == 1`, true, true}, {`false`, false, true}, {`"a" + "b"`, "ab", true}, {`value`, nil, false}} {
		p, err := Compile(c.src)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Constant()
		if ok != c.ok || got != c.want {
			t.Errorf("Constant(%q) = %v, %v; want %v, %v", c.src, got, ok, c.want, c.ok)
		}
	}
}

func TestType(t *testing.T) {
	for _, c := range []struct {
		src  string
		want reflect.Kind
	}{{`len(value) > 3`, reflect.Bool}, {`len(value)`, reflect.Int}, {`value`, reflect.Invalid}, {`upper(value)`, reflect.String}} {
		p, err := Compile(c.src)
		if err != nil {
			t.Fatal(err)
		}
		got := reflect.Invalid
		if p.Type() != nil {
			got = p.Type().Kind()
		}
		if got != c.want {
			t.Errorf("Type(%q) = %v, want %v", c.src, got, c.want)
		}
	}
}

func TestMapShape(t *testing.T) {
	for _, c := range []struct {
		src   string
		shape MapShape
		ok    bool
	}{
		{`{"b": value, "a": len(value), c: count}`, MapShape{Keys: []string{"b", "a", "c"}, Fields: []string{"value", "", "count"}}, true},
		{`{"z": 1, "y": 2}`, MapShape{Keys: []string{"z", "y"}, Fields: []string{"", ""}}, true},
		{`{"k": $env["user-agent"]}`, MapShape{Keys: []string{"k"}, Fields: []string{"user-agent"}}, true},
		{`value`, MapShape{}, false},
		{`let x = 1; {"a": x}`, MapShape{}, false},
	} {
		p, err := Compile(c.src)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.MapShape()
		if ok != c.ok || !reflect.DeepEqual(got, c.shape) {
			t.Errorf("MapShape(%q) = %+v, %v; want %+v, %v", c.src, got, ok, c.shape, c.ok)
		}
	}
}

func benchRun(b *testing.B, src string, r []byte) {
	p, err := Compile(src)
	if err != nil {
		b.Fatal(err)
	}
	p.Alias = true
	b.ReportAllocs()
	for b.Loop() {
		if err := p.BindRecord(r); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilterLen(b *testing.B) {
	benchRun(b, `len(value) > 3`, rec(b, "value", "the quick brown fox jumps over the lazy dog and far away"))
}

func BenchmarkTrue(b *testing.B) {
	benchRun(b, `true`, rec(b, "value", "the quick brown fox jumps over the lazy dog and far away"))
}

func BenchmarkIntCompare(b *testing.B) {
	benchRun(b, `status >= 500 and path startsWith "/api"`, rec(b, "path", "/api/users", "status", int64(503), "bytes", int64(1234)))
}

// BenchmarkEnvField reads fields named like functions, which the
// expression reads as $env["count"] and $env["type"].
func BenchmarkEnvField(b *testing.B) {
	benchRun(b, `count > 5 and type == "click"`, rec(b, "type", "click", "count", int64(7), "value", "the quick brown fox"))
}

func BenchmarkMapLiteral(b *testing.B) {
	benchRun(b, `{"w": upper(value), "n": len(value)}`, rec(b, "value", "the quick brown fox jumps over the lazy dog and far away"))
}

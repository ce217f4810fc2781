package expr

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSplitShape(t *testing.T) {
	for _, c := range []struct {
		src  string
		want Split
		ok   bool
	}{
		{`split(value, " ")`, Split{Field: "value", Sep: " "}, true},
		{`value | split(",")`, Split{Field: "value", Sep: ","}, true},
		{`split(line, "")`, Split{Field: "line", Sep: ""}, true},
		{`fields(value)`, Split{Field: "value", Fields: true}, true},
		{`value | fields()`, Split{Field: "value", Fields: true}, true},
		{`split($env["text body"], ";")`, Split{Field: "text body", Sep: ";"}, true},
		{`split(value, " ", 2)`, Split{}, false},
		{`split(lower(value), " ")`, Split{}, false},
		{`split(value, sep)`, Split{}, false},
		{`fields(value)[0]`, Split{}, false},
		{`let value = "a b"; split(value, " ")`, Split{}, false},
	} {
		p, err := Compile(c.src)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Split()
		got.sep = nil
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Split(%q) = %+v, %v; want %+v, %v", c.src, got, ok, c.want, c.ok)
		}
	}
}

func parts(sp Split, s string) []string {
	out := []string{}
	it := sp.Iter([]byte(s))
	for {
		p, ok := it.Next()
		if !ok {
			return out
		}
		out = append(out, string(p))
	}
}

var splitInputs = []string{
	"", " ", "  ", "a", "a b", "a  b", " a b ", "hello world foo", "a,b,,c,", ",", ",,",
	"\t a\n\vb\f\rc  ", "héllo wörld", "a\u00a0b\u2003c\u0085d", "日本 語", "\xff\xfe a \xc3",
	"a\u3000b", "ab--cd--", "--", "---", "a--b---c", "x\x00y", strings.Repeat("w ", 50),
}

var splitSeps = []string{" ", ",", "--", "", "é", "\x00", "ab"}

// The fast path gives exactly the parts of strings.Split and strings.Fields.
func TestSplitParts(t *testing.T) {
	for _, s := range splitInputs {
		for _, sep := range splitSeps {
			if got, want := parts(Split{Sep: sep}, s), strings.Split(s, sep); !reflect.DeepEqual(got, want) {
				t.Errorf("split(%q, %q) = %q, want %q", s, sep, got, want)
			}
		}
		if got, want := parts(Split{Fields: true}, s), strings.Fields(s); !reflect.DeepEqual(got, want) {
			t.Errorf("fields(%q) = %q, want %q", s, got, want)
		}
	}
}

// ... and exactly what the program gives when it runs in the VM.
func TestSplitMatchesProgram(t *testing.T) {
	for _, src := range []string{`split(value, " ")`, `split(value, ",")`, `split(value, "--")`, `split(value, "")`, `fields(value)`} {
		p, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		sp, ok := p.Split()
		if !ok {
			t.Fatalf("%s: no split shape", src)
		}
		for _, s := range splitInputs {
			if err := p.BindRecord(rec(t, "value", s)); err != nil {
				t.Fatal(err)
			}
			v, err := p.Run()
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%q", v)
			if got := fmt.Sprintf("%q", parts(sp, s)); got != want {
				t.Errorf("%s on %q: fast path %s, program %s", src, s, got, want)
			}
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range splitInputs {
		f.Add(s, " ")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, s, sep string) {
		if got, want := parts(Split{Sep: sep}, s), strings.Split(s, sep); !reflect.DeepEqual(got, want) {
			t.Errorf("split(%q, %q) = %q, want %q", s, sep, got, want)
		}
		if got, want := parts(Split{Fields: true}, s), strings.Fields(s); !reflect.DeepEqual(got, want) {
			t.Errorf("fields(%q) = %q, want %q", s, got, want)
		}
	})
}

func BenchmarkSplitIter(b *testing.B) {
	sp := Split{Sep: " "}
	line := []byte("the quick brown fox jumps over the lazy dog and keeps on running far away")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	n := 0
	for b.Loop() {
		it := sp.Iter(line)
		for {
			if _, ok := it.Next(); !ok {
				break
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "parts/s")
}

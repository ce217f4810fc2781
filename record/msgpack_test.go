package record

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// TestAppendMatchesLibrary: the Append functions write what
// vmihailenco/msgpack writes for the same value, so records built either way
// are byte for byte the same.
func TestAppendMatchesLibrary(t *testing.T) {
	ints := []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64}
	for _, v := range ints {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		enc.EncodeInt(v)
		if got := AppendInt(nil, v); !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("AppendInt(%d) = %x, library %x", v, got, buf.Bytes())
		}
		if got, ok := Int(AppendInt(nil, v)); !ok || got != v {
			t.Errorf("Int(AppendInt(%d)) = %d, %v", v, got, ok)
		}
	}
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := string(bytes.Repeat([]byte{'x'}, n))
		want, _ := msgpack.Marshal(s)
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("AppendString(len %d) header %x, library %x", n, got[:min(5, len(got))], want[:min(5, len(want))])
		}
	}
	for _, tm := range []time.Time{time.Unix(0, 0), time.Unix(1795687200, 0), time.Unix(1795687200, 5), time.Unix(1<<35, 7), time.Unix(-1, 0)} {
		want, _ := msgpack.Marshal(tm)
		got := AppendTime(nil, tm)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendTime(%v) = %x, library %x", tm, got, want)
		}
		if back, ok := Time(got); !ok || !back.Equal(tm) {
			t.Errorf("Time(AppendTime(%v)) = %v, %v", tm, back, ok)
		}
	}
}

func TestFieldsAndGet(t *testing.T) {
	var b Builder
	b.Value("value", "hello")
	b.Raw("n", AppendInt(nil, -5))
	b.Value("l", []any{1.5, nil, map[string]any{"k": true}})
	rec := append([]byte(nil), b.Bytes()...)

	var f Fields
	f.Reset(rec)
	var keys []string
	for f.Next() {
		keys = append(keys, string(f.Key()))
	}
	if f.Err() != nil || len(keys) != 3 || keys[0] != "value" || keys[2] != "l" {
		t.Fatalf("keys %v, err %v", keys, f.Err())
	}
	raw, ok, err := Get(rec, "n")
	if v, _ := Int(raw); !ok || err != nil || v != -5 {
		t.Fatalf("Get n: %x %v %v", raw, ok, err)
	}
	if _, ok, _ := Get(rec, "missing"); ok {
		t.Fatal("found a missing field")
	}
	raw, _, _ = Get(rec, "l")
	v, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	l := v.([]any)
	if l[0] != 1.5 || l[1] != nil || l[2].(map[string]any)["k"] != true {
		t.Fatalf("decoded %#v", v)
	}
	if _, _, err := Get([]byte{0x91, 0x01}, "a"); err != ErrNotMap {
		t.Fatalf("array as record: %v", err)
	}
}

func TestSkipErrors(t *testing.T) {
	for _, in := range [][]byte{{}, {0xc1}, {0xa5, 'a'}, {0xdf, 0xff, 0xff, 0xff, 0xff}, {0x92, 0x01}, {0xd9}, {0xc7, 0x05, 0x01}} {
		if _, err := Skip(in); err == nil {
			t.Errorf("Skip(%x) accepted", in)
		}
	}
	deep := bytes.Repeat([]byte{0x91}, MaxDepth+1)
	if _, err := Skip(append(deep, 0x01)); err != ErrDepth {
		t.Errorf("deep nesting: %v", err)
	}
}

// FuzzFields: walking any bytes as a record never panics, and whatever Skip
// accepts as one value the library skips too, over the same bytes.
func FuzzFields(f *testing.F) {
	var b Builder
	b.Value("value", "hello")
	b.Value("t", time.Unix(1, 2))
	b.Value("m", map[string]any{"a": []any{1, "x"}})
	f.Add(append([]byte(nil), b.Bytes()...))
	f.Add([]byte{0x81, 0xa1, 'a', 0xc1})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var fl Fields
		fl.Reset(data)
		walked := 0
		for fl.Next() {
			Decode(fl.Value())
			FormatText(nil, fl.Value())
			walked++
			// Pick finds each key Fields walks to, at the same place, or
			// an earlier field of the same name.
			spans := []Span{{}}
			if err := Pick(data, []string{string(fl.Key())}, spans); err != nil {
				t.Fatalf("Pick failed where Fields went on: %v", err)
			}
			if int(spans[0].End) > fl.End() || spans[0].End == 0 {
				t.Fatalf("Pick found %q at %v, Fields at %d", fl.Key(), spans[0], fl.End())
			}
			// A Picker finds the same.
			ps := []Span{{}}
			if err := NewPicker([]string{string(fl.Key())}).Pick(data, ps); err != nil || ps[0] != spans[0] {
				t.Fatalf("Picker found %q at %v (%v), Pick at %v", fl.Key(), ps[0], err, spans[0])
			}
		}
		n, err := Skip(data)
		if err != nil {
			return
		}
		// A whole map whose keys are all strings walks to its end.
		if entries, _, merr := MapLen(data); merr == nil && fl.Err() == nil && walked != entries {
			t.Fatalf("walked %d of %d entries of %x without an error", walked, entries, data)
		}
		if fl.Err() == nil && KindOf(data) == KindMap && fl.i != n {
			t.Fatalf("walk ended at %d, the map at %d: %x", fl.i, n, data)
		}
		r := bytes.NewReader(data)
		if err := msgpack.NewDecoder(r).Skip(); err != nil || len(data)-r.Len() != n {
			t.Fatalf("Skip took %d bytes of %x, the library %d: %v", n, data, len(data)-r.Len(), err)
		}
	})
}

func TestPick(t *testing.T) {
	var b Builder
	b.Value("a", 1)
	b.Value("value", "hello")
	b.Value("a", 2) // a duplicate: the first counts
	b.Value("l", []any{1, 2})
	rec := append([]byte(nil), b.Bytes()...)
	spans := make([]Span, 3)
	if err := Pick(rec, []string{"l", "a", "missing"}, spans); err != nil {
		t.Fatal(err)
	}
	if v, _ := Decode(rec[spans[0].Start:spans[0].End]); len(v.([]any)) != 2 {
		t.Errorf("l: %v", v)
	}
	if v, _ := Int(rec[spans[1].Start:spans[1].End]); v != 1 {
		t.Errorf("a: %v", v)
	}
	if spans[2] != (Span{}) {
		t.Errorf("missing: %v", spans[2])
	}
	if err := Pick([]byte{0x81, 0xa1}, []string{"a"}, spans[:1]); err != ErrTruncated {
		t.Errorf("truncated: %v", err)
	}
}

// TestPicker: a Picker finds what Pick finds, over records of keys of 0 to
// 12 bytes that share their beginnings (so that only the last byte or the
// length tells them apart), up to the last byte of the record, for any
// list of names.
func TestPicker(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	keys := []string{"", "a", "ab", "abc", "value", "valuf", "valu", "values", "abcdefg", "abcdefgh", "abcdefgi", "abcdefghi", "abcdefghijkl"}
	for range 20000 {
		var b Builder
		for range rng.IntN(5) {
			v := any(rng.IntN(300))
			if rng.IntN(2) == 0 {
				v = keys[rng.IntN(len(keys))]
			}
			b.Value(keys[rng.IntN(len(keys))], v)
		}
		rec := b.Bytes()
		rec = rec[:len(rec):len(rec)]
		names := make([]string, 1+rng.IntN(3))
		for j := range names {
			names[j] = keys[rng.IntN(len(keys))]
		}
		if slices.Contains(names[1:], names[0]) {
			continue // Pick's names are distinct
		}
		want, got := make([]Span, len(names)), make([]Span, len(names))
		werr := Pick(rec, names, want)
		gerr := NewPicker(names).Pick(rec, got)
		if werr != gerr || !slices.Equal(got, want) {
			t.Fatalf("names %q in %x: Picker %v %v, Pick %v %v", names, rec, got, gerr, want, werr)
		}
	}
}

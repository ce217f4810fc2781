package agg

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"testing"
)

func TestKeySet(t *testing.T) {
	s := NewKeySet()
	for i, tc := range []struct {
		key  string
		t    int64
		want bool
	}{
		{"a", 10, true}, {"b", 20, true}, {"a", 5, false}, {"c", 30, true}, {"b", 20, false},
	} {
		if got := s.Add([]byte(tc.key), tc.t); got != tc.want {
			t.Fatalf("step %d: Add(%q) = %v, want %v", i, tc.key, got, tc.want)
		}
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	// a keeps its first time, 10: a cutoff of 9 removes nothing.
	if n := s.Expire(9); n != 0 {
		t.Fatalf("Expire(9) removed %d", n)
	}
	if n := s.Expire(20); n != 2 {
		t.Fatalf("Expire(20) removed %d, want 2 (a, b)", n)
	}
	if s.Len() != 1 || s.Add([]byte("c"), 0) {
		t.Fatalf("after Expire: Len %d, c must still be there", s.Len())
	}
	// Removed keys can come again; their ids are reused.
	if !s.Add([]byte("a"), 40) || !s.Add([]byte("b"), 50) || s.Len() != 3 {
		t.Fatalf("a and b again: Len %d", s.Len())
	}
	if len(s.times) != 3 {
		t.Fatalf("%d ids for 3 keys: removed ids were not reused", len(s.times))
	}
	if n := s.Expire(1000); n != 3 || s.Len() != 0 {
		t.Fatalf("Expire(1000) removed %d, Len %d", n, s.Len())
	}
}

func TestKeySetSnapshot(t *testing.T) {
	s := NewKeySet()
	for i := range 5000 {
		s.Add(fmt.Appendf(nil, "key-%d", i), int64(i))
	}
	s.Expire(999) // removed ids are left out
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("tail")
	r := NewKeySet()
	rest, err := r.LoadSnapshot(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "tail" {
		t.Fatalf("rest %q, want what follows the snapshot", rest)
	}
	if r.Len() != 4000 {
		t.Fatalf("Len %d, want 4000", r.Len())
	}
	for i := range 5000 {
		if added := r.Add(fmt.Appendf(nil, "key-%d", i), int64(i)); added != (i < 1000) {
			t.Fatalf("key-%d: added %v after the load", i, added)
		}
	}
	// The times came back: the restored keys expire as the saved ones do.
	if n := r.Expire(1999); n != 2000 {
		t.Fatalf("Expire(1999) removed %d after the load, want 2000", n)
	}
}

func TestKeySetSnapshotCorrupt(t *testing.T) {
	s := NewKeySet()
	s.Add([]byte("a"), 1)
	s.Add([]byte("b"), 2)
	var buf bytes.Buffer
	s.WriteSnapshot(&buf)
	good := buf.Bytes()
	dup := bytes.Clone(good)
	copy(dup[bytes.LastIndexByte(dup, 'b'):], "a") // the key b becomes a second a
	for name, b := range map[string][]byte{
		"empty":         nil,
		"truncated":     good[:len(good)-1],
		"duplicate key": dup,
		"count too big": append([]byte{0x01, 0xcd, 0xff, 0xff}, good[2:]...),
	} {
		r := NewKeySet()
		r.Add([]byte("x"), 0)
		if _, err := r.LoadSnapshot(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v, want ErrCorrupt", name, err)
		}
		if r.Len() != 0 {
			t.Errorf("%s: %d keys left after a failed load", name, r.Len())
		}
	}
	if _, err := NewKeySet().LoadSnapshot([]byte{0x02, 0x00}); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("another version: error %v, want one naming the version", err)
	}
}

// BenchmarkKeySetAdd adds keys of 16 bytes, a new key every other call,
// and reports the memory the set holds per key, by its own estimate and as
// the heap grew (bytes/key, heap-bytes/key).
func BenchmarkKeySetAdd(b *testing.B) {
	const n = 1 << 20
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user-%011d", i) // 16 bytes
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := NewKeySet()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Add(keys[(i>>1)%n], int64(i))
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(s.MemoryUsed())/float64(s.Len()), "bytes/key")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(s.Len()), "heap-bytes/key")
	runtime.KeepAlive(s)
	runtime.KeepAlive(keys)
}

// BenchmarkMapOfStrings is what a Go map of the same keys costs, for
// comparison with BenchmarkKeySetAdd.
func BenchmarkMapOfStrings(b *testing.B) {
	const n = 1 << 20
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user-%011d", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := map[string]int64{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := keys[(i>>1)%n]
		if _, ok := m[string(k)]; !ok {
			m[string(k)] = int64(i)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(m)), "heap-bytes/key")
	runtime.KeepAlive(m)
	runtime.KeepAlive(keys)
}

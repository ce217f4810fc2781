package agg

import (
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/dstream/dstream/record"
)

// KeySet is a set of keys, each with a time (unix ms), held as a Table holds
// its group keys: the bytes in one arena, an open-addressing index, no
// pointer for the garbage collector to follow (see keyStore). It is for a
// stage that keeps keys alone, as sdedup keeps the keys it has seen: about
// 35 bytes per key beside the key's own bytes (BenchmarkKeySetAdd: a
// million keys of 16 bytes hold 52 bytes a key, where a Go map[string]int64
// holds 69, and a pointer per key). A key is any non-empty byte string,
// usually values in the canonical form of AppendCanonical, concatenated.
//
// A KeySet is not safe for concurrent use.
type KeySet struct {
	ks    keyStore
	times []int64 // per id: the key's time; ids are reused after removal
	free  []int32
	live  int
	// minT is at or below the time of every key held, so that Expire with
	// an earlier cutoff need not look at any.
	minT int64
}

// keySetVersion is the first value of a KeySet's snapshot.
const keySetVersion = 1

// NewKeySet returns an empty set.
func NewKeySet() *KeySet {
	return &KeySet{ks: newKeyStore(), minT: math.MaxInt64}
}

// Len is the number of keys.
func (s *KeySet) Len() int { return s.live }

// Add adds key with time t and reports true, or reports false if the set
// holds key already (its time stays as it was). key is copied.
func (s *KeySet) Add(key []byte, t int64) bool {
	if len(key) == 0 {
		panic("agg: an empty key in a KeySet")
	}
	h := s.ks.hash(key)
	id, slot := s.ks.find(key, h)
	if id >= 0 {
		return false
	}
	s.insert(key, h, slot, t)
	return true
}

func (s *KeySet) insert(key []byte, h, slot uint64, t int64) {
	var id int32
	if n := len(s.free); n > 0 {
		id = s.free[n-1]
		s.free = s.free[:n-1]
		s.times[id] = t
	} else {
		if len(s.times) == math.MaxInt32 {
			panic("agg: more than 2^31 keys")
		}
		id = int32(len(s.times))
		s.ks.loc = append(s.ks.loc, 0)
		s.times = append(s.times, t)
	}
	s.ks.add(id, key, h, slot)
	s.live++
	s.minT = min(s.minT, t)
}

// alive reports whether id holds a key: a removed id has a key of length 0
// (keyStore.remove, compact), and a key is never empty.
func (s *KeySet) alive(id int) bool { return s.ks.loc[id]&(1<<24-1) != 0 }

// Expire removes the keys whose time is at or before cutoff and returns
// how many it removed. It looks at every key, unless none can be that old.
func (s *KeySet) Expire(cutoff int64) int {
	if cutoff < s.minT {
		return 0
	}
	n := 0
	m := int64(math.MaxInt64)
	for id, t := range s.times {
		if !s.alive(id) {
			continue
		}
		if t <= cutoff {
			s.ks.remove(int32(id))
			s.free = append(s.free, int32(id))
			s.live--
			n++
		} else {
			m = min(m, t)
		}
	}
	s.minT = m
	return n
}

// Reset empties the set, keeping its memory for reuse.
func (s *KeySet) Reset() {
	s.ks.reset()
	s.times, s.free, s.live, s.minT = s.times[:0], s.free[:0], 0, math.MaxInt64
}

// MemoryUsed estimates the bytes the set holds: the keys, the index, the
// times.
func (s *KeySet) MemoryUsed() int64 {
	return s.ks.memory() + int64(cap(s.times))*8 + int64(cap(s.free))*4
}

// WriteSnapshot writes the set as a sequence of msgpack values, a block at
// a time:
//
//	version  int (1)
//	keys     int, then per key: the key (bin), its time (int)
func (s *KeySet) WriteSnapshot(w io.Writer) error {
	sw := &snapWriter{w: w, buf: make([]byte, 0, 2*snapBlock)}
	sw.buf = record.AppendInt(sw.buf, keySetVersion)
	sw.buf = record.AppendInt(sw.buf, int64(s.live))
	for id, t := range s.times {
		if !s.alive(id) {
			continue
		}
		sw.buf = record.AppendBinary(sw.buf, s.ks.key(int32(id)))
		sw.buf = record.AppendInt(sw.buf, t)
		sw.flush(false)
	}
	sw.flush(true)
	return sw.err
}

// LoadSnapshot replaces the set with one WriteSnapshot wrote, and returns
// what follows it in b. A snapshot that does not parse leaves the set
// empty, with an error wrapping ErrCorrupt.
func (s *KeySet) LoadSnapshot(b []byte) ([]byte, error) {
	s.Reset()
	rest, err := s.load(b)
	if err != nil {
		s.Reset()
	}
	return rest, err
}

func (s *KeySet) load(b []byte) ([]byte, error) {
	v, b, err := nextInt(b)
	if err != nil {
		return nil, err
	}
	if v != keySetVersion {
		return nil, fmt.Errorf("agg: key set of version %d, this program reads version %d", v, keySetVersion)
	}
	n, b, err := nextInt(b)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > int64(len(b)/3) { // a key takes 3 bytes at least
		return nil, errCorrupt("key count")
	}
	s.ks.loc = slices.Grow(s.ks.loc, int(n))
	s.times = slices.Grow(s.times, int(n))
	for (s.ks.n+int(n))*4 > len(s.ks.slots)*3 {
		s.ks.grow()
	}
	for range n {
		kv, rest, err := next(b)
		if err != nil {
			return nil, err
		}
		key, ok := record.Str(kv)
		if !ok || record.KindOf(kv) != record.KindBinary || len(key) == 0 || len(key) > MaxKeyLen {
			return nil, errCorrupt("key")
		}
		var t int64
		if t, b, err = nextInt(rest); err != nil {
			return nil, err
		}
		h := s.ks.hash(key)
		id, slot := s.ks.find(key, h)
		if id >= 0 {
			return nil, errCorrupt("duplicate key")
		}
		s.insert(key, h, slot, t)
	}
	return b, nil
}

// AppendCanonical appends the value raw (nil: a missing field, which is
// null) in the canonical form of group keys: each number, string and
// binary in one encoding, so that two keys are equal when their values
// are. Maps and arrays are appended as they are.
func AppendCanonical(dst, raw []byte) []byte { return appendCanonical(dst, raw) }

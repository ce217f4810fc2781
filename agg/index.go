package agg

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
)

// keyStore holds the group keys in one byte arena, and finds a group by its
// key with an open-addressing hash table of (hash, group) slots.
//
// Why not map[string]int32: measured with 1M keys, the Go map costs about
// 45 bytes per entry beside a 16-byte string header and a heap object per
// key; here a key costs its bytes, 8 bytes of location and 8 to 16 bytes
// of slot (twice that for short keys, see below), the GC has no pointer to
// follow, and a lookup is as fast.
//
// A key of up to 7 bytes (a word, a small number, with its msgpack
// header) is also kept as one integer beside its slot, its short form (see
// shortWord), so that finding it compares two integers instead of two
// byte strings read through the arena: the word count's lookups. Beside
// the slot, not per group: the slot and its short form are loaded at once,
// where a short form per group was a second load that waited for the
// first (the group number), a quarter of the word count's sreduce.
type keyStore struct {
	data    []byte
	loc     []uint64 // per group: offset in data << 24 | length
	garbage int      // bytes of data held by removed keys
	slots   []uint64 // 0 empty, else fingerprint << 32 | group+1
	// short is per slot the shortWord of its key of up to 7 bytes, else
	// 0; nil while such keys are fewer than half of the keys (nshort of
	// n), so that a table of longer keys with a few short ones among
	// them (1 M of "key123456", "key1" among them) does not pay 8 bytes a
	// slot for them. Without it a short key is found as a longer one is.
	short  []uint64
	nshort int // keys of up to 7 bytes
	mask   uint64
	n      int // keys in slots
	seed   maphash.Seed
	seed64 uint64 // for keys of up to 16 bytes (hashShort)
}

// MaxKeyLen bounds the length of a group key (the key fields' values).
const MaxKeyLen = 1<<24 - 1

func newKeyStore() keyStore {
	return keyStore{seed: maphash.MakeSeed(), seed64: rand.Uint64(), slots: make([]uint64, 64), mask: 63}
}

// From quadFrom slots up to quadTo, the slots grow four times at once
// rather than twice (see grow).
const quadFrom, quadTo = 1 << 16, 1 << 20

// maxShort is the longest key that has a short form.
const maxShort = 7

// shortWord is a key of up to 7 bytes as an integer: its bytes, little
// endian, and its length plus one in the top byte, so that no two keys
// have the same and none has 0.
func shortWord(b []byte) uint64 {
	n := len(b)
	var x uint64
	switch {
	case n >= 4:
		// Two loads that overlap in the middle bytes.
		x = uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<(8*uint(n-4))
	case n > 0:
		x = uint64(b[0]) | uint64(b[n>>1])<<(8*uint(n>>1)) | uint64(b[n-1])<<(8*uint(n-1))
	}
	return x | uint64(n+1)<<56
}

func (k *keyStore) hash(key []byte) uint64 {
	if len(key) <= maxShort {
		return mix(shortWord(key)^k.seed64, m1)
	}
	if len(key) <= 16 {
		return hashShort(key, k.seed64)
	}
	return maphash.Bytes(k.seed, key)
}

const m1, m2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db

// hashShort hashes a key of 8 to 16 bytes as wyhash does (four loads, two
// 128-bit multiplications), seeded at random per process; shorter keys
// hash their shortWord with one.
//
// Why not maphash alone: most group keys are short (a word, an id), and
// for them maphash.Bytes is a call into the runtime's AES hash that cost
// several times the instructions of this, the largest part of a lookup.
func hashShort(b []byte, seed uint64) uint64 {
	n := len(b)
	x, y := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	return mix(m2^uint64(n), mix(x^m1, y^seed))
}

// mix is wyhash's mum: the two halves of the product, xored.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// key returns the key of group g; valid until the next add or compaction.
func (k *keyStore) key(g int32) []byte {
	l := k.loc[g]
	off := l >> 24
	return k.data[off : off+l&(1<<24-1)]
}

// find returns the group of key (h its hash), or -1 and the empty slot
// where it would go.
func (k *keyStore) find(key []byte, h uint64) (int32, uint64) {
	if len(key) <= maxShort && k.short != nil {
		return k.findShort(key, shortWord(key), h)
	}
	fp := uint32(h >> 32)
	i := uint64(fp) & k.mask
	for {
		s := k.slots[i]
		if s == 0 {
			return -1, i
		}
		if uint32(s>>32) == fp {
			g := int32(uint32(s)) - 1
			if string(k.key(g)) == string(key) {
				return g, i
			}
		}
		i = (i + 1) & k.mask
	}
}

// findShort is find for a key of up to 7 bytes, w its shortWord: while the
// store keeps short forms (k.short), one comparison of integers per slot,
// no key read.
func (k *keyStore) findShort(key []byte, w, h uint64) (int32, uint64) {
	if k.short == nil {
		return k.find(key, h)
	}
	i := (h >> 32) & k.mask
	short := k.short[:len(k.slots)]
	for {
		s, sw := k.slots[i], short[i]
		if sw == w {
			return int32(uint32(s)) - 1, i
		}
		if s == 0 {
			return -1, i
		}
		i = (i + 1) & k.mask
	}
}

// lookup is hash and find: it returns the group of key or -1, the hash,
// and the empty slot where a new key would go.
func (k *keyStore) lookup(key []byte) (g int32, h, slot uint64) {
	if len(key) <= maxShort {
		w := shortWord(key)
		h = mix(w^k.seed64, m1)
		g, slot = k.findShort(key, w, h)
		return g, h, slot
	}
	h = k.hash(key)
	g, slot = k.find(key, h)
	return g, h, slot
}

// add stores the key of group g (a new group; len(loc) > g) at slot i that
// find returned for it.
func (k *keyStore) add(g int32, key []byte, h uint64, i uint64) {
	if (k.n+1)*4 > len(k.slots)*3 { // load factor 3/4
		k.grow()
		_, i = k.find(key, h)
	}
	k.slots[i] = h>>32<<32 | uint64(g+1)
	k.n++
	k.loc[g] = uint64(len(k.data))<<24 | uint64(len(key))
	k.data = pushAll(k.data, key...)
	if len(key) <= maxShort {
		k.nshort++
		if k.short != nil {
			k.short[i] = shortWord(key)
		} else if 2*k.nshort > k.n {
			k.keepShort() // this key's too
		}
	}
}

// keepShort starts keeping the short forms of the keys, those in the
// store too.
func (k *keyStore) keepShort() {
	k.short = make([]uint64, len(k.slots))
	for i, s := range k.slots {
		if s == 0 {
			continue
		}
		if key := k.key(int32(uint32(s)) - 1); len(key) <= maxShort {
			k.short[i] = shortWord(key)
		}
	}
}

// grow makes the slots twice as many, or four times from 64 Ki slots to
// 1 Mi (quadFrom, quadTo).
//
// Why four times: over a million distinct keys, growing took a third of
// sreduce's time, mostly in faulting in the new slots' pages, a
// half-empty array at each doubling. Growing four times skips every other
// array on the way: 1 M keys 280 -> 238 ms, 5 M 1.19 -> 1.06 s, peak RSS
// no higher. Not past 1 Mi slots (8 MB): a table that stops just past a
// growth would hold slots for 5 times its keys instead of 2.7, 40 bytes a
// key instead of 21, which a large state (sdedup's) should not pay.
func (k *keyStore) grow() {
	old, oldShort := k.slots, k.short
	f := 2
	if len(old) >= quadFrom && len(old) < quadTo {
		f = 4
	}
	k.slots = make([]uint64, f*len(old))
	if oldShort != nil {
		k.short = make([]uint64, len(k.slots))
	}
	k.mask = uint64(len(k.slots) - 1)
	for j, s := range old {
		if s == 0 {
			continue
		}
		i := (s >> 32) & k.mask
		for k.slots[i] != 0 {
			i = (i + 1) & k.mask
		}
		k.slots[i] = s
		if oldShort != nil {
			k.short[i] = oldShort[j]
		}
	}
}

// remove forgets the key of group g, moving the entries after it back so
// that no probe sequence is broken (no tombstones).
func (k *keyStore) remove(g int32) {
	key := k.key(g)
	h := k.hash(key)
	_, i := k.find(key, h)
	for j := i; ; {
		j = (j + 1) & k.mask
		s := k.slots[j]
		if s == 0 {
			break
		}
		ideal := (s >> 32) & k.mask
		// The entry at j may move to i unless its ideal slot lies
		// cyclically in (i, j].
		if (j > i && (ideal <= i || ideal > j)) || (j < i && ideal <= i && ideal > j) {
			k.slots[i] = s
			if k.short != nil {
				k.short[i] = k.short[j]
			}
			i = j
		}
	}
	k.slots[i] = 0
	if k.short != nil {
		k.short[i] = 0
	}
	k.n--
	if len(key) <= maxShort {
		k.nshort--
	}
	k.garbage += len(key)
	k.loc[g] = 0
	if k.garbage > 1<<20 && k.garbage > len(k.data)/2 {
		k.compact()
	}
}

// compact rewrites the arena without the removed keys.
func (k *keyStore) compact() {
	data := make([]byte, 0, len(k.data)-k.garbage)
	for g, l := range k.loc {
		if l&(1<<24-1) == 0 {
			k.loc[g] = uint64(len(data)) << 24
			continue // removed, or an empty key (the keyless group)
		}
		key := k.key(int32(g))
		k.loc[g] = uint64(len(data))<<24 | uint64(len(key))
		data = append(data, key...)
	}
	k.data, k.garbage = data, 0
}

func (k *keyStore) reset() {
	k.data, k.loc, k.garbage = k.data[:0], k.loc[:0], 0
	clear(k.slots)
	clear(k.short)
	k.nshort = 0
	k.n = 0
}

func (k *keyStore) memory() int64 {
	return int64(cap(k.data) + 8*cap(k.loc) + 8*len(k.short) + 8*len(k.slots))
}

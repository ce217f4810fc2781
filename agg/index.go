package agg

import (
	"bytes"
	"hash/maphash"
)

// keyStore holds the group keys in one byte arena, and finds a group by its
// key with an open-addressing hash table of (hash, group) slots.
//
// Why not map[string]int32: measured with 1M keys, the Go map costs about
// 45 bytes per entry beside a 16-byte string header and a heap object per
// key; here a key costs its bytes, 8 bytes of location and 8 to 16 bytes of
// slot, the GC has no pointer to follow, and a lookup is as fast.
type keyStore struct {
	data    []byte
	loc     []uint64 // per group: offset in data << 24 | length
	garbage int      // bytes of data held by removed keys
	slots   []uint64 // 0 empty, else fingerprint << 32 | group+1
	mask    uint64
	n       int // keys in slots
	seed    maphash.Seed
}

// MaxKeyLen bounds the length of a group key (the key fields' values).
const MaxKeyLen = 1<<24 - 1

func newKeyStore() keyStore {
	return keyStore{seed: maphash.MakeSeed(), slots: make([]uint64, 64), mask: 63}
}

func (k *keyStore) hash(key []byte) uint64 { return maphash.Bytes(k.seed, key) }

// key returns the key of group g; valid until the next add or compaction.
func (k *keyStore) key(g int32) []byte {
	l := k.loc[g]
	off := l >> 24
	return k.data[off : off+l&(1<<24-1)]
}

// find returns the group of key (h its hash), or -1 and the empty slot
// where it would go.
func (k *keyStore) find(key []byte, h uint64) (int32, uint64) {
	fp := uint32(h >> 32)
	i := uint64(fp) & k.mask
	for {
		s := k.slots[i]
		if s == 0 {
			return -1, i
		}
		if uint32(s>>32) == fp {
			g := int32(uint32(s)) - 1
			if bytes.Equal(k.key(g), key) {
				return g, i
			}
		}
		i = (i + 1) & k.mask
	}
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
	k.data = append(k.data, key...)
}

func (k *keyStore) grow() {
	old := k.slots
	k.slots = make([]uint64, 2*len(old))
	k.mask = uint64(len(k.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := (s >> 32) & k.mask
		for k.slots[i] != 0 {
			i = (i + 1) & k.mask
		}
		k.slots[i] = s
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
			i = j
		}
	}
	k.slots[i] = 0
	k.n--
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
	k.n = 0
}

func (k *keyStore) memory() int64 {
	return int64(cap(k.data) + 8*cap(k.loc) + 8*len(k.slots))
}

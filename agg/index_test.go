package agg

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestKeyStoreModel holds the key store to a map through random adds,
// removes and resets of keys short (their short form kept beside the
// slot) and long, mixed, across the growths and the entries that a
// removal moves back: every key present is found as its group, every
// key absent is not.
func TestKeyStoreModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shortFirst := range []bool{true, false} {
		k := newKeyStore()
		model := map[string]int32{}
		next := int32(0)
		key := func() []byte {
			n := rng.IntN(200)
			if shortFirst == (next < 500) { // a first run of one kind, then both
				return fmt.Appendf(nil, "%d", n%100) // 1 or 2 bytes
			}
			if rng.IntN(2) == 0 {
				return fmt.Appendf(nil, "%x", n) // short
			}
			return fmt.Appendf(nil, "a longer key %d", n)
		}
		for step := range 20000 {
			kb := key()
			h := k.hash(kb)
			g, slot := k.find(kb, h)
			want, ok := model[string(kb)]
			if ok != (g >= 0) || ok && g != want {
				t.Fatalf("step %d: find(%q) = %d, want %d (present %v)", step, kb, g, want, ok)
			}
			switch {
			case !ok:
				k.loc = append(k.loc, 0)
				k.add(next, kb, h, slot)
				model[string(kb)] = next
				next++
			case rng.IntN(3) == 0:
				k.remove(g)
				delete(model, string(kb))
			}
			if step%7000 == 6999 {
				k.reset()
				clear(model)
				next = 0
			}
		}
		for s, g := range model {
			if got, _, _ := k.lookup([]byte(s)); got != g {
				t.Fatalf("lookup(%q) = %d, want %d", s, got, g)
			}
		}
	}
}

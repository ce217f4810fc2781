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
//
// The first run of keys is of one kind: short ones, a few long ones, or
// many long ones, after which short keys go in without short forms until
// most of the long ones are removed.
func TestKeyStoreModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, first := range []struct {
		short bool
		n     int32
	}{{true, 500}, {false, 500}, {false, 5000}} {
		k := newKeyStore()
		model := map[string]int32{}
		next := int32(0)
		key := func() []byte {
			n := rng.IntN(200)
			if next < first.n { // a first run of one kind, then both
				if first.short {
					return fmt.Appendf(nil, "%d", n%100) // 1 or 2 bytes
				}
				return fmt.Appendf(nil, "a longer key %d", next)
			}
			if rng.IntN(2) == 0 {
				return fmt.Appendf(nil, "%x", n) // short
			}
			return fmt.Appendf(nil, "a longer key %d", n)
		}
		pruned := false
		for step := range 30000 {
			if !pruned && next > first.n+50 {
				// The short keys, without short forms so far, become
				// most of the store's: their short forms are made.
				pruned = true
				for s, g := range model {
					if g >= 200 && g < first.n {
						k.remove(g)
						delete(model, s)
					}
				}
			}
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
			if step%13000 == 12999 {
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

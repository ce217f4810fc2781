package agg

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dstream/dstream/record"
)

// TestOrderPrefix checks that orderPrefix never contradicts CompareKeys,
// on which Split's promise rests: every key of the lower table sorts
// before every key of the upper one.
func TestOrderPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var keys [][]byte
	for range 2000 {
		var k []byte
		switch rng.IntN(6) {
		case 0:
			k = record.AppendInt(nil, rng.Int64N(1000)-500)
		case 1:
			k = record.AppendString(nil, fmt.Sprint("key", rng.IntN(100000)))
		case 2:
			b := make([]byte, rng.IntN(12)) // with zero bytes, and empty
			for i := range b {
				b[i] = byte(rng.IntN(3))
			}
			k = record.AppendString(nil, string(b))
		case 3:
			k = record.AppendNil(nil)
		case 4:
			k = record.AppendBinary(nil, []byte("bin"))
		case 5: // two fields
			k = AppendCanonical(nil, record.AppendString(nil, fmt.Sprint(rng.IntN(50))))
			keys = append(keys, AppendCanonical(k, record.AppendInt(nil, rng.Int64N(3))))
			continue
		}
		keys = append(keys, AppendCanonical(nil, k))
	}
	for _, a := range keys {
		for _, b := range keys[:200] {
			if CompareKeys(a, b) < 0 && orderPrefix(a) > orderPrefix(b) {
				t.Fatalf("key %x sorts before %x, but its prefix %x is above %x", a, b, orderPrefix(a), orderPrefix(b))
			}
		}
	}
}

package changelog

import (
	"context"
	"fmt"
	"testing"

	"github.com/dstream/dstream/internal/kafkatest"
)

// BenchmarkRestore100k restores a partition of 100k keys, each written
// three times (~40-byte values) in transactions of 10k changes, as a copy
// does when it is given a partition whose state moved: issue #16 wants it
// within a second.
func BenchmarkRestore100k(b *testing.B) {
	const keys, updates, perTxn = 100_000, 3, 10_000
	_, seeds := kafkatest.Cluster(b, 1, 1)
	s := open(b, seeds, 1, "bench")
	changes := make([]Change, 0, perTxn)
	var bytes int64
	for u := range updates {
		for k := range keys {
			key := fmt.Appendf(nil, "user-%07d", k)
			val := fmt.Appendf(nil, "{\"count\":%06d,\"sum\":%012d,\"u\":%d}", k, k*u, u) // 40 bytes
			changes = append(changes, Change{Key: key, Value: val})
			bytes += int64(len(key) + len(val))
			if len(changes) == perTxn {
				mustCommit(b, s, Offsets{}, changes...)
				changes = changes[:0]
			}
		}
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n, err := s.Restore(context.Background(), 0, func(k, v []byte) error { return nil })
		if err != nil || n != keys {
			b.Fatalf("Restore: %d keys, %v; want %d", n, err, keys)
		}
	}
	b.ReportMetric(float64(keys)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}

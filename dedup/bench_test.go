package dedup

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// events returns n records {"id": "evt-NNNNNNNNNN", "ts": seconds, "v": int}
// (ids of 14 bytes), ts rising by 1 ms a record, where one record in four
// repeats an id of the last thousand.
func events(n int) [][]byte {
	r := rand.New(rand.NewPCG(3, 4))
	recs := make([][]byte, n)
	next := 0
	for i := range recs {
		id := next
		if next > 1000 && r.IntN(4) == 0 {
			id = next - 1 - r.IntN(1000)
		} else {
			next++
		}
		b := record.AppendMapHeader(nil, 3)
		b = record.AppendString(b, "id")
		b = record.AppendString(b, fmt.Sprintf("evt-%010d", id))
		b = record.AppendString(b, "ts")
		b = record.AppendFloat(b, float64(i)/1000)
		b = record.AppendString(b, "v")
		recs[i] = record.AppendInt(b, int64(r.IntN(1000)))
	}
	return recs
}

// benchDedup passes the events through sdedup with o in batches of 10,000
// records (10 s of event time), b.N records in all, and reports the records
// per second and the bytes per key the state holds at the end.
func benchDedup(b *testing.B, o Options) {
	const batch = 10_000
	recs := events(b.N)
	var batches [][]framing.Frame
	for i := 0; i < b.N; i += batch {
		batches = append(batches, frametest.Blocks(recs[i:min(i+batch, b.N)]))
	}
	e, err := New(o, framing.NewWriter(io.Discard), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i, fs := range batches {
		bt := stage.Batch{ID: uint64(i), Time: int64(i+1) * 10_000}
		if err := e.Begin(bt); err != nil {
			b.Fatal(err)
		}
		for _, f := range fs {
			if err := e.Block(bt, f.Records()); err != nil {
				b.Fatal(err)
			}
		}
		if err := e.End(bt); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if n := e.seen.Len(); n > 0 {
		b.ReportMetric(float64(e.seen.MemoryUsed())/float64(n), "state-bytes/key")
	}
}

func BenchmarkKey(b *testing.B) { benchDedup(b, Options{Keys: []string{"id"}}) }

func BenchmarkAllFields(b *testing.B) { benchDedup(b, Options{}) }

func BenchmarkWatermark(b *testing.B) {
	benchDedup(b, Options{Keys: []string{"id", "ts"}, TimeField: "ts", Watermark: time.Minute})
}

func BenchmarkWithinWatermark(b *testing.B) {
	benchDedup(b, Options{Keys: []string{"id"}, TimeField: "ts", Watermark: time.Minute, WithinWatermark: true})
}

// TestMemoryPerKey measures what sdedup -k id holds per key seen, keys of
// 14-byte ids: the heap after a million distinct keys, against the state's
// own estimate (memoryUsedBytes in --progress). docs/sdedup.md states the
// figure; it fails if the state grows past it by much.
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("a million keys")
	}
	const n = 1 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e, err := New(Options{Keys: []string{"id"}}, framing.NewWriter(io.Discard), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := record.AppendMapHeader(nil, 1)
	rec = record.AppendString(rec, "id")
	for i := range n {
		key := record.AppendString(rec, fmt.Sprintf("evt-%010d", i))
		if keep, err := e.add(key); err != nil || !keep {
			t.Fatalf("key %d: %v %v", i, keep, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc-before.HeapAlloc) / n
	est := float64(e.seen.MemoryUsed()) / n
	t.Logf("%d keys of 15 bytes (a 14-byte string): %.1f bytes/key on the heap, %.1f by the state's estimate", n, heap, est)
	if heap > 60 {
		t.Errorf("%.1f bytes per key: docs/sdedup.md says about 50", heap)
	}
	runtime.KeepAlive(e)
}

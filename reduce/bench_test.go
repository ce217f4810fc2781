package reduce

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/benchutil"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

func newBenchReducer(tb testing.TB, o Options) *Engine {
	r, err := New(o, framing.NewWriter(io.Discard), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func feed(tb testing.TB, r *Engine, b stage.Batch, fs []framing.Frame) {
	if err := r.Begin(b); err != nil {
		tb.Fatal(err)
	}
	for i := range fs {
		if err := r.Block(b, fs[i].Records()); err != nil {
			tb.Fatal(err)
		}
	}
	if err := r.End(b); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkWordCount is `sreduce -k value --count` on batches of 100k words
// over a Zipf-distributed vocabulary of 10k words, through the handler (no
// pipe, no framing decode): one op is one batch.
//
// gen is bench.sh's words (scripts/gen words: 2 to 6 letters), the others
// words of 2 to 9 letters and a number.
func BenchmarkWordCount(b *testing.B) {
	for _, c := range []struct {
		name   string
		mode   Mode
		gen    bool
		serial bool
	}{{"batch", PerBatch, false, false}, {"batch/serial", PerBatch, false, true}, {"running", Complete, false, false}, {"batch/gen", PerBatch, true, false}} {
		b.Run(c.name, func(b *testing.B) {
			const perBatch = 100_000
			recs := benchutil.ZipfWords(perBatch, 10_000)
			if c.gen {
				recs = benchutil.GenWords(perBatch)
			}
			fs := frametest.Blocks(recs)
			size := 0
			for _, f := range fs {
				size += len(f.Payload)
			}
			o := Options{Agg: agg.Config{Keys: []string{"value"}, Aggs: []agg.Spec{{Kind: agg.Count, Name: "count"}}}, By: -1, Mode: c.mode, Serial: c.serial}
			r := newBenchReducer(b, o)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := benchutil.CPUTime()
			for i := range b.N {
				feed(b, r, stage.Batch{ID: uint64(i), Time: int64(i+1) * 1000}, fs)
			}
			b.ReportMetric(float64(b.N)*perBatch/b.Elapsed().Seconds(), "records/s")
			// On a busy machine wall time overstates the cost: the process's
			// CPU time (all threads, GC included) does not.
			if cpu := benchutil.CPUTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(b.N)*perBatch/cpu.Seconds(), "records/cpu-s")
			}
		})
	}
}

// BenchmarkDistinctKeys is `sreduce -k value --count` on one batch of 1M
// distinct keys (key0 to key999999 in a random order), through the handler:
// every record makes a group, and the output is a million records in key
// order (or none). One op is the batch. serial keeps one table (Options.Serial),
// the others split the groups between two, each filled by a goroutine.
func BenchmarkDistinctKeys(b *testing.B) {
	for _, c := range []struct {
		name      string
		serial    bool
		unordered bool
	}{{"split", false, false}, {"serial", true, false}, {"split/unordered", false, true}, {"serial/unordered", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			benchDistinctKeys(b, Options{Serial: c.serial, Unordered: c.unordered})
		})
	}
}

func benchDistinctKeys(b *testing.B, o Options) {
	const n = 1_000_000
	r := rand.New(rand.NewPCG(1, 2))
	recs := make([][]byte, n)
	for i, k := range r.Perm(n) {
		m := record.AppendMapHeader(nil, 1)
		m = record.AppendString(m, "value")
		recs[i] = record.AppendString(m, "key"+strconv.Itoa(k))
	}
	fs := frametest.Blocks(recs)
	o.Agg, o.By = agg.Config{Keys: []string{"value"}, Aggs: []agg.Spec{{Kind: agg.Count, Name: "count"}}}, -1
	b.ReportAllocs()
	cpu0 := benchutil.CPUTime()
	for i := 0; b.Loop(); i++ {
		// A fresh engine each time: sreduce over one batch, as bench.sh runs it.
		feed(b, newBenchReducer(b, o), stage.Batch{ID: uint64(i), Time: int64(i+1) * 1000}, fs)
	}
	if cpu := benchutil.CPUTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)*n/cpu.Seconds(), "records/cpu-s")
	}
}

// TestMemoryMillionKeys folds 1M distinct keys with --count --sum into the
// running state, checkpointed, and reports the heap and the resident set;
// then a new reducer restores the state. Not timed; it fails only beyond
// 200 MB of live heap.
func TestMemoryMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const keys = 1_000_000
	debug.FreeOSMemory()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	o := Options{Agg: agg.Config{Keys: []string{"value"}, Aggs: []agg.Spec{
		{Kind: agg.Count, Name: "count"}, {Kind: agg.Sum, Field: "n", Name: "sum_n"}}}, By: -1,
		Mode: Complete, Checkpoint: t.TempDir(), Name: "sreduce"}
	r := newBenchReducer(t, o)
	// 4 batches of 250k new keys each; records built a block at a time so
	// that the input does not count.
	const perBatch = keys / 4
	for bi := range 4 {
		b := stage.Batch{ID: uint64(bi), Time: int64(bi+1) * 1000}
		if err := r.Begin(b); err != nil {
			t.Fatal(err)
		}
		for start := 0; start < perBatch; start += 5000 {
			recs := make([][]byte, 5000)
			for i := range recs {
				k := bi*perBatch + start + i
				m := record.AppendMapHeader(nil, 2)
				m = record.AppendString(m, "value")
				m = record.AppendString(m, fmt.Sprintf("key-%07d", k))
				m = record.AppendString(m, "n")
				recs[i] = record.AppendInt(m, int64(k))
			}
			for _, f := range frametest.Blocks(recs) {
				if err := r.Block(b, f.Records()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := r.End(b); err != nil {
			t.Fatal(err)
		}
	}
	if r.t.Len() != keys {
		t.Fatalf("%d groups, want %d", r.t.Len(), keys)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	rss := benchutil.PeakRSS()
	t.Logf("1M keys, count+sum: live heap %.1f MB, state estimate %.1f MB, peak RSS of the test process %s",
		float64(heap)/1e6, float64(r.t.MemoryUsed())/1e6, rss)
	if heap > 200e6 {
		t.Errorf("live heap %.1f MB, want under 200 MB", float64(heap)/1e6)
	}
	runtime.KeepAlive(r)
	r = nil

	frametest.Commit(t, o.Checkpoint, 3) // as the sink does
	start := time.Now()
	r2 := newBenchReducer(t, o)
	feed(t, r2, stage.Batch{ID: 4, Time: 5000}, nil)
	if r2.t.Len() != keys {
		t.Fatalf("restored %d groups, want %d", r2.t.Len(), keys)
	}
	t.Logf("restored 1M keys in %v", time.Since(start))
}

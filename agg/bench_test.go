package agg

import (
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/benchutil"
)

func countTable(b *testing.B) *Table {
	t, err := New(Config{Keys: []string{"value"}, Aggs: []Spec{{Kind: Count, Name: "count"}}})
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// reportCPU reports records per second of CPU time, steadier than the wall
// clock on a shared machine.
func reportCPU(b *testing.B, cpu0 time.Duration, records int) {
	if cpu := (benchutil.CPUTime() - cpu0).Seconds(); cpu > 0 {
		b.ReportMetric(float64(records)/cpu, "records/cpu-s")
	}
}

// BenchmarkTableAddWords folds the word count's records into a count by
// word: the per-record path of sreduce -k value --count, key lookup
// included. gen: bench.sh's words (keys of 3 to 7 bytes); long: words of
// 2 to 9 letters and a number (4 to 14 bytes), Zipf over 10k. One op is
// one record.
func BenchmarkTableAddWords(b *testing.B) {
	for _, c := range []struct {
		name string
		recs [][]byte
	}{{"gen", benchutil.GenWords(1 << 16)}, {"long", benchutil.ZipfWords(1<<16, 10_000)}} {
		b.Run(c.name, func(b *testing.B) {
			t := countTable(b)
			b.ReportAllocs()
			cpu0 := benchutil.CPUTime()
			i := 0
			for b.Loop() {
				if err := t.Add(c.recs[i&(1<<16-1)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportCPU(b, cpu0, b.N)
		})
	}
}

// BenchmarkTableAddDistinct folds 1M records of distinct keys into an
// empty table, then zeroes it: every record makes a group. One op is the
// million.
func BenchmarkTableAddDistinct(b *testing.B) {
	const n = 1_000_000
	recs := benchutil.Keys(n)
	b.ReportAllocs()
	cpu0 := benchutil.CPUTime()
	for b.Loop() {
		t := countTable(b)
		for _, rec := range recs {
			if err := t.Add(rec); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportCPU(b, cpu0, n*b.N)
}

// BenchmarkSortByKey sorts 1M groups of distinct string keys, key0 to
// key999999 created in a random order, as sreduce sorts its output. One op
// is the sort of the million.
func BenchmarkSortByKey(b *testing.B) {
	const n = 1_000_000
	t := countTable(b)
	for _, rec := range benchutil.Keys(n) {
		if err := t.Add(rec); err != nil {
			b.Fatal(err)
		}
	}
	gs := make([]int32, n)
	b.ReportAllocs()
	cpu0 := benchutil.CPUTime()
	for b.Loop() {
		for i := range gs {
			gs[i] = int32(i)
		}
		t.SortByKey(gs)
	}
	reportCPU(b, cpu0, n*b.N)
}

// BenchmarkTableAddBlock is BenchmarkTableAddWords through AddBlock, a
// block of 1000 records at a time, as sreduce adds them. One op is one
// record.
func BenchmarkTableAddBlock(b *testing.B) {
	for _, c := range []struct {
		name string
		recs [][]byte
	}{{"gen", benchutil.GenWords(1 << 16)}, {"long", benchutil.ZipfWords(1<<16, 10_000)}} {
		b.Run(c.name, func(b *testing.B) {
			var blocks [][]byte
			for i := 0; i+1000 <= len(c.recs); i += 1000 {
				var p []byte
				for _, rec := range c.recs[i : i+1000] {
					p = framing.AppendRecord(p, rec)
				}
				blocks = append(blocks, p)
			}
			t := countTable(b)
			b.ReportAllocs()
			cpu0 := benchutil.CPUTime()
			n := 0
			for n < b.N {
				for _, blk := range blocks {
					k := min(1000, b.N-n)
					recs := framing.NewRecords(blk, k)
					if _, err := t.AddBlock(&recs); err != nil {
						b.Fatal(err)
					}
					if n += k; n == b.N {
						break
					}
				}
			}
			reportCPU(b, cpu0, b.N)
		})
	}
}

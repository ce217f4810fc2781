package agg

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/benchutil"
	"github.com/dstream/dstream/internal/gen"
	"github.com/dstream/dstream/record"
)

// benchWords returns n {"value": word} records over a vocabulary of vocab
// words of 2 to 9 letters, drawn with a Zipf distribution as words in text
// (the word count's records).
func benchWords(n, vocab int) [][]byte {
	r := rand.New(rand.NewPCG(7, 8))
	words := make([]string, vocab)
	for i := range words {
		var sb strings.Builder
		for range 2 + r.IntN(8) {
			sb.WriteByte(byte('a' + r.IntN(26)))
		}
		words[i] = sb.String() + strconv.Itoa(i) // unique
	}
	z := rand.NewZipf(r, 1.1, 1, uint64(vocab-1))
	recs := make([][]byte, n)
	for i := range recs {
		b := record.AppendMapHeader(nil, 1)
		b = record.AppendString(b, "value")
		recs[i] = record.AppendString(b, words[z.Uint64()])
	}
	return recs
}

// benchKeys returns n {"value": "keyN"} records, N from 0 to n-1 in a
// random order (bench.sh's distinct keys).
func benchKeys(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	recs := make([][]byte, n)
	for i, k := range r.Perm(n) {
		b := record.AppendMapHeader(nil, 1)
		b = record.AppendString(b, "value")
		recs[i] = record.AppendString(b, fmt.Sprintf("key%d", k))
	}
	return recs
}

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

// genWords returns the first n words of bench.sh's word count input
// (scripts/gen words: Zipf over 10k pronounceable words of 2 to 6
// letters) as {"value": word} records.
func genWords(n int) [][]byte {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := gen.Words(w, n/10+1, 10, 10_000); err != nil {
		panic(err)
	}
	w.Flush()
	recs := make([][]byte, n)
	for i, word := range strings.Fields(buf.String())[:n] {
		b := record.AppendMapHeader(nil, 1)
		b = record.AppendString(b, "value")
		recs[i] = record.AppendString(b, word)
	}
	return recs
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
	}{{"gen", genWords(1 << 16)}, {"long", benchWords(1<<16, 10_000)}} {
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
	recs := benchKeys(n)
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
	for _, rec := range benchKeys(n) {
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
	}{{"gen", genWords(1 << 16)}, {"long", benchWords(1<<16, 10_000)}} {
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

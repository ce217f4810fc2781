package agg

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/internal/benchutil"
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

// BenchmarkTableAddWords folds the word count's records (Zipf over 10k
// words) into a count by word: the per-record path of sreduce -k value
// --count, key lookup included. One op is one record.
func BenchmarkTableAddWords(b *testing.B) {
	recs := benchWords(1<<16, 10_000)
	t := countTable(b)
	b.ReportAllocs()
	cpu0 := benchutil.CPUTime()
	i := 0
	for b.Loop() {
		if err := t.Add(recs[i&(1<<16-1)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportCPU(b, cpu0, b.N)
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

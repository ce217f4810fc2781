package reduce

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// TestSplitMatchesSerial runs batches of more distinct keys than splitMin
// (so that the table splits in the first) through an engine that splits
// and one that keeps one table (Options.Serial): the outputs must be the
// same bytes in key order, the same records in some order with
// --order none. The keys mix what AddBlock and Add take apart: short
// strings, strings of 8 to 16 bytes and longer, integers, a key field
// that is not the record's first, and malformed records (--skip-bad).
func TestSplitMatchesSerial(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("the engine splits only with GOMAXPROCS > 1")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	batch := func(n int) [][]byte {
		var recs [][]byte
		for range n {
			var key []byte
			switch k := rng.IntN(3 * splitMin); k % 5 {
			case 0:
				key = record.AppendString(nil, fmt.Sprint(k%1000))
			case 1:
				key = record.AppendString(nil, fmt.Sprintf("key%07d", k))
			case 2:
				key = record.AppendString(nil, fmt.Sprintf("a longer key of %d", k))
			case 3:
				key = record.AppendInt(nil, int64(k))
			case 4:
				// The key field second: Add, not AddBlock's count path.
				m := record.AppendMapHeader(nil, 2)
				m = record.AppendString(m, "x")
				m = record.AppendInt(m, 1)
				m = record.AppendString(m, "value")
				recs = append(recs, record.AppendString(m, fmt.Sprint("k", k)))
				continue
			}
			m := record.AppendMapHeader(nil, 1)
			m = record.AppendString(m, "value")
			recs = append(recs, append(m, key...))
			if rng.IntN(10000) == 0 {
				recs = append(recs, []byte{0x81, 0xa5}) // malformed
			}
		}
		return recs
	}
	batches := [][][]byte{batch(4 * splitMin), batch(splitMin / 2), batch(3 * splitMin)}
	for _, unordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("unordered=%v", unordered), func(t *testing.T) {
			run := func(serial bool) (string, *Engine, stage.Stats) {
				var out bytes.Buffer
				w := framing.NewWriter(&out)
				var stats stage.Stats
				o := Options{Agg: agg.Config{Keys: []string{"value"}, Aggs: []agg.Spec{{Kind: agg.Count, Name: "count"}}},
					By: -1, Unordered: unordered, SkipBad: true, Serial: serial}
				r, err := New(o, w, &stats, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i, recs := range batches {
					feedReused(t, r, stage.Batch{ID: uint64(i), Time: int64(i+1) * 1000}, frametest.Blocks(recs))
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				return frametest.Render(t, out.Bytes()), r, stats
			}
			want, serial, wantStats := run(true)
			got, split, gotStats := run(false)
			if serial.t2 != nil || split.t2 == nil {
				t.Fatalf("split: serial %v, other %v; want false, true", serial.t2 != nil, split.t2 != nil)
			}
			if gotStats.Skipped != wantStats.Skipped || wantStats.Skipped == 0 {
				t.Errorf("skipped %d records, serial %d (want some)", gotStats.Skipped, wantStats.Skipped)
			}
			if unordered {
				want, got = sortRecords(want), sortRecords(got)
			}
			if got != want {
				t.Errorf("split output differs from serial (%d and %d bytes)", len(got), len(want))
			}
		})
	}
}

// feedReused is feed with every block in one buffer, overwritten once
// Block has returned, as the framing reader reuses its own: a part of the
// engine that read a block later would count garbage.
func feedReused(tb testing.TB, r *Engine, b stage.Batch, fs []framing.Frame) {
	if err := r.Begin(b); err != nil {
		tb.Fatal(err)
	}
	var buf []byte
	for i := range fs {
		recs := fs[i].Records()
		blk, n := recs.Rest()
		buf = append(buf[:0], blk...)
		if err := r.Block(b, framing.NewRecords(buf, n)); err != nil {
			tb.Fatal(err)
		}
		for j := range buf {
			buf[j] = 0xc1 // never used in msgpack
		}
	}
	if err := r.End(b); err != nil {
		tb.Fatal(err)
	}
}

// sortRecords sorts the records of each batch of a rendered stream.
func sortRecords(s string) string {
	batches := strings.Split(s, "\n")
	for i, b := range batches {
		recs := strings.Split(b, " {") // each record is a JSON object
		slices.Sort(recs[1:])
		batches[i] = strings.Join(recs, " {")
	}
	return strings.Join(batches, "\n")
}

package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/benchutil"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// benchWindow feeds batches of 10,000 one-word records (Zipf over 1,000
// words), one a second, through a window of 10 s sliding every second
// with args, the output framed and thrown away. A slide adds one batch and
// subtracts (or, not invertible, recomputes) the window's.
func benchWindow(b *testing.B, args ...string) {
	const perBatch, words = 10_000, 1_000
	rng := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(rng, 1.1, 1, words-1)
	var blocks [][]byte
	for range 20 {
		var blk []byte
		for range perBatch {
			rec := record.AppendString(record.AppendString(record.AppendMapHeader(nil, 1), "value"), fmt.Sprintf("w%d", z.Uint64()))
			blk = framing.AppendRecord(blk, rec)
		}
		blocks = append(blocks, blk)
	}
	w, err := newWindower(framing.NewWriter(io.Discard), testOptions(b, append([]string{"-l", "10s", "-s", "1s"}, args...)...))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	id := uint64(0)
	cpu0 := benchutil.CPUTime()
	for b.Loop() {
		feed(b, w, stage.Batch{ID: id, Time: int64(id+1) * 1000}, blocks[id%uint64(len(blocks))], perBatch)
		id++
	}
	cpu := (benchutil.CPUTime() - cpu0).Seconds()
	b.ReportMetric(float64(b.N*perBatch)/cpu, "records/cpu-s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkSlideCount(b *testing.B)    { benchWindow(b, "-k", "value", "--count") }
func BenchmarkSlideCountMax(b *testing.B) { benchWindow(b, "-k", "value", "--count", "--max", "value") }
func BenchmarkSlideRecords(b *testing.B)  { benchWindow(b) }

// benchEvents feeds batches of 10,000 events (one a millisecond of event
// time, Zipf over 1,000 users) through event-time windows with args. The
// records' times are int64s written in full, so that each batch's can be
// moved on in place, past the last batch's.
func benchEvents(b *testing.B, args ...string) {
	const perBatch, users = 10_000, 1_000
	rng := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(rng, 1.1, 1, users-1)
	var blk []byte
	var tpos []int // where each record's time is in blk
	for j := range perBatch {
		rec := record.AppendMapHeader(nil, 2)
		rec = record.AppendString(rec, "t")
		rec = append(rec, 0xd3) // int64
		at := len(rec)
		rec = binary.BigEndian.AppendUint64(rec, uint64(j))
		rec = record.AppendString(rec, "user")
		rec = record.AppendString(rec, fmt.Sprintf("u%d", z.Uint64()))
		blk = binary.AppendUvarint(blk, uint64(len(rec)))
		tpos = append(tpos, len(blk)+at)
		blk = append(blk, rec...)
	}
	w, err := newEventWindower(framing.NewWriter(io.Discard), testOptions(b, append([]string{"--time-field", "t", "--time-unit", "ms"}, args...)...))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	id := uint64(0)
	cpu0 := benchutil.CPUTime()
	for b.Loop() {
		for j, p := range tpos {
			binary.BigEndian.PutUint64(blk[p:], id*perBatch+uint64(j))
		}
		feed(b, w, stage.Batch{ID: id, Time: int64(id+1) * 1000}, blk, perBatch)
		id++
	}
	cpu := (benchutil.CPUTime() - cpu0).Seconds()
	b.ReportMetric(float64(b.N*perBatch)/cpu, "records/cpu-s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkEventTumbling(b *testing.B) {
	benchEvents(b, "--watermark", "2s", "-l", "5s", "-k", "user", "--count")
}
func BenchmarkEventSliding(b *testing.B) {
	benchEvents(b, "--watermark", "2s", "-l", "10s", "-s", "5s", "-k", "user", "--count")
}
func BenchmarkEventSessions(b *testing.B) {
	benchEvents(b, "--watermark", "2s", "--session", "500ms", "-k", "user", "--count")
}

// feed hands batch bt, the n records of blk, to h.
func feed(tb testing.TB, h stage.Handler, bt stage.Batch, blk []byte, n int) {
	if err := h.Begin(bt); err != nil {
		tb.Fatal(err)
	}
	if err := h.Block(bt, framing.NewRecords(blk, n)); err != nil {
		tb.Fatal(err)
	}
	if err := h.End(bt); err != nil {
		tb.Fatal(err)
	}
}

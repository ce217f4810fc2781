package window

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/benchutil"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// benchWindow feeds batches of 10,000 one-word records (Zipf over 1,000
// words), one a second, through a window of 10 s sliding every second
// with the keys and aggregates of c, the output framed and thrown away. A slide adds one batch and
// subtracts (or, not invertible, recomputes) the window's.
func benchWindow(b *testing.B, c agg.Config) { benchWindowOf(b, c, 10_000) }

// benchWindowOf is benchWindow with windows of length ms.
func benchWindowOf(b *testing.B, c agg.Config, length int64) {
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
	w, err := newWindower(framing.NewWriter(io.Discard), checked(b, sliding(length, 1000, c)))
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

func BenchmarkSlideCount(b *testing.B) { benchWindow(b, reduce(b, []string{"value"}, "count")) }
func BenchmarkSlideCountMax(b *testing.B) {
	benchWindow(b, reduce(b, []string{"value"}, "count", "max:value"))
}
func BenchmarkSlideRecords(b *testing.B) { benchWindow(b, agg.Config{}) }

// BenchmarkSlideLength: windows of 2 s and of 60 s sliding every second,
// with an invertible count and with max (Two-Stacks over slices): the cost
// of a slide should not grow with the length.
func BenchmarkSlideLength(b *testing.B) {
	for _, length := range []int64{2000, 60_000} {
		b.Run(fmt.Sprintf("count/%ds", length/1000), func(b *testing.B) {
			benchWindowOf(b, reduce(b, []string{"value"}, "count"), length)
		})
		b.Run(fmt.Sprintf("max/%ds", length/1000), func(b *testing.B) {
			benchWindowOf(b, reduce(b, []string{"value"}, "max:value"), length)
		})
	}
}

// benchEvents feeds batches of 10,000 events (one a millisecond of event
// time, Zipf over 1,000 users) through event-time windows of o and ev. The
// records' times are int64s written in full, so that each batch's can be
// moved on in place, past the last batch's.
func benchEvents(b *testing.B, o Options, ev EventOptions) {
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
	w, err := newEventWindower(framing.NewWriter(io.Discard), checked(b, events(o, codec.Milliseconds, ev)))
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
	benchEvents(b, sliding(5000, 5000, reduce(b, []string{"user"}, "count")), EventOptions{Watermark: 2 * time.Second})
}
func BenchmarkEventSliding(b *testing.B) {
	benchEvents(b, sliding(10_000, 5000, reduce(b, []string{"user"}, "count")), EventOptions{Watermark: 2 * time.Second})
}

// BenchmarkEventLength: event-time windows of 2 s and of 60 s sliding
// every second (slices of 1 s), counting and with max.
func BenchmarkEventLength(b *testing.B) {
	for _, length := range []int64{2000, 60_000} {
		for _, aggs := range [][]string{{"count"}, {"max:t"}} {
			b.Run(fmt.Sprintf("%s/%ds", aggs[0][:3], length/1000), func(b *testing.B) {
				benchEvents(b, sliding(length, 1000, reduce(b, []string{"user"}, aggs...)), EventOptions{Watermark: 2 * time.Second})
			})
		}
	}
}

func BenchmarkEventSessions(b *testing.B) {
	benchEvents(b, Options{Agg: reduce(b, []string{"user"}, "count")}, EventOptions{Watermark: 2 * time.Second, Session: 500 * time.Millisecond})
}

// BenchmarkEventSessionGap: the sessions of BenchmarkEventSessions, each
// record's gap from --session-gap-expr.
func BenchmarkEventSessionGap(b *testing.B) {
	benchEvents(b, Options{Agg: reduce(b, []string{"user"}, "count")},
		EventOptions{Watermark: 2 * time.Second, SessionGap: `user < "u5" ? "1s" : "500ms"`})
}

// benchState saves and loads the state of a window after 10 batches of
// 10,000 records (a sliding window of 10 s, every second), as --checkpoint
// does after each batch and once at a restart.
func benchState(b *testing.B, opts Options) {
	const perBatch = 10_000
	rng := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(rng, 1.1, 1, 999)
	var blk []byte
	for j := range perBatch {
		rec := record.AppendMapHeader(nil, 2)
		rec = record.AppendString(rec, "t")
		rec = record.AppendInt(rec, int64(j))
		rec = record.AppendString(rec, "user")
		rec = record.AppendString(rec, fmt.Sprintf("u%d", z.Uint64()))
		blk = framing.AppendRecord(blk, rec)
	}
	o := checked(b, opts)
	var st stateful
	if o.ev != nil {
		w, err := newEventWindower(framing.NewWriter(io.Discard), o)
		if err != nil {
			b.Fatal(err)
		}
		st = w
	} else {
		w, err := newWindower(framing.NewWriter(io.Discard), o)
		if err != nil {
			b.Fatal(err)
		}
		st = w
	}
	for id := range uint64(10) {
		feed(b, st.(stage.Handler), stage.Batch{ID: id, Time: int64(id+1) * 1000}, blk, perBatch)
	}
	b.ReportAllocs()
	for b.Loop() {
		data, err := st.save()
		if err != nil {
			b.Fatal(err)
		}
		if err := st.load(data); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
	}
}

func BenchmarkStateSlide(b *testing.B) {
	benchState(b, sliding(10_000, 1000, reduce(b, []string{"user"}, "count")))
}
func BenchmarkStateEvent(b *testing.B) {
	benchState(b, events(sliding(1000, 1000, reduce(b, []string{"user"}, "count")), codec.Milliseconds, EventOptions{Watermark: time.Hour}))
}
func BenchmarkStateSessions(b *testing.B) {
	benchState(b, events(Options{Agg: reduce(b, []string{"user"}, "count")}, codec.Milliseconds, EventOptions{Watermark: time.Hour, Session: time.Millisecond}))
}

// benchSpan pushes a slice of 1,000 keys and pops the oldest, holding 60,
// and takes the result, as a window of 60 slices moves on by one; ordered,
// with the slice's arrivals, as for first and last over event time.
func benchSpan(b *testing.B, c agg.Config, ordered bool) {
	sl, err := agg.New(c)
	if err != nil {
		b.Fatal(err)
	}
	var arr *agg.Arrival
	if ordered {
		arr = new(agg.Arrival)
	}
	for i := range 1000 {
		rec := record.AppendMapHeader(nil, 1)
		rec = record.AppendString(rec, "user")
		rec = record.AppendString(rec, fmt.Sprintf("u%d", i))
		if ordered {
			err = sl.AddArrival(rec, arr, uint64(i+1))
		} else {
			err = sl.Add(rec)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	sp := newSpan(c, ordered)
	for range 60 {
		if err := sp.push(0, sl, arr); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sp.pop(); err != nil {
			b.Fatal(err)
		}
		if err := sp.push(0, sl, arr); err != nil {
			b.Fatal(err)
		}
		if _, err := sp.result(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSpanSubtractor(b *testing.B) { benchSpan(b, reduce(b, []string{"user"}, "count"), false) }
func BenchmarkSpanTwoStacks(b *testing.B) {
	benchSpan(b, reduce(b, []string{"user"}, "max:user"), false)
}

// BenchmarkSpanFirstLast: Two-Stacks by order of arrival.
func BenchmarkSpanFirstLast(b *testing.B) {
	benchSpan(b, reduce(b, []string{"user"}, "first:user", "last:user"), true)
}

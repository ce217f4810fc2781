package sink

import (
	"encoding/binary"
	"io"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// t0 is the batch time of the first batch in tests: 2023-11-14T22:13:20Z.
const t0 = int64(1700000000000)

// block frames n records {"value": word} as a Records frame would hold them.
func block(n int, word string) framing.Frame {
	rec := record.AppendString(record.AppendString(record.AppendMapHeader(nil, 1), "value"), word)
	var p []byte
	for range n {
		p = binary.AppendUvarint(p, uint64(len(rec)))
		p = append(p, rec...)
	}
	return framing.Frame{Kind: framing.KindRecords, Count: uint64(n), Payload: p}
}

func newTestSink(t testing.TB, o Options) *Sink {
	t.Helper()
	o.Stdout, o.Stderr = io.Discard, io.Discard
	s, err := New(o)
	if err != nil {
		t.Fatalf("%+v: %v", o, err)
	}
	return s
}

var perRecordFormats = []Options{
	{Format: "json"},
	{Format: "tsv"},
	{Format: "csv"},
	{Format: "lines"},
	{Format: "msgpack"},
	{Format: "json", BatchField: "batch"},
	{Format: "tsv", BatchField: "batch"},
}

// TestNoAllocs guards the per-record formats against allocating per record.
func TestNoAllocs(t *testing.T) {
	f := block(1000, "word")
	for _, o := range perRecordFormats {
		s := newTestSink(t, o)
		b := stage.Batch{ID: 1, Time: t0}
		s.Begin(b)
		s.Block(b, f.Records()) // the header, and buffers grown
		allocs := testing.AllocsPerRun(20, func() {
			if err := s.Block(b, f.Records()); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s %q: %.1f allocations per 1000 records", o.Format, o.BatchField, allocs)
		}
	}
}

func benchmarkFormat(b *testing.B, o Options) {
	const n = 1000
	f := block(n, "word")
	s := newTestSink(b, o)
	bt := stage.Batch{ID: 1, Time: t0}
	s.Begin(bt)
	b.SetBytes(int64(len(f.Payload)))
	b.ReportAllocs()
	iters := 0
	for b.Loop() {
		if err := s.Block(bt, f.Records()); err != nil {
			b.Fatal(err)
		}
		iters++
	}
	b.ReportMetric(float64(iters*n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*n), "ns/record")
}

func BenchmarkJSON(b *testing.B) { benchmarkFormat(b, Options{Format: "json"}) }
func BenchmarkTSV(b *testing.B)  { benchmarkFormat(b, Options{Format: "tsv"}) }

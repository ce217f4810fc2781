package sink

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/dstream/dstream/codec"
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

// memTarget keeps a batch in memory, and hands it to done at its commit.
type memTarget struct {
	bytes.Buffer
	done func(string)
}

func (t *memTarget) commit() error { t.done(t.String()); return nil }
func (t *memTarget) abort()        {}

// TestNewDestination declares a destination, as a file of its own would,
// and writes through it: sink.New needs nothing else to know of it.
func TestNewDestination(t *testing.T) {
	var got []string
	mem := Destination{
		Flag:          "mem",
		Encodes:       true,
		DefaultFormat: "json",
		Open: func(o *Options, f *codec.Format, _ *bufio.Writer) (Writer, error) {
			return newPerBatch(o, f, func(b stage.Batch) (target, error) {
				return &memTarget{done: func(s string) { got = append(got, fmt.Sprintf("%v: %s", b, s)) }}, nil
			}), nil
		},
	}
	for _, tc := range []struct {
		format string
		want   []string
	}{
		{"", []string{"batch 1: {\"value\":\"a\"}\n{\"value\":\"a\"}\n", "batch 2: "}},
		{"csv", []string{"batch 1: value\na\na\n", "batch 2: "}},
	} {
		got = nil
		s := newTestSink(t, Options{Dest: &mem, Format: tc.format})
		for id := uint64(1); id <= 2; id++ {
			b := stage.Batch{ID: id, Time: t0}
			n := 0
			if id == 1 {
				n = 2
			}
			f := block(n, "a")
			if err := s.Begin(b); err != nil {
				t.Fatal(err)
			}
			if err := s.Block(b, f.Records()); err != nil {
				t.Fatal(err)
			}
			if err := s.End(b); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("format %q: %q, want %q", tc.format, got, tc.want)
		}
	}
}

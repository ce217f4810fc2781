package union

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/stage"
)

// unite runs the union of the streams and returns its output rendered.
func unite(tb testing.TB, streams ...[]byte) string {
	tb.Helper()
	var ins []stage.Input
	for i, s := range streams {
		ins = append(ins, stage.Input{Name: fmt.Sprint("in", i), R: framing.NewReader(bytes.NewReader(s))})
	}
	var buf bytes.Buffer
	e := &stage.Env{Name: "sunion", Out: framing.NewWriter(&buf)}
	if err := e.LoopInputs(ins, New(e.Out, len(ins))); err != nil {
		tb.Fatal(err)
	}
	if err := e.Out.Close(); err != nil {
		tb.Fatal(err)
	}
	return frametest.Render(tb, buf.Bytes())
}

func TestUnion(t *testing.T) {
	type bs = []frametest.Batch
	// Records of more than 40 bytes, so that a batch spans blocks.
	rec := func(s string) string { return fmt.Sprintf(`{"v":%q,"pad":"%s"}`, s, strings.Repeat("x", 30)) }
	tests := []struct {
		name    string
		streams []bs
		want    string
	}{
		// BasicOperationsSuite "union": s.union(s.map(_ + 4)).
		{"union", []bs{
			{{ID: 0, Time: 1000, Recs: []string{`{"v":1}`, `{"v":2}`, `{"v":3}`, `{"v":4}`}}, {ID: 1, Time: 2000, Recs: []string{`{"v":101}`, `{"v":102}`}}},
			{{ID: 0, Time: 1000, Recs: []string{`{"v":5}`, `{"v":6}`, `{"v":7}`, `{"v":8}`}}, {ID: 1, Time: 2000, Recs: []string{`{"v":105}`, `{"v":106}`}}},
		}, `0@1000: {"v":1} {"v":2} {"v":3} {"v":4} {"v":5} {"v":6} {"v":7} {"v":8}
1@2000: {"v":101} {"v":102} {"v":105} {"v":106}
`},
		{"in the order of the inputs, however the blocks come", []bs{
			{{ID: 0, Time: 1000, Recs: []string{rec("a1"), rec("a2"), rec("a3")}}},
			{{ID: 0, Time: 1000, Recs: []string{rec("b1"), rec("b2")}}},
			{{ID: 0, Time: 1000, Recs: []string{rec("c1"), rec("c2"), rec("c3")}}},
		}, `0@1000: ` + strings.Join([]string{rec("a1"), rec("a2"), rec("a3"), rec("b1"), rec("b2"), rec("c1"), rec("c2"), rec("c3")}, " ") + "\n"},
		{"the first input without a batch", []bs{
			{{ID: 0, Time: 1000, Recs: []string{`{"a":0}`}}, {ID: 1, Time: 3000, Recs: []string{`{"a":1}`}}},
			{{ID: 0, Time: 1000, Recs: []string{`{"b":0}`}}, {ID: 1, Time: 2000, Recs: []string{rec("b1"), rec("b2")}}, {ID: 2, Time: 3000}},
			{{ID: 7, Time: 2000, Recs: []string{rec("c1"), rec("c2")}}, {ID: 8, Time: 3000, Recs: []string{`{"c":8}`}}},
		}, `0@1000: {"a":0} {"b":0}
1@2000: ` + strings.Join([]string{rec("b1"), rec("b2"), rec("c1"), rec("c2")}, " ") + `
1@3000: {"a":1} {"c":8}
`},
		{"inputs that end early count as empty", []bs{
			{{ID: 0, Time: 1000, Recs: []string{`{"a":0}`}}},
			{},
			{{ID: 0, Time: 1000, Recs: []string{`{"c":0}`}}, {ID: 1, Time: 2000, Recs: []string{`{"c":1}`}}},
		}, `0@1000: {"a":0} {"c":0}
1@2000: {"c":1}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var streams [][]byte
			for _, s := range tt.streams {
				streams = append(streams, frametest.Stream(t, s))
			}
			if got := unite(t, streams...); got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// BenchmarkUnion unites two streams of 100 batches of 10,000 records of 68
// bytes, as a Writer frames them.
func BenchmarkUnion(b *testing.B) {
	stream := func() []byte {
		var buf bytes.Buffer
		w := framing.NewWriter(&buf)
		rec := frametest.Record(b, `{"value":"`+strings.Repeat("x", 58)+`"}`)
		for i := range 100 {
			w.BeginBatch(uint64(i), int64(i+1)*1000)
			for range 10_000 {
				w.WriteRecord(rec)
			}
			w.EndBatch()
		}
		w.Close()
		return buf.Bytes()
	}()
	b.SetBytes(2 * int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		ins := []stage.Input{
			{Name: "a", R: framing.NewReader(bytes.NewReader(stream))},
			{Name: "b", R: framing.NewReader(bytes.NewReader(stream))},
		}
		e := &stage.Env{Name: "sunion", Out: framing.NewWriter(io.Discard)}
		if err := e.LoopInputs(ins, New(e.Out, 2)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*100*10_000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// TestHeld: blocks held across batches, small and larger than a chunk,
// come back as they went in, in the chunks kept from batch to batch.
func TestHeld(t *testing.T) {
	var h held
	for batch, sizes := range [][]int{{10, 20, chunkSize - 25, 30}, {chunkSize + 5, 7}, {3, chunkSize, chunkSize, 1}} {
		var want [][]byte
		for i, n := range sizes {
			b := bytes.Repeat([]byte{byte('a' + batch*5 + i)}, n)
			want = append(want, b)
			h.add(b, i+1)
		}
		for i, b := range h.blocks {
			got := h.chunks[b.chunk][b.off : b.off+b.len]
			if !bytes.Equal(got, want[i]) || b.n != i+1 {
				t.Fatalf("batch %d, block %d: %d bytes of %q, n %d", batch, i, len(got), got[:1], b.n)
			}
		}
		h.reset(4)
	}
	if cap(h.chunks) > 4 {
		t.Fatalf("%d chunks kept", cap(h.chunks))
	}
}

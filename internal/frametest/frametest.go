// Package frametest builds framed streams for tests of the stages, and
// renders a stage's output back as text to compare.
package frametest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
)

// Batch is a batch of a test stream: its id, its time and its records as
// JSON objects, and the watermark that follows it, if not 0.
type Batch struct {
	ID        uint64
	Time      int64
	Recs      []string
	Watermark int64 // unix ms
}

// Record is r as a record: a JSON object, or, when r does not start with
// '{', raw msgpack as it is (for records JSON cannot write: binary,
// timestamps, a value that is not a map).
func Record(tb testing.TB, r string) []byte {
	tb.Helper()
	if !strings.HasPrefix(r, "{") {
		return []byte(r)
	}
	m, err := record.AppendJSONObject(nil, []byte(r))
	if err != nil {
		tb.Fatalf("%s: %v", r, err)
	}
	return m
}

// Stream frames the batches, in blocks of at most 40 bytes, so that a
// batch of more than a record or two spans several.
func Stream(tb testing.TB, bs []Batch) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := framing.NewWriter(&buf)
	w.BlockSize = 40
	for _, b := range bs {
		w.BeginBatch(b.ID, b.Time)
		for _, r := range b.Recs {
			w.WriteRecord(Record(tb, r))
		}
		w.EndBatch()
		if b.Watermark != 0 {
			w.Watermark(b.Watermark)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// Cut is Stream without the end-of-stream frame, as a stage that crashed
// leaves its output.
func Cut(tb testing.TB, bs []Batch) []byte {
	tb.Helper()
	s := Stream(tb, bs)
	return s[:len(s)-framing.FrameHeaderLen]
}

// Render reads a stream back, a line per batch: "ID@TIME: REC REC ...",
// each record as JSON.
func Render(tb testing.TB, b []byte) string {
	tb.Helper()
	s, err := render(b)
	if err != nil {
		tb.Fatalf("reading the output: %v", err)
	}
	return s
}

// RenderCut is Render of a stream that may stop short, as a failed stage
// leaves it: the batches up to where it stops.
func RenderCut(tb testing.TB, b []byte) string {
	tb.Helper()
	s, err := render(b)
	if err != nil && !errors.Is(err, framing.ErrTruncated) {
		tb.Fatalf("reading the output: %v", err)
	}
	return s
}

func render(b []byte) (string, error) {
	r := framing.NewReader(bytes.NewReader(b))
	var sb strings.Builder
	var f framing.Frame
	for {
		err := r.Read(&f)
		if err == io.EOF {
			return sb.String(), nil
		}
		if err != nil {
			return sb.String(), err
		}
		switch f.Kind {
		case framing.KindBatchBegin:
			fmt.Fprintf(&sb, "%d@%d:", f.BatchID, f.Time)
		case framing.KindRecords:
			recs := f.Records()
			for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
				js, _, err := record.AppendJSON(nil, rec)
				if err != nil {
					return sb.String(), err
				}
				sb.WriteString(" " + string(js))
			}
		case framing.KindBatchEnd:
			sb.WriteString("\n")
		}
	}
}

// LastBatch returns the id of the last batch that b, a stream maybe cut
// short, holds whole; ok is false if it holds none.
func LastBatch(b []byte) (id uint64, ok bool) {
	r := framing.NewReader(bytes.NewReader(b))
	var f framing.Frame
	for r.Read(&f) == nil {
		if f.Kind == framing.KindBatchEnd {
			id, ok = f.BatchID, true
		}
	}
	return id, ok
}

// Commit writes DIR/commits/id as a sink does once batch id is out.
func Commit(tb testing.TB, dir string, id uint64) {
	tb.Helper()
	c, err := checkpoint.OpenCommitter(dir)
	if err == nil {
		err = c.Commit(id, 0)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// Frame frames recs, JSON objects (see Record), as one Records frame.
func Frame(tb testing.TB, recs ...string) *framing.Frame {
	var p []byte
	for _, r := range recs {
		p = framing.AppendRecord(p, Record(tb, r))
	}
	return &framing.Frame{Kind: framing.KindRecords, Count: uint64(len(recs)), Payload: p}
}

// Blocks frames records as a framing.Writer cuts them: Records frames of
// about framing.BlockSize bytes, for benchmarks that hand a stage its
// blocks directly.
func Blocks(recs [][]byte) []framing.Frame {
	var fs []framing.Frame
	var b []byte
	n := 0
	for i, r := range recs {
		b = framing.AppendRecord(b, r)
		n++
		if len(b) >= framing.BlockSize || i == len(recs)-1 {
			fs = append(fs, framing.Frame{Kind: framing.KindRecords, Count: uint64(n), Payload: b})
			b, n = nil, 0
		}
	}
	return fs
}

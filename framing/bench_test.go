package framing

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/dstream/dstream/internal/benchutil"
	"io"
	"testing"
	"time"
)

// benchN is the number of records in a benchmark's batch.
const benchN = 1000

// benchRecords returns benchN records {"value": <a 60-byte log line>}, and
// their total size.
func benchRecords() ([][]byte, int64) {
	recs := make([][]byte, benchN)
	var size int64
	for i := range recs {
		line := fmt.Sprintf("2024-05-01T12:00:%02d.%03dZ INFO GET /api/items/%05d 200 ok", i%60, i%1000, i*7919%100000)
		line = (line + "                                                            ")[:60]
		recs[i] = rec(line)
		size += int64(len(recs[i]))
	}
	return recs, size
}

func benchWrite(b *testing.B, w *Writer, id uint64, recs [][]byte) {
	if err := w.BeginBatch(id, t0+int64(id)*1000); err != nil {
		b.Fatal(err)
	}
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.EndBatch(); err != nil {
		b.Fatal(err)
	}
}

// benchRead reads one batch, walks its records and returns their number.
func benchRead(b *testing.B, r *Reader, f *Frame) int {
	n := 0
	for {
		if err := r.Read(f); err != nil {
			b.Fatal(err)
		}
		switch f.Kind {
		case KindRecords:
			rs := f.Records()
			for _, ok := rs.Next(); ok; _, ok = rs.Next() {
				n++
			}
		case KindBatchEnd:
			if n != benchN {
				b.Fatalf("read %d records, want %d", n, benchN)
			}
			return n
		}
	}
}

// reportPerRecord reports the wall time per record and, where it is
// measured, the CPU time per record since cpu0 (taken just before the
// benchmark loop). The CPU time counts every thread of the process, the
// garbage collector's too; it is the steadier figure on a busy machine.
func reportPerRecord(b *testing.B, cpu0 time.Duration) {
	n := float64(b.N * benchN)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	if cpu0 != 0 {
		b.ReportMetric(float64((benchutil.CPUTime()-cpu0).Nanoseconds())/n, "cpu-ns/record")
	}
}

// BenchmarkWriteRead writes a batch of 1000 records and reads it back, as
// two stages joined by a pipe do between them.
func BenchmarkWriteRead(b *testing.B) {
	recs, size := benchRecords()
	for _, c := range compressions {
		b.Run(c.name, func(b *testing.B) {
			var pipe bytes.Buffer
			w := NewWriter(&pipe)
			if err := w.SetCompression(c.c); err != nil {
				b.Fatal(err)
			}
			r := NewReader(&pipe)
			var f Frame
			benchWrite(b, w, 0, recs) // warm up: buffers and encoders
			benchRead(b, r, &f)
			b.SetBytes(size)
			b.ReportAllocs()
			cpu0 := benchutil.CPUTime()
			id := uint64(1)
			for b.Loop() {
				benchWrite(b, w, id, recs)
				benchRead(b, r, &f)
				id++
			}
			reportPerRecord(b, cpu0)
		})
	}
}

func BenchmarkWrite(b *testing.B) {
	recs, size := benchRecords()
	for _, c := range compressions {
		b.Run(c.name, func(b *testing.B) {
			w := NewWriter(io.Discard)
			if err := w.SetCompression(c.c); err != nil {
				b.Fatal(err)
			}
			benchWrite(b, w, 0, recs)
			b.SetBytes(size)
			b.ReportAllocs()
			cpu0 := benchutil.CPUTime()
			id := uint64(1)
			for b.Loop() {
				benchWrite(b, w, id, recs)
				id++
			}
			reportPerRecord(b, cpu0)
		})
	}
}

// loopReader returns head, then body again and again.
type loopReader struct {
	head, body []byte
	off        int
}

func (l *loopReader) Read(p []byte) (int, error) {
	if len(l.head) > 0 {
		n := copy(p, l.head)
		l.head = l.head[n:]
		return n, nil
	}
	n := 0
	for n < len(p) {
		m := copy(p[n:], l.body[l.off:])
		n += m
		l.off = (l.off + m) % len(l.body)
	}
	return n, nil
}

func BenchmarkRead(b *testing.B) {
	recs, size := benchRecords()
	for _, c := range compressions {
		b.Run(c.name, func(b *testing.B) {
			// One batch, read again and again: the Reader does not require
			// batch ids to rise.
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if err := w.SetCompression(c.c); err != nil {
				b.Fatal(err)
			}
			benchWrite(b, w, 1, recs)
			r := NewReader(&loopReader{head: buf.Bytes()[:HeaderLen], body: buf.Bytes()[HeaderLen:]})
			var f Frame
			benchRead(b, r, &f)
			b.SetBytes(size)
			b.ReportAllocs()
			cpu0 := benchutil.CPUTime()
			for b.Loop() {
				benchRead(b, r, &f)
			}
			reportPerRecord(b, cpu0)
		})
	}
}

// BenchmarkCheckBlock checks a block of one-word records, the smallest a
// stream carries, where the per-record cost of the check shows most.
func BenchmarkCheckBlock(b *testing.B) {
	var block []byte
	n := 0
	for len(block) < BlockSize {
		block = binary.AppendUvarint(block, uint64(len(rec("word"))))
		block = append(block, rec("word")...)
		n++
	}
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		if err := checkBlock(block, n, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

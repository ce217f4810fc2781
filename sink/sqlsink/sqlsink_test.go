package sqlsink

import (
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/pgtest"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
)

// t0 is the batch time of the first batch in tests: 2023-11-14T22:13:20Z.
const t0 = int64(1700000000000)

// sqliteBlock frames n records {"value": "wordN", "count": N, "avg": N/2}, as
// sreduce writes them.
func sqliteBlock(n int) framing.Frame {
	var b record.Builder
	var p []byte
	for i := range n {
		b.Reset()
		b.Value("value", fmt.Sprintf("word%d", i%100))
		b.Value("count", int64(i))
		b.Value("avg", float64(i)/2)
		p = binary.AppendUvarint(p, uint64(len(b.Bytes())))
		p = append(p, b.Bytes()...)
	}
	return framing.Frame{Kind: framing.KindRecords, Count: uint64(n), Payload: p}
}

// BenchmarkSQLite writes batches of 1000 records, one transaction each, in
// the modes.
func BenchmarkSQLite(b *testing.B) {
	benchmarkSQL(b, &SQLite, func(b *testing.B) string { return filepath.Join(b.TempDir(), "t.db") })
}

// BenchmarkPostgres writes batches of 1000 records, one transaction each,
// in the modes.
func BenchmarkPostgres(b *testing.B) {
	benchmarkSQL(b, &Postgres, func(b *testing.B) string {
		u, _ := pgtest.Schema(b)
		return u
	})
}

// benchmarkSQL writes batches of 1000 records into the database of d that
// target gives, one transaction each, in the modes.
func benchmarkSQL(b *testing.B, d *sink.Destination, target func(*testing.B) string) {
	const n = 1000
	f := sqliteBlock(n)
	for _, o := range []sink.Options{
		{Mode: ModeAppend},
		{Mode: ModeUpdate, Keys: []string{"value"}},
	} {
		b.Run(o.Mode, func(b *testing.B) {
			o.Dest, o.Target, o.Table = d, target(b), "records"
			o.Stdout, o.Stderr = io.Discard, io.Discard
			s, err := sink.New(o)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(int64(len(f.Payload)))
			b.ReportAllocs()
			id := uint64(0)
			for b.Loop() {
				bt := stage.Batch{ID: id, Time: t0 + int64(id)}
				id++
				if err := s.Begin(bt); err != nil {
					b.Fatal(err)
				}
				if err := s.Block(bt, f.Records()); err != nil {
					b.Fatal(err)
				}
				if err := s.End(bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(int(id)*n)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int(id)*n), "ns/row")
		})
	}
}

package sqlsink

import (
	"database/sql"
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

// rowsBlock frames n records {"id": N, "name": "userM", "score": K.5}, the
// rows of scripts/bench.sh's database cases.
func rowsBlock(n int) framing.Frame {
	var b record.Builder
	var p []byte
	for i := range n {
		b.Reset()
		b.Value("id", int64(i))
		b.Value("name", fmt.Sprintf("user%d", i%1000))
		b.Value("score", float64(i%97)+0.5)
		p = binary.AppendUvarint(p, uint64(len(b.Bytes())))
		p = append(p, b.Bytes()...)
	}
	return framing.Frame{Kind: framing.KindRecords, Count: uint64(n), Payload: p}
}

// BenchmarkSQLiteBulk writes batches of 100k rows as scripts/bench.sh's
// sqlite cases do, in the modes; in update mode every row has a new key.
func BenchmarkSQLiteBulk(b *testing.B) {
	benchmarkBulk(b, &SQLite, func(b *testing.B) string { return filepath.Join(b.TempDir(), "t.db") })
}

// BenchmarkPostgresBulk writes batches of 100k rows as scripts/bench.sh's
// postgres cases do, in the modes; in update mode every row has a new key.
func BenchmarkPostgresBulk(b *testing.B) {
	benchmarkBulk(b, &Postgres, func(b *testing.B) string {
		u, _ := pgtest.Schema(b)
		return u
	})
}

// benchmarkBulk writes batches of 100k rows into a new table of the
// database of d each, one transaction each.
func benchmarkBulk(b *testing.B, d *sink.Destination, target func(*testing.B) string) {
	const n = 100000
	f := rowsBlock(n)
	for _, o := range []sink.Options{
		{Mode: ModeAppend},
		{Mode: ModeUpdate, Keys: []string{"id"}},
	} {
		b.Run(o.Mode, func(b *testing.B) {
			o.Dest, o.Target = d, target(b)
			o.Stdout, o.Stderr = io.Discard, io.Discard
			b.SetBytes(int64(len(f.Payload)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				o.Table = fmt.Sprintf("t%d", i)
				i++
				s, err := sink.New(o)
				if err != nil {
					b.Fatal(err)
				}
				bt := stage.Batch{ID: 0, Time: t0}
				if err := s.Begin(bt); err != nil {
					b.Fatal(err)
				}
				if err := s.Block(bt, f.Records()); err != nil {
					b.Fatal(err)
				}
				if err := s.End(bt); err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*n), "ns/row")
		})
	}
}

// TestUpdateLastWins writes a batch of records whose keys repeat, within
// the rows of one COPY and across them, some as floats equal to the
// integer key of earlier ones and some null, and checks each key's row
// holds its last record, as a map of the records does. Keys -1: the
// second COPY's rows have one key of the first's (so that PostgreSQL's
// go through the temporary table) and the third's repeat the second's
// others, new to the table.
func TestUpdateLastWins(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    *sink.Destination
		open func(t *testing.T) (string, *sql.DB)
	}{
		{"sqlite", &SQLite, func(t *testing.T) (string, *sql.DB) {
			path := filepath.Join(t.TempDir(), "t.db")
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return path, db
		}},
		{"postgres", &Postgres, func(t *testing.T) (string, *sql.DB) { return pgtest.Schema(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, db := tc.open(t)
			for _, keys := range []int{copyChunk * 3, 7001, -1} { // distinct keys; repeated
				table := fmt.Sprintf("t%d", keys+1)
				want := map[string]int64{}
				var b record.Builder
				var p []byte
				const n = copyChunk*2 + copyChunk/2
				for i := range n {
					b.Reset()
					ki := i
					switch {
					case keys > 0:
						ki = i % keys
					case i == copyChunk:
						ki = 0
					case i < 2*copyChunk:
						ki = i + copyChunk
					}
					k, key := any(int64(ki)), fmt.Sprint(ki)
					switch {
					case i%13 == 5:
						k = float64(ki) // BIGINT, INTEGER: the same key
					case i%101 == 7:
						k, key = nil, "NULL"
					}
					b.Value("k", k)
					b.Value("n", int64(i))
					want[key] = int64(i)
					p = binary.AppendUvarint(p, uint64(len(b.Bytes())))
					p = append(p, b.Bytes()...)
				}
				f := framing.Frame{Kind: framing.KindRecords, Count: n, Payload: p}
				s, err := sink.New(sink.Options{Dest: tc.d, Target: target, Table: table, Mode: ModeUpdate, Keys: []string{"k"},
					Stdout: io.Discard, Stderr: io.Discard})
				if err != nil {
					t.Fatal(err)
				}
				closed := false
				t.Cleanup(func() { // before the schema's cleanup, which waits on the batch's locks
					if !closed {
						s.Close()
					}
				})
				bt := stage.Batch{ID: 0, Time: t0}
				if err := s.Begin(bt); err != nil {
					t.Fatal(err)
				}
				if err := s.Block(bt, f.Records()); err != nil {
					t.Fatal(err)
				}
				if err := s.End(bt); err != nil {
					t.Fatal(err)
				}
				closed = true
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				rows, err := db.Query(`SELECT k, n FROM ` + table)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]int64{}
				for rows.Next() {
					var k sql.NullInt64
					var v int64
					if err := rows.Scan(&k, &v); err != nil {
						t.Fatal(err)
					}
					key := "NULL"
					if k.Valid {
						key = fmt.Sprint(k.Int64)
					}
					if _, dup := got[key]; dup {
						t.Errorf("%s: key %s twice", table, key)
					}
					got[key] = v
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				rows.Close()
				if len(got) != len(want) {
					t.Errorf("%s: %d keys, want %d", table, len(got), len(want))
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s: key %s: n = %d, want %d", table, k, got[k], v)
					}
				}
			}
		})
	}
}

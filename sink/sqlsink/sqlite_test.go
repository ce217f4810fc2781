package sqlsink

import (
	"database/sql"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
)

// rawValues are the msgpack values the records of the comparison of the
// C API's statements with the driver's draw from: every kind, edge
// values, and bytes that are no value a record may hold.
var rawValues = func() [][]byte {
	var vs [][]byte
	for _, v := range []any{
		nil, true, false, int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), 7,
		uint64(math.MaxInt64), 0.5, -0.0, math.NaN(), math.Inf(1), 1e300, 3.0,
		"", "a", "word", "a\x00b", "\xff\xfe", strings.Repeat("long ", 40), "42", "4.5",
		[]byte{}, []byte{0, 1, 2}, []byte("text"),
		time.Date(2023, 11, 14, 22, 13, 20, 123456789, time.UTC),
		[]any{int64(1), "x", nil}, map[string]any{"k": "v", "n": 1.5},
	} {
		b, err := record.AppendValue(nil, v)
		if err != nil {
			panic(err)
		}
		vs = append(vs, b)
	}
	return vs
}()

// badValues are values that fail a batch, drawn rarely: a uint64 above
// int64's range, and bytes that are no value a record may hold.
var badValues = [][]byte{
	{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	{0xc1},             // never used
	{0xd4, 0x05, 0x00}, // an extension
	{0xd9},             // a string cut short
}

// rawFields are the field names of the records compared; "A" and "a" are
// the same column to SQLite.
var rawFields = []string{"k", "a", "b", "c", "A"}

// rawRecords frames the records that pick chooses: pick(n) is a choice
// in [0, n).
func rawRecords(pick func(n int) int, nrec int) framing.Frame {
	var b record.Builder
	var p []byte
	for range nrec {
		b.Reset()
		for _, name := range rawFields {
			if name == "A" && pick(100) != 0 || pick(4) == 0 {
				continue // a field the record lacks; "A" rarely
			}
			v := rawValues[pick(len(rawValues))]
			if pick(300) == 0 {
				v = badValues[pick(len(badValues))]
			}
			b.Raw(name, v)
		}
		p = binary.AppendUvarint(p, uint64(len(b.Bytes())))
		p = append(p, b.Bytes()...)
	}
	return framing.Frame{Kind: framing.KindRecords, Count: uint64(nrec), Payload: p}
}

// sqliteRun writes the batches into table t of a new database in dir, in
// mode (update: by key k), with the C API's statements or the driver's
// (off), and returns the table's values as typeof:quote, by row, and the
// error that ended the run, if any, dir in it as DIR.
func sqliteRun(t testing.TB, dir, mode string, off bool, batches []framing.Frame) (rows []string, errText string) {
	sqliteRawOff = off
	defer func() { sqliteRawOff = false }()
	path := filepath.Join(dir, "t.db")
	o := sink.Options{Dest: &SQLite, Target: path, Table: "t", Mode: mode, Stdout: io.Discard, Stderr: io.Discard}
	if mode == ModeUpdate {
		o.Keys = []string{"k"}
	}
	s, err := sink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	for id, f := range batches {
		bt := stage.Batch{ID: uint64(id), Time: t0 + int64(id)}
		if err = s.Begin(bt); err == nil {
			if err = s.Block(bt, f.Records()); err == nil {
				err = s.End(bt)
			}
		}
		if err != nil {
			errText = strings.ReplaceAll(err.Error(), dir, "DIR")
			break
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cols []string
	r, err := db.Query(`SELECT name FROM pragma_table_info('t') ORDER BY cid`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var c string
		if err := r.Scan(&c); err != nil {
			t.Fatal(err)
		}
		q := quoteIdent(c)
		cols = append(cols, "typeof("+q+") || ':' || quote("+q+")")
	}
	r.Close()
	if len(cols) == 0 {
		return nil, errText
	}
	r, err = db.Query(`SELECT ` + strings.Join(cols, ` || ' ' || `) + ` FROM t ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var row string
		if err := r.Scan(&row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return rows, errText
}

// compareSQLiteRaw writes the batches with the C API's statements and with
// the driver's, in both modes, and fails if the tables or errors differ.
func compareSQLiteRaw(t testing.TB, batches []framing.Frame) {
	for _, mode := range []string{ModeAppend, ModeUpdate} {
		raw, rawErr := sqliteRun(t, t.TempDir(), mode, false, batches)
		drv, drvErr := sqliteRun(t, t.TempDir(), mode, true, batches)
		if rawErr != drvErr {
			t.Errorf("%s: error %q, the driver's %q", mode, rawErr, drvErr)
		}
		if !slices.Equal(raw, drv) {
			t.Errorf("%s: %d rows, the driver's %d", mode, len(raw), len(drv))
			for i := range max(len(raw), len(drv)) {
				var a, b string
				if i < len(raw) {
					a = raw[i]
				}
				if i < len(drv) {
					b = drv[i]
				}
				if a != b {
					t.Errorf("%s: row %d: %s\n\tthe driver's: %s", mode, i+1, a, b)
				}
			}
		}
	}
}

// TestSQLiteRaw checks that the C API's statements (sqliteRaw) write the
// tables the driver's statements write, and fail as they do: random
// records of every kind of value, fields missing, columns added and
// case-folded, null keys in update mode.
func TestSQLiteRaw(t *testing.T) {
	if _, _, ok := sqliteConnOf(t); !ok {
		t.Fatal("the C API's statements are off: modernc.org/sqlite's conn has no db and tls fields")
	}
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 1))
		pick := func(n int) int { return rng.IntN(n) }
		var batches []framing.Frame
		for range 1 + pick(3) {
			batches = append(batches, rawRecords(pick, pick(60)))
		}
		compareSQLiteRaw(t, batches)
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
}

// FuzzSQLiteRaw is TestSQLiteRaw with the choices from the fuzzer.
//
// fuzz-inputs: 1500 (each input opens four SQLite databases: 12 ms an input)
func FuzzSQLiteRaw(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		i := 0
		pick := func(n int) int {
			if i >= len(data) {
				return 0
			}
			i++
			return int(data[i-1]) % n
		}
		var batches []framing.Frame
		for range 1 + pick(3) {
			batches = append(batches, rawRecords(pick, pick(20)))
		}
		compareSQLiteRaw(t, batches)
	})
}

// sqliteConnOf opens a database and tells whether sqliteConn finds the
// handle of its connection.
func sqliteConnOf(t *testing.T) (db *sql.DB, conn *sql.Conn, ok bool) {
	db, err := openSQLite(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err = db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.Raw(func(dc any) error {
		_, _, ok = sqliteConn(dc)
		return nil
	})
	return db, conn, ok
}

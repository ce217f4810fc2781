package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
)

// query runs q on the database file path and returns its rows as the
// sqlite3 shell prints them, columns joined by "|", but with NULL for null.
func query(t testing.TB, path, q string) []string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	// A file: URI, so that a path with '?' or '#' in it is one too.
	esc := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")
	db, err := sql.Open("sqlite", "file:"+esc.Replace(filepath.ToSlash(abs)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return pgRows(t, db, q)
}

func wantRows(t testing.TB, path, q string, want ...string) {
	t.Helper()
	got := query(t, path, q)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant\n%s", q, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// runOK runs ssink and fails the test unless it exits 0 in silence.
func runOK(t testing.TB, in []byte, args ...string) {
	t.Helper()
	out, errOut, code := run(in, args...)
	if code != 0 || out != "" || errOut != "" {
		t.Fatalf("ssink %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errOut)
	}
}

func TestSQLiteAppend(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	in := stream(t,
		batch{0, t0, []string{`{"word":"a","n":1}`, `{"word":"b","n":2}`}},
		batch{1, t0 + 1000, nil},
		batch{2, t0 + 2000, []string{`{"word":"a","n":3}`}})
	runOK(t, in, "--sqlite", db, "--table", "words", "--batch-field", "batch")
	wantRows(t, db, `SELECT * FROM words ORDER BY rowid`,
		"a|1|1700000000000", "b|2|1700000000000", "a|3|1700000002000")
	// Appended to on the next run, columns read from the table.
	runOK(t, stream(t, batch{0, t0, []string{`{"n":4,"word":"c"}`}}), "--sqlite", db, "--table", "words")
	wantRows(t, db, `SELECT word, n, batch FROM words WHERE n = 4`, "c|4|NULL")
	// The database is in WAL mode, and the journal is gone after a clean exit.
	wantRows(t, db, `PRAGMA journal_mode`, "wal")
	if _, err := os.Stat(db + "-wal"); !os.IsNotExist(err) {
		t.Errorf("%s-wal left behind: %v", db, err)
	}
}

func TestSQLiteComplete(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	in := stream(t,
		batch{0, t0, []string{`{"k":"a","count":1}`, `{"k":"b","count":1}`}},
		batch{1, t0 + 1000, []string{`{"k":"a","count":2}`, `{"k":"b","count":1}`, `{"k":"c","count":1}`}})
	runOK(t, in, "--sqlite", db, "--mode", "complete")
	wantRows(t, db, `SELECT * FROM records ORDER BY k`, "a|2", "b|1", "c|1")
	// An empty batch empties the table, as Spark's complete mode shows an
	// empty result.
	runOK(t, stream(t, batch{0, t0, nil}), "--sqlite", db, "--mode", "complete")
	wantRows(t, db, `SELECT count(*) FROM records`, "0")
}

func TestSQLiteUpdate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	in := stream(t,
		batch{0, t0, []string{`{"k1":"a","k2":1,"n":1}`, `{"k1":"a","k2":2,"n":1}`, `{"k2":1,"n":5}`}},
		batch{1, t0 + 1000, []string{`{"k1":"a","k2":1,"n":2}`, `{"k1":"b","k2":1,"n":1}`, `{"k2":1,"n":6}`}},
		batch{2, t0 + 2000, []string{`{"k1":"a","k2":2,"n":7}`}})
	runOK(t, in, "--sqlite", db, "--mode", "update", "--key", "k1,k2")
	// A null key is a key like any other: its row is updated too.
	wantRows(t, db, `SELECT * FROM records ORDER BY k1, k2`,
		"NULL|1|6", "a|1|2", "a|2|7", "b|1|1")
	wantRows(t, db, `SELECT name FROM sqlite_master WHERE type = 'index'`, "records_k1_k2_key")

	// Keys only: nothing to update, and no row twice.
	db2 := filepath.Join(t.TempDir(), "keys.db")
	runOK(t, stream(t, batch{0, t0, []string{`{"k":"a"}`, `{"k":"a"}`, `{}`, `{}`}}), "--sqlite", db2, "--mode", "update", "-k", "k")
	wantRows(t, db2, `SELECT * FROM records ORDER BY k`, "NULL", "a")

	// A table with several rows of a key cannot take update mode.
	db3 := filepath.Join(t.TempDir(), "dup.db")
	runOK(t, stream(t, batch{0, t0, []string{`{"k":"a"}`, `{"k":"a"}`}}), "--sqlite", db3)
	_, errOut, code := run(stream(t, batch{0, t0, nil}), "--sqlite", db3, "--mode", "update", "--key", "k")
	if code != 1 || !strings.Contains(errOut, "UNIQUE index on k of table \"records\"") || !strings.Contains(errOut, "hint:") {
		t.Errorf("update mode on a table with a key twice: exit %d, %q", code, errOut)
	}
}

func TestSQLiteNewColumns(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	in := stream(t,
		batch{0, t0, []string{`{"a":1}`, `{"a":2,"b":"x"}`, `{"b":"y"}`}},
		batch{1, t0 + 1000, []string{`{"c":1.5,"a":3}`, `{"A":4}`}})
	runOK(t, in, "--sqlite", db)
	wantRows(t, db, `SELECT * FROM records ORDER BY rowid`,
		"1|NULL|NULL", "2|x|NULL", "NULL|y|NULL", "3|NULL|1.5", "4|NULL|NULL")
	wantRows(t, db, `SELECT name, type FROM pragma_table_info('records')`, "a|INTEGER", "b|TEXT", "c|REAL")

	// A table made by someone else: its columns are used, and the ones it
	// lacks added.
	db2 := filepath.Join(t.TempDir(), "made.db")
	mk, err := sql.Open("sqlite", db2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mk.Exec(`CREATE TABLE records (id INTEGER PRIMARY KEY, Name TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	mk.Close()
	runOK(t, stream(t, batch{0, t0, []string{`{"name":"x","extra":true}`}}), "--sqlite", db2)
	wantRows(t, db2, `SELECT * FROM records`, "1|x|1")

	// Two fields that are one column to SQLite, in one record: an error.
	_, errOut, code := run(stream(t, batch{0, t0, []string{`{"a":1,"A":2}`}}), "--sqlite", db)
	if code != 1 || !strings.Contains(errOut, `batch 0, record 1: `+db+`: field "A": the record has a value for column "a" already`) {
		t.Errorf("a and A: exit %d, %q", code, errOut)
	}
}

// everyType is a record with a field of every kind of value, ts its
// timestamp.
func everyType(ts time.Time) string {
	var b record.Builder
	b.Value("i", int64(-7))
	b.Value("big", int64(1)<<62)
	b.Value("f", 2.5)
	b.Value("s", "héllo")
	b.Value("t", true)
	b.Value("no", false)
	b.Raw("bin", record.AppendBinary(nil, []byte{0, 1, 0xff}))
	b.Raw("ts", record.AppendTime(nil, ts))
	b.Value("null", nil)
	b.Value("m", map[string]any{"k": []any{int64(1), "two", nil}})
	b.Value("l", []any{1.5, "x"})
	b.Value("empty", "")
	return string(b.Bytes())
}

func TestSQLiteTypes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	ts := time.Date(2023, 11, 14, 22, 13, 20, 123456789, time.UTC)
	rec := everyType(ts)
	runOK(t, stream(t, batch{0, t0, []string{rec, `{"null":1,"s":2}`}}), "--sqlite", db)
	wantRows(t, db, `SELECT name, type FROM pragma_table_info('records')`,
		"i|INTEGER", "big|INTEGER", "f|REAL", "s|TEXT", "t|INTEGER", "no|INTEGER", "bin|BLOB",
		"ts|TEXT", "null|", "m|TEXT", "l|TEXT", "empty|TEXT")
	wantRows(t, db, `SELECT i, typeof(i), big, f, typeof(f), s, t, no, bin, ts, typeof("null"), m, l, typeof(empty) FROM records WHERE rowid = 1`,
		`-7|integer|4611686018427387904|2.5|real|héllo|1|0|x'0001ff'|2023-11-14T22:13:20.123456789Z|null|{"k":[1,"two",null]}|[1.5,"x"]|text`)
	// Later values of other types: SQLite's type affinity.
	wantRows(t, db, `SELECT s, typeof(s), "null", typeof("null") FROM records WHERE rowid = 2`, "2|text|1|integer")

	// Values SQLite has no type for fail, naming the batch, the record and
	// the field; the batch is rolled back.
	for _, tc := range []struct {
		rec, want string
	}{
		{"\x81\xa1u\xcf\xff\xff\xff\xff\xff\xff\xff\xff", `: field "u": 18446744073709551615: SQLite integers have 64 bits with a sign`},
		{"\x81\xa1e\xd4\x01\x00", `: field "e": a msgpack extension value has no SQLite type`},
		{"\x92\x01\x02", "record: record is not a msgpack map"},
	} {
		db := filepath.Join(t.TempDir(), "bad.db")
		_, errOut, code := run(stream(t, batch{0, t0, []string{`{"u":1,"e":2}`, tc.rec}}), "--sqlite", db)
		if code != 1 || !strings.Contains(errOut, "batch 0, record 2: ") || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want %q", tc.rec, code, errOut, tc.want)
		}
		wantRows(t, db, `SELECT count(*) FROM sqlite_master WHERE name = 'records'`, "0")
	}
}

func TestSQLiteQuoting(t *testing.T) {
	db := filepath.Join(t.TempDir(), "odd ? #name%.db")
	in := stream(t, batch{0, t0, []string{`{"order":1,"a b":"x","say \"hi\"":true,"":"empty","select":null}`}},
		batch{1, t0 + 1000, []string{`{"order":1,"a b":"y","say \"hi\"":false,"":"e","select":2}`}})
	runOK(t, in, "--sqlite", db, "--table", "order", "--mode", "update", "--key", "order,a b")
	wantRows(t, db, `SELECT "order", "a b", "say ""hi""", "", "select" FROM "order" ORDER BY rowid`,
		"1|x|1|empty|NULL", "1|y|0|e|2")
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the database is not at its path: %v", err)
	}
}

// TestSQLiteExactlyOnce runs batches 0-2, then 1-3 again with the same
// checkpoint: batches 1 and 2 are not written twice.
func TestSQLiteExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	db, ck := filepath.Join(dir, "t.db"), filepath.Join(dir, "ck")
	bs := []batch{
		{0, t0, lines("a")},
		{1, t0 + 1000, lines("b", "c")},
		{2, t0 + 2000, lines("d")},
		{3, t0 + 3000, lines("e")},
	}
	runOK(t, stream(t, bs[:3]...), "--sqlite", db, "--checkpoint", ck)
	wantRows(t, db, `SELECT tbl, batch_id, batch_time FROM dstream_commits`, "records|2|1700000002000")
	_, errOut, code := run(stream(t, bs[1:]...), "--sqlite", db, "--checkpoint", ck, "--progress", "-")
	if code != 0 || !strings.Contains(errOut, `"batchId":2,"batchTime":1700000002000,`) ||
		!strings.Contains(errOut, `"numInputRows":1,"numOutputRows":0,`) {
		t.Errorf("second run: exit %d, %s", code, errOut)
	}
	wantRows(t, db, `SELECT value FROM records ORDER BY rowid`, "a", "b", "c", "d", "e")

	// A crash after the database committed batch 4 and before the
	// checkpoint did: the table knows it has the batch, and the batch is
	// committed in the checkpoint without being written again.
	b4 := batch{4, t0 + 4000, lines("f")}
	runOK(t, stream(t, b4), "--sqlite", db, "--checkpoint", ck)
	if err := os.Remove(filepath.Join(ck, "commits", "4")); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(stream(t, b4, batch{5, t0 + 5000, lines("g")}), "--sqlite", db, "--checkpoint", ck, "--progress", "-")
	if code != 0 || !strings.Contains(errOut, `"batchId":4,"batchTime":1700000004000,`) ||
		!strings.Contains(errOut, `"numInputRows":1,"numOutputRows":0,`) {
		t.Errorf("replayed batch 4: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(ck, "commits", "4")); err != nil {
		t.Errorf("batch 4 not committed in the checkpoint: %v", err)
	}
	wantRows(t, db, `SELECT value FROM records ORDER BY rowid`, "a", "b", "c", "d", "e", "f", "g")

	// A table written with another checkpoint: an error, not batches
	// silently skipped.
	_, errOut, code = run(stream(t, bs[0]), "--sqlite", db, "--checkpoint", filepath.Join(dir, "other"))
	if code != 1 || !strings.Contains(errOut, `table "records" is written with another checkpoint than `) ||
		!strings.Contains(errOut, "hint:") {
		t.Errorf("another checkpoint: exit %d, %s", code, errOut)
	}
	// Without --checkpoint, nothing is skipped.
	runOK(t, stream(t, bs[0]), "--sqlite", db)
	wantRows(t, db, `SELECT count(*) FROM records WHERE value = 'a'`, "2")
}

// TestSQLiteRollback: a record that fails in batch 2 leaves batches 0 and
// 1 in the table, and nothing of batch 2.
func TestSQLiteRollback(t *testing.T) {
	dir := t.TempDir()
	db, ck := filepath.Join(dir, "t.db"), filepath.Join(dir, "ck")
	in := stream(t,
		batch{0, t0, lines("a")},
		batch{1, t0 + 1000, lines("b")},
		batch{2, t0 + 2000, []string{`{"value":"c"}`, `{"value":"d","x":1}`, "\xc0"}},
		batch{3, t0 + 3000, lines("e")})
	_, errOut, code := run(in, "--sqlite", db, "--checkpoint", ck)
	if code != 1 || !strings.Contains(errOut, "ssink: error: batch 2, record 3: record: record is not a msgpack map") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	wantRows(t, db, `SELECT value FROM records ORDER BY rowid`, "a", "b")
	// The column x of the failed batch went with it.
	wantRows(t, db, `SELECT name FROM pragma_table_info('records')`, "value")
	wantRows(t, db, `SELECT batch_id FROM dstream_commits`, "1")
	if _, err := os.Stat(filepath.Join(ck, "commits", "2")); !os.IsNotExist(err) {
		t.Errorf("commits/2: %v", err)
	}

	// A value SQLite refuses (a NOT NULL column): the error names the
	// file, the batch and the record.
	mk, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mk.Exec(`CREATE TABLE strict (value TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	mk.Close()
	_, errOut, code = run(stream(t, batch{0, t0, lines("a")}, batch{1, t0 + 1000, []string{`{"value":"b"}`, `{"value":null}`}}),
		"--sqlite", db, "--table", "strict")
	if code != 1 || !strings.Contains(errOut, "ssink: error: batch 1, record 2: "+db+": writing into table \"strict\": ") ||
		!strings.Contains(errOut, "NOT NULL") {
		t.Errorf("NOT NULL: exit %d, %q", code, errOut)
	}
	wantRows(t, db, `SELECT value FROM strict`, "a")
}

// TestSQLiteTruncated: a stream cut inside a batch leaves that batch out.
func TestSQLiteTruncated(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	full := stream(t, batch{0, t0, lines("a", "b")}, batch{1, t0 + 1000, lines("c", "d")})
	first := stream(t, batch{0, t0, lines("a", "b")})
	_, errOut, code := run(full[:len(full)-len(first)/2], "--sqlite", db)
	if code != 1 || !strings.Contains(errOut, "truncated") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	wantRows(t, db, `SELECT value FROM records`, "a", "b")
}

func TestSQLiteUsage(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--sqlite", db, "--mode", "update"}, 2, "ssink: error: --mode update needs --key"},
		{[]string{"--sqlite", db, "--format", "json"}, 2, "ssink: error: --format does not go with --sqlite"},
		{[]string{"--sqlite", db, "--format", "console"}, 2, "ssink: error: --format does not go with --sqlite"},
		{[]string{"--sqlite", db, "--rows", "3"}, 2, "ssink: error: --rows does not go with --sqlite"},
		{[]string{"--sqlite", db, "--no-truncate"}, 2, "ssink: error: --no-truncate does not go with --sqlite"},
		{[]string{"--sqlite", db, "--key", "k"}, 2, "ssink: error: --key applies to --mode update, not append"},
		{[]string{"--sqlite", db, "--mode", "complete", "--key", "k"}, 2, "ssink: error: --key applies to --mode update, not complete"},
		{[]string{"--sqlite", db, "--mode", "overwrite"}, 2, `ssink: error: unknown --mode "overwrite": want append, complete or update`},
		{[]string{"--sqlite", db, "--mode", "update", "--key", "a,b,a"}, 2, `ssink: error: --key names "a" twice`},
		{[]string{"--sqlite", db, "--table", "a b"}, 2, `ssink: error: --table "a b": not an identifier`},
		{[]string{"--sqlite", db, "--table", "2x"}, 2, `ssink: error: --table "2x": not an identifier`},
		{[]string{"--sqlite", db, "--table", "sqlite_x"}, 2, `ssink: error: --table "sqlite_x": names starting with sqlite_ are SQLite's own`},
		{[]string{"--sqlite", db, "--table", "dstream_commits"}, 2, `ssink: error: --table "dstream_commits": ssink keeps its commits there`},
		{[]string{"--sqlite", ""}, 2, "ssink: error: --sqlite needs a database file"},
		{[]string{"--table", "t"}, 2, "ssink: error: --table applies to --sqlite"},
		{[]string{"--mode", "update"}, 2, "ssink: error: --mode applies to --sqlite"},
		{[]string{"--sqlite", db, "--suffix", "x"}, 2, "ssink: error: --suffix applies to --files"},
		{[]string{"--sqlite", filepath.Join(dir, "no", "t.db")}, 1, "ssink: hint: ssink creates the database file, not its directory: " + filepath.Join(dir, "no") + " is not a directory"},
	} {
		out, errOut, code := run(stream(t, batch{0, t0, lines("a")}), tc.args...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
	// A usage error creates nothing.
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("%s after usage errors: %v", db, err)
	}
}

// TestSSinkProcess is ssink, run by TestSQLiteKilled as a process of its own.
func TestSSinkProcess(t *testing.T) {
	if os.Getenv("DSTREAM_SSINK_PROCESS") != "1" {
		return
	}
	args := strings.Split(os.Getenv("DSTREAM_SSINK_ARGS"), "\n")
	os.Exit(command.Run(append([]string{"ssink"}, args...), os.Stdin, os.Stdout, os.Stderr))
}

// TestSQLiteKilled kills ssink (SIGKILL) inside batch 2: batches 0 and 1,
// committed, stay whole, and nothing of batch 2 is in the table. Started
// again, with the batches from 2 on, it writes every batch once.
func TestSQLiteKilled(t *testing.T) {
	dir := t.TempDir()
	db, ck := filepath.Join(dir, "t.db"), filepath.Join(dir, "ck")
	start := func() (*exec.Cmd, *framing.Writer, *bytes.Buffer) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSSinkProcess$")
		cmd.Env = append(os.Environ(), "DSTREAM_SSINK_PROCESS=1", "DSTREAM_SSINK_ARGS=--sqlite\n"+db+"\n--checkpoint\n"+ck)
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, framing.NewWriter(in), &errOut
	}
	write := func(w *framing.Writer, id uint64, n int, end bool) {
		if err := w.BeginBatch(id, t0+int64(id)*1000); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := w.WriteRecord(msgpackOf(t, fmt.Sprintf(`{"batch":%d,"i":%d}`, id, i))); err != nil {
				t.Fatal(err)
			}
		}
		if end {
			if err := w.EndBatch(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	cmd, w, errOut := start()
	write(w, 0, 100, true)
	write(w, 1, 100, true)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(ck, "commits", "1")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("batch 1 not committed after 10s; stderr %q", errOut)
		}
	}
	write(w, 2, 1000, false)
	time.Sleep(100 * time.Millisecond) // for some of it to be in the transaction
	cmd.Process.Kill()
	cmd.Wait()

	wantRows(t, db, `PRAGMA integrity_check`, "ok")
	wantRows(t, db, `SELECT batch, count(*) FROM records GROUP BY batch`, "0|100", "1|100")
	wantRows(t, db, `SELECT batch_id FROM dstream_commits`, "1")

	cmd, w, errOut = start()
	for id := uint64(2); id < 4; id++ {
		write(w, id, 100, true)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("restart: %v, stderr %q", err, errOut)
	}
	wantRows(t, db, `SELECT batch, count(*) FROM records GROUP BY batch`, "0|100", "1|100", "2|100", "3|100")
}

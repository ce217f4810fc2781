package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/internal/pgtest"
)

// pgRows runs q and returns its rows, columns joined by "|", NULL for a
// null, times in RFC 3339 (UTC) and binary as x'hex': for PostgreSQL, and
// for SQLite (query).
func pgRows(t testing.TB, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				cells[i] = "NULL"
			case []byte:
				cells[i] = fmt.Sprintf("x'%x'", v)
			case time.Time:
				cells[i] = v.UTC().Format(time.RFC3339Nano)
			default:
				cells[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(cells, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantPg(t testing.TB, db *sql.DB, q string, want ...string) {
	t.Helper()
	got := pgRows(t, db, q)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant\n%s", q, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// pgColumns is the query of a table's columns and their types.
func pgColumns(table string) string {
	return `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = '` + table + `' ORDER BY ordinal_position`
}

func TestPostgresAppend(t *testing.T) {
	t.Parallel()
	u, db := pgtest.Schema(t)
	in := stream(t,
		batch{0, t0, []string{`{"word":"a","n":1}`, `{"word":"b","n":2}`}},
		batch{1, t0 + 1000, nil},
		batch{2, t0 + 2000, []string{`{"word":"a","n":3}`}})
	runOK(t, in, "--postgres", u, "--table", "words", "--batch-field", "batch")
	wantPg(t, db, `SELECT * FROM words ORDER BY n`,
		"a|1|1700000000000", "b|2|1700000000000", "a|3|1700000002000")
	// Appended to on the next run, columns read from the table.
	runOK(t, stream(t, batch{0, t0, []string{`{"n":4,"word":"c"}`}}), "--postgres", u, "--table", "words")
	wantPg(t, db, `SELECT word, n, batch FROM words WHERE n = 4`, "c|4|NULL")
	wantPg(t, db, pgColumns("words"), "word|text", "n|bigint", "batch|bigint")
}

func TestPostgresComplete(t *testing.T) {
	t.Parallel()
	u, db := pgtest.Schema(t)
	in := stream(t,
		batch{0, t0, []string{`{"k":"a","count":1}`, `{"k":"b","count":1}`}},
		batch{1, t0 + 1000, []string{`{"k":"a","count":2}`, `{"k":"b","count":1}`, `{"k":"c","count":1}`}})
	runOK(t, in, "--postgres", u, "--mode", "complete")
	wantPg(t, db, `SELECT * FROM records ORDER BY k`, "a|2", "b|1", "c|1")
	// An empty batch empties the table.
	runOK(t, stream(t, batch{0, t0, nil}), "--postgres", u, "--mode", "complete")
	wantPg(t, db, `SELECT count(*) FROM records`, "0")
}

func TestPostgresUpdate(t *testing.T) {
	t.Parallel()
	u, db := pgtest.Schema(t)
	in := stream(t,
		batch{0, t0, []string{`{"k1":"a","k2":1,"n":1}`, `{"k1":"a","k2":2,"n":1}`, `{"k2":1,"n":5}`}},
		batch{1, t0 + 1000, []string{`{"k1":"a","k2":1,"n":2}`, `{"k1":"b","k2":1,"n":1}`, `{"k2":1,"n":6}`}},
		batch{2, t0 + 2000, []string{`{"k1":"a","k2":2,"n":7}`}})
	runOK(t, in, "--postgres", u, "--mode", "update", "--key", "k1,k2")
	// A null key is a key like any other: its row is updated too.
	wantPg(t, db, `SELECT * FROM records ORDER BY k1 NULLS FIRST, k2`,
		"NULL|1|6", "a|1|2", "a|2|7", "b|1|1")
	wantPg(t, db, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()`, "records_k1_k2_key")
	// The next run finds the index and the table.
	runOK(t, stream(t, batch{0, t0, []string{`{"k2":1,"n":8,"k1":null}`, `{"k1":"c","k2":3,"n":1}`}}),
		"--postgres", u, "--mode", "update", "--key", "k1,k2")
	wantPg(t, db, `SELECT * FROM records ORDER BY k1 NULLS FIRST, k2`,
		"NULL|1|8", "a|1|2", "a|2|7", "b|1|1", "c|3|1")

	// A key twice in one batch: the last record wins, as row by row (the
	// rows of a batch go in by COPY and one upsert).
	runOK(t, stream(t, batch{0, t0, []string{`{"k1":"d","k2":1,"n":1}`, `{"k1":"d","k2":1,"n":9}`, `{"k1":"d","k2":1,"n":4}`}}),
		"--postgres", u, "--mode", "update", "--key", "k1,k2")
	wantPg(t, db, `SELECT n FROM records WHERE k1 = 'd'`, "4")

	// Keys only: nothing to update, and no row twice; a key field that no
	// record has yet is a TEXT column.
	runOK(t, stream(t, batch{0, t0, []string{`{"k":"a"}`, `{"k":"a"}`, `{}`, `{}`}}), "--postgres", u, "--table", "keys", "--mode", "update", "-k", "k,j")
	wantPg(t, db, `SELECT * FROM keys ORDER BY k NULLS FIRST`, "NULL|NULL", "a|NULL")
	wantPg(t, db, pgColumns("keys"), "k|text", "j|text")

	// A table with several rows of a key cannot take update mode.
	runOK(t, stream(t, batch{0, t0, []string{`{"k":"a"}`, `{"k":"a"}`}}), "--postgres", u, "--table", "dup")
	_, errOut, code := run(stream(t, batch{0, t0, nil}), "--postgres", u, "--table", "dup", "--mode", "update", "--key", "k")
	if code != 1 || !strings.Contains(errOut, "UNIQUE index on k of table \"dup\"") || !strings.Contains(errOut, "hint:") {
		t.Errorf("update mode on a table with a key twice: exit %d, %q", code, errOut)
	}
}

func TestPostgresNewColumns(t *testing.T) {
	t.Parallel()
	u, db := pgtest.Schema(t)
	in := stream(t,
		batch{0, t0, []string{`{"a":1}`, `{"a":2,"b":"x"}`, `{"b":"y"}`}},
		batch{1, t0 + 1000, []string{`{"c":1.5,"a":3}`, `{"A":4}`}})
	runOK(t, in, "--postgres", u)
	// PostgreSQL's quoted names are exact: "A" is a column of its own.
	wantPg(t, db, `SELECT * FROM records ORDER BY coalesce(a, 0), b NULLS FIRST`,
		"NULL|NULL|NULL|4", "NULL|y|NULL|NULL", "1|NULL|NULL|NULL", "2|x|NULL|NULL", "3|NULL|1.5|NULL")
	wantPg(t, db, pgColumns("records"), "a|bigint", "b|text", "c|double precision", "A|bigint")

	// A table made by someone else: its columns are used, and the ones it
	// lacks added. (A column the record lacks is written NULL, not its
	// default.)
	if _, err := db.Exec(`CREATE TABLE made (n INTEGER, name VARCHAR(10) NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	runOK(t, stream(t, batch{0, t0, []string{`{"name":"x","extra":true}`, `{"n":2,"name":"y"}`}}), "--postgres", u, "--table", "made")
	wantPg(t, db, `SELECT * FROM made ORDER BY name`, "NULL|x|true", "2|y|NULL")

	// A field twice in a record: an error.
	_, errOut, code := run(stream(t, batch{0, t0, []string{"\x82\xa1a\x01\xa1a\x02"}}), "--postgres", u)
	if code != 1 || !strings.Contains(errOut, `batch 0, record 1: `+u+`: field "a": the record has it twice`) {
		t.Errorf("a twice: exit %d, %q", code, errOut)
	}
}

func TestPostgresTypes(t *testing.T) {
	t.Parallel()
	u, db := pgtest.Schema(t)
	ts := time.Date(2023, 11, 14, 22, 13, 20, 123456000, time.UTC)
	rec := everyType(ts)
	runOK(t, stream(t, batch{0, t0, []string{rec, `{"null":1,"s":"2","m":"text","l":3,"f":4}`, `{"null":true,"m":{"a":{"b":null}}}`}}), "--postgres", u)
	wantPg(t, db, pgColumns("records"),
		"i|bigint", "big|bigint", "f|double precision", "s|text", "t|boolean", "no|boolean", "bin|bytea",
		"ts|timestamp with time zone", "null|text", "m|jsonb", "l|jsonb", "empty|text")
	wantPg(t, db, `SELECT i, big, f, s, t, no, bin, ts, "null", m::text, l::text, empty = '' FROM records WHERE i IS NOT NULL`,
		`-7|4611686018427387904|2.5|héllo|true|false|x'0001ff'|2023-11-14T22:13:20.123456Z|NULL|{"k": [1, "two", null]}|[1.5, "x"]|true`)
	// Later values of other types: a TEXT column made for a null takes
	// their text, a JSONB column their JSON.
	wantPg(t, db, `SELECT "null", m::text, jsonb_typeof(m), l::text, f FROM records WHERE i IS NULL ORDER BY "null"`,
		`1|"text"|string|3|4`, `true|{"a": {"b": null}}|object|NULL|NULL`)

	// Values PostgreSQL has no type for fail, naming the batch, the record
	// and the field; the batch is rolled back.
	for i, tc := range []struct {
		rec, want string
	}{
		{"\x81\xa1u\xcf\xff\xff\xff\xff\xff\xff\xff\xff", `: field "u": 18446744073709551615: PostgreSQL integers have 64 bits with a sign`},
		{"\x81\xa1e\xd4\x01\x00", `: field "e": a msgpack extension value has no PostgreSQL type`},
		{"\x92\x01\x02", "record: record is not a msgpack map"},
		{`{"u":"x"}`, `writing records 1 to 2 into table "bad3" (COPY): `},
		{"\x81\xa0\x01", `: field "": a PostgreSQL column needs a name`},
	} {
		table := fmt.Sprintf("bad%d", i)
		_, errOut, code := run(stream(t, batch{0, t0, []string{`{"u":1,"e":2}`, tc.rec}}), "--postgres", u, "--table", table)
		if code != 1 || !strings.Contains(errOut, "batch 0") || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want %q", tc.rec, code, errOut, tc.want)
		}
		wantPg(t, db, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '`+table+`'`, "0")
	}
}

func TestPostgresQuoting(t *testing.T) {
	t.Parallel()
	u, db := pgtest.Schema(t)
	in := stream(t, batch{0, t0, []string{`{"order":1,"a b":"x","say \"hi\"":true,"Select":null}`}},
		batch{1, t0 + 1000, []string{`{"order":1,"a b":"y","say \"hi\"":false,"Select":2}`}},
		batch{2, t0 + 2000, []string{`{"order":1,"a b":"x","say \"hi\"":false,"Select":3}`}})
	runOK(t, in, "--postgres", u, "--table", "order", "--mode", "update", "--key", "order,a b")
	wantPg(t, db, `SELECT "order", "a b", "say ""hi""", "Select" FROM "order" ORDER BY "a b"`,
		"1|x|false|3", "1|y|false|2")
	// A table name PostgreSQL would fold, kept as given.
	runOK(t, stream(t, batch{0, t0, lines("a")}), "--postgres", u, "--table", "Words")
	wantPg(t, db, `SELECT value FROM "Words"`, "a")
}

// TestPostgresExactlyOnce runs batches 0-2, then 1-3 again with the same
// checkpoint: batches 1 and 2 are not written twice.
func TestPostgresExactlyOnce(t *testing.T) {
	t.Parallel()
	u, db := pgtest.Schema(t)
	ck := filepath.Join(t.TempDir(), "ck")
	bs := []batch{
		{0, t0, lines("a")},
		{1, t0 + 1000, lines("b", "c")},
		{2, t0 + 2000, lines("d")},
		{3, t0 + 3000, lines("e")},
	}
	runOK(t, stream(t, bs[:3]...), "--postgres", u, "--checkpoint", ck, "--batch-field", "b")
	wantPg(t, db, `SELECT tbl, batch_id, batch_time FROM dstream_commits`, "records|2|1700000002000")
	_, errOut, code := run(stream(t, bs[1:]...), "--postgres", u, "--checkpoint", ck, "--batch-field", "b", "--progress", "-")
	if code != 0 || !strings.Contains(errOut, `"batchId":2,"batchTime":1700000002000,`) ||
		!strings.Contains(errOut, `"numInputRows":1,"numOutputRows":0,`) {
		t.Errorf("second run: exit %d, %s", code, errOut)
	}
	wantPg(t, db, `SELECT value FROM records ORDER BY b, value`, "a", "b", "c", "d", "e")

	// A crash after the database committed batch 4 and before the
	// checkpoint did: the batch is committed in the checkpoint without
	// being written again.
	b4 := batch{4, t0 + 4000, lines("f")}
	runOK(t, stream(t, b4), "--postgres", u, "--checkpoint", ck, "--batch-field", "b")
	if err := os.Remove(filepath.Join(ck, "commits", "4")); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(stream(t, b4, batch{5, t0 + 5000, lines("g")}), "--postgres", u, "--checkpoint", ck, "--batch-field", "b", "--progress", "-")
	if code != 0 || !strings.Contains(errOut, `"batchId":4,"batchTime":1700000004000,`) ||
		!strings.Contains(errOut, `"numInputRows":1,"numOutputRows":0,`) {
		t.Errorf("replayed batch 4: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(ck, "commits", "4")); err != nil {
		t.Errorf("batch 4 not committed in the checkpoint: %v", err)
	}
	wantPg(t, db, `SELECT value FROM records ORDER BY b, value`, "a", "b", "c", "d", "e", "f", "g")

	// A table written with another checkpoint: an error, not batches
	// silently skipped.
	_, errOut, code = run(stream(t, bs[0]), "--postgres", u, "--checkpoint", filepath.Join(t.TempDir(), "other"))
	if code != 1 || !strings.Contains(errOut, u+`: table "records" is written with another checkpoint than `) ||
		!strings.Contains(errOut, "hint:") {
		t.Errorf("another checkpoint: exit %d, %s", code, errOut)
	}
	// Without --checkpoint, nothing is skipped.
	runOK(t, stream(t, bs[0]), "--postgres", u)
	wantPg(t, db, `SELECT count(*) FROM records WHERE value = 'a'`, "2")
}

// TestPostgresRollback: a record that fails in batch 2 leaves batches 0
// and 1 in the table, and nothing of batch 2, not even its new column.
func TestPostgresRollback(t *testing.T) {
	t.Parallel()
	u, db := pgtest.Schema(t)
	ck := filepath.Join(t.TempDir(), "ck")
	in := stream(t,
		batch{0, t0, lines("a")},
		batch{1, t0 + 1000, lines("b")},
		batch{2, t0 + 2000, []string{`{"value":"c"}`, `{"value":"d","x":1}`, "\xc0"}},
		batch{3, t0 + 3000, lines("e")})
	_, errOut, code := run(in, "--postgres", u, "--checkpoint", ck)
	if code != 1 || !strings.Contains(errOut, "ssink: error: batch 2, record 3: record: record is not a msgpack map") {
		t.Errorf("exit %d, %q", code, errOut)
	}
	wantPg(t, db, `SELECT value FROM records ORDER BY value`, "a", "b")
	wantPg(t, db, pgColumns("records"), "value|text")
	wantPg(t, db, `SELECT batch_id FROM dstream_commits`, "1")
	if _, err := os.Stat(filepath.Join(ck, "commits", "2")); !os.IsNotExist(err) {
		t.Errorf("commits/2: %v", err)
	}

	// A value PostgreSQL refuses (a NOT NULL column): the error names the
	// database, the batch and the records COPY took together.
	if _, err := db.Exec(`CREATE TABLE strict (value TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(stream(t, batch{0, t0, lines("a")}, batch{1, t0 + 1000, []string{`{"value":"b"}`, `{"value":null}`}}),
		"--postgres", u, "--table", "strict")
	if code != 1 || !strings.Contains(errOut, "ssink: error: batch 1: "+u+": writing records 1 to 2 into table \"strict\" (COPY): ") ||
		!strings.Contains(errOut, "not-null constraint") {
		t.Errorf("NOT NULL: exit %d, %q", code, errOut)
	}
	wantPg(t, db, `SELECT value FROM strict`, "a")
}

// TestPostgresUsage needs no server: usage errors come first, and a server
// that is not there is an error at start-up.
func TestPostgresUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u := "postgres://127.0.0.1:5432/test"
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--postgres", u, "--sqlite", filepath.Join(dir, "t.db")}, 2, "ssink: error: --postgres does not go with --sqlite"},
		{[]string{"--postgres", u, "--format", "json"}, 2, "ssink: error: --format does not go with --postgres"},
		{[]string{"--postgres", u, "--rows", "3"}, 2, "ssink: error: --rows does not go with --postgres"},
		{[]string{"--postgres", u, "--no-truncate"}, 2, "ssink: error: --no-truncate does not go with --postgres"},
		{[]string{"--postgres", u, "--files", filepath.Join(dir, "f")}, 2, "ssink: error: --postgres does not go with --files, --exec, --post, --kafka, --nats or --amqp"},
		{[]string{"--postgres", u, "--exec", "cat"}, 2, "ssink: error: --postgres does not go with --files, --exec, --post, --kafka, --nats or --amqp"},
		{[]string{"--postgres", u, "--post", "http://127.0.0.1:1/"}, 2, "ssink: error: --postgres does not go with --files, --exec, --post, --kafka, --nats or --amqp"},
		{[]string{"--postgres", u, "--mode", "update"}, 2, "ssink: error: --mode update needs --key"},
		{[]string{"--postgres", u, "--key", "k"}, 2, "ssink: error: --key applies to --mode update, not append"},
		{[]string{"--postgres", u, "--table", "pg_x"}, 2, `ssink: error: --table "pg_x": names starting with pg_ are PostgreSQL's own`},
		{[]string{"--postgres", u, "--table", "dstream_commits"}, 2, `ssink: error: --table "dstream_commits": ssink keeps its commits there`},
		{[]string{"--postgres", u, "--table", strings.Repeat("t", 64)}, 2, `PostgreSQL names have at most 63 bytes`},
		{[]string{"--postgres", ""}, 2, "ssink: error: --postgres needs a URL: postgres://"},
		{[]string{"--postgres", "test.db"}, 2, "ssink: error: --postgres: want a URL postgres://"},
		// Nothing listens on port 1: exit 1, one line naming the URL
		// (without its password) and the dial error once, and a hint.
		{[]string{"--postgres", "postgres://me:secret@127.0.0.1:1/test"}, 1,
			"ssink: error: postgres://me@127.0.0.1:1/test: cannot connect to PostgreSQL: dial tcp 127.0.0.1:1: connect: connection refused\n" +
				"ssink: hint: is a PostgreSQL server running and listening at 127.0.0.1:1? Check the URL's host and port\n"},
	} {
		out, errOut, code := run(stream(t, batch{0, t0, lines("a")}), tc.args...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "secret") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "t.db")); !os.IsNotExist(err) {
		t.Errorf("t.db after usage errors: %v", err)
	}
}

package duckdbcheck

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// stages builds sbatch, smap and ssink into a directory of the test's.
func stages(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin, "github.com/dstream/dstream/cmd/sbatch", "github.com/dstream/dstream/cmd/smap", "github.com/dstream/dstream/cmd/ssink")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stages: %v\n%s", err, out)
	}
	return bin
}

// pipeline runs a shell pipeline of the stages in dir.
func pipeline(t *testing.T, bin, dir, script string) string {
	t.Helper()
	cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	return string(out)
}

// input holds every type a column takes, nulls and missing fields, and
// a column whose type changes (n: ints and floats, a DOUBLE column).
const input = `{"i":1,"n":1,"f":0.25,"s":"plain","b":true,"m":{"k":[1,"x"]},"ts":"2026-12-06T09:30:01.123456789Z","z":null}
{"i":-9007199254740993,"n":2.5,"f":-1e300,"s":"ünïcödé \"quoted\"\n","b":false,"m":[1,2.5,null],"ts":"1970-01-01T00:00:00Z"}
{"i":9223372036854775807,"s":"","ts":"2261-12-31T23:59:59Z"}
`

// duckRows reads a Parquet file through DuckDB: each row as JSON (times
// in RFC 3339), and the columns' names and types.
func duckRows(t *testing.T, db *sql.DB, file string) ([]string, string) {
	t.Helper()
	// The types as DuckDB reads them; a column the Go driver cannot scan
	// (TIMESTAMPTZ_NS) is selected as its nanoseconds.
	d, err := db.Query(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))`, file)
	if err != nil {
		t.Fatal(err)
	}
	var desc, sel []string
	var kinds []string
	for d.Next() {
		var name, typ string
		if err := d.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		desc = append(desc, name+" "+typ)
		q := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		if strings.HasPrefix(typ, "TIMESTAMP") {
			q, typ = "epoch_ns("+q+") AS "+q, "EPOCH_NS"
		}
		sel = append(sel, q)
		kinds = append(kinds, typ)
	}
	d.Close()
	rows, err := db.Query(`SELECT `+strings.Join(sel, ", ")+` FROM read_parquet(?)`, file)
	if err != nil {
		t.Fatal(err)
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
		var b strings.Builder
		b.WriteByte('{')
		first := true
		for i, v := range vals {
			if v == nil {
				continue // a null reads back missing in sbatch
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			k, _ := json.Marshal(cols[i])
			b.Write(k)
			b.WriteByte(':')
			b.WriteString(duckJSON(t, v, kinds[i]))
		}
		b.WriteByte('}')
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, strings.Join(desc, ", ")
}

// duckJSON writes a value DuckDB returned as dstream writes it in JSON.
func duckJSON(t *testing.T, v any, typ string) string {
	switch x := v.(type) {
	case time.Time:
		return `"` + x.UTC().Format(time.RFC3339Nano) + `"`
	case string:
		if typ == "JSON" {
			return x // the JSON text, as written
		}
	case int64:
		if typ == "EPOCH_NS" {
			return `"` + time.Unix(0, x).UTC().Format(time.RFC3339Nano) + `"`
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T %v: %v", v, v, err)
	}
	return string(b)
}

// canonical makes JSON lines comparable: each re-encoded with its keys
// sorted and its numbers as float64 text (DuckDB and dstream may order
// and format them differently).
func canonical(t *testing.T, lines []string) []string {
	var out []string
	for _, l := range lines {
		var v any
		d := json.NewDecoder(strings.NewReader(l))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		b, _ := json.Marshal(normalize(v))
		out = append(out, string(b))
	}
	return out
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	case json.Number:
		return x.String()
	}
	return v
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

// A file ssink --files --format parquet writes reads back equal through
// sbatch --format parquet and through DuckDB, which also types its columns
// as the writer says.
func TestSsinkParquetReadByDuckDB(t *testing.T) {
	bin, dir := stages(t), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.json"), []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	pipeline(t, bin, dir, `sbatch --once --format json in.json | smap --set 'ts=toTime(ts)' | ssink --files out/p --format parquet`)
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*.parquet"))
	if len(files) != 1 {
		t.Fatalf("files %v, want one", files)
	}
	want := `{"i":1,"n":1,"f":0.25,"s":"plain","b":true,"m":{"k":[1,"x"]},"ts":"2026-12-06T09:30:01.123456789Z"}
{"i":-9007199254740993,"n":2.5,"f":-1e+300,"s":"ünïcödé \"quoted\"\n","b":false,"m":[1,2.5,null],"ts":"1970-01-01T00:00:00Z"}
{"i":9223372036854775807,"s":"","ts":"2261-12-31T23:59:59Z"}`
	got := pipeline(t, bin, dir, `sbatch --once --format parquet `+files[0]+` | ssink --format json`)
	if strings.TrimSpace(got) != want {
		t.Errorf("sbatch read back\n%s\nwant\n%s", got, want)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	duck, types := duckRows(t, db, files[0])
	if want := "i BIGINT, n DOUBLE, f DOUBLE, s VARCHAR, b BOOLEAN, m JSON, ts TIMESTAMPTZ_NS, z VARCHAR"; types != want {
		t.Errorf("DuckDB's types\n%s\nwant\n%s", types, want)
	}
	if g, w := canonical(t, duck), canonical(t, lines(got)); !reflect.DeepEqual(g, w) {
		t.Errorf("DuckDB read\n%s\nsbatch read\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// A file DuckDB writes, with types ssink does not write (INT32, FLOAT,
// DATE, DECIMAL, timestamps in microseconds, UUID, unsigned), reads in
// sbatch with its values.
func TestSbatchReadsDuckDBParquet(t *testing.T) {
	bin, dir := stages(t), t.TempDir()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	file := filepath.Join(dir, "duck.parquet")
	_, err = db.Exec(fmt.Sprintf(`COPY (SELECT * FROM (VALUES
		(1::INTEGER, 1.5::FLOAT, DATE '2024-05-01', 12.34::DECIMAL(10,2), TIMESTAMP '2024-05-01 12:34:56.789012', 'x', '00112233-4455-6677-8899-aabbccddeeff'::UUID, 18446744073709551615::UBIGINT, 7::SMALLINT),
		(NULL, -2.0::FLOAT, DATE '1969-12-31', -0.5::DECIMAL(10,2), NULL, NULL, NULL, 0::UBIGINT, NULL)
	) t(i32, f32, d, dec, ts, s, u, big, small)) TO '%s' (FORMAT parquet)`, file))
	if err != nil {
		t.Fatal(err)
	}
	got := pipeline(t, bin, dir, `sbatch --once --format parquet duck.parquet | smap '{"i32": type(i32), "f32": type(f32), "d": type(d), "big": type(big)}' | ssink --format json`)
	wantTypes := "{\"i32\":\"int\",\"f32\":\"float\",\"d\":\"time.Time\",\"big\":\"uint\"}\n"
	if first := lines(got)[0] + "\n"; first != wantTypes {
		t.Errorf("types %s, want %s", first, wantTypes)
	}
	got = pipeline(t, bin, dir, `sbatch --once --format parquet duck.parquet | ssink --format json`)
	want := `{"i32":1,"f32":1.5,"d":"2024-05-01T00:00:00Z","dec":12.34,"ts":"2024-05-01T12:34:56.789012Z","s":"x","u":"00112233-4455-6677-8899-aabbccddeeff","big":18446744073709551615,"small":7}
{"f32":-2,"d":"1969-12-31T00:00:00Z","dec":-0.5,"big":0}`
	if strings.TrimSpace(got) != want {
		t.Errorf("sbatch read\n%s\nwant\n%s", got, want)
	}
}

// Nested columns as DuckDB (and Spark) write them, STRUCT, LIST and MAP,
// read as maps and arrays.
func TestSbatchReadsDuckDBNestedParquet(t *testing.T) {
	bin, dir := stages(t), t.TempDir()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	file := filepath.Join(dir, "nested.parquet")
	_, err = db.Exec(fmt.Sprintf(`COPY (SELECT * FROM (VALUES
		(1, {'a': 1, 'b': 'x'}, [1, 2, NULL], MAP {'k': 1.5, 'j': 2.5}, [{'c': DATE '2024-05-01'}], [[1], []]),
		(2, NULL, [], NULL, NULL, NULL)
	) t(id, s, l, m, ls, ll)) TO '%s' (FORMAT parquet)`, file))
	if err != nil {
		t.Fatal(err)
	}
	got := pipeline(t, bin, dir, `sbatch --once --format parquet nested.parquet | ssink --format json`)
	want := `{"id":1,"s":{"a":1,"b":"x"},"l":[1,2,null],"m":{"j":2.5,"k":1.5},"ls":[{"c":"2024-05-01T00:00:00Z"}],"ll":[[1],[]]}
{"id":2,"l":[]}`
	if strings.TrimSpace(got) != want {
		t.Errorf("sbatch read\n%s\nwant\n%s", got, want)
	}
}

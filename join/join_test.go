package join

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/internal/pgtest"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

func TestKeys(t *testing.T) {
	// raw msgpack of a few values beyond JSON's
	f32 := []byte{0xca, 0x3f, 0x80, 0, 0} // float32 1.0
	i8 := []byte{0xd0, 0x05}              // int8 5
	u64 := []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	str8 := append([]byte{0xd9, 3}, "abc"...)         // "abc" as str8
	ts4 := []byte{0xd6, 0xff, 0, 0, 0, 1}             // 1970-01-01T00:00:01Z, 4 bytes
	ts8 := []byte{0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1} // the same, 8 bytes
	v := func(js string) []byte {
		b, err := record.AppendJSONValue(nil, []byte(js))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	equal := [][2][]byte{
		{v(`1`), v(`1.0`)},
		{v(`1`), f32},
		{v(`42`), v(`"42"`)},
		{v(`-7`), v(`"-7"`)},
		{v(`5`), i8},
		{v(`1e3`), v(`1000`)},
		{v(`"abc"`), str8},
		{ts4, ts8},
		{v(`9223372036854775807`), v(`"9223372036854775807"`)},
		{u64, u64},
		{v(`true`), v(`true`)},
		{v(`[1,"a"]`), v(`[1,"a"]`)},
	}
	for _, p := range equal {
		a, oka := appendKey(nil, p[0])
		b, okb := appendKey(nil, p[1])
		if !oka || !okb || !bytes.Equal(a, b) {
			t.Errorf("%x and %x: keys %x and %x, want equal", p[0], p[1], a, b)
		}
	}
	differ := [][2][]byte{
		{v(`1`), v(`1.5`)},
		{v(`7`), v(`"007"`)},
		{v(`"7"`), v(`"007"`)},
		{v(`0`), v(`"-0"`)},
		{v(`1.5`), v(`"1.5"`)}, // only integers are read from text
		{v(`1`), v(`true`)},
		{v(`"a"`), v(`"A"`)},
		{v(`""`), v(`0`)},
		{v(`"1"`), v(`" 1"`)},
		{v(`"+1"`), v(`1`)},
	}
	for _, p := range differ {
		a, _ := appendKey(nil, p[0])
		b, _ := appendKey(nil, p[1])
		if bytes.Equal(a, b) {
			t.Errorf("%x and %x: the same key %x, want different", p[0], p[1], a)
		}
	}
	for _, raw := range [][]byte{nil, v(`null`)} {
		if _, ok := appendKey(nil, raw); ok {
			t.Errorf("%x: a key, want none (null matches nothing)", raw)
		}
	}
}

func buildTable(t *testing.T, on []string, raw bool, rows ...string) *Table {
	t.Helper()
	b := newBuilder(on, raw)
	for _, r := range rows {
		if err := b.add(frametest.Record(t, r)); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	return b.finish()
}

// rowsOf renders the rows of a group as JSON, raw keys first when kept.
func rowsOf(t *testing.T, g Group) string {
	var out []string
	for raw, body, ok := g.Next(); ok; raw, body, ok = g.Next() {
		js, _, err := record.AppendJSON(nil, body)
		if err != nil {
			t.Fatal(err)
		}
		if raw != nil {
			rj, _, _ := record.AppendJSON(nil, append([]byte{0x91}, raw...)) // one key: an array of it
			js = append(append(rj, ' '), js...)
		}
		out = append(out, string(js))
	}
	return strings.Join(out, " ")
}

func key(t *testing.T, js ...string) []byte {
	var k []byte
	for _, j := range js {
		raw, err := record.AppendJSONValue(nil, []byte(j))
		if err != nil {
			t.Fatal(err)
		}
		k, _ = appendKey(k, raw)
	}
	return k
}

func TestTable(t *testing.T) {
	tab := buildTable(t, []string{"id"}, false,
		`{"id":1,"a":"x"}`, `{"id":"2","a":"y","b":true}`, `{"id":1,"a":"z"}`, `{"a":"no key"}`, `{"id":null}`, `{"b":1,"id":3}`)
	if tab.Len() != 4 || tab.Keys() != 3 || tab.NullKeys() != 2 {
		t.Errorf("%d rows, %d keys, %d null; want 4, 3, 2", tab.Len(), tab.Keys(), tab.NullKeys())
	}
	for _, c := range []struct{ key, want string }{
		{"1", `{"a":"x"} {"a":"z"}`}, // in the order of the rows
		{`"1"`, `{"a":"x"} {"a":"z"}`},
		{"2", `{"a":"y","b":true}`},
		{"3", `{"b":1}`},
		{"4", ``},
	} {
		if got := rowsOf(t, tab.Lookup(key(t, c.key))); got != c.want {
			t.Errorf("rows of %s: %s, want %s", c.key, got, c.want)
		}
	}
	if got := strings.Join(tab.Columns(), ","); got != "id,a,b" {
		t.Errorf("columns %s", got)
	}
	js, _, _ := record.AppendJSON(nil, tab.rest.null())
	if string(js) != `{"a":null,"b":null}` {
		t.Errorf("null body %s", js)
	}
	var each []string
	tab.Each(func(k []byte, g Group) { each = append(each, rowsOf(t, g)) })
	if got := strings.Join(each, " | "); got != `{"a":"x"} {"a":"z"} | {"a":"y","b":true} | {"b":1}` {
		t.Errorf("Each: %s", got)
	}
	// Raw keys kept: as they came.
	tab = buildTable(t, []string{"id"}, true, `{"id":"1","a":1}`, `{"a":2,"id":1}`)
	if got := rowsOf(t, tab.Lookup(key(t, "1"))); got != `["1"] {"a":1} [1] {"a":2}` {
		t.Errorf("raw keys: %s", got)
	}
	// Two key fields; a long row (a length of two bytes).
	long := strings.Repeat("x", 300)
	tab = buildTable(t, []string{"a", "b"}, true, `{"a":1,"b":"x","v":"`+long+`"}`, `{"b":"x","a":1,"v":2}`, `{"a":1,"b":"y"}`)
	if got := rowsOf(t, tab.Lookup(key(t, "1", `"x"`))); got != `[1] {"v":"`+long+`"} [1] {"v":2}` {
		t.Errorf("two keys: %s", got)
	}
}

// TestTableMany checks the index over many keys of several rows each.
func TestTableMany(t *testing.T) {
	b := newBuilder([]string{"k"}, false)
	const keys = 5000
	for i := range 3 * keys {
		rec := record.AppendMapHeader(nil, 2)
		rec = record.AppendInt(record.AppendString(rec, "k"), int64(i%keys))
		rec = record.AppendInt(record.AppendString(rec, "i"), int64(i))
		if err := b.add(rec); err != nil {
			t.Fatal(err)
		}
	}
	tab := b.finish()
	for k := range keys {
		g := tab.Lookup(record.AppendInt(nil, int64(k)))
		var got []int64
		for _, body, ok := g.Next(); ok; _, body, ok = g.Next() {
			v, _, _ := record.Get(body, "i")
			i, _ := record.Int(v)
			got = append(got, i)
		}
		if len(got) != 3 || got[0] != int64(k) || got[1] != int64(k+keys) || got[2] != int64(k+2*keys) {
			t.Fatalf("key %d: rows %v", k, got)
		}
	}
}

// runStatic runs the static join over the batches and returns its output
// rendered, and its notes.
func runStatic(t *testing.T, o Options, src *Source, bs []frametest.Batch, between func(i int)) (string, string) {
	t.Helper()
	var out, notes bytes.Buffer
	w := framing.NewWriter(&out)
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	s, err := NewStatic(o, src, w, nil, &notes)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := framing.NewReader(bytes.NewReader(frametest.Stream(t, bs)))
	var f framing.Frame
	var cur stage.Batch
	i := 0
	for {
		if err := r.Read(&f); err != nil {
			break
		}
		switch f.Kind {
		case framing.KindBatchBegin:
			if between != nil {
				between(i)
			}
			i++
			cur = stage.Batch{ID: f.BatchID, Time: f.Time}
			err = s.Begin(cur)
		case framing.KindRecords:
			err = s.Block(cur, f.Records())
		case framing.KindBatchEnd:
			err = s.End(cur)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return frametest.Render(t, out.Bytes()), notes.String()
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStatic(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.csv")
	writeFile(t, users, "id,name,city\n1,ann,paris\n2,bob,rome\n2,bo2,milan\n")
	bs := []frametest.Batch{
		{ID: 0, Time: 1000, Recs: []string{`{"id":1,"v":1}`, `{"v":2,"id":2,"name":"x"}`, `{"id":3}`, `{"v":4}`}},
		{ID: 1, Time: 2000},
	}
	for _, c := range []struct {
		how  How
		want string
	}{
		{Inner, `0@1000: {"id":1,"v":1,"name":"ann","city":"paris"} {"id":2,"v":2,"name":"x","right_name":"bob","city":"rome"} {"id":2,"v":2,"name":"x","right_name":"bo2","city":"milan"}
1@2000:
`},
		{Left, `0@1000: {"id":1,"v":1,"name":"ann","city":"paris"} {"id":2,"v":2,"name":"x","right_name":"bob","city":"rome"} {"id":2,"v":2,"name":"x","right_name":"bo2","city":"milan"} {"id":3,"name":null,"city":null} {"id":null,"v":4,"name":null,"city":null}
1@2000:
`},
	} {
		src, _ := ParseSource(users, "")
		got, _ := runStatic(t, Options{On: []string{"id"}, How: c.how}, src, bs, nil)
		if got != c.want {
			t.Errorf("%v:\n%s\nwant\n%s", c.how, got, c.want)
		}
	}
}

// A renamed field whose new name is taken too is renamed again.
func TestStaticRename(t *testing.T) {
	dir := t.TempDir()
	tab := filepath.Join(dir, "t.jsonl")
	writeFile(t, tab, `{"k":1,"a":"A","b":"B","r_a":"RA"}`+"\n")
	src, _ := ParseSource(tab, "")
	got, _ := runStatic(t, Options{On: []string{"k"}, Prefix: "r_"}, src,
		[]frametest.Batch{{ID: 0, Time: 1000, Recs: []string{`{"a":1,"k":1,"r_a":2}`, `{"k":1,"c":3}`}}}, nil)
	want := `0@1000: {"k":1,"a":1,"r_a":2,"r_r_a":"A","b":"B","r_r_r_a":"RA"} {"k":1,"c":3,"a":"A","b":"B","r_a":"RA"}` + "\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestStaticMultiKey(t *testing.T) {
	dir := t.TempDir()
	tab := filepath.Join(dir, "t.tsv")
	writeFile(t, tab, "region\tday\ttarget\neu\t1\t10\nus\t1\t20\neu\t2\t30\n")
	src, _ := ParseSource(tab, "")
	got, _ := runStatic(t, Options{On: []string{"region", "day"}, How: Left}, src,
		[]frametest.Batch{{ID: 0, Time: 1000, Recs: []string{`{"day":2,"region":"eu","n":5}`, `{"region":"us","day":2}`}}}, nil)
	want := `0@1000: {"region":"eu","day":2,"n":5,"target":"30"} {"region":"us","day":2,"target":null}` + "\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// The table is read again before a batch when it changed; a table that
// cannot be read again is noted once, and the one before kept.
func TestStaticReload(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	writeFile(t, users, `{"id":1,"name":"ann"}`+"\n")
	src, _ := ParseSource(users, "")
	var bs []frametest.Batch
	for i := range 5 {
		bs = append(bs, frametest.Batch{ID: uint64(i), Time: int64(i+1) * 1000, Recs: []string{`{"id":1}`}})
	}
	past := time.Now().Add(-time.Hour)
	os.Chtimes(users, past, past)
	got, notes := runStatic(t, Options{On: []string{"id"}, How: Left}, src, bs, func(i int) {
		switch i {
		case 1: // replaced whole
			tmp := filepath.Join(dir, "new")
			writeFile(t, tmp, `{"id":1,"name":"ann2"}`+"\n")
			os.Rename(tmp, users)
		case 2: // broken: kept as it was
			writeFile(t, users, `{"id":1,"name":`+"\n")
		case 3: // no key column
			writeFile(t, users, `{"user":1,"name":"x"}`+"\n")
		case 4:
			writeFile(t, users, `{"id":1,"name":"ann3"}`+"\n")
		}
	})
	want := `0@1000: {"id":1,"name":"ann"}
1@2000: {"id":1,"name":"ann2"}
2@3000: {"id":1,"name":"ann2"}
3@4000: {"id":1,"name":"ann2"}
4@5000: {"id":1,"name":"ann3"}
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	lines := strings.Split(strings.TrimSpace(notes), "\n")
	for i, w := range []string{
		"sjoin: note: " + users + " loaded again before batch 1: 1 rows, 1 keys, in ",
		"sjoin: note: " + users + ": line 1: bad JSON: ",
		"sjoin: note: " + users + ` has no column "id"; batch 3 and the next batches are joined with the table loaded at `,
		"sjoin: note: " + users + " loaded again before batch 4: ",
	} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], w) {
			t.Errorf("note %d: want %q in\n%s", i, w, notes)
		}
	}
	if len(lines) != 4 {
		t.Errorf("%d notes, want 4:\n%s", len(lines), notes)
	}
}

func TestStaticStartErrors(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.csv")
	writeFile(t, users, "id,name\n1,ann\n")
	empty := filepath.Join(dir, "empty.csv")
	writeFile(t, empty, "id,name\n")
	for _, c := range []struct {
		table, format string
		on            []string
		how           How
		want          string
	}{
		{users, "", []string{"user_id"}, Inner, users + ` has no column "user_id"`},
		{empty, "", []string{"user_id"}, Inner, empty + ` has no column "user_id"`},
		{filepath.Join(dir, "none.csv"), "", []string{"id"}, Inner, "no such file"},
		{dir, "csv", []string{"id"}, Inner, "is a directory"},
		{users, "json", []string{"id"}, Inner, "line 1: bad JSON"},
		{users, "", []string{"id"}, Right, "--how right with --table"},
		{"sqlite:" + filepath.Join(dir, "none.db") + ":t", "", []string{"id"}, Inner, "no such file"},
	} {
		src, err := ParseSource(c.table, c.format)
		if err == nil {
			_, err = NewStatic(Options{On: c.on, How: c.how, Prefix: "r_"}, src, framing.NewWriter(&bytes.Buffer{}), nil, nil)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want an error with %q", c.table, c.on, err, c.want)
		}
	}
}

func TestParseSource(t *testing.T) {
	for _, c := range []struct{ spec, format, want string }{
		{"a.csv", "", "a.csv csv"},
		{"a.TSV", "", "a.TSV tsv"},
		{"a.jsonl", "", "a.jsonl json"},
		{"a.txt", "ndjson", "a.txt json"},
		{"a.mpk", "", "a.mpk msgpack"},
		{"sqlite:x.db:users", "", "table users of x.db"},
		{"sqlite:c:/x.db:users", "", "table users of c:/x.db"},
		{"postgres://u:secret@h/db?table=s.users&sslmode=disable", "", "table s.users of postgres://u:xxxxx@h/db?sslmode=disable"},
	} {
		s, err := ParseSource(c.spec, c.format)
		got := ""
		if err == nil {
			got = s.String()
			if s.kind == kindFile {
				got += " " + s.format
			}
		}
		if got != c.want {
			t.Errorf("%s %s: %q, %v; want %q", c.spec, c.format, got, err, c.want)
		}
	}
	for _, c := range []struct{ spec, format, want string }{
		{"a.txt", "", "cannot tell its format"},
		{"a.csv", "xml", `--table-format "xml"`},
		{"sqlite:x.db", "", "want sqlite:FILE:TABLE"},
		{"postgres://u:secret@h/db", "", "name the table: ?table=TABLE"},
		{"sqlite:x.db:t", "csv", "--table-format applies to a file"},
	} {
		_, err := ParseSource(c.spec, c.format)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v, want a usage error with %q", c.spec, err, c.want)
		}
	}
}

// A SQLite table is read again when another connection commits to its
// database.
func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE users (id INTEGER, name TEXT, score REAL, photo BLOB, seen INTEGER)`,
		`INSERT INTO users VALUES (1, 'ann', 1.5, x'0102', NULL), (2, 'bob', NULL, NULL, 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	src, err := ParseSource("sqlite:"+path+":users", "")
	if err != nil {
		t.Fatal(err)
	}
	bs := []frametest.Batch{
		{ID: 0, Time: 1000, Recs: []string{`{"id":"1"}`, `{"id":2}`}},
		{ID: 1, Time: 2000, Recs: []string{`{"id":3}`}},
		{ID: 2, Time: 3000, Recs: []string{`{"id":3}`}},
	}
	got, notes := runStatic(t, Options{On: []string{"id"}, How: Left}, src, bs, func(i int) {
		if i == 2 {
			if _, err := db.Exec(`INSERT INTO users (id, name) VALUES (3, 'cid')`); err != nil {
				t.Fatal(err)
			}
		}
	})
	want := `0@1000: {"id":"1","name":"ann","score":1.5,"photo":"AQI=","seen":null} {"id":2,"name":"bob","score":null,"photo":null,"seen":1}
1@2000: {"id":3,"name":null,"score":null,"photo":null,"seen":null}
2@3000: {"id":3,"name":"cid","score":null,"photo":null,"seen":null}
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(notes, "table users of "+path+" loaded again before batch 2: 3 rows") {
		t.Errorf("notes: %s", notes)
	}
	src, _ = ParseSource("sqlite:"+path+":nope", "")
	if _, err := src.Load([]string{"id"}); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("a table that is not there: %v", err)
	}
}

func TestPostgres(t *testing.T) {
	url, db := pgtest.Schema(t)
	for _, q := range []string{
		`CREATE TABLE users (id BIGINT, name TEXT, born TIMESTAMPTZ, ok BOOLEAN)`,
		`INSERT INTO users VALUES (1, 'ann', '2026-01-02T03:04:05Z', true), (2, NULL, NULL, NULL)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	src, err := ParseSource(url+sep+"table=users", "")
	if err != nil {
		t.Fatal(err)
	}
	src.Reload = time.Nanosecond // every batch
	bs := []frametest.Batch{
		{ID: 0, Time: 1000, Recs: []string{`{"id":1}`, `{"id":"2"}`, `{"id":3}`}},
		{ID: 1, Time: 2000, Recs: []string{`{"id":3}`}},
	}
	got, _ := runStatic(t, Options{On: []string{"id"}}, src, bs, func(i int) {
		if i == 1 {
			if _, err := db.Exec(`INSERT INTO users (id, name) VALUES (3, 'cid')`); err != nil {
				t.Fatal(err)
			}
		}
	})
	want := `0@1000: {"id":1,"name":"ann","born":"2026-01-02T03:04:05Z","ok":true} {"id":"2","name":null,"born":null,"ok":null}
1@2000: {"id":3,"name":"cid","born":null,"ok":null}
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// A table that failed to load is not read again before it changes.
func TestSourceBadNotReread(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.csv")
	writeFile(t, path, "id,a\n1,x\n")
	src, _ := ParseSource(path, "")
	if _, err := src.Load([]string{"id"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "id,a\n1,x,y\n")
	if ch, err := src.Changed(); !ch || err != nil {
		t.Fatalf("changed %v, %v: want true", ch, err)
	}
	if _, err := src.Load([]string{"id"}); err == nil {
		t.Fatal("a bad row loaded")
	}
	if ch, _ := src.Changed(); ch {
		t.Error("the same bad file: changed again")
	}
	writeFile(t, path, "id,a\n1,x\n2,y\n")
	if ch, _ := src.Changed(); !ch {
		t.Error("fixed: not changed")
	}
}

package crash

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/internal/pgtest"
	"github.com/dstream/dstream/record"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// A sink is where a variant's pipeline writes: it prepares the destination
// for a trial, gives ssink its stdout, and reads back what the runs left
// there, normalised, to compare with what the clean run left.
type sink interface {
	// setup prepares the destination in t.dir before the first run, and
	// sets the variables the stages' command lines use (t.vars).
	setup(t *trial) error
	// stdout opens the file ssink's stdout goes to in run n.
	stdout(t *trial, n int) (*os.File, error)
	read(t *trial) (content, error)
	// compare describes how got differs from clean, or is "".
	compare(clean, got content) string
	// teardown removes what setup made outside t.dir, unless keep.
	teardown(t *trial, keep bool)
}

// content is a sink's content, normalised to lines.
type content struct {
	lines []string
	// runs: for stdout, the index in lines at which each run's output
	// begins, -1 for a run that began inside a line.
	runs []int
}

// base is what most sinks do: nothing to set up, ssink's stdout to a file
// of each run (empty, as ssink writes elsewhere), and the content compared
// as a set of rows.
type base struct{}

func (base) setup(*trial) error { return nil }

func (base) stdout(t *trial, n int) (*os.File, error) {
	return os.Create(filepath.Join(t.dir, fmt.Sprintf("run-%d.out", n)))
}

func (base) compare(clean, got content) string { return diffSets(clean.lines, got.lines) }

func (base) teardown(*trial, bool) {}

// sqliteSink is a table of a SQLite database, read with the project's own
// modernc.org/sqlite. Its rows are compared as a set, and so are those of
// dstream_commits (without the batch times with noTimes, for -n batches).
type sqliteSink struct {
	base
	file, table string
	noTimes     bool
}

func (s *sqliteSink) read(t *trial) (content, error) {
	db, err := sql.Open("sqlite", filepath.Join(t.dir, s.file))
	if err != nil {
		return content{}, err
	}
	defer db.Close()
	return readTables(db, s.table, s.noTimes)
}

// postgresSink is a table in a schema of its own per trial, in the
// database at url.
type postgresSink struct {
	base
	url     string // set by the harness: --postgres, DSTREAM_POSTGRES_URL or the default
	table   string
	noTimes bool // dstream_commits compared without batch times (-n)
}

// available reports why the server cannot be reached, or nil.
func (s *postgresSink) available() error {
	db, err := sql.Open("pgx", s.url)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

func (s *postgresSink) schema(t *trial) string { return t.vars["SCHEMA"] }

func (s *postgresSink) setup(t *trial) error {
	db, err := sql.Open("pgx", s.url)
	if err != nil {
		return err
	}
	defer db.Close()
	schema, u, err := pgtest.CreateSchema(db, s.url, "crash_"+strings.NewReplacer("-", "_", ".", "_").Replace(t.name))
	if err != nil {
		return err
	}
	t.vars["SCHEMA"] = schema
	t.vars["PG"] = u
	return os.WriteFile(filepath.Join(t.dir, "postgres-url"), []byte(u+"\n"), 0o644)
}

func (s *postgresSink) read(t *trial) (content, error) {
	db, err := sql.Open("pgx", t.vars["PG"])
	if err != nil {
		return content{}, err
	}
	defer db.Close()
	return readTables(db, s.table, s.noTimes)
}

func (s *postgresSink) teardown(t *trial, keep bool) {
	if keep || s.schema(t) == "" {
		return
	}
	if db, err := sql.Open("pgx", s.url); err == nil {
		pgtest.DropSchema(db, s.schema(t))
		db.Close()
	}
}

// readTables reads the rows of table and of dstream_commits, each row a
// line "TABLE: v1|v2|...".
func readTables(db *sql.DB, table string, noTimes bool) (content, error) {
	rows, err := queryRows(db, `SELECT * FROM "`+table+`"`)
	if err != nil {
		return content{}, fmt.Errorf("reading table %s: %w", table, err)
	}
	q := `SELECT tbl, batch_id, batch_time FROM dstream_commits`
	if noTimes {
		q = `SELECT tbl, batch_id FROM dstream_commits`
	}
	commits, err := queryRows(db, q)
	if err != nil {
		return content{}, fmt.Errorf("reading dstream_commits: %w", err)
	}
	var c content
	for _, r := range rows {
		c.lines = append(c.lines, table+": "+r)
	}
	for _, r := range commits {
		c.lines = append(c.lines, "dstream_commits: "+r)
	}
	return c, nil
}

// queryRows runs q and returns its rows, columns joined by "|".
func queryRows(db *sql.DB, q string) ([]string, error) {
	rows, err := db.Query(q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				cells[i] = "NULL"
			case []byte:
				cells[i] = string(v)
			case time.Time:
				cells[i] = v.UTC().Format(time.RFC3339Nano)
			case float64:
				cells[i] = strconv.FormatFloat(v, 'g', -1, 64)
			default:
				cells[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return out, rows.Err()
}

// filesSink is the directory of ssink --files: every line of every file,
// as "NAME:N: LINE", in the order of the batch times in the names, and a
// line for each temporary file left behind (a name starting with a dot).
// With parquet, the files are Parquet, and their rows are the lines, as
// JSON.
type filesSink struct {
	base
	dir     string
	parquet bool
}

func (s *filesSink) setup(t *trial) error { return os.Mkdir(filepath.Join(t.dir, s.dir), 0o755) }

func (s *filesSink) read(t *trial) (content, error) {
	ents, err := os.ReadDir(filepath.Join(t.dir, s.dir))
	if err != nil {
		return content{}, err
	}
	// p-TIME.json by TIME as a number (here all have as many digits, but
	// say what is meant), temporary files last.
	timeOf := func(e os.DirEntry) int64 {
		t, _, _ := strings.Cut(strings.TrimPrefix(e.Name(), "p-"), ".")
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return math.MaxInt64
		}
		return n
	}
	slices.SortStableFunc(ents, func(a, b os.DirEntry) int { return cmp.Compare(timeOf(a), timeOf(b)) })
	var c content
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			c.lines = append(c.lines, "temporary file left behind: "+e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(t.dir, s.dir, e.Name()))
		if err != nil {
			return content{}, err
		}
		if s.parquet {
			if b, err = parquetLines(b, e.Name()); err != nil {
				return content{}, err
			}
		}
		if len(b) == 0 {
			c.lines = append(c.lines, e.Name()+": (empty)")
		}
		for i, l := range strings.SplitAfter(string(b), "\n") {
			if l != "" {
				c.lines = append(c.lines, fmt.Sprintf("%s:%d: %s", e.Name(), i+1, l))
			}
		}
	}
	return c, nil
}

// appendSink is ssink's stdout to a file opened in append mode (>>), that
// holds the output of every run, one after the other.
type appendSink struct {
	base
	file string
}

func (s *appendSink) stdout(t *trial, n int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(t.dir, s.file), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	t.runStarts = append(t.runStarts, fi.Size())
	return f, nil
}

func (s *appendSink) read(t *trial) (content, error) {
	b, err := os.ReadFile(filepath.Join(t.dir, s.file))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return content{}, err
	}
	var c content
	for _, off := range t.runStarts {
		switch {
		case off > int64(len(b)):
			return content{}, fmt.Errorf("%s: shorter than when run %d began", s.file, len(c.runs))
		case off == 0 || b[off-1] == '\n':
			c.runs = append(c.runs, bytes.Count(b[:off], []byte("\n")))
		default:
			c.runs = append(c.runs, -1)
		}
	}
	c.lines = strings.SplitAfter(string(b), "\n")
	if c.lines[len(c.lines)-1] == "" {
		c.lines = c.lines[:len(c.lines)-1]
	}
	return c, nil
}

// compare checks what the README's Delivery guarantees promise for stdout
// with --checkpoint: "every batch once, but for a crash between a batch's
// flush and its commit: that batch twice (at least once)". So every batch
// of the clean run is there, whole, in order, and the only other output is
// a whole batch written again right after itself, where a run began (the
// restart replaying the batch it had flushed but not committed).
func (s *appendSink) compare(clean, got content) string {
	want := splitBatches(clean.lines, nil)
	have := splitBatches(got.lines, got.runs)
	if slices.Contains(got.runs, -1) {
		return "a run began inside a line: the run before it was cut off in the middle of a line"
	}
	runStart := map[int]bool{}
	for _, r := range got.runs {
		runStart[r] = true
	}
	j := 0
	for _, h := range have {
		switch {
		case j < len(want) && slices.Equal(h.lines, want[j].lines):
			j++
		case j > 0 && slices.Equal(h.lines, want[j-1].lines):
			// The batch just written (the lines before are want[j-1] or a
			// copy of it), again: splitBatches cuts the lines of a batch in
			// two only where a run began, so this is a restart writing the
			// batch it had flushed but not committed.
		case j == len(want):
			return fmt.Sprintf("output after the last batch, at line %d: batch %s, %d lines", h.start+1, h.key, len(h.lines))
		case h.key == want[j].key:
			return fmt.Sprintf("batch %s at line %d differs: want %d lines, got %d (%s)", h.key, h.start+1, len(want[j].lines), len(h.lines), firstDiff(want[j].lines, h.lines))
		default:
			what := "not at a run's start"
			if !slices.ContainsFunc(want, func(b batchLines) bool { return b.key == h.key }) {
				what = "not in the clean run"
			} else if runStart[h.start] {
				what = "not the batch just before"
			}
			return fmt.Sprintf("at line %d: want batch %s, got batch %s (%d lines), %s", h.start+1, want[j].key, h.key, len(h.lines), what)
		}
	}
	if j < len(want) {
		return fmt.Sprintf("%d of %d batches missing, from batch %s on", len(want)-j, len(want), want[j].key)
	}
	return ""
}

// batchLines are the output lines of one batch: consecutive lines with the
// same batch field "b".
type batchLines struct {
	key   string // the batch time, as written
	start int    // index of the first line
	lines []string
}

// splitBatches groups lines into batches; a run's start (runs) also
// starts a batch.
func splitBatches(lines []string, runs []int) []batchLines {
	var bs []batchLines
	for i, l := range lines {
		var rec struct {
			B json.RawMessage `json:"b"`
		}
		key := "(not JSON)"
		if json.Unmarshal([]byte(l), &rec) == nil {
			key = string(rec.B)
		}
		if len(bs) == 0 || bs[len(bs)-1].key != key || slices.Contains(runs, i) {
			bs = append(bs, batchLines{key: key, start: i})
		}
		bs[len(bs)-1].lines = append(bs[len(bs)-1].lines, l)
	}
	return bs
}

// diffSets compares want and got as multisets of lines and describes the
// difference: how many are missing and how many extra, with the first few.
func diffSets(want, got []string) string {
	w, g := slices.Sorted(slices.Values(want)), slices.Sorted(slices.Values(got))
	var missing, extra []string
	for len(w) > 0 || len(g) > 0 {
		switch {
		case len(g) == 0 || len(w) > 0 && w[0] < g[0]:
			missing, w = append(missing, w[0]), w[1:]
		case len(w) == 0 || g[0] < w[0]:
			extra, g = append(extra, g[0]), g[1:]
		default:
			w, g = w[1:], g[1:]
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	return fmt.Sprintf("want %d lines, got %d: %d missing%s, %d extra%s",
		len(want), len(got), len(missing), examples(missing), len(extra), examples(extra))
}

// examples quotes the first lines of l.
func examples(l []string) string {
	if len(l) == 0 {
		return ""
	}
	var q []string
	for _, s := range l[:min(len(l), 3)] {
		q = append(q, strconv.Quote(strings.TrimSuffix(s, "\n")))
	}
	if len(l) > 3 {
		q = append(q, "...")
	}
	return " (" + strings.Join(q, ", ") + ")"
}

// firstDiff describes the first line where want and got differ.
func firstDiff(want, got []string) string {
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = strings.TrimSuffix(want[i], "\n")
		}
		if i < len(got) {
			g = strings.TrimSuffix(got[i], "\n")
		}
		if w != g {
			return fmt.Sprintf("line %d of the batch: want %q, got %q", i+1, w, g)
		}
	}
	return "same lines"
}

// parquetLines are the rows of a Parquet file as JSON lines.
func parquetLines(data []byte, name string) ([]byte, error) {
	d, err := codec.NewParquetDecoder(bytes.NewReader(data), int64(len(data)), name, 0, -1)
	if err != nil {
		return nil, err
	}
	var out, rec []byte
	for {
		if rec, err = d.Next(rec[:0]); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if out, _, err = record.AppendJSON(out, rec); err != nil {
			return nil, err
		}
		out = append(out, '\n')
	}
}

// writeParquet writes JSON lines as a Parquet file, as ssink --files
// --format parquet does.
func writeParquet(path string, jsonLines []byte) error {
	b, err := parquetOf(jsonLines)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// parquetOf is the Parquet file of JSON lines.
func parquetOf(jsonLines []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	e := codec.Lookup("parquet").New(w, codec.Options{})
	var rec []byte
	for _, l := range bytes.Split(bytes.TrimSuffix(jsonLines, []byte("\n")), []byte("\n")) {
		var err error
		if rec, err = record.AppendJSONObject(rec[:0], l); err != nil {
			return nil, err
		}
		if err := e.Record(rec); err != nil {
			return nil, err
		}
	}
	if err := e.Flush(); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

package join

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", without cgo
)

// Kinds of static tables.
const (
	kindFile = iota
	kindSQLite
	kindPostgres
)

// TableFormats are the formats of a table file (--table-format), by the
// names sbatch --format gives them.
var TableFormats = []string{"csv", "tsv", "json", "msgpack"}

// Source is where a static table comes from: a file (CSV or TSV with a
// header row, JSON lines, msgpack), a table of a SQLite database or one of
// a PostgreSQL database. It loads the table and tells whether it changed
// since.
type Source struct {
	spec   string // as given, for messages (a URL without its password)
	kind   int
	path   string // the file, or the SQLite database file
	format string // of a file
	table  string // of a database
	url    string // PostgreSQL's, without ?table=

	// Reload is how often Changed looks for a change: 0 at every call, a
	// negative duration never.
	Reload time.Duration

	db      *sql.DB
	conn    *sql.Conn // SQLite: the connection whose data_version tells changes
	fi      os.FileInfo
	dataVer int64
	// The file as it was at the last load, if it failed: no use reading it
	// again before it changes once more.
	badFI    os.FileInfo
	loaded   time.Time
	lastLook time.Time
}

// DefaultPostgresReload is how often a PostgreSQL table is read again
// (--reload's default for it): PostgreSQL tells no change cheaply, so a
// look is a reading of the whole table.
const DefaultPostgresReload = time.Minute

// ParseSource reads a --table: sqlite:FILE:TABLE, postgres://...?table=T
// (or postgresql://), or a file whose format is format, or when format is
// "" its suffix's (.csv, .tsv, .json, .jsonl, .ndjson, .msgpack).
func ParseSource(spec, format string) (*Source, error) {
	s := &Source{spec: spec}
	switch {
	case strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return nil, stage.UsageError("--table %s: want postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE?table=TABLE", redact(spec))
		}
		q := u.Query()
		s.kind, s.table = kindPostgres, q.Get("table")
		q.Del("table")
		u.RawQuery = q.Encode()
		s.url, s.spec = u.String(), u.Redacted()
		if s.table == "" {
			return nil, stage.UsageError("--table %s: name the table: ?table=TABLE", s.spec)
		}
	case strings.HasPrefix(spec, "sqlite:"):
		rest := strings.TrimPrefix(spec, "sqlite:")
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 || i == len(rest)-1 {
			return nil, stage.UsageError("--table %s: want sqlite:FILE:TABLE", spec)
		}
		s.kind, s.path, s.table = kindSQLite, rest[:i], rest[i+1:]
	default:
		s.kind, s.path = kindFile, spec
		if format == "" {
			format = formatOf(spec)
			if format == "" {
				return nil, stage.Hint(stage.UsageError("--table %s: cannot tell its format from its name", spec),
					"name it .csv, .tsv, .json, .jsonl or .msgpack, or give --table-format %s", strings.Join(TableFormats, "|"))
			}
		}
		switch format {
		case "csv", "tsv", "json", "msgpack":
		case "jsonl", "ndjson":
			format = "json"
		default:
			return nil, stage.UsageError("--table-format %q: want %s", format, stage.OrList(TableFormats))
		}
		s.format = format
		return s, nil
	}
	if format != "" {
		return nil, stage.UsageError("--table-format applies to a file, not to a database table")
	}
	return s, nil
}

func formatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "csv"
	case ".tsv", ".tab":
		return "tsv"
	case ".json", ".jsonl", ".ndjson":
		return "json"
	case ".msgpack", ".mpk":
		return "msgpack"
	}
	return ""
}

// redact hides a password in a URL that may not parse.
func redact(spec string) string {
	if u, err := url.Parse(spec); err == nil {
		return u.Redacted()
	}
	return "postgres://..."
}

// String names the table in messages.
func (s *Source) String() string {
	switch s.kind {
	case kindSQLite:
		return fmt.Sprintf("table %s of %s", s.table, s.path)
	case kindPostgres:
		return fmt.Sprintf("table %s of %s", s.table, s.spec)
	}
	return s.path
}

// IsPostgres reports whether the table is PostgreSQL's.
func (s *Source) IsPostgres() bool { return s.kind == kindPostgres }

// Close closes the database, if any.
func (s *Source) Close() error {
	if s.conn != nil {
		s.conn.Close()
	}
	if s.db != nil {
		return s.db.Close()
	}
	return nil
}

// Load reads the table, indexed by the fields on. It fails if the table
// cannot be read or has no column of a key field.
func (s *Source) Load(on []string) (*Table, error) {
	b := newBuilder(on, false)
	var err error
	switch s.kind {
	case kindFile:
		err = s.loadFile(b)
	default:
		err = s.loadSQL(b, on)
	}
	if err != nil {
		return nil, err
	}
	if err := s.checkKey(b, on); err != nil {
		return nil, err
	}
	s.loaded = time.Now()
	s.lastLook = s.loaded
	return b.finish(), nil
}

// checkKey checks that the table has a column of each key field: a table
// without one joins nothing, which is a mistake to report, not to run.
// (A JSON or msgpack file without a row has no columns: nothing to check.)
func (s *Source) checkKey(b *builder, on []string) error {
	t := b.t
	if len(t.cols) == 0 {
		return nil
	}
	for _, k := range on {
		if _, ok := t.colIdx[k]; !ok {
			return stage.Hint(fmt.Errorf("%s has no column %q", s, k),
				"--on names the key fields, which both sides must have; the table's columns are %s", strings.Join(t.cols, ", "))
		}
	}
	return nil
}

// loadFile reads a table file. A file that changes while it is read is an
// error: what was read may be half the old and half the new.
func (s *Source) loadFile(b *builder) error {
	f, err := os.Open(s.path)
	if err != nil {
		return err // names the file
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	s.badFI = fi // until it loads
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not a table file", s.path)
	}
	dec, err := codec.NewDecoder(s.format, f, s.path)
	if err != nil {
		return err
	}
	var rec []byte
	rows := 0
	for {
		rec, err = dec.Next(rec[:0])
		if err == io.EOF {
			break
		}
		if err != nil {
			return err // a codec.Error, naming the file and line
		}
		rows++
		if err := b.add(rec); err != nil {
			n, unit := dec.Pos()
			return fmt.Errorf("%s: %s %d: %w", s.path, unit, n, err)
		}
		if rows == 4096 && dec.Offset() > 0 {
			// Foresee the rest from the start, so that the table is not
			// copied over and over as it grows.
			f := float64(fi.Size()) / float64(dec.Offset()) * 1.02
			b.reserve(int(float64(rows)*f)-rows, int(float64(len(b.stage))*f)-len(b.stage))
		}
	}
	if rows == 0 && (s.format == "csv" || s.format == "tsv") {
		// A header without rows still names the columns.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		r := csv.NewReader(f)
		if s.format == "tsv" {
			r.Comma, r.LazyQuotes = '\t', true
		}
		if h, err := r.Read(); err == nil {
			for _, name := range h {
				b.addColumn(name)
			}
		}
	}
	after, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	if changed(fi, after) {
		s.badFI = nil // read it again at the next look: it may be whole then
		return fmt.Errorf("%s changed while it was read", s.path)
	}
	s.fi, s.badFI = fi, nil
	return nil
}

func changed(a, b os.FileInfo) bool {
	return !os.SameFile(a, b) || a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime())
}

// open connects to the database, once.
func (s *Source) open() error {
	if s.db != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	switch s.kind {
	case kindSQLite:
		fi, err := os.Stat(s.path)
		if err != nil {
			return err // a missing file is no database to create here
		}
		abs, err := filepath.Abs(s.path)
		if err != nil {
			return err
		}
		esc := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")
		db, err := sql.Open("sqlite", "file:"+esc.Replace(filepath.ToSlash(abs))+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		conn, err := db.Conn(ctx)
		if err == nil {
			err = conn.PingContext(ctx)
		}
		if err != nil {
			db.Close()
			return fmt.Errorf("%s: opening the SQLite database: %w", s.path, err)
		}
		s.db, s.conn, s.fi = db, conn, fi
	case kindPostgres:
		db, err := sql.Open("pgx", s.url)
		if err != nil {
			return fmt.Errorf("%s: %w", s.spec, err)
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return stage.Hint(fmt.Errorf("%s: cannot connect to PostgreSQL: %w", s.spec, err),
				"is a PostgreSQL server running at the URL's host and port, and may its user read the table?")
		}
		db.SetMaxOpenConns(1)
		s.db = db
	}
	return nil
}

// quoteTable quotes a table name, each part of schema.table on its own.
func quoteTable(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

// loadSQL reads a database table: every row, each column a field, the
// values typed as the database gives them (integers, floats, text, blobs,
// booleans, times; NULL is null).
func (s *Source) loadSQL(b *builder, on []string) error {
	if err := s.open(); err != nil {
		return err
	}
	ctx := context.Background()
	q := "SELECT * FROM " + quoteTable(s.table)
	var rows *sql.Rows
	var err error
	if s.conn != nil {
		var v int64
		if err := s.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		// Taken before the reading, whether it succeeds or not: the next
		// look reads again only after another commit.
		s.dataVer = v
		rows, err = s.conn.QueryContext(ctx, q)
	} else {
		rows, err = s.db.QueryContext(ctx, q)
	}
	if err != nil {
		return stage.Hint(fmt.Errorf("%s: %w", s, err), "--table names a table the database has: sqlite:FILE:TABLE, postgres://...?table=TABLE")
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	for _, c := range cols {
		b.addColumn(c)
	}
	if err := s.checkKey(b, on); err != nil {
		return err // before reading every row
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var rb record.Builder
	n := 0
	for rows.Next() {
		n++
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("%s: row %d: %w", s, n, err)
		}
		rb.Reset()
		for i, c := range cols {
			if err := rb.Value(c, sqlValue(vals[i])); err != nil {
				return fmt.Errorf("%s: row %d, column %s: %w", s, n, c, err)
			}
		}
		if err := b.add(rb.Bytes()); err != nil {
			return fmt.Errorf("%s: row %d: %w", s, n, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}

// sqlValue turns what database/sql scanned into a record's value: text
// that came as bytes is a string; types without a msgpack form of their
// own are their text.
func sqlValue(v any) any {
	switch x := v.(type) {
	case nil, int64, float64, bool, string, time.Time:
		return v
	case []byte:
		return x // a BLOB, BYTEA: binary
	case fmt.Stringer:
		return x.String()
	}
	return v
}

// Changed reports whether the table may have changed since it was loaded:
// a file whose size, time or inode changed, a SQLite database another
// connection committed to (its data_version), a PostgreSQL table whose
// Reload interval passed. It looks at most every Reload.
func (s *Source) Changed() (bool, error) {
	if s.Reload < 0 {
		return false, nil
	}
	now := time.Now()
	reload := s.Reload
	if reload == 0 && s.kind == kindPostgres {
		reload = DefaultPostgresReload
	}
	if now.Sub(s.lastLook) < reload {
		return false, nil
	}
	s.lastLook = now
	switch s.kind {
	case kindFile:
		fi, err := os.Stat(s.path)
		if err != nil {
			return false, err
		}
		if s.badFI != nil && !changed(s.badFI, fi) {
			return false, nil // as it was when it failed
		}
		return changed(s.fi, fi), nil
	case kindSQLite:
		fi, err := os.Stat(s.path)
		if err != nil {
			return false, err
		}
		if !os.SameFile(s.fi, fi) {
			// Another file now: open it anew.
			s.Close()
			s.db, s.conn = nil, nil
			return true, nil
		}
		var v int64
		if err := s.conn.QueryRowContext(context.Background(), "PRAGMA data_version").Scan(&v); err != nil {
			return false, fmt.Errorf("%s: %w", s, err)
		}
		return v != s.dataVer, nil
	}
	return true, nil
}

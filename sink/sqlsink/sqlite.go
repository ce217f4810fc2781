package sqlsink

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"unsafe"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", without cgo
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite writes each batch into a table of the SQLite database FILE,
// created if missing (--sqlite FILE).
var SQLite = sink.Destination{
	Flag:     "sqlite",
	Usage:    "write each batch into the SQLite database `FILE` (created if missing) instead of stdout",
	Category: "Databases",
	Needs:    "a database file",
	Hint:     "--sqlite writes into the database, not to stdout: run another ssink (after tee) to see the batches too",
	Group:    "databases",
	Takes:    []string{"table", "mode", "key"},
	Open: func(o *sink.Options, _ *codec.Format, _ *bufio.Writer) (sink.Writer, error) {
		return openSQL(o, &sqliteDialect)
	},
}

// sqliteDialect is the SQL sink's SQLite.
var sqliteDialect = dialect{
	name:     "SQLite",
	flag:     "sqlite",
	param:    '?',
	reserved: "sqlite_",
	foldCase: true,
	intType:  "INTEGER",
	columns:  `SELECT name, type FROM pragma_table_info(?1) ORDER BY cid`,
	declType: sqliteType,
	boolInt:  true,
	timeText: true,
	open:     openSQLite,

	prepareRaw: prepareSQLiteRaw,
	rawKind:    sqliteRawKind,

	display: func(path string) (string, error) { return path, nil },
}

// sqlitePragmas go into the DSN, so that every connection database/sql opens
// gets them: BEGIN IMMEDIATE takes the write lock at the start of a batch
// (a deferred transaction that reads first may fail to upgrade it), and a
// commit is on disk before ssink commits the batch in the checkpoint.
const sqlitePragmas = "_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"

// sqliteType is the declared type of a SQLite column whose first value is v.
func sqliteType(v []byte) string {
	switch record.KindOf(v) {
	case record.KindInt, record.KindUint, record.KindBool:
		return "INTEGER"
	case record.KindFloat:
		return "REAL"
	case record.KindString, record.KindTime, record.KindMap, record.KindArray:
		return "TEXT"
	case record.KindBinary:
		return "BLOB"
	}
	return "" // null: no type, so any value keeps its own
}

// sqliteDSN names the database file path for modernc.org/sqlite: a file:
// URI, so that a '?' or '#' in the path is part of it, with sqlitePragmas.
func sqliteDSN(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	esc := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")
	return "file:" + esc.Replace(filepath.ToSlash(abs)) + "?" + sqlitePragmas, nil
}

// openSQLite opens the database file path, creating it if missing.
func openSQLite(path string) (*sql.DB, error) {
	dsn, err := sqliteDSN(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := db.Ping(); err != nil { // opens the file, runs the pragmas
		db.Close()
		return nil, openHint(path, err)
	}
	return db, nil
}

// openHint wraps an error opening the database with a hint at its cause.
func openHint(path string, err error) error {
	err = fmt.Errorf("%s: opening the SQLite database: %w", path, err)
	if dir := filepath.Dir(path); !isDir(dir) {
		return stage.Hint(err, "ssink creates the database file, not its directory: %s is not a directory", dir)
	}
	return stage.Hint(err, "--sqlite wants a SQLite database file, or the name of one to create, in a directory you may write to")
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// sqliteRaw is a statement of a row run through SQLite's C API as
// modernc.org/sqlite transpiles it (modernc.org/sqlite/lib), on the
// driver's own database handle and libc TLS, in the transaction open
// there. Why below the driver: its statement binds each row's arguments
// one by one (the name of each parameter read, each text copied into a
// new C string and freed), with a context and a result; ssink's own
// loop over the C API takes a third less CPU a row (1 M 3-field rows:
// 0.54 s against 0.90 s, sqlite3 .import's 0.62 s).
//
// A text or blob is copied into a C buffer of its column, bound
// SQLITE_STATIC: SQLite reads it until the next bind of the column, and
// the buffer lives until Close, which finalizes the statement first.
type sqliteRaw struct {
	tls     *libc.TLS
	db      uintptr // *sqlite3
	stmt    uintptr // *sqlite3_stmt
	nparams int
	bufs    []sqliteBuf // by column
}

// A sqliteBuf is C memory: p, of size n.
type sqliteBuf struct {
	p uintptr
	n int
}

// sqliteConn returns the database handle and libc TLS of a connection of
// modernc.org/sqlite (fields db and tls of its conn, read by reflection:
// it exports neither), or ok false if dc does not have them as this
// version of the driver does.
func sqliteConn(dc any) (tls *libc.TLS, db uintptr, ok bool) {
	v := reflect.ValueOf(dc)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, 0, false
	}
	s := v.Elem()
	if s.Type().PkgPath() != "modernc.org/sqlite" {
		return nil, 0, false
	}
	fdb, ftls := s.FieldByName("db"), s.FieldByName("tls")
	if !fdb.IsValid() || fdb.Kind() != reflect.Uintptr || !ftls.IsValid() || ftls.Type() != reflect.TypeFor[*libc.TLS]() {
		return nil, 0, false
	}
	tls, db = (*libc.TLS)(ftls.UnsafePointer()), uintptr(fdb.Uint())
	return tls, db, tls != nil && db != 0
}

// sqliteRawOff turns the C API's statements off (tests: the driver's path).
var sqliteRawOff bool

// prepareSQLiteRaw prepares query on the driver's connection dc, or
// returns nil, nil when dc is not a connection it knows.
func prepareSQLiteRaw(dc any, query string) (rawStmt, error) {
	tls, db, ok := sqliteConn(dc)
	if !ok || sqliteRawOff {
		return nil, nil
	}
	q, err := libc.CString(query)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(tls, q)
	pstmt := libc.Xmalloc(tls, types.Size_t(unsafe.Sizeof(uintptr(0))))
	if pstmt == 0 {
		return nil, errors.New("SQLite: out of memory")
	}
	defer libc.Xfree(tls, pstmt)
	s := &sqliteRaw{tls: tls, db: db}
	if rc := sqlite3.Xsqlite3_prepare_v2(tls, db, q, -1, pstmt, 0); rc != sqlite3.SQLITE_OK {
		return nil, s.error(rc)
	}
	s.stmt = *(*uintptr)(cmem(pstmt))
	s.nparams = int(sqlite3.Xsqlite3_bind_parameter_count(tls, s.stmt))
	return s, nil
}

// sqliteRawKind tells the kinds of value sqliteRaw binds from the record.
func sqliteRawKind(k record.Kind) bool {
	switch k {
	case record.KindNil, record.KindInt, record.KindFloat, record.KindBool, record.KindString:
		return true
	}
	return false
}

func (s *sqliteRaw) exec(f *tableWriter, changes bool) (int64, error) {
	for c := 0; c < s.nparams && c < len(f.cols); c++ {
		if rc := s.bind(c, f.args[c], f.raw[c]); rc != sqlite3.SQLITE_OK {
			err := s.error(rc)
			sqlite3.Xsqlite3_clear_bindings(s.tls, s.stmt)
			return 0, err
		}
	}
	rc := sqlite3.Xsqlite3_step(s.tls, s.stmt)
	if rc != sqlite3.SQLITE_DONE {
		err := s.error(rc)
		sqlite3.Xsqlite3_reset(s.tls, s.stmt)
		return 0, err
	}
	var n int64
	if changes {
		n = int64(sqlite3.Xsqlite3_changes(s.tls, s.db))
	}
	sqlite3.Xsqlite3_reset(s.tls, s.stmt)
	return n, nil
}

// bind binds parameter c+1 to the value of column c: a, as value made
// it, if not nil, else v as the record has it (nil: NULL). Both bind as
// the driver binds value's (int64, float64, string: text, []byte: blob).
func (s *sqliteRaw) bind(c int, a any, v []byte) int32 {
	i := int32(c + 1)
	if a != nil {
		switch a := a.(type) {
		case int64:
			return sqlite3.Xsqlite3_bind_int64(s.tls, s.stmt, i, a)
		case float64:
			return sqlite3.Xsqlite3_bind_double(s.tls, s.stmt, i, a)
		case string:
			return s.bindBytes(c, unsafe.Slice(unsafe.StringData(a), len(a)), false)
		case []byte:
			if a == nil {
				return sqlite3.Xsqlite3_bind_null(s.tls, s.stmt, i)
			}
			return s.bindBytes(c, a, true)
		}
		return sqlite3.SQLITE_MISMATCH
	}
	switch record.KindOf(v) {
	case record.KindInt:
		x, _ := record.Int(v)
		return sqlite3.Xsqlite3_bind_int64(s.tls, s.stmt, i, x)
	case record.KindFloat:
		x, _ := record.Float(v)
		return sqlite3.Xsqlite3_bind_double(s.tls, s.stmt, i, x)
	case record.KindBool:
		var x int64
		if v[0] == 0xc3 { // msgpack true
			x = 1
		}
		return sqlite3.Xsqlite3_bind_int64(s.tls, s.stmt, i, x)
	case record.KindString:
		b, _ := record.Str(v)
		return s.bindBytes(c, b, false)
	case record.KindNil:
		return sqlite3.Xsqlite3_bind_null(s.tls, s.stmt, i)
	}
	if v == nil { // a field the record lacks
		return sqlite3.Xsqlite3_bind_null(s.tls, s.stmt, i)
	}
	return sqlite3.SQLITE_MISMATCH // bind made it a
}

// bindBytes copies b into column c's buffer and binds it, as a blob or as
// text.
func (s *sqliteRaw) bindBytes(c int, b []byte, blob bool) int32 {
	if len(b) > math.MaxInt32 {
		return sqlite3.SQLITE_TOOBIG
	}
	if c >= len(s.bufs) {
		s.bufs = append(s.bufs, make([]sqliteBuf, c+1-len(s.bufs))...)
	}
	buf := &s.bufs[c]
	if len(b) > buf.n || buf.p == 0 {
		n := max(len(b), 2*buf.n, 64)
		p := libc.Xrealloc(s.tls, buf.p, types.Size_t(n))
		if p == 0 {
			return sqlite3.SQLITE_NOMEM
		}
		buf.p, buf.n = p, n
	}
	copy(unsafe.Slice((*byte)(cmem(buf.p)), buf.n), b)
	i := int32(c + 1)
	if blob {
		return sqlite3.Xsqlite3_bind_blob(s.tls, s.stmt, i, buf.p, int32(len(b)), 0)
	}
	return sqlite3.Xsqlite3_bind_text(s.tls, s.stmt, i, buf.p, int32(len(b)), 0)
}

// error is the error of result code rc, worded as the driver words it.
func (s *sqliteRaw) error(rc int32) error {
	str := libc.GoString(sqlite3.Xsqlite3_errstr(s.tls, rc))
	var busy string
	if rc == sqlite3.SQLITE_BUSY {
		busy = " (SQLITE_BUSY)"
	}
	if msg := libc.GoString(sqlite3.Xsqlite3_errmsg(s.tls, s.db)); msg != str {
		return fmt.Errorf("%s: %s (%d)%s", str, msg, rc, busy)
	}
	return fmt.Errorf("%s (%d)%s", str, rc, busy)
}

// Close finalizes the statement and frees its buffers.
func (s *sqliteRaw) Close() error {
	var err error
	if s.stmt != 0 {
		if rc := sqlite3.Xsqlite3_finalize(s.tls, s.stmt); rc != sqlite3.SQLITE_OK {
			err = s.error(rc)
		}
		s.stmt = 0
	}
	for _, b := range s.bufs {
		libc.Xfree(s.tls, b.p)
	}
	s.bufs = nil
	return err
}

// cmem is C memory at address p, which libc allocated outside Go's heap
// (vet cannot know that p is no Go pointer hidden in a uintptr, hence
// unsafe.Add rather than unsafe.Pointer(p)).
func cmem(p uintptr) unsafe.Pointer { return unsafe.Add(nil, p) }

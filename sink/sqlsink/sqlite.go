package sqlsink

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", without cgo
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
	display:  func(path string) (string, error) { return path, nil },
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

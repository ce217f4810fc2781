package main

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", without cgo
)

// The output modes of --sqlite (--mode): Spark's.
const (
	modeAppend   = "append"
	modeComplete = "complete"
	modeUpdate   = "update"
)

// commitsTable is ssink's table in the database with --checkpoint: the last
// batch written into each table, updated in the batch's own transaction.
const commitsTable = "dstream_commits"

// sqlitePragmas go into the DSN, so that every connection database/sql opens
// gets them: BEGIN IMMEDIATE takes the write lock at the start of a batch
// (a deferred transaction that reads first may fail to upgrade it), and a
// commit is on disk before ssink commits the batch in the checkpoint.
const sqlitePragmas = "_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"

// sqliteFormat writes each batch into a table of a SQLite database, in one
// transaction committed at the batch end. The table is made from the
// records: a column per field, created on the first record and added to
// (ALTER TABLE ADD COLUMN) when a field without a column comes.
type sqliteFormat struct {
	path   string // --sqlite, as given: for messages
	table  string // --table
	mode   string // --mode
	keys   []string
	idem   bool // --checkpoint: record and skip batches by id
	db     *sql.DB
	qtable string // table, quoted

	// The table as it stands. load reads it; after a rollback, which may
	// undo a CREATE or ALTER, it is read again.
	loaded  bool
	exists  bool
	cols    []string
	index   map[string]int // column by ASCII-folded name (SQLite's rule)
	indexed bool           // update: the UNIQUE index on keys is there
	keyCols []int          // update: the columns of keys

	// Statements for cols, prepared on the database and reused by every
	// batch (Tx.Stmt finds them prepared on the one connection). A schema
	// change inside a batch prepares the rest of it in the transaction, and
	// marks these stale for the next batch: the connection is the
	// transaction's until its end, so the database cannot prepare before.
	stale  bool
	insert *sql.Stmt // INSERT, an upsert in update mode
	update *sql.Stmt // update mode: UPDATE by key, for keys with a null
	del    *sql.Stmt // complete mode: DELETE all
	mark   *sql.Stmt // --checkpoint: the batch into commitsTable

	// Recorded in commitsTable (with --checkpoint): the last batch written.
	last     uint64
	lastTime int64
	haveLast bool

	// The batch in hand.
	tx       *sql.Tx
	txInsert *sql.Stmt
	txUpdate *sql.Stmt
	skip     bool   // written before: the batch writes nothing
	n        uint64 // rows written

	args []any  // the record in hand by column
	set  []bool // the columns the record in hand has set
	flds record.Fields
	buf  []byte // text of a time, JSON of a map or list; a folded name
}

// newSQLite reads the SQLite flags: nil without --sqlite. It opens nothing
// (open does), so that a usage error creates nothing.
func newSQLite(ctx *cli.Context) (*sqliteFormat, error) {
	if !ctx.IsSet(flagSQLite) {
		for _, f := range []string{flagTable, flagMode, flagKey} {
			if ctx.IsSet(f) {
				return nil, stage.UsageError("--%s applies to --%s", f, flagSQLite)
			}
		}
		return nil, nil
	}
	f := &sqliteFormat{path: ctx.String(flagSQLite), table: ctx.String(flagTable), mode: ctx.String(flagMode)}
	if f.path == "" {
		return nil, stage.UsageError("--%s needs a database file", flagSQLite)
	}
	for _, o := range []string{flagFormat, flagRows, flagNoTruncate} {
		if ctx.IsSet(o) {
			return nil, stage.Hint(stage.UsageError("--%s does not go with --%s", o, flagSQLite),
				"--%s writes into the database, not to stdout: run another ssink (after tee) to see the batches too", flagSQLite)
		}
	}
	if err := checkTable(f.table); err != nil {
		return nil, stage.UsageError("--%s %q: %v", flagTable, f.table, err)
	}
	f.keys = stage.ParseList(ctx.StringSlice(flagKey)...)
	switch f.mode {
	case modeAppend, modeComplete:
		if ctx.IsSet(flagKey) {
			return nil, stage.UsageError("--%s applies to --%s %s, not %s", flagKey, flagMode, modeUpdate, f.mode)
		}
	case modeUpdate:
		if len(f.keys) == 0 {
			return nil, stage.Hint(stage.UsageError("--%s %s needs --%s", flagMode, modeUpdate, flagKey),
				"give the fields that identify a row, as to sreduce: --%s F[,F...]", flagKey)
		}
		for i, k := range f.keys {
			if slices.Contains(f.keys[:i], k) {
				return nil, stage.UsageError("--%s names %q twice", flagKey, k)
			}
		}
	default:
		return nil, stage.UsageError("unknown --%s %q: want %s, %s or %s", flagMode, f.mode, modeAppend, modeComplete, modeUpdate)
	}
	f.qtable = quoteIdent(f.table)
	f.index = map[string]int{}
	return f, nil
}

// checkTable checks a --table name: an identifier (letters, digits and _,
// not starting with a digit) that neither SQLite nor ssink keeps for itself.
// Why so strict when every name is quoted: a name that needs quotes in
// every query of every user is a trap, and a field name cannot be chosen
// so it is quoted, but a table name can.
func checkTable(name string) error {
	if name == "" {
		return errors.New("want a table name")
	}
	for i, r := range name {
		if r != '_' && !unicode.IsLetter(r) && (i == 0 || !unicode.IsDigit(r)) {
			return errors.New("not an identifier: want letters, digits and _, not starting with a digit")
		}
	}
	switch low := strings.ToLower(name); {
	case strings.HasPrefix(low, "sqlite_"):
		return errors.New("names starting with sqlite_ are SQLite's own")
	case low == commitsTable:
		return errors.New("ssink keeps its commits there")
	}
	return nil
}

// quoteIdent quotes an identifier for SQL, so that any name is one: a
// keyword (order), a space, a quote.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
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

// open opens the database, and with idem (--checkpoint) reads the last
// batch written into the table.
func (f *sqliteFormat) open(idem bool) error {
	f.idem = idem
	dsn, err := sqliteDSN(f.path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	if f.db, err = sql.Open("sqlite", dsn); err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	// One connection: SQLite has one writer at a time, and the statements
	// prepared on it serve every batch.
	f.db.SetMaxOpenConns(1)
	if err := f.db.Ping(); err != nil { // opens the file, runs the pragmas
		f.db.Close()
		f.db = nil
		return openHint(f.path, err)
	}
	if err := f.openCommits(); err != nil {
		f.Close()
		return err
	}
	if err := f.load(); err != nil {
		f.Close()
		return err
	}
	return nil
}

// openHint wraps an error opening the database with a hint at its cause.
func openHint(path string, err error) error {
	err = fmt.Errorf("%s: opening the SQLite database: %w", path, err)
	if dir := filepath.Dir(path); !isDir(dir) {
		return stage.Hint(err, "ssink creates the database file, not its directory: %s is not a directory", dir)
	}
	return stage.Hint(err, "--%s wants a SQLite database file, or the name of one to create, in a directory you may write to", flagSQLite)
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// openCommits creates commitsTable if needed and reads the table's row.
func (f *sqliteFormat) openCommits() error {
	if !f.idem {
		return nil
	}
	_, err := f.db.Exec(`CREATE TABLE IF NOT EXISTS ` + commitsTable + ` (tbl TEXT PRIMARY KEY, batch_id INTEGER, batch_time INTEGER)`)
	if err != nil {
		return fmt.Errorf("%s: creating %s: %w", f.path, commitsTable, err)
	}
	var id int64
	err = f.db.QueryRow(`SELECT batch_id, batch_time FROM `+commitsTable+` WHERE tbl = ?`, f.table).Scan(&id, &f.lastTime)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("%s: reading %s: %w", f.path, commitsTable, err)
	default:
		f.last, f.haveLast = uint64(id), true
	}
	f.mark, err = f.db.Prepare(`INSERT INTO ` + commitsTable + ` (tbl, batch_id, batch_time) VALUES (?1, ?2, ?3)
		ON CONFLICT (tbl) DO UPDATE SET batch_id = excluded.batch_id, batch_time = excluded.batch_time`)
	if err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	return nil
}

// load reads the table's columns, if it exists. In update mode it makes
// sure of the key columns and their UNIQUE index, outside any batch.
func (f *sqliteFormat) load() error {
	rows, err := f.db.Query(`SELECT name FROM pragma_table_info(?)`, f.table)
	if err != nil {
		return fmt.Errorf("%s: reading the columns of table %s: %w", f.path, f.qtable, err)
	}
	f.cols, f.args, f.set = f.cols[:0], f.args[:0], f.set[:0]
	f.keyCols, f.indexed = f.keyCols[:0], false
	clear(f.index)
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("%s: reading the columns of table %s: %w", f.path, f.qtable, err)
		}
		f.addCol(name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: reading the columns of table %s: %w", f.path, f.qtable, err)
	}
	f.exists, f.loaded, f.stale = len(f.cols) > 0, true, true
	if f.exists && f.mode == modeUpdate {
		if err := f.keyIndex(f.db); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	return nil
}

// addCol appends a column to the table's description.
func (f *sqliteFormat) addCol(name string) {
	f.buf = foldName(f.buf[:0], []byte(name))
	f.index[string(f.buf)] = len(f.cols)
	f.cols = append(f.cols, name)
	f.args = append(f.args, nil)
	f.set = append(f.set, false)
}

// column finds the column of field k, as SQLite does: ignoring ASCII case.
func (f *sqliteFormat) column(k []byte) (int, bool) {
	f.buf = foldName(f.buf[:0], k)
	c, ok := f.index[string(f.buf)]
	return c, ok
}

func foldName(dst, name []byte) []byte {
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	Exec(query string, args ...any) (sql.Result, error)
}

// keyIndex adds the key columns the table lacks and creates the UNIQUE
// index that INSERT ... ON CONFLICT needs (update mode).
func (f *sqliteFormat) keyIndex(x execer) error {
	for _, k := range f.keys {
		if _, ok := f.column([]byte(k)); !ok {
			if err := f.addColumn(x, k, nil); err != nil {
				return err
			}
		}
	}
	var q strings.Builder
	q.WriteString(`CREATE UNIQUE INDEX IF NOT EXISTS `)
	q.WriteString(quoteIdent(f.table + "_" + strings.Join(f.keys, "_") + "_key"))
	q.WriteString(` ON ` + f.qtable + ` (`)
	f.keyCols = f.keyCols[:0]
	for i, k := range f.keys {
		c, _ := f.column([]byte(k))
		f.keyCols = append(f.keyCols, c)
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(quoteIdent(f.cols[c]))
	}
	q.WriteString(`)`)
	if _, err := x.Exec(q.String()); err != nil {
		return stage.Hint(fmt.Errorf("creating a UNIQUE index on %s of table %s: %w", strings.Join(f.keys, ", "), f.qtable, err),
			"--%s %s keeps one row per key: a table with several rows of a key (written in another mode) needs another --%s", flagMode, modeUpdate, flagTable)
	}
	f.indexed = true
	return nil
}

// declType is the declared type of a column whose first value is v.
func declType(v []byte) string {
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

// columnDef is a column's definition in CREATE TABLE and ADD COLUMN.
func columnDef(name string, first []byte) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("field %q: a name with a NUL byte cannot be a SQLite column", name)
	}
	if t := declType(first); t != "" {
		return quoteIdent(name) + " " + t, nil
	}
	return quoteIdent(name), nil
}

// addColumn adds column name, typed by first, to the table.
func (f *sqliteFormat) addColumn(x execer, name string, first []byte) error {
	def, err := columnDef(name, first)
	if err != nil {
		return err
	}
	if _, err := x.Exec(`ALTER TABLE ` + f.qtable + ` ADD COLUMN ` + def); err != nil {
		return fmt.Errorf("adding column %s to table %s: %w", quoteIdent(name), f.qtable, err)
	}
	f.addCol(name)
	return nil
}

// extend makes the table fit rec, inside the batch's transaction: it
// creates the table with a column per field of rec, or adds the columns it
// lacks; then it prepares the statements again.
func (f *sqliteFormat) extend(rec []byte) error {
	if !f.exists {
		if err := f.create(rec); err != nil {
			return err
		}
	} else {
		f.flds.Reset(rec)
		for f.flds.Next() {
			if _, ok := f.column(f.flds.Key()); !ok {
				if err := f.addColumn(f.tx, string(f.flds.Key()), f.flds.Value()); err != nil {
					return err
				}
			}
		}
		if err := f.flds.Err(); err != nil {
			return err
		}
	}
	if f.mode == modeUpdate && !f.indexed {
		if err := f.keyIndex(f.tx); err != nil {
			return err
		}
	}
	f.stale = true
	return f.prepareTx()
}

// create creates the table with the fields of rec as columns, in order.
func (f *sqliteFormat) create(rec []byte) error {
	var q strings.Builder
	q.WriteString(`CREATE TABLE IF NOT EXISTS ` + f.qtable + ` (`)
	f.flds.Reset(rec)
	for f.flds.Next() {
		name := string(f.flds.Key())
		if _, dup := f.column(f.flds.Key()); dup {
			continue // bind says so
		}
		def, err := columnDef(name, f.flds.Value())
		if err != nil {
			return err
		}
		if len(f.cols) > 0 {
			q.WriteString(", ")
		}
		q.WriteString(def)
		f.addCol(name)
	}
	if err := f.flds.Err(); err != nil {
		return err
	}
	for _, k := range f.keys { // update mode: a record without a key field
		if _, ok := f.column([]byte(k)); !ok {
			if len(f.cols) > 0 {
				q.WriteString(", ")
			}
			q.WriteString(quoteIdent(k))
			f.addCol(k)
		}
	}
	if len(f.cols) == 0 {
		return stage.Hint(fmt.Errorf("the record has no fields, and table %s no columns yet", f.qtable),
			"a table is created from its first record, which needs a field: drop empty records with smap --filter 'len($env) > 0'")
	}
	q.WriteString(`)`)
	if _, err := f.tx.Exec(q.String()); err != nil {
		return fmt.Errorf("creating table %s: %w", f.qtable, err)
	}
	f.exists = true
	return nil
}

// statements returns the SQL of the statements for the columns as they
// are: insert (an upsert in update mode), update (update mode) and del
// (complete mode). Parameter ?N is column N, in every statement.
func (f *sqliteFormat) statements() (insert, update, del string) {
	var cols, params, set, where strings.Builder
	for c, name := range f.cols {
		q := quoteIdent(name)
		if c > 0 {
			cols.WriteString(", ")
			params.WriteString(", ")
		}
		cols.WriteString(q)
		fmt.Fprintf(&params, "?%d", c+1)
		if f.mode != modeUpdate {
			continue
		}
		if slices.Contains(f.keyCols, c) {
			if where.Len() > 0 {
				where.WriteString(" AND ")
			}
			fmt.Fprintf(&where, "%s IS ?%d", q, c+1)
			continue
		}
		if set.Len() > 0 {
			set.WriteString(", ")
		}
		fmt.Fprintf(&set, "%s = ?%d", q, c+1)
	}
	insert = `INSERT INTO ` + f.qtable + ` (` + cols.String() + `) VALUES (` + params.String() + `)`
	switch f.mode {
	case modeComplete:
		del = `DELETE FROM ` + f.qtable
	case modeUpdate:
		keys := make([]string, len(f.keyCols))
		for i, c := range f.keyCols {
			keys[i] = quoteIdent(f.cols[c])
		}
		insert += ` ON CONFLICT (` + strings.Join(keys, ", ") + `) `
		if set.Len() == 0 { // only keys: nothing to update
			insert += `DO NOTHING`
			set.WriteString(keys[0] + " = " + keys[0])
		} else {
			// excluded.X is the value the INSERT had for X, the same as ?N.
			insert += `DO UPDATE SET ` + set.String()
		}
		// Why an UPDATE beside the upsert: UNIQUE lets nulls repeat, so a
		// row with a null key never conflicts, yet sreduce has a group for
		// the null key, to be updated as any other.
		update = `UPDATE ` + f.qtable + ` SET ` + set.String() + ` WHERE ` + where.String()
	}
	return insert, update, del
}

// prepare prepares the statements on the database, between batches.
func (f *sqliteFormat) prepare() error {
	f.closeStmts(f.insert, f.update, f.del)
	f.insert, f.update, f.del = nil, nil, nil
	insert, update, del := f.statements()
	var err error
	if f.insert, err = f.db.Prepare(insert); err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	if update != "" {
		if f.update, err = f.db.Prepare(update); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	if del != "" {
		if f.del, err = f.db.Prepare(del); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	f.stale = false
	return nil
}

// prepareTx prepares the statements in the transaction, after a schema
// change; the transaction closes them at its end.
func (f *sqliteFormat) prepareTx() error {
	insert, update, _ := f.statements()
	var err error
	if f.txInsert, err = f.tx.Prepare(insert); err != nil {
		return err
	}
	if update != "" {
		if f.txUpdate, err = f.tx.Prepare(update); err != nil {
			return err
		}
	}
	return nil
}

func (f *sqliteFormat) closeStmts(stmts ...*sql.Stmt) {
	for _, s := range stmts {
		if s != nil {
			s.Close()
		}
	}
}

func (f *sqliteFormat) begin(b stage.Batch) error {
	f.n, f.skip = 0, false
	if f.idem && f.haveLast && b.ID <= f.last {
		// The batch was written, and the checkpoint's commit of it lost
		// (a crash in between): the source replays it. Anything else
		// below the last batch written is another source's batch.
		if b.ID < f.last || b.Time != f.lastTime {
			return stage.Hint(fmt.Errorf("%s: batch %d (time %d) arrived, but table %s holds the batches up to %d (time %d), written with another checkpoint",
				f.path, b.ID, b.Time, f.qtable, f.last, f.lastTime),
				"give ssink the --%s directory that wrote the table, or another --%s; to start the table over, delete its row from %s", flagCheckpoint, flagTable, commitsTable)
		}
		f.skip = true
		return nil
	}
	if !f.loaded {
		if err := f.load(); err != nil {
			return err
		}
	}
	if f.stale && f.exists {
		if err := f.prepare(); err != nil {
			return err
		}
	}
	tx, err := f.db.Begin()
	if err != nil {
		return f.batchError(b, "starting", err)
	}
	f.tx, f.txInsert, f.txUpdate = tx, nil, nil
	if f.insert != nil {
		f.txInsert = tx.Stmt(f.insert)
	}
	if f.update != nil {
		f.txUpdate = tx.Stmt(f.update)
	}
	if f.del != nil {
		if _, err := tx.Stmt(f.del).Exec(); err != nil {
			return f.batchError(b, "emptying table "+f.qtable+" for", err)
		}
	}
	return nil
}

func (f *sqliteFormat) batchError(b stage.Batch, what string, err error) error {
	return fmt.Errorf("%s: %s batch %d: %w", f.path, what, b.ID, err)
}

func (f *sqliteFormat) record(rec []byte) error {
	if f.skip {
		return nil
	}
	for {
		ok, err := f.bind(rec)
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		if ok {
			break
		}
		if err := f.extend(rec); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	if f.txUpdate != nil && f.nullKey() {
		res, err := f.txUpdate.Exec(f.args...)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return f.rowError(err)
		}
		if n > 0 {
			f.n++
			return nil
		}
	}
	if _, err := f.txInsert.Exec(f.args...); err != nil {
		return f.rowError(err)
	}
	f.n++
	return nil
}

func (f *sqliteFormat) rowError(err error) error {
	return fmt.Errorf("%s: writing into table %s: %w", f.path, f.qtable, err)
}

// nullKey reports whether a key of the record in hand is null (or missing).
func (f *sqliteFormat) nullKey() bool {
	for _, c := range f.keyCols {
		if f.args[c] == nil {
			return true
		}
	}
	return false
}

// bind sets f.args to the values of rec by column. ok is false when a field
// of rec has no column yet.
func (f *sqliteFormat) bind(rec []byte) (ok bool, err error) {
	clear(f.args)
	clear(f.set)
	f.flds.Reset(rec)
	for i := 0; f.flds.Next(); i++ {
		k := f.flds.Key()
		c := i
		if i >= len(f.cols) || f.cols[i] != string(k) {
			if c, ok = f.column(k); !ok {
				return false, nil
			}
		}
		if f.set[c] {
			if f.cols[c] == string(k) {
				return false, fmt.Errorf("field %q: the record has it twice", k)
			}
			return false, fmt.Errorf("field %q: the record has a value for column %q already (SQLite column names ignore case)", k, f.cols[c])
		}
		f.set[c] = true
		if f.args[c], err = f.value(f.flds.Value()); err != nil {
			return false, fmt.Errorf("field %q: %w", k, err)
		}
	}
	if !f.exists { // {} as the first record
		return false, f.flds.Err()
	}
	return true, f.flds.Err()
}

// value converts a field's value for SQLite. Why a string where the record
// has the bytes already: database/sql binds a []byte as a BLOB, and text
// must be TEXT. Every value goes into an any, which database/sql wants.
func (f *sqliteFormat) value(v []byte) (any, error) {
	switch record.KindOf(v) {
	case record.KindNil:
		return nil, nil
	case record.KindBool:
		if v[0] == 0xc3 { // msgpack true
			return int64(1), nil
		}
		return int64(0), nil
	case record.KindInt:
		i, _ := record.Int(v)
		return i, nil
	case record.KindUint:
		return nil, fmt.Errorf("%s: SQLite integers have 64 bits with a sign", record.FormatText(f.buf[:0], v))
	case record.KindFloat:
		x, _ := record.Float(v)
		return x, nil
	case record.KindString:
		s, _ := record.Str(v)
		return string(s), nil
	case record.KindBinary:
		b, _ := record.Str(v)
		return b, nil // the driver copies it
	case record.KindTime:
		t, ok := record.Time(v)
		if !ok {
			return nil, record.ErrInvalid
		}
		f.buf = t.AppendFormat(f.buf[:0], time.RFC3339Nano)
		return string(f.buf), nil
	case record.KindMap, record.KindArray:
		var err error
		if f.buf, _, err = record.AppendJSON(f.buf[:0], v); err != nil {
			return nil, err
		}
		return string(f.buf), nil
	case record.KindExt:
		return nil, errors.New("a msgpack extension value has no SQLite type")
	}
	return nil, record.ErrInvalid
}

func (f *sqliteFormat) end(b stage.Batch, _ uint64) error {
	if f.skip {
		return nil
	}
	if f.idem {
		if _, err := f.tx.Stmt(f.mark).Exec(f.table, int64(b.ID), b.Time); err != nil {
			return f.batchError(b, "recording", err)
		}
	}
	err := f.tx.Commit()
	f.tx = nil
	if err != nil {
		f.loaded = false
		return f.batchError(b, "committing", err)
	}
	if f.idem {
		f.last, f.lastTime, f.haveLast = b.ID, b.Time, true
	}
	return nil
}

// flush rolls back the batch in hand: a batch not ended is not written.
// (The error that ended it is the one to report; a failed rollback leaves
// nothing either, as SQLite discards a transaction not committed.)
func (f *sqliteFormat) flush() error {
	if f.tx != nil {
		f.tx.Rollback()
		f.tx, f.loaded = nil, false // a rollback may undo CREATE and ALTER
	}
	return nil
}

// written is the number of rows the batch wrote: none when it was skipped.
func (f *sqliteFormat) written() uint64 { return f.n }

// Close closes the database.
func (f *sqliteFormat) Close() error {
	if f.db == nil {
		return nil
	}
	f.flush()
	f.closeStmts(f.insert, f.update, f.del, f.mark)
	err := f.db.Close()
	f.db = nil
	if err != nil {
		return fmt.Errorf("%s: closing: %w", f.path, err)
	}
	return nil
}

// Package sqlsink is ssink's SQL destination: each batch into a table of a
// database in one transaction, the table made and extended from the
// records, in Spark's output modes (append, complete, update), exactly once
// with a checkpoint. The logic is one for all databases; each database is a
// dialect (SQLite, PostgreSQL) and a Destination of its own.
package sqlsink

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
)

// The output modes of --sqlite and --postgres (--mode): Spark's.
const (
	ModeAppend   = "append"
	ModeComplete = "complete"
	ModeUpdate   = "update"
)

// commitsTable is ssink's table in the database with --checkpoint: the last
// batch written into each table, updated in the batch's own transaction.
const commitsTable = "dstream_commits"

// A dialect is what the SQL sink knows of one database: how to reach it and
// where its SQL differs. The SQL sink's logic is one for all of them; each
// database has a dialect value (sqliteDialect, postgresDialect).
type dialect struct {
	name     string // "SQLite": in messages
	flag     string // the flag naming the database
	param    byte   // parameter N is written param N: ?1, $1
	reserved string // the prefix of the database's own table names
	foldCase bool   // column names ignore ASCII case
	noEmpty  bool   // no column may have the empty name
	maxName  int    // the longest name in bytes, or 0 for any
	intType  string // a column of 64-bit integers, in dstream_commits

	// columns lists the columns of the table named by parameter 1, in
	// order: their names and declared types.
	columns string

	// declType is the declared type of a column whose first value is v; ""
	// declares none.
	declType func(v []byte) string

	// boolInt binds booleans as integers 0 and 1, timeText binds times as
	// RFC 3339 text with nanoseconds; else as bool and time.Time.
	boolInt, timeText bool

	// textType and jsonType (lower case) are declared types whose columns
	// take any value as its text or its JSON, for a database that will not
	// convert a value to the column's type itself; "" for none.
	textType, jsonType string

	// copy, if not nil, writes data, rows encoded by appendRow, into the
	// table with the database's bulk protocol (PostgreSQL's COPY) on conn,
	// in the transaction open on it: the rows of a batch are buffered and
	// written so, copyChunk at a time (in update mode, into upsertTable).
	copy func(ctx context.Context, conn *sql.Conn, table string, cols []string, data []byte) error

	// merge, if not "", is a query telling whether the database has
	// MERGE, which update mode's COPY uses (upsertRows).
	merge string

	// lockTable, if not "", is a statement taking a lock on the table's
	// name ($1) until the transaction ends: the copies of a scaled-out
	// pipeline share a table, and of two that find it missing at once one
	// creates it while the other waits, then sees it.
	lockTable string

	// prepareRaw, if not nil, prepares a statement of a row on the
	// driver's connection dc below the driver's interface (SQLite's C
	// API), or returns nil, nil when it cannot: rawKind tells the kinds
	// of value it binds from the record itself, with no value made.
	prepareRaw func(dc any, query string) (rawStmt, error)
	rawKind    func(k record.Kind) bool

	// open opens the database target (the flag's value) and checks it can
	// be reached; its errors name the database and hint at a fix.
	open func(target string) (*sql.DB, error)

	// display names target in messages; an error is a usage error.
	display func(target string) (string, error)
}

// tableWriter, the sink.Writer of the SQL sink, writes each batch into a
// table of a database, in one transaction committed at the batch end. The
// table is made from the records: a column per field, created on the first
// record and added to (ALTER TABLE ADD COLUMN) when a field without a
// column comes.
type tableWriter struct {
	d      *dialect
	target string // --sqlite or --postgres, as given
	path   string // the database in messages: the file, the URL without its password
	table  string // --table
	mode   string // --mode
	keys   []string
	idem   bool   // --checkpoint: record and skip batches by id
	ckpt   string // --checkpoint: the directory's id, which owns the table's row in commitsTable
	// row is the table's row in commitsTable: the table's name, or behind
	// a scaled-out source (checkpoint.ScaleOutFile) TABLE@CKPT, one row per
	// copy of the pipeline, each with batch ids of its own.
	row       string
	rowLooked bool   // Begin has looked for checkpoint.ScaleOutFile
	ckptDir   string // --checkpoint
	db        *sql.DB
	qtable    string // table, quoted

	// The table as it stands. load reads it; after a rollback, which may
	// undo a CREATE or ALTER, it is read again.
	loaded  bool
	exists  bool
	cols    []string
	types   []string       // the declared types of cols, lower case
	index   map[string]int // column by name, ASCII-folded with d.foldCase
	indexed bool           // update: the UNIQUE index on keys is there
	keyCols []int          // update: the columns of keys

	// Statements for cols, prepared on the database and reused by every
	// batch: stale after the table is read again. The statements of a row
	// are the driver's own, on the one connection; a schema change inside
	// a batch prepares them again there and then.
	stale  bool
	insert *rowStmt  // INSERT, an upsert in update mode
	update *rowStmt  // update mode: UPDATE by key, for keys with a null
	del    *sql.Stmt // complete mode: DELETE all
	mark   *sql.Stmt // --checkpoint: the batch into commitsTable

	// Recorded in commitsTable (with --checkpoint): the last batch written.
	last     uint64
	lastTime int64
	haveLast bool

	// The one connection the batches' transactions run on; with the
	// dialect's copy, the rows bound and not yet copied, and the state of
	// the copies.
	conn   *sql.Conn
	data   []byte         // the rows, encoded by appendRow
	nrows  int            // in data
	first  uint64         // the number in the batch of the first record of the rows
	seen   map[string]int // update mode: the row of each key among the rows
	starts []int          // update mode: where each row starts in data
	dead   []bool         // update mode: each row, replaced by a later one of its key
	ndead  int
	spare  []byte    // data, for the next chunk
	pg     copyState // what appendRow keeps of the table
	// the COPY under way, if any: the connection is its own
	inflight *copying
	merge    bool // update mode: the server has MERGE
	// update mode: rows are in upsertTable, from the record stagedFirst on
	staged      bool
	stagedFirst uint64
	direct      bool // update mode: no key has conflicted: COPY into the table

	// The batch in hand.
	tx   *sql.Tx
	skip bool   // written before: the batch writes nothing
	n    uint64 // rows written

	args []any    // the record in hand by column
	raw  [][]byte // the record in hand by column, as it has them; nil for none
	set  []bool   // the columns the record in hand has set
	flds record.Fields
	buf  []byte // text of a time, JSON of a map or list; a folded name
}

// openSQL returns the Writer of the SQL sink into the database of dialect d.
func openSQL(o *sink.Options, d *dialect) (sink.Writer, error) {
	f, err := newSQL(o, d)
	if err != nil {
		return nil, err // not a nil *tableWriter in a Writer
	}
	return f, nil
}

// newSQL checks the options of the SQL sink into the database of dialect
// d. It opens nothing (Start does), so that a usage error creates nothing.
func newSQL(o *sink.Options, d *dialect) (*tableWriter, error) {
	f := &tableWriter{d: d, target: o.Target, table: o.Table, mode: o.Mode}
	var err error
	if f.path, err = d.display(f.target); err != nil {
		return nil, stage.UsageError("--%s: %v", d.flag, err)
	}
	if err := d.checkTable(f.table); err != nil {
		return nil, stage.UsageError("--table %q: %v", f.table, err)
	}
	f.keys = stage.ParseList(o.Keys...)
	switch f.mode {
	case ModeAppend, ModeComplete:
		if len(o.Keys) > 0 {
			return nil, stage.UsageError("--key applies to --mode %s, not %s", ModeUpdate, f.mode)
		}
	case ModeUpdate:
		if len(f.keys) == 0 {
			return nil, stage.Hint(stage.UsageError("--mode %s needs --key", ModeUpdate),
				"give the fields that identify a row, as to sreduce: --key F[,F...]")
		}
		for i, k := range f.keys {
			if slices.Contains(f.keys[:i], k) {
				return nil, stage.UsageError("--key names %q twice", k)
			}
		}
	default:
		return nil, stage.UsageError("unknown --mode %q: want %s, %s or %s", f.mode, ModeAppend, ModeComplete, ModeUpdate)
	}
	f.qtable = quoteIdent(f.table)
	f.index = map[string]int{}
	f.direct = true
	return f, nil
}

// checkTable checks a --table name: an identifier (letters, digits and _,
// not starting with a digit) that neither the database nor ssink keeps for
// itself. Why so strict when every name is quoted: a name that needs quotes
// in every query of every user is a trap, and a field name cannot be chosen
// so it is quoted, but a table name can.
func (d *dialect) checkTable(name string) error {
	if name == "" {
		return errors.New("want a table name")
	}
	for i, r := range name {
		if r != '_' && !unicode.IsLetter(r) && (i == 0 || !unicode.IsDigit(r)) {
			return errors.New("not an identifier: want letters, digits and _, not starting with a digit")
		}
	}
	switch low := strings.ToLower(name); {
	case strings.HasPrefix(low, d.reserved):
		return fmt.Errorf("names starting with %s are %s's own", d.reserved, d.name)
	case low == commitsTable:
		return errors.New("ssink keeps its commits there")
	case d.maxName > 0 && len(name) > d.maxName:
		return fmt.Errorf("%s names have at most %d bytes", d.name, d.maxName)
	}
	return nil
}

// quoteIdent quotes an identifier for SQL, so that any name is one: a
// keyword (order), a space, a quote.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Start opens the database, and with ckpt, the id of the --checkpoint
// directory dir, reads the last batch written into the table.
func (f *tableWriter) Start(ckpt, dir string) error {
	f.idem, f.ckpt, f.ckptDir = ckpt != "", ckpt, dir
	f.row = f.commitsRow()
	var err error
	if f.db, err = f.d.open(f.target); err != nil {
		return err
	}
	// One connection: a batch is one transaction at a time, and the
	// statements prepared on it serve every batch (SQLite has one writer
	// at a time anyway).
	f.db.SetMaxOpenConns(1)
	// COPY and the statements of a row run on the connection itself
	// (sql.Conn.Raw): the batches' transactions and every statement go
	// through it, the pool's one.
	if f.conn, err = f.db.Conn(context.Background()); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", f.path, err)
	}
	if f.mode == ModeUpdate && f.d.merge != "" {
		if err := f.q().QueryRowContext(context.Background(), f.d.merge).Scan(&f.merge); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", f.path, err)
		}
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

// params appends parameter n (from 1) to b as the database writes it.
func (f *tableWriter) params(b *strings.Builder, n int) {
	fmt.Fprintf(b, "%c%d", f.d.param, n)
}

// openCommits creates commitsTable if needed and reads the table's row.
// The row belongs to one checkpoint (the column ckpt, its id): a second
// checkpoint writing into the table, at once or later, is refused, since
// its batch ids are not the first one's.
func (f *tableWriter) openCommits() error {
	if !f.idem {
		return nil
	}
	create := `CREATE TABLE IF NOT EXISTS ` + commitsTable + ` (tbl TEXT PRIMARY KEY, batch_id ` + f.d.intType + `, batch_time ` + f.d.intType + `, ckpt TEXT)`
	_, err := f.q().ExecContext(context.Background(), create)
	if err != nil {
		// Why again: two sinks creating the table at once in PostgreSQL
		// may both find it missing, and the second fail; it is there now.
		_, err = f.q().ExecContext(context.Background(), create)
	}
	if err != nil {
		return fmt.Errorf("%s: creating %s: %w", f.path, commitsTable, err)
	}
	var q strings.Builder
	q.WriteString(`SELECT batch_id, batch_time, ckpt FROM ` + commitsTable + ` WHERE tbl = `)
	f.params(&q, 1)
	var id int64
	var owner sql.NullString
	err = f.q().QueryRowContext(context.Background(), q.String(), f.row).Scan(&id, &f.lastTime, &owner)
	if err != nil && !errors.Is(err, sql.ErrNoRows) && strings.Contains(err.Error(), "ckpt") {
		// A table of an earlier version, without the column: add it; its
		// row is then the next checkpoint's to claim.
		if _, err = f.q().ExecContext(context.Background(), `ALTER TABLE `+commitsTable+` ADD COLUMN ckpt TEXT`); err == nil {
			err = f.q().QueryRowContext(context.Background(), q.String(), f.row).Scan(&id, &f.lastTime, &owner)
		}
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("%s: reading %s: %w", f.path, commitsTable, err)
	case owner.Valid && owner.String != f.ckpt:
		return f.foreign()
	default:
		f.last, f.haveLast = uint64(id), true
	}
	q.Reset()
	q.WriteString(`INSERT INTO ` + commitsTable + ` (tbl, batch_id, batch_time, ckpt) VALUES (`)
	for n := 1; n <= 4; n++ {
		if n > 1 {
			q.WriteString(", ")
		}
		f.params(&q, n)
	}
	q.WriteString(`)
		ON CONFLICT (tbl) DO UPDATE SET batch_id = excluded.batch_id, batch_time = excluded.batch_time, ckpt = excluded.ckpt
		WHERE ` + commitsTable + `.ckpt = excluded.ckpt OR ` + commitsTable + `.ckpt IS NULL`)
	f.closeStmts(f.mark) // of the row an earlier call chose (Begin)
	if f.mark, err = f.q().PrepareContext(context.Background(), q.String()); err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	return nil
}

// commitsRow is the table's row in commitsTable (see tableWriter.row).
func (f *tableWriter) commitsRow() string {
	if _, err := os.Stat(filepath.Join(f.ckptDir, checkpoint.ScaleOutFile)); err == nil {
		return f.table + "@" + f.ckpt
	}
	return f.table
}

// foreign is the error of a table whose batches another checkpoint writes.
func (f *tableWriter) foreign() error {
	return stage.Hint(fmt.Errorf("%s: table %s is written with another checkpoint than %s (its row in %s names another)", f.path, f.qtable, f.ckptDir, commitsTable),
		"give ssink the --checkpoint directory that writes the table, or another --table; to start the table over, delete its row from %s", commitsTable)
}

// load reads the table's columns, if it exists. In update mode it makes
// sure of the key columns and their UNIQUE index, outside any batch.
func (f *tableWriter) load() error { return f.loadWith(f.q()) }

// loadWith is load through q (the batch's transaction, or the connection).
func (f *tableWriter) loadWith(q queryExecer) error {
	rows, err := q.QueryContext(context.Background(), f.d.columns, f.table)
	if err != nil {
		return fmt.Errorf("%s: reading the columns of table %s: %w", f.path, f.qtable, err)
	}
	f.cols, f.types, f.args, f.raw, f.set = f.cols[:0], f.types[:0], f.args[:0], f.raw[:0], f.set[:0]
	f.keyCols, f.indexed = f.keyCols[:0], false
	f.pg.oids = f.pg.oids[:0]
	clear(f.index)
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return fmt.Errorf("%s: reading the columns of table %s: %w", f.path, f.qtable, err)
		}
		f.addCol(name, typ)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: reading the columns of table %s: %w", f.path, f.qtable, err)
	}
	f.exists, f.loaded, f.stale = len(f.cols) > 0, true, true
	if f.exists && f.mode == ModeUpdate {
		if err := f.keyIndex(q); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	return nil
}

// addCol appends a column to the table's description.
func (f *tableWriter) addCol(name, typ string) {
	f.index[string(f.foldName([]byte(name)))] = len(f.cols)
	f.cols = append(f.cols, name)
	f.types = append(f.types, strings.ToLower(typ))
	f.args = append(f.args, nil)
	f.raw = append(f.raw, nil)
	f.set = append(f.set, false)
	f.pg.oids = f.pg.oids[:0]
}

// column finds the column of field k, as the database does: in SQLite
// ignoring ASCII case.
func (f *tableWriter) column(k []byte) (int, bool) {
	c, ok := f.index[string(f.foldName(k))]
	return c, ok
}

// foldName returns name as the index has it, in f.buf when folded.
func (f *tableWriter) foldName(name []byte) []byte {
	if !f.d.foldCase {
		return name
	}
	f.buf = f.buf[:0]
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		f.buf = append(f.buf, c)
	}
	return f.buf
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// queryExecer is the connection or the batch's transaction, as load reads
// the table through either.
type queryExecer interface {
	execer
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// keyIndex adds the key columns the table lacks and creates the UNIQUE
// index that INSERT ... ON CONFLICT needs (update mode).
func (f *tableWriter) keyIndex(x execer) error {
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
	if _, err := x.ExecContext(context.Background(), q.String()); err != nil {
		return stage.Hint(fmt.Errorf("creating a UNIQUE index on %s of table %s: %w", strings.Join(f.keys, ", "), f.qtable, err),
			"--mode %s keeps one row per key: a table with several rows of a key (written in another mode) needs another --table", ModeUpdate)
	}
	f.indexed = true
	return nil
}

// columnDef is a column's definition in CREATE TABLE and ADD COLUMN, and
// its declared type.
func (f *tableWriter) columnDef(name string, first []byte) (def, typ string, err error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", "", fmt.Errorf("field %q: a name with a NUL byte cannot be a %s column", name, f.d.name)
	}
	if name == "" && f.d.noEmpty {
		return "", "", fmt.Errorf("field %q: a %s column needs a name", name, f.d.name)
	}
	if f.d.maxName > 0 && len(name) > f.d.maxName {
		return "", "", fmt.Errorf("field %q: %s column names have at most %d bytes", name, f.d.name, f.d.maxName)
	}
	if typ = f.d.declType(first); typ != "" {
		return quoteIdent(name) + " " + typ, typ, nil
	}
	return quoteIdent(name), "", nil
}

// addColumn adds column name, typed by first, to the table.
func (f *tableWriter) addColumn(x execer, name string, first []byte) error {
	def, typ, err := f.columnDef(name, first)
	if err != nil {
		return err
	}
	if _, err := x.ExecContext(context.Background(), `ALTER TABLE `+f.qtable+` ADD COLUMN `+def); err != nil {
		return fmt.Errorf("adding column %s to table %s: %w", quoteIdent(name), f.qtable, err)
	}
	f.addCol(name, typ)
	return nil
}

// extend makes the table fit rec, inside the batch's transaction: it
// creates the table with a column per field of rec, or adds the columns it
// lacks; then it prepares the statements again.
func (f *tableWriter) extend(rec []byte) error {
	if !f.exists && f.d.lockTable != "" {
		if _, err := f.tx.Exec(f.d.lockTable, f.table); err != nil {
			return fmt.Errorf("locking the name of table %s: %w", f.qtable, err)
		}
		if err := f.loadWith(f.tx); err != nil {
			return err
		}
	}
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
	if f.mode == ModeUpdate && !f.indexed {
		if err := f.keyIndex(f.tx); err != nil {
			return err
		}
	}
	f.stale = true
	return f.prepareRows()
}

// create creates the table with the fields of rec as columns, in order.
func (f *tableWriter) create(rec []byte) error {
	var q strings.Builder
	q.WriteString(`CREATE TABLE IF NOT EXISTS ` + f.qtable + ` (`)
	f.flds.Reset(rec)
	for f.flds.Next() {
		name := string(f.flds.Key())
		if _, dup := f.column(f.flds.Key()); dup {
			continue // bind says so
		}
		def, typ, err := f.columnDef(name, f.flds.Value())
		if err != nil {
			return err
		}
		if len(f.cols) > 0 {
			q.WriteString(", ")
		}
		q.WriteString(def)
		f.addCol(name, typ)
	}
	if err := f.flds.Err(); err != nil {
		return err
	}
	for _, k := range f.keys { // update mode: a record without a key field
		if _, ok := f.column([]byte(k)); !ok {
			def, typ, err := f.columnDef(k, nil)
			if err != nil {
				return err
			}
			if len(f.cols) > 0 {
				q.WriteString(", ")
			}
			q.WriteString(def)
			f.addCol(k, typ)
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
// (complete mode). Parameter N is column N, in every statement; the
// INSERT has them in order, and in SQLite unnumbered: modernc.org/sqlite
// reads the name of each numbered parameter of each row into a new Go
// string.
func (f *tableWriter) statements() (insert, update, del string) {
	var cols, params, set, excluded, where strings.Builder
	for c, name := range f.cols {
		q := quoteIdent(name)
		if c > 0 {
			cols.WriteString(", ")
			params.WriteString(", ")
		}
		cols.WriteString(q)
		if f.d.param == '?' {
			params.WriteByte('?')
		} else {
			f.params(&params, c+1)
		}
		if f.mode != ModeUpdate {
			continue
		}
		if slices.Contains(f.keyCols, c) {
			if where.Len() > 0 {
				where.WriteString(" AND ")
			}
			where.WriteString(q + " IS NOT DISTINCT FROM ")
			f.params(&where, c+1)
			continue
		}
		if set.Len() > 0 {
			set.WriteString(", ")
			excluded.WriteString(", ")
		}
		set.WriteString(q + " = ")
		f.params(&set, c+1)
		excluded.WriteString(q + " = excluded." + q)
	}
	insert = `INSERT INTO ` + f.qtable + ` (` + cols.String() + `) VALUES (` + params.String() + `)`
	switch f.mode {
	case ModeComplete:
		del = `DELETE FROM ` + f.qtable
	case ModeUpdate:
		keys := make([]string, len(f.keyCols))
		for i, c := range f.keyCols {
			keys[i] = quoteIdent(f.cols[c])
		}
		insert += ` ON CONFLICT (` + strings.Join(keys, ", ") + `) `
		if set.Len() == 0 { // only keys: nothing to update
			insert += `DO NOTHING`
			set.WriteString(keys[0] + " = " + keys[0])
		} else {
			// excluded.X is the value the INSERT had for X.
			insert += `DO UPDATE SET ` + excluded.String()
		}
		// Why an UPDATE beside the upsert: UNIQUE lets nulls repeat, so a
		// row with a null key never conflicts, yet sreduce has a group for
		// the null key, to be updated as any other.
		update = `UPDATE ` + f.qtable + ` SET ` + set.String() + ` WHERE ` + where.String()
	}
	return insert, update, del
}

// prepare prepares the statements on the database, between batches.
func (f *tableWriter) prepare() error {
	f.closeStmts(f.del)
	f.del = nil
	if err := f.prepareRows(); err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	if _, _, del := f.statements(); del != "" {
		var err error
		if f.del, err = f.q().PrepareContext(context.Background(), del); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	f.stale = false
	return nil
}

// prepareRows prepares the statements of a row for the columns as they
// are, on the connection, in a batch or between batches.
func (f *tableWriter) prepareRows() error {
	f.closeRows()
	insert, update, _ := f.statements()
	var err error
	if f.insert, err = f.prepareRow(insert); err != nil {
		return err
	}
	if update != "" {
		if f.update, err = f.prepareRow(update); err != nil {
			return err
		}
	}
	return nil
}

// closeRows closes the statements of a row.
func (f *tableWriter) closeRows() {
	for _, r := range []*rowStmt{f.insert, f.update} {
		if r != nil {
			f.conn.Raw(func(any) error { return r.c.Close() })
		}
	}
	f.insert, f.update = nil, nil
}

// A rowStmt is a statement run once a row (INSERT, UPDATE), prepared on the
// driver's connection itself and run there (sql.Conn.Raw), with its
// arguments. Why not a sql.Stmt: database/sql's layers (finding the
// statement's connection, converting each argument, which the drivers
// take as they are, and the context, locks and result of each call) were
// a sixth of SQLite's time a row.
type rowStmt struct {
	s    driver.StmtExecContext
	c    io.Closer
	args []driver.NamedValue
	raw  rawStmt // the dialect's prepareRaw made it: s is nil
}

// A rawStmt is a statement of a row below the driver's interface
// (dialect.prepareRaw). exec runs it with the record in hand: column c's
// value is f.args[c] if not nil, else f.raw[c] (nil for NULL), of a kind
// the dialect's rawKind takes; changes tells it to return the number of
// rows changed.
type rawStmt interface {
	exec(f *tableWriter, changes bool) (n int64, err error)
	Close() error
}

// prepareRow prepares query on the connection.
func (f *tableWriter) prepareRow(query string) (*rowStmt, error) {
	r := &rowStmt{}
	err := f.conn.Raw(func(dc any) error {
		if f.d.prepareRaw != nil {
			raw, err := f.d.prepareRaw(dc, query)
			if err != nil || raw != nil {
				r.raw, r.c = raw, raw
				return err
			}
		}
		p, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("the %s driver cannot prepare with a context", f.d.name)
		}
		s, err := p.PrepareContext(context.Background(), query)
		if err != nil {
			return err
		}
		r.c = s
		if r.s, ok = s.(driver.StmtExecContext); !ok {
			s.Close()
			return fmt.Errorf("the %s driver cannot run a statement with a context", f.d.name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// execRow runs r with the record in hand (f.args) and returns the number
// of rows it changed.
func (f *tableWriter) execRow(r *rowStmt) (n int64, err error) {
	if r.raw != nil {
		err = f.conn.Raw(func(any) error {
			n, err = r.raw.exec(f, r == f.update)
			return err
		})
		return n, err
	}
	r.args = r.args[:0]
	for i, v := range f.args {
		r.args = append(r.args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	err = f.conn.Raw(func(any) error {
		res, err := r.s.ExecContext(context.Background(), r.args)
		if err == nil && r == f.update {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n, err
}

func (f *tableWriter) closeStmts(stmts ...*sql.Stmt) {
	for _, s := range stmts {
		if s != nil {
			s.Close()
		}
	}
}

func (f *tableWriter) Begin(b stage.Batch) error {
	f.n, f.skip = 0, false
	if f.idem && !f.rowLooked {
		// The source has started by now: a scaled-out one has said so.
		f.rowLooked = true
		if row := f.commitsRow(); row != f.row {
			f.row = row
			if err := f.openCommits(); err != nil {
				return err
			}
		}
	}
	if f.idem && f.haveLast && b.ID <= f.last {
		// The batch was written, and the checkpoint's commit of it lost
		// (a crash in between, or commits removed): the source replays it.
		// The batch of the last id written must have its time; anything
		// else is another source's batch.
		if b.ID == f.last && b.Time != f.lastTime {
			return stage.Hint(fmt.Errorf("%s: batch %d (time %d) arrived, but table %s holds the batches up to %d (time %d), written with another checkpoint",
				f.path, b.ID, b.Time, f.qtable, f.last, f.lastTime),
				"give ssink the --checkpoint directory that wrote the table, or another --table; to start the table over, delete its row from %s", commitsTable)
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
	tx, err := f.q().BeginTx(context.Background(), nil)
	if err != nil {
		return f.batchError(b, "starting", err)
	}
	f.tx = tx
	if f.del != nil {
		if _, err := tx.Stmt(f.del).Exec(); err != nil {
			return f.batchError(b, "emptying table "+f.qtable+" for", err)
		}
	}
	return nil
}

func (f *tableWriter) batchError(b stage.Batch, what string, err error) error {
	return fmt.Errorf("%s: %s batch %d: %w", f.path, what, b.ID, err)
}

func (f *tableWriter) Record(rec []byte) error {
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
		// The rows bound so far go in with the columns they were bound
		// to, before a column is added.
		if err := f.flushRows(); err != nil {
			return err
		}
		if err := f.extend(rec); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	if f.copying() {
		if !(f.mode == ModeUpdate && f.nullKey()) {
			return f.keepRow()
		}
		// A row with a null key takes the statement path below: the
		// upsert's join, as ON CONFLICT, never matches a null.
		for c, v := range f.raw {
			if v == nil {
				continue // a field the record lacks: NULL
			}
			var err error
			if f.args[c], err = f.value(v, f.types[c]); err != nil {
				return fmt.Errorf("%s: field %q: %w", f.path, f.cols[c], err)
			}
		}
	}
	if f.update != nil && f.nullKey() {
		if err := f.copyWait(); err != nil {
			return err
		}
		n, err := f.execRow(f.update)
		if err != nil {
			return f.rowError(err)
		}
		if n > 0 {
			f.n++
			return nil
		}
	}
	if _, err := f.execRow(f.insert); err != nil {
		return f.rowError(err)
	}
	f.n++
	return nil
}

// querier is what the writer asks of the database: *sql.DB, or the one
// *sql.Conn of a dialect that copies.
type querier interface {
	queryExecer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// q is where the writer's statements go.
func (f *tableWriter) q() querier {
	if f.conn != nil {
		return f.conn
	}
	return f.db
}

// keepRow keeps the record in hand for the next COPY, encoded. In update
// mode it keeps the last record of a key only (the rows of one upsert must
// have distinct keys: an earlier row of the key is marked dead).
func (f *tableWriter) keepRow() error {
	if f.nrows == 0 {
		f.first = f.n + 1
	}
	f.n++
	if err := f.describe(); err != nil {
		return err
	}
	start := len(f.data)
	var err error
	if f.data, err = f.appendRow(f.data); err != nil {
		f.data = f.data[:start]
		var ce *copyError
		if errors.As(err, &ce) {
			return fmt.Errorf("%s: writing records %d to %d into table %s (COPY): %w", f.path, f.first, f.n, f.qtable, ce.err)
		}
		return fmt.Errorf("%s: %w", f.path, err)
	}
	if f.mode == ModeUpdate {
		if f.seen == nil {
			f.seen = map[string]int{}
		}
		if i, ok := f.seen[string(f.pg.key)]; ok {
			f.dead[i] = true
			f.ndead++
		}
		f.seen[string(f.pg.key)] = f.nrows
		f.starts = append(f.starts, start)
		f.dead = append(f.dead, false)
	}
	f.nrows++
	if f.nrows >= copyChunk || len(f.data) >= copyBytes {
		return f.copyRows()
	}
	return nil
}

// compact drops the dead rows from f.data, moving the others up.
func (f *tableWriter) compact() {
	w := 0
	for i, start := range f.starts {
		end := len(f.data)
		if i+1 < len(f.starts) {
			end = f.starts[i+1]
		}
		if !f.dead[i] {
			w += copy(f.data[w:], f.data[start:end])
		}
	}
	f.data = f.data[:w]
}

// copying tells that the batch's rows go in by the dialect's bulk copy.
func (f *tableWriter) copying() bool { return f.d.copy != nil }

// copyChunk and copyBytes bound the rows buffered for one COPY: the memory
// a batch holds besides what the database does.
const (
	copyChunk = 10000
	copyBytes = 4 << 20
)

// upsertTable is the temporary table update mode copies rows into, to
// upsert them from in one statement; upsertOrd its column of the rows'
// order (a sequence: COPY takes the rows in the records' order).
const (
	upsertTable = "dstream_upsert"
	upsertOrd   = "dstream_ord"
)

// upsertChunk writes data, the rows of records first on (update mode), on
// copyRows' goroutine. As long as no key of the writer's rows has been in
// the table, it copies them straight into it, in a savepoint: rows of new
// keys only need no upsert (1 M new keys: COPY into the table and its
// index as psql's \copy does, instead of COPY into a temporary table and a
// MERGE, 1.9x that in the server's time). A key the table has (a unique
// violation) rolls the COPY back, and this chunk and the writer's next
// ones go into the temporary table (stage), for upsertRows. (Never after a
// chunk is staged: a later chunk copied into the table would be
// overwritten by an earlier one's rows at the MERGE.)
func (f *tableWriter) upsertChunk(cols []string, data []byte, first uint64) error {
	ctx := context.Background()
	if f.direct && !f.staged {
		if _, err := f.tx.ExecContext(ctx, `SAVEPOINT `+upsertTable); err != nil {
			return err
		}
		err := f.d.copy(ctx, f.conn, f.table, cols, data)
		if err == nil {
			_, err = f.tx.ExecContext(ctx, `RELEASE SAVEPOINT `+upsertTable)
			return err
		}
		if !pgUnique(err) {
			return err
		}
		if _, err := f.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT `+upsertTable+`; RELEASE SAVEPOINT `+upsertTable); err != nil {
			return err
		}
		f.direct = false
	}
	if err := f.stage(first); err != nil {
		return err
	}
	return f.d.copy(ctx, f.conn, upsertTable, cols, data)
}

// stage makes the temporary table that upsertChunk copies the rows into,
// of the target's columns, in the batch's transaction and dropped with
// it, for upsertRows to take all together.
func (f *tableWriter) stage(first uint64) error {
	if f.staged {
		return nil
	}
	create := `DROP TABLE IF EXISTS pg_temp.` + upsertTable + `; CREATE TEMP TABLE ` + upsertTable +
		` (LIKE ` + f.qtable + `, ` + upsertOrd + ` BIGSERIAL) ON COMMIT DROP`
	if _, err := f.tx.ExecContext(context.Background(), create); err != nil {
		return err
	}
	f.staged, f.stagedFirst = true, first
	return nil
}

// upsertRows writes the rows copied into upsertTable (update mode) with one
// statement that inserts the rows of new keys and updates the others:
// MERGE (PostgreSQL 15 and later), else INSERT ... ON CONFLICT DO UPDATE.
// Why MERGE: it joins the rows with the table, where ON CONFLICT inserts
// each row speculatively and checks it; 1 M new keys took 1.2 s against
// 1.9 s. Why all the batch's rows in one statement, not a chunk at a time:
// the join of each chunk may scan the whole table (a hash join), which
// made chunks of 10k rows quadratic. keepRow has made the keys of a chunk
// distinct (by their bytes as COPY sends them), so that the server need
// not sort the rows. In a savepoint: if the statement finds a key twice
// after all (in two chunks, or as values the database finds equal and
// sends differently, as two texts of one JSONB object) or a row another
// writer has just inserted (MERGE does not wait on it as ON CONFLICT
// does), the rows go in by the slower and surer INSERT of the last row of
// each key (DISTINCT ON) ... ON CONFLICT.
func (f *tableWriter) upsertRows() error {
	if !f.staged {
		return nil
	}
	f.staged = false
	ctx := context.Background()
	var cols, src, on, keys, set, setMerge []string
	for c, name := range f.cols {
		q := quoteIdent(name)
		cols = append(cols, q)
		src = append(src, "s."+q)
		if slices.Contains(f.keyCols, c) {
			keys = append(keys, q)
			on = append(on, "t."+q+" = s."+q)
		} else {
			set = append(set, q+" = EXCLUDED."+q)
			setMerge = append(setMerge, q+" = s."+q)
		}
	}
	conflict, matched := "DO NOTHING", "DO NOTHING"
	if len(set) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(set, ", ")
		matched = "UPDATE SET " + strings.Join(setMerge, ", ")
	}
	k, c := strings.Join(keys, ", "), strings.Join(cols, ", ")
	upsert := `INSERT INTO ` + f.qtable + ` (` + c + `) SELECT ` + c + ` FROM ` + upsertTable + ` ON CONFLICT (` + k + `) ` + conflict
	if f.merge {
		upsert = `MERGE INTO ` + f.qtable + ` AS t USING ` + upsertTable + ` AS s ON ` + strings.Join(on, " AND ") +
			` WHEN MATCHED THEN ` + matched + ` WHEN NOT MATCHED THEN INSERT (` + c + `) VALUES (` + strings.Join(src, ", ") + `)`
	}
	_, err := f.tx.ExecContext(ctx, `SAVEPOINT `+upsertTable+`; `+upsert+`; RELEASE SAVEPOINT `+upsertTable)
	if !pgRetry(err) {
		return err
	}
	_, err = f.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT `+upsertTable+`; RELEASE SAVEPOINT `+upsertTable+`; `+
		`INSERT INTO `+f.qtable+` (`+c+`) SELECT DISTINCT ON (`+k+`) `+c+` FROM `+upsertTable+
		` ORDER BY `+k+`, `+upsertOrd+` DESC ON CONFLICT (`+k+`) `+conflict)
	return err
}

// copyRows starts the COPY of the rows bound and not yet written, on a
// goroutine of its own, and returns: the next rows are bound meanwhile,
// while the database takes these. The connection is the COPY's until
// copyWait.
func (f *tableWriter) copyRows() error {
	if f.nrows == 0 {
		return nil
	}
	if err := f.copyWait(); err != nil {
		return err
	}
	if f.ndead > 0 {
		f.compact()
	}
	c := &copying{data: f.data, first: f.first, last: f.n, done: make(chan error, 1)}
	table, cols := f.table, slices.Clone(f.cols)
	go func() {
		if f.mode == ModeUpdate {
			c.done <- f.upsertChunk(cols, c.data, c.first)
			return
		}
		c.done <- f.d.copy(context.Background(), f.conn, table, cols, c.data)
	}()
	f.inflight, f.data, f.spare = c, f.spare[:0], nil
	f.dropRows()
	return nil
}

// dropRows forgets the rows in hand, but for data.
func (f *tableWriter) dropRows() {
	f.nrows, f.ndead = 0, 0
	f.starts, f.dead = f.starts[:0], f.dead[:0]
	clear(f.seen)
}

// A copying is a COPY under way: its rows, the numbers of their first and
// last records in the batch, and its result to come.
type copying struct {
	data        []byte
	first, last uint64
	done        chan error
}

// copyWait waits for the COPY under way, if any, and returns its error.
func (f *tableWriter) copyWait() error {
	c := f.inflight
	if c == nil {
		return nil
	}
	f.inflight = nil
	err := <-c.done
	f.spare = c.data[:0]
	if err != nil {
		// COPY takes the rows together: the error names their range (and
		// PostgreSQL's own message says the line of the row it refused).
		return fmt.Errorf("%s: writing records %d to %d into table %s (COPY): %w", f.path, c.first, c.last, f.qtable, err)
	}
	return nil
}

// flushRows writes the rows bound and not yet written, waits for them,
// and in update mode upserts the rows staged.
func (f *tableWriter) flushRows() error {
	if err := f.copyRows(); err != nil {
		return err
	}
	if err := f.copyWait(); err != nil {
		return err
	}
	if err := f.upsertRows(); err != nil {
		return fmt.Errorf("%s: writing records %d to %d into table %s (COPY and upsert): %w", f.path, f.stagedFirst, f.n, f.qtable, err)
	}
	return nil
}

func (f *tableWriter) rowError(err error) error {
	return fmt.Errorf("%s: writing into table %s: %w", f.path, f.qtable, err)
}

// nullKey reports whether a key of the record in hand is null (or missing).
func (f *tableWriter) nullKey() bool {
	for _, c := range f.keyCols {
		if v := f.raw[c]; v == nil || record.KindOf(v) == record.KindNil {
			return true
		}
	}
	return false
}

// bind sets f.raw to the values of rec by column, and but for a dialect
// that copies (whose appendRow encodes them), f.args to them as value
// makes them, those a raw statement binds as they are excepted. ok is
// false when a field of rec has no column yet.
func (f *tableWriter) bind(rec []byte) (ok bool, err error) {
	clear(f.args)
	clear(f.raw)
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
			return false, fmt.Errorf("field %q: the record has a value for column %q already (%s column names ignore case)", k, f.cols[c], f.d.name)
		}
		f.set[c] = true
		f.raw[c] = f.flds.Value()
		if f.copying() {
			continue // appendRow encodes it
		}
		if f.insert != nil && f.insert.raw != nil && f.d.rawKind(record.KindOf(f.raw[c])) {
			continue // the statement binds it as it is
		}
		if f.args[c], err = f.value(f.raw[c], f.types[c]); err != nil {
			return false, fmt.Errorf("field %q: %w", k, err)
		}
	}
	if !f.exists { // {} as the first record
		return false, f.flds.Err()
	}
	return true, f.flds.Err()
}

// value converts a field's value for a column of declared type typ. Why a
// string where the record has the bytes already: database/sql binds a
// []byte as a BLOB (bytea), and text must be TEXT. Every value goes into an
// any, which database/sql wants.
func (f *tableWriter) value(v []byte, typ string) (any, error) {
	kind := record.KindOf(v)
	switch {
	case kind == record.KindNil:
		return nil, nil
	case typ == "" || kind == record.KindExt || kind == record.KindInvalid:
	case typ == f.d.textType && kind != record.KindString:
		// A column made for a null takes any value, as its text.
		f.buf = record.FormatText(f.buf[:0], v)
		return string(f.buf), nil
	case typ == f.d.jsonType:
		// A column made for a map or a list takes any value, as its JSON.
		var err error
		if f.buf, _, err = record.AppendJSON(f.buf[:0], v); err != nil {
			return nil, err
		}
		return string(f.buf), nil
	}
	switch kind {
	case record.KindBool:
		t := v[0] == 0xc3 // msgpack true
		if !f.d.boolInt {
			return t, nil
		}
		if t {
			return int64(1), nil
		}
		return int64(0), nil
	case record.KindInt:
		i, _ := record.Int(v)
		return i, nil
	case record.KindUint:
		return nil, fmt.Errorf("%s: %s integers have 64 bits with a sign", record.FormatText(f.buf[:0], v), f.d.name)
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
		if !f.d.timeText {
			return t, nil
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
		return nil, fmt.Errorf("a msgpack extension value has no %s type", f.d.name)
	}
	return nil, record.ErrInvalid
}

func (f *tableWriter) End(b stage.Batch, _ uint64) error {
	if f.skip {
		return nil
	}
	if err := f.flushRows(); err != nil {
		return fmt.Errorf("batch %d: %w", b.ID, err)
	}
	if f.idem {
		// f.mark runs on the connection, in the batch's transaction.
		// (tx.Stmt would prepare it again at every batch, since a
		// statement that a sql.Conn prepared is not the pool's: a
		// round trip to PostgreSQL, a compile in SQLite.)
		res, err := f.mark.Exec(f.row, int64(b.ID), b.Time, f.ckpt)
		if err != nil {
			return f.batchError(b, "recording", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			// Another checkpoint took the table since this one opened it.
			f.tx.Rollback()
			f.tx = nil
			return f.foreign()
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

// Flush rolls back the batch in hand: a batch not ended is not written.
// (The error that ended it is the one to report; a failed rollback leaves
// nothing either, as the database discards a transaction not committed.)
func (f *tableWriter) Flush() error {
	f.copyWait()
	f.data = f.data[:0]
	f.dropRows()
	f.staged = false
	if f.tx != nil {
		f.tx.Rollback()
		f.tx, f.loaded = nil, false // a rollback may undo CREATE and ALTER
	}
	return nil
}

// Written is the number of rows the batch wrote: none when it was skipped.
func (f *tableWriter) Written() uint64 { return f.n }

// Close closes the database.
func (f *tableWriter) Close() error {
	if f.db == nil {
		return nil
	}
	f.Flush()
	if f.conn != nil {
		f.closeRows()
	}
	f.closeStmts(f.del, f.mark)
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
	err := f.db.Close()
	f.db = nil
	if err != nil {
		return fmt.Errorf("%s: closing: %w", f.path, err)
	}
	return nil
}

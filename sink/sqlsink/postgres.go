package sqlsink

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib" // and the database/sql driver "pgx"
)

// Postgres writes each batch into a table of the PostgreSQL database at a
// URL (--postgres URL), through jackc/pgx. The table is in the
// connection's current schema (the first of its search_path, which the URL
// may set: ?search_path=NAME).
var Postgres = sink.Destination{
	Flag:     "postgres",
	Usage:    "write each batch into the PostgreSQL database at `URL` (postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE) instead of stdout",
	Category: "Databases",
	Needs:    "a URL: postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE",
	Hint:     "--postgres writes into the database, not to stdout: run another ssink (after tee) to see the batches too",
	Group:    "databases",
	Takes:    []string{"table", "mode", "key"},
	Open: func(o *sink.Options, _ *codec.Format, _ *bufio.Writer) (sink.Writer, error) {
		return openSQL(o, &postgresDialect)
	},
}

// postgresDialect is the SQL sink's PostgreSQL.
var postgresDialect = dialect{
	name:     "PostgreSQL",
	flag:     "postgres",
	param:    '$',
	reserved: "pg_",
	noEmpty:  true,
	maxName:  63, // NAMEDATALEN-1: a longer name is cut short, and then not found
	intType:  "BIGINT",
	columns: `SELECT column_name::text, data_type::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
	declType: postgresType,
	// Why text and JSON for any value: PostgreSQL converts no value to a
	// column's type on its own, so a column made for a null (TEXT) would
	// refuse the numbers that come later, and a JSONB column a string.
	textType: "text",
	jsonType: "jsonb",
	copy:     copyData,
	merge:    `SELECT current_setting('server_version_num')::int >= 150000`,
	// hashtext: a 32-bit lock key from the name, collisions only wait.
	lockTable: `SELECT pg_advisory_xact_lock(hashtext('dstream table ' || current_schema() || '.' || $1))`,
	open:      openPostgres,
	display:   postgresDisplay,
}

// postgresConnectTimeout bounds the wait for a server at start-up.
const postgresConnectTimeout = 15 * time.Second

// postgresType is the type of a PostgreSQL column whose first value is v.
func postgresType(v []byte) string {
	switch record.KindOf(v) {
	case record.KindInt, record.KindUint:
		return "BIGINT"
	case record.KindFloat:
		return "DOUBLE PRECISION"
	case record.KindBool:
		return "BOOLEAN"
	case record.KindBinary:
		return "BYTEA"
	case record.KindTime:
		return "TIMESTAMPTZ"
	case record.KindMap, record.KindArray:
		return "JSONB"
	}
	return "TEXT" // a string, and a null: any value as its text
}

// postgresDisplay is the URL without its password, for messages.
func postgresDisplay(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", errors.New("want a URL postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE")
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String(), nil
}

// openPostgres connects to the server of the URL target.
func openPostgres(target string) (*sql.DB, error) {
	show, _ := postgresDisplay(target)
	db, err := sql.Open("pgx", target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", show, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), postgresConnectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, connectError(show, err)
	}
	return db, nil
}

// connectError words a failed connection. pgx lists every attempt (with
// sslmode=prefer, one with TLS and one without, to the same address), each
// with the whole dial error: for a server that is not there, the first
// network error alone says it.
func connectError(show string, err error) error {
	var ne *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("%s: cannot connect to PostgreSQL: no answer within %v", show, postgresConnectTimeout)
	case errors.As(err, &ne):
		err = fmt.Errorf("%s: cannot connect to PostgreSQL: %w", show, ne)
	default:
		return stage.Hint(fmt.Errorf("%s: connecting to PostgreSQL: %w", show, err),
			"--postgres wants the URL of a database that USER may write into: postgres://USER@HOST:PORT/DATABASE")
	}
	where := "the host and port of the URL"
	if u, perr := url.Parse(show); perr == nil && u.Host != "" {
		where = u.Host
		if u.Port() == "" {
			where += ":5432"
		}
	}
	return stage.Hint(err, "is a PostgreSQL server running and listening at %s? Check the URL's host and port", where)
}

// pgRetry tells that an upsert failed on a key twice in its rows (21000:
// "cannot affect row a second time") or on a row of the key inserted by
// another transaction since (23505, unique_violation): the rows can go in
// another way (upsertRows).
func pgRetry(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "21000" || pe.Code == "23505")
}

// pgUnique tells that a statement failed on a key the table has (23505,
// unique_violation).
func pgUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// copyState is what appendRow keeps of the table: its columns' types and
// pgx's encoders for them (read when a value needs them), and the key of
// the row it appended last.
type copyState struct {
	oids    []uint32
	typeMap *pgtype.Map
	key     []byte
}

// copyHeader starts COPY's binary format: the signature, no flags, no
// header extension.
const copyHeader = "PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000"

// appendRow appends the record in hand (f.raw, by column) to b as a row of
// COPY's binary format, and in update mode sets f.pg.key to the bytes of
// its key columns.
// The values whose column has the type their kind makes (a BIGINT for an
// integer, TEXT for a string, ...) are encoded here; any other goes
// through value and pgx's encoder for the column's type, as pgx's CopyFrom
// does: the same bytes, without an interface a value and a slice a row.
func (f *tableWriter) appendRow(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.cols)))
	f.pg.key = f.pg.key[:0]
	for c, v := range f.raw {
		start := len(b)
		switch kind, typ := record.KindOf(v), f.types[c]; {
		case v == nil || kind == record.KindNil:
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // -1: NULL
		case kind == record.KindInt && typ == "bigint":
			i, _ := record.Int(v)
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(i))
		case kind == record.KindFloat && typ == "double precision":
			x, _ := record.Float(v)
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
		case kind == record.KindString && typ == "text":
			s, _ := record.Str(v)
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		case kind == record.KindBool && typ == "boolean":
			b = binary.BigEndian.AppendUint32(b, 1)
			b = append(b, v[0]&1) // msgpack true 0xc3, false 0xc2
		default:
			x, err := f.value(v, typ)
			if err != nil {
				return b, fmt.Errorf("field %q: %w", f.cols[c], err)
			}
			if b, err = f.encodeValue(b, c, x); err != nil {
				return b, &copyError{fmt.Errorf("field %q: %w", f.cols[c], err)}
			}
		}
		if f.mode == ModeUpdate && slices.Contains(f.keyCols, c) {
			f.pg.key = append(f.pg.key, b[start:]...)
		}
	}
	return b, nil
}

// A copyError is a value pgx cannot encode for its column: an error of the
// COPY, as it was when pgx encoded the rows while copying them.
type copyError struct{ err error }

func (e *copyError) Error() string { return e.err.Error() }
func (e *copyError) Unwrap() error { return e.err }

// encodeValue appends x, a value of column c as value makes it, to b in
// COPY's binary format, by pgx's encoder for the column's type: what pgx's
// CopyFrom does (its encodeCopyValue, with its fallback through the text
// format).
func (f *tableWriter) encodeValue(b []byte, c int, x any) ([]byte, error) {
	m, oid := f.pg.typeMap, f.pg.oids[c]
	sp := len(b)
	b = binary.BigEndian.AppendUint32(b, math.MaxUint32)
	out, err := m.Encode(oid, pgtype.BinaryFormatCode, x, b)
	if err != nil {
		s, ok := x.(string)
		if !ok {
			text, terr := m.Encode(oid, pgtype.TextFormatCode, x, nil)
			if terr != nil {
				return b[:sp], errors.New("not a string and cannot be encoded as text")
			}
			s = string(text)
		}
		var v any
		if err = m.Scan(oid, pgtype.TextFormatCode, []byte(s), &v); err != nil {
			return b[:sp], err
		}
		if out, err = m.Encode(oid, pgtype.BinaryFormatCode, v, b); err != nil {
			return b[:sp], err
		}
	}
	if out != nil {
		b = out
		binary.BigEndian.PutUint32(b[sp:], uint32(len(b)-sp-4))
	}
	return b, nil
}

// describe reads the types of the table's columns (their OIDs) and pgx's
// encoders for them, if not read since the columns changed (addCol).
func (f *tableWriter) describe() error {
	if len(f.pg.oids) == len(f.cols) && f.pg.typeMap != nil {
		return nil
	}
	if err := f.copyWait(); err != nil { // the connection is the COPY's
		return err
	}
	if err := f.describeConn(); err != nil {
		return fmt.Errorf("%s: reading the column types of table %s: %w", f.path, f.qtable, err)
	}
	return nil
}

func (f *tableWriter) describeConn() error {
	cols := make([]string, len(f.cols))
	for i, c := range f.cols {
		cols[i] = quoteIdent(c)
	}
	return f.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("COPY needs a pgx connection, not %T", dc)
		}
		sd, err := c.Conn().PgConn().Prepare(context.Background(), "", `SELECT `+strings.Join(cols, ", ")+` FROM `+f.qtable, nil)
		if err != nil {
			return err
		}
		f.pg.oids = f.pg.oids[:0]
		for _, fd := range sd.Fields {
			f.pg.oids = append(f.pg.oids, fd.DataTypeOID)
		}
		f.pg.typeMap = c.Conn().TypeMap()
		return nil
	})
}

// copyData writes data, rows in COPY's binary format without its header
// and trailer, into the table's columns cols with COPY on conn, in the
// transaction open on it: what psql's \copy does, instead of a statement
// and a round trip a row.
func copyData(ctx context.Context, conn *sql.Conn, table string, cols []string, data []byte) error {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quoteIdent(c)
	}
	r := io.MultiReader(strings.NewReader(copyHeader), bytes.NewReader(data), bytes.NewReader([]byte{0xff, 0xff}))
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("COPY needs a pgx connection, not %T", dc)
		}
		_, err := c.Conn().PgConn().CopyFrom(ctx, r, `COPY `+quoteIdent(table)+` (`+strings.Join(q, ", ")+`) FROM STDIN BINARY`)
		return err
	})
}

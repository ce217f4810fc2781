package sqlsink

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"net"
	"net/url"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	"github.com/jackc/pgx/v5/pgconn"
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
	copy:     copyRows,
	merge:    `SELECT current_setting('server_version_num')::int >= 150000`,
	open:     openPostgres,
	display:  postgresDisplay,
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

// copyRows writes rows into the table's columns cols with COPY (pgx's
// CopyFrom, the binary protocol) on conn, in the transaction open on it:
// what psql's \copy does, instead of a statement and a round trip a row.
func copyRows(ctx context.Context, conn *sql.Conn, table string, cols []string, rows [][]any) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("COPY needs a pgx connection, not %T", dc)
		}
		_, err := c.Conn().CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		return err
	})
}

// pgRetry tells that an upsert failed on a key twice in its rows (21000:
// "cannot affect row a second time") or on a row of the key inserted by
// another transaction since (23505, unique_violation): the rows can go in
// another way (upsertRows).
func pgRetry(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "21000" || pe.Code == "23505")
}

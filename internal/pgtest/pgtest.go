// Package pgtest gives the tests of the SQL sink a PostgreSQL schema of
// their own, on the server on loopback.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode"

	"github.com/dstream/dstream/internal/servertest"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// URL is the server the PostgreSQL tests write into, on loopback: the
// machine's, or DSTREAM_POSTGRES_URL. Each test has a schema of its own
// (Schema), which it drops at its end, so that tests run again, and beside
// other users of the database.
func URL() string {
	if u := os.Getenv("DSTREAM_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://127.0.0.1:5432/test"
}

// Schema makes a schema for the test and returns the --postgres URL
// that writes into it (its search_path) and a connection to it. Without a
// server the test is skipped, but in CI (CI=true), where it fails.
func Schema(t testing.TB) (string, *sql.DB) {
	t.Helper()
	base := URL()
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		servertest.Unavailable(t, fmt.Sprintf("PostgreSQL at %s: %v (start it with scripts/services.sh)", base, err))
	}
	name := strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return '_'
		}
		return unicode.ToLower(r)
	}, t.Name())
	schema, u, err := CreateSchema(admin, base, fmt.Sprintf("ssink_%.40s", name))
	if err != nil {
		admin.Close()
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		if err := DropSchema(admin, schema); err != nil {
			t.Error(err)
		}
		admin.Close()
	})
	return u, db
}

// CreateSchema makes a schema named prefix and a random suffix in the
// database admin is connected to, at base (a URL), and returns its name
// and the URL that writes into it (base with its search_path). prefix is
// [a-z0-9_], so that the name needs no quoting beyond the double quotes.
// The harnesses (internal/crash, internal/scale) use it as the tests do.
func CreateSchema(admin *sql.DB, base, prefix string) (schema, url string, err error) {
	var b [4]byte
	rand.Read(b[:])
	schema = fmt.Sprintf("%s_%x", prefix, b)
	if _, err := admin.Exec(`CREATE SCHEMA "` + schema + `"`); err != nil {
		return "", "", fmt.Errorf("%s: creating schema %s: %w", base, schema, err)
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return schema, base + sep + "search_path=" + schema, nil
}

// DropSchema drops schema, made by CreateSchema, with all it holds.
func DropSchema(admin *sql.DB, schema string) error {
	if _, err := admin.Exec(`DROP SCHEMA "` + schema + `" CASCADE`); err != nil {
		return fmt.Errorf("dropping schema %s: %w", schema, err)
	}
	return nil
}

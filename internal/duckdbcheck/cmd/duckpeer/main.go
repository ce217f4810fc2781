//go:build duckdb

// Command duckpeer runs SQL statements in an in-memory DuckDB and prints
// the rows of the last as CSV, without a header: the peer of the Parquet
// cases of scripts/bench.sh (DuckDB's Parquet reader and writer), since
// Debian has no DuckDB CLI. Built with -tags duckdb, so that go build ./...
// does not link DuckDB.
//
//	duckpeer "COPY (SELECT * FROM read_csv('rows.csv')) TO 'f.parquet' (FORMAT parquet)"
//	duckpeer "SELECT count(*), sum(score) FROM 'f.parquet'"
package main

import (
	"bufio"
	"database/sql"
	"encoding/csv"
	"fmt"
	"os"
	"strconv"

	_ "github.com/duckdb/duckdb-go/v2"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: duckpeer SQL...")
		return 2
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "duckpeer: error:", err)
		return 1
	}
	defer db.Close()
	stmts := os.Args[1:]
	for _, q := range stmts[:len(stmts)-1] {
		if _, err := db.Exec(q); err != nil {
			fmt.Fprintln(os.Stderr, "duckpeer: error:", err)
			return 1
		}
	}
	rows, err := db.Query(stmts[len(stmts)-1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "duckpeer: error:", err)
		return 1
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := bufio.NewWriter(os.Stdout)
	w := csv.NewWriter(out)
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	rec := make([]string, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			fmt.Fprintln(os.Stderr, "duckpeer: error:", err)
			return 1
		}
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				rec[i] = ""
			case float64: // as dstream writes floats
				rec[i] = strconv.FormatFloat(x, 'f', -1, 64)
			default:
				rec[i] = fmt.Sprint(v)
			}
		}
		w.Write(rec)
	}
	w.Flush()
	if err := rows.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "duckpeer: error:", err)
		return 1
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "duckpeer: error:", err)
		return 1
	}
	return 0
}

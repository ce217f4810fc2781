// Package duckdbcheck holds the checks of dstream's Parquet against an
// independent implementation, DuckDB (through its Go bindings, which link
// a static library with cgo): the test that a file ssink writes reads
// back equal through sbatch and through DuckDB, and the peer program of
// the Parquet benchmarks (cmd/duckpeer, built with -tags duckdb). Nothing
// else imports it, so only its own test pays the build of DuckDB.
package duckdbcheck

package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

const (
	flagFormat     = "format"
	flagRows       = "rows"
	flagNoTruncate = "no-truncate"
	flagBatchField = "batch-field"
	flagCheckpoint = "checkpoint"
	flagSQLite     = "sqlite"
	flagPostgres   = "postgres"
	flagTable      = "table"
	flagMode       = "mode"
	flagKey        = "key"
)

// formats lists the values of --format, the default first.
var formats = []string{"console", "json", "csv", "tsv", "lines", "msgpack"}

var command = &stage.Command{
	Name:  "ssink",
	Usage: "write the records of a dstream stream to stdout or into a SQLite or PostgreSQL database",
	Description: `ssink reads the framed stream of another stage and writes its records out.

Formats (--format):
  console  Spark's console sink: for each batch a header with the batch id and
           its time (the end of its interval, UTC), then the table that
           Dataset.show prints. At most --rows rows (then "only showing top N
           rows"); the columns are the fields of the rows shown, in order of
           first appearance; a missing field or a null shows as NULL. Cells are
           right-aligned, and longer than 20 characters cut to 17 and "...";
           with --no-truncate they are whole and left-aligned, as show(false).
           Newlines, tabs and other control characters in cells show as \n,
           \t, ... so that a row stays one line. An empty batch has no
           columns and shows as Spark shows a DataFrame with no schema:
           ++ || ++ ++ on four lines.
  json     one compact JSON object per record (JSON lines)
  csv      a header row, then one row per record (RFC 4180 quoting, as Go's
           encoding/csv). The columns are the fields of the stream's first
           record; a later record's missing fields are empty cells, and a
           field not among the columns is an error (a CSV file has one
           schema, as in Spark). A null is an empty cell, the empty string "".
  tsv      as csv, separated by tabs, no quoting: a backslash, tab, newline
           or carriage return in a value is written \\, \t, \n, \r
  lines    the field "value" of each record as plain text, one per line (the
           inverse of 'sbatch': Spark's text sink); a record without it is
           an error
  msgpack  the records as concatenated msgpack maps, for other programs

Output is written batch by batch: each batch is flushed at its end, and a
batch printed before an error stays printed. The text formats write the
records of a batch as they arrive, so a batch may be larger than memory; at
an error the records before it are written.

With --checkpoint DIR, after each batch is written and flushed ssink commits
it: it writes DIR/commits/ID (atomically). A flushed write is the commit
point for stdout, a committed transaction for a database. On start it skips the
batches up to the last commit, which are out already: with 'sbatch
--checkpoint DIR FILE...', which replays the batches after the last commit
with the same ids and times, a restarted pipeline writes each batch once. A
crash between the flush of a batch and its commit writes that batch again
at the restart (at least once; not into a database, see below). A batch below
the last commit that is not the one committed (a source that numbers its
batches from 0 again, e.g. sbatch without --checkpoint) is an error.

Files (--files PREFIX): each batch in a file of its own, PREFIX-TIME.SUFFIX
(TIME the batch time in unix ms, as saveAsTextFiles names its output), in
--format (default json; a csv or tsv file has its own header), written
under a temporary name, synced and renamed: a file appears whole or not at
all, and a batch written again (after a restart) replaces it with the same.
The temporary files a run killed in the middle of a batch leaves behind
(.PREFIX-TIME.SUFFIX.tmp-N) are removed by the next run at its first batch.
--suffix names the suffix (default from the format).

Commands (--exec CMD, Spark's foreachBatch): sh -c CMD runs for each batch
with the batch on its stdin in --format (default json), DSTREAM_BATCH_ID and
DSTREAM_BATCH_TIME in its environment, and ssink's stdout and stderr. A
command that fails stops ssink, naming the batch. It runs in a process group
of its own, so that a SIGINT or SIGTERM to the pipeline lets it finish its
batch.

HTTP (--post URL): each batch is POSTed to URL as one request body in
--format (default json, as application/x-ndjson), its id and time in the
headers X-Dstream-Batch-Id and X-Dstream-Batch-Time, by which a receiver
can make its write idempotent; any answer but 2xx, or no answer within 30
s, stops ssink naming the batch.

SQLite (--sqlite FILE): each batch goes into the table --table (default
"records") of the SQLite database FILE, created if missing, in one
transaction committed at the batch end (WAL journal, synchronous=FULL): a
batch is in the table whole or not at all, and a batch that fails is rolled
back, leaving the batches before it. An empty batch is an empty
transaction. The table is created from the first record: a column per
field, in order, typed by its first value (integer INTEGER, float REAL,
string TEXT, bool INTEGER 0 or 1, binary BLOB, timestamp TEXT in RFC 3339
with nanoseconds, map and list TEXT holding their JSON, null no type). A
field the table lacks, in a later record or in a table made before, is
added to it (ALTER TABLE ADD COLUMN); a missing field is NULL. Column names
ignore ASCII case, as SQLite's do. --mode is Spark's output mode:
  append    each batch's rows are added (the default)
  complete  the batch's rows replace the table's (an empty batch empties
            it): for 'sreduce --running', whose mode is complete
  update    a row is inserted, or replaces the row of the same --key fields
            (on a UNIQUE index of those columns, which ssink creates; a null
            key is a key like any other): for 'sreduce --running --mode
            update', which writes the keys a batch changed
With --checkpoint DIR, the table dstream_commits of FILE keeps the last
batch written into each table, updated in the batch's transaction: a batch
written before (by a run that stopped before committing it in DIR) is
skipped and committed. With 'sbatch --checkpoint DIR FILE...', each batch
is in the table exactly once, across crashes too. Without --checkpoint
batch ids start at 0 on every run, and nothing is skipped.

PostgreSQL (--postgres URL, e.g. postgres://127.0.0.1:5432/test): the
same, with --table, --mode, --key and --checkpoint, into the database at
URL (through jackc/pgx), in the connection's current schema (the URL may
set it: ?search_path=NAME). Column types: integer BIGINT, float DOUBLE
PRECISION, string TEXT, bool BOOLEAN, binary BYTEA, timestamp TIMESTAMPTZ,
map and list JSONB, null TEXT; a later value of another type goes into a
TEXT column as its text and into a JSONB column as its JSON. Column names
are exact (quoted), as PostgreSQL's quoted names are: "a" and "A" are two
columns. Messages name the URL without its password.

The console header reads "Batch: ID (TIME)", e.g.
"Batch: 0 (2023-11-14T22:13:20.000Z)"; "sed 's/ (.*)$//'" leaves Spark's
"Batch: 0".

Examples:
  printf 'hello world\nfoo\n' | sbatch --once | ssink
  sbatch --format json -i 10s events.jsonl | ssink --rows 5 --no-truncate
  seq 1 10 | sbatch -n 3 | ssink --format json --batch-field batch
  sbatch --format json events.json | ssink --format csv > events.csv
  ssink --in tcp-listen://0.0.0.0:7000 --format lines
  printf 'a\nb\na\n' | sbatch --once | sreduce -k value --count | ssink --sqlite words.db --table words
  sbatch -i 1m app.log | sreduce -k value --count | ssink --files out/counts --format csv
  sbatch -i 10s --format json | ssink --exec 'curl -s --data-binary @- http://localhost:8080/ingest'
  sbatch --checkpoint ck -n 1000 app.log | sreduce -k value --count --running --mode update --checkpoint ck | ssink --checkpoint ck --sqlite counts.db --mode update --key value
  sbatch --checkpoint ck -n 1000 app.log | sreduce -k value --count --running --checkpoint ck | ssink --checkpoint ck --format json
  sbatch --checkpoint ck -i 10s app.log | sreduce -k value --count --running --checkpoint ck | ssink --checkpoint ck --postgres postgres://127.0.0.1:5432/test --mode complete`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: flagFormat, Aliases: []string{"f"}, Value: formats[0], Usage: "write records as `FORMAT`: " + strings.Join(formats, ", ")},
		&cli.IntFlag{Name: flagRows, Value: 20, Usage: "console: show at most `N` rows per batch"},
		&cli.BoolFlag{Name: flagNoTruncate, Usage: "console: show cells whole (left-aligned) instead of cutting them at 20 characters"},
		&cli.StringFlag{Name: flagBatchField, Usage: "add the batch time (unix ms, an integer) to each record as field `NAME` (replacing a field of that name)"},
		&cli.StringFlag{Name: flagCheckpoint, Usage: "commit each batch written in `DIR`/commits, and skip the batches committed before (with sbatch --checkpoint DIR FILE...)"},
		&cli.StringFlag{Name: flagFiles, Usage: "write each batch to a file of its own, `PREFIX`-TIME.SUFFIX (TIME the batch time in unix ms), in --format (default json), atomically", Category: "Files and commands"},
		&cli.StringFlag{Name: flagSuffix, Usage: "--files: the file name's `SUFFIX` (default from the format: json, csv, tsv, txt, msgpack)", Category: "Files and commands"},
		&cli.StringFlag{Name: flagExec, Usage: "run `CMD` (sh -c) for each batch with the batch on its stdin in --format (default json), DSTREAM_BATCH_ID and DSTREAM_BATCH_TIME in its environment (foreachBatch)", Category: "Files and commands"},
		&cli.StringFlag{Name: flagPost, Usage: "POST each batch to `URL` as one request in --format (default json: JSON lines), its id and time in X-Dstream-Batch-Id and X-Dstream-Batch-Time; an answer but 2xx is an error", Category: "Files and commands"},
		&cli.StringFlag{Name: flagSQLite, Usage: "write each batch into the SQLite database `FILE` (created if missing) instead of stdout", Category: "Databases"},
		&cli.StringFlag{Name: flagPostgres, Usage: "write each batch into the PostgreSQL database at `URL` (postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE) instead of stdout", Category: "Databases"},
		&cli.StringFlag{Name: flagTable, Value: "records", Usage: "--sqlite, --postgres: write into table `NAME`", Category: "Databases"},
		&cli.StringFlag{Name: flagMode, Value: modeAppend, Usage: "--sqlite, --postgres: output `MODE`: append (insert the rows), complete (replace the table's rows), update (upsert by --key)", Category: "Databases"},
		&cli.StringSliceFlag{Name: flagKey, Aliases: []string{"k"}, Usage: "--sqlite, --postgres --mode update: the fields `FIELD[,FIELD...]` that identify a row", Category: "Databases"},
	},
	Input: true,
	Action: func(e *stage.Env) error {
		s, err := newSink(e.Ctx, e.Stdout, e.Stderr)
		if err != nil {
			return err
		}
		s.stats = &e.Stats
		if err := e.UseCheckpoint(e.Ctx.String(flagCheckpoint), "ssink commits each batch it wrote into the checkpoint, so that a restart replays exactly the batches not written"); err != nil {
			return err
		}
		err = e.Loop(s)
		// What was accepted before an error is written out.
		ferr := s.f.flush()
		if ferr == nil {
			if ferr = s.out.Flush(); ferr != nil {
				ferr = fmt.Errorf("writing output: %w", ferr)
			}
		}
		if c, ok := s.f.(io.Closer); ok {
			if cerr := c.Close(); ferr == nil {
				ferr = cerr
			}
		}
		if err == nil {
			err = ferr
		}
		return err
	},
}

// newSink reads the command line.
func newSink(ctx *cli.Context, stdout, stderr io.Writer) (*sink, error) {
	if ctx.NArg() > 0 {
		return nil, stage.UsageError("unexpected argument %q: ssink reads its input from stdin or --in", ctx.Args().First())
	}
	s := &sink{out: bufio.NewWriterSize(stdout, 64<<10), field: ctx.String(flagBatchField)}
	if ctx.IsSet(flagBatchField) && s.field == "" {
		return nil, stage.UsageError("--%s needs a field name", flagBatchField)
	}
	name := ctx.String(flagFormat)
	perBatchOut := ctx.IsSet(flagFiles) || ctx.IsSet(flagExec) || ctx.IsSet(flagPost)
	if perBatchOut && !ctx.IsSet(flagFormat) {
		name = "json" // records for a program or a file, not a table for eyes
	}
	db, err := newSQL(ctx) // nil without --sqlite or --postgres
	if err != nil {
		return nil, err
	}
	if db != nil {
		if perBatchOut {
			return nil, stage.UsageError("--%s does not go with --%s, --%s or --%s: run two ssink stages (after tee) for two outputs", db.d.flag, flagFiles, flagExec, flagPost)
		}
		s.f, name = db, db.d.flag
	}
	if db == nil {
		maxRows := ctx.Int(flagRows)
		if maxRows < 0 {
			return nil, stage.UsageError("--%s %d: want 0 or more", flagRows, maxRows)
		}
		truncate := cellWidth
		if ctx.Bool(flagNoTruncate) {
			truncate = 0
		}
		if name == "lines" && s.field != "" {
			return nil, stage.Hint(stage.UsageError("--%s does not go with --format lines, which writes one field", flagBatchField),
				"use --format json, csv or tsv to see the batch time beside the fields")
		}
		mk := func(out *bufio.Writer) format { return makeFormat(name, out, maxRows, truncate) }
		if mk(s.out) == nil {
			return nil, stage.UsageError("unknown --%s %q: want %s", flagFormat, name, strings.Join(formats, ", "))
		}
		if s.f, err = newBatchOutput(ctx, name, mk, s.out, stdout, stderr); err != nil {
			return nil, err
		}
	}
	if name != "console" {
		for _, f := range []string{flagRows, flagNoTruncate} {
			if ctx.IsSet(f) {
				return nil, stage.UsageError("--%s applies to --format console, not %s", f, name)
			}
		}
	}
	// Last: a usage error creates nothing.
	var ckpt string // the checkpoint's id
	if ctx.IsSet(flagCheckpoint) {
		dir := ctx.String(flagCheckpoint)
		if dir == "" {
			return nil, stage.UsageError("--%s needs a directory", flagCheckpoint)
		}
		if s.commits, err = checkpoint.OpenCommitter(dir); err != nil {
			return nil, fmt.Errorf("--%s: %w", flagCheckpoint, err)
		}
		if ckpt, err = checkpoint.ID(dir); err != nil {
			return nil, fmt.Errorf("--%s: %w", flagCheckpoint, err)
		}
	}
	if db != nil {
		if err := db.open(ckpt, ctx.String(flagCheckpoint)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// makeFormat returns the format name writing to out, or nil for an unknown
// name.
func makeFormat(name string, out *bufio.Writer, maxRows, truncate int) format {
	switch name {
	case "console":
		return newConsole(out, maxRows, truncate)
	case "json":
		return &jsonFormat{rows{out: out}}
	case "csv":
		return newTabular(out, ',')
	case "tsv":
		return newTabular(out, '\t')
	case "lines":
		return &linesFormat{rows{out: out}}
	case "msgpack":
		return &msgpackFormat{rows{out: out}}
	}
	return nil
}

// format writes records in one output format.
type format interface {
	begin(b stage.Batch) error
	// record writes one record, a msgpack map. Its errors are about the
	// record; the sink names the batch and record.
	record(rec []byte) error
	// end finishes the batch; the sink flushes after it.
	end(b stage.Batch, n uint64) error
	// flush writes out what the format holds of the batch in hand.
	flush() error
}

// rowCounter is a format that writes other than a row per record: the
// SQL sink writes nothing of a batch that its table has already.
type rowCounter interface {
	written() uint64
}

// sink is the stage.Handler: it counts records, adds --batch-field, hands
// records to the format and flushes at each batch end.
type sink struct {
	out   *bufio.Writer
	f     format
	field string // --batch-field, or ""
	stats *stage.Stats

	n     uint64 // records of the batch so far
	bld   record.Builder
	tbuf  []byte // the batch time as msgpack
	flds  record.Fields
	batch stage.Batch

	commits *checkpoint.Committer // --checkpoint, or nil
	skip    bool                  // the batch in hand was committed before
}

func (s *sink) Begin(b stage.Batch) error {
	s.n, s.batch = 0, b
	if s.commits != nil {
		var err error
		if s.skip, err = s.commits.Done(b.ID, b.Time); err != nil {
			return stage.Hint(err, "give sbatch the same --checkpoint with FILE arguments, so that it goes on after the last commit; or give ssink a new --checkpoint directory")
		}
		if s.skip {
			return nil
		}
	}
	s.tbuf = record.AppendInt(s.tbuf[:0], b.Time)
	return s.f.begin(b)
}

func (s *sink) Block(b stage.Batch, recs framing.Records) error {
	if s.skip {
		return nil
	}
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		s.n++
		var err error
		if record.KindOf(rec) != record.KindMap {
			err = record.ErrNotMap
		} else {
			if s.field != "" {
				rec, err = s.withBatchField(rec)
			}
			if err == nil {
				err = s.f.record(rec)
			}
		}
		if err != nil {
			return fmt.Errorf("batch %d, record %d: %w", b.ID, s.n, err)
		}
	}
	return nil
}

func (s *sink) End(b stage.Batch) error {
	if s.skip {
		if s.stats != nil {
			s.stats.OutputRows = 0
		}
		return nil
	}
	if err := s.f.end(b, s.n); err != nil {
		return err
	}
	if s.stats != nil {
		s.stats.OutputRows = s.n
		if c, ok := s.f.(rowCounter); ok {
			s.stats.OutputRows = c.written()
		}
	}
	if err := s.out.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if s.commits != nil {
		// Flushed is out, for stdout: the commit point. (For a database
		// the batch's transaction is committed.)
		return s.commits.Commit(b.ID, b.Time)
	}
	return nil
}

func (s *sink) Watermark(int64) error { return nil }

// withBatchField returns rec with the field --batch-field set to the batch
// time: in place if rec has it, else added last (as Spark's withColumn).
// The result is valid until the next call.
func (s *sink) withBatchField(rec []byte) ([]byte, error) {
	s.bld.Reset()
	found := false
	s.flds.Reset(rec)
	for s.flds.Next() {
		if string(s.flds.Key()) == s.field {
			if !found { // a duplicate key goes
				s.bld.Raw(s.field, s.tbuf)
				found = true
			}
			continue
		}
		s.bld.RawKey(s.flds.Key(), s.flds.Value())
	}
	if err := s.flds.Err(); err != nil {
		return nil, err
	}
	if !found {
		s.bld.Raw(s.field, s.tbuf)
	}
	return s.bld.Bytes(), nil
}

package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/sink/amqpsink"
	"github.com/dstream/dstream/sink/kafkasink"
	"github.com/dstream/dstream/sink/natssink"
	"github.com/dstream/dstream/sink/servesink"
	"github.com/dstream/dstream/sink/sqlsink"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

const (
	flagFormat        = "format"
	flagRows          = "rows"
	flagNoTruncate    = "no-truncate"
	flagBatchField    = "batch-field"
	flagCheckpoint    = "checkpoint"
	flagSuffix        = "suffix"
	flagRoll          = "roll"
	flagRollSize      = "roll-size"
	flagCompressFiles = "compress-files"
	flagTable         = "table"
	flagMode          = "mode"
	flagKey           = "key"

	flagCreateStream    = "create-stream"
	flagRoutingKeyField = "routing-key-field"
	flagConnectTimeout  = "connect-timeout"
	flagTxnTimeout      = "txn-timeout"

	flagChart = "chart"
	flagKeep  = "keep"
)

// destinations are the outputs of ssink besides stdout, each picked by a
// flag of its own, which they declare with the options they take. A new
// destination is a file (in sink/ or a package of its own) and a line here.
var destinations = []*sink.Destination{&sink.Files, &sink.Command, &sink.HTTP, &sqlsink.SQLite, &sqlsink.Postgres, &kafkasink.Kafka, &natssink.NATS, &amqpsink.AMQP, &servesink.Serve}

var command = &stage.Command{
	Name:  "ssink",
	Usage: "write the records of a dstream stream to stdout, files, commands, HTTP, SQLite, PostgreSQL, Kafka, NATS JetStream or RabbitMQ, or show them on a web page",
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
  parquet  a Parquet file (--files, --exec, --post; not stdout): a column
           per field in order of first appearance, typed from all the
           values of the file (integer INT64, float DOUBLE, integers and
           floats DOUBLE, string STRING, bool BOOLEAN, binary BYTE_ARRAY,
           timestamp TIMESTAMP(UTC, NANOS), map and list JSON, any other
           mix STRING holding each value's text); a missing field is a null.
           The records of a file are held in memory and written at its end;
           a file without records is not written. Snappy pages.

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
--suffix names the suffix (default from the format). --roll N writes N
batches to each file, PREFIX-FIRSTTIME.SUFFIX named after its first batch,
renamed into place at its last (the last file, at the end of the input,
holds what is left); with --checkpoint the batches of a file are committed
only then, and a crash in the middle of a file replays it from its first
batch. --roll-size BYTES starts a new file once the one in hand holds
about BYTES (looked at at each batch end: a file holds whole batches, and
may pass BYTES by one); with --roll, whichever comes first.
--compress-files gzip|zstd compresses the files (suffix .gz, .zst); a
Parquet file's pages instead, keeping its suffix.

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

Kafka (--kafka kafka://HOST:PORT[,HOST:PORT...]/TOPIC): each record is a
message of TOPIC, which must exist (ssink creates no topic; a missing one
stops it at the start). The value is the record in --format: json (the
default), lines or msgpack, without a final newline. With --key F the key
is field F's value as text (a string or binary as it is, a number as in
JSON); a record without F, or with F null, has a null key. A keyed message
goes to the partition Java's producer picks, toPositive(murmur2(key)) %
partitions, so that Kafka Streams and Spark find each key where they
expect it; messages without a key stay on one partition for 64 KiB, as
Java's do. Every message has the headers dstream-batch-id and
dstream-batch-time (unix ms). The producer is idempotent, acks=all: at each
batch end ssink waits until every message of the batch is acknowledged,
and a message that fails stops ssink naming the batch (without
--checkpoint, the messages of that batch acknowledged before stay in the
topic). Brokers that do not answer are retried with backoff: at the start
for --connect-timeout (30s), then ssink stops naming them; in a batch, 30 s
without any acknowledgement fails the batch. With --checkpoint DIR each batch is one
Kafka transaction (transactional id dstream-sink-ID-TOPIC, ID the
checkpoint's id), which also commits the batch id as the offset of
partition 0 of TOPIC in the consumer group dstream-sink-ID. A restart
reads it back and skips the batches the topic has, so that consumers with
isolation.level=read_committed see each record once, across crashes too. A
batch must be written within --txn-timeout (1m), or the broker aborts it; a
run that dies in a batch holds back read_committed consumers for up to that
long. An empty batch writes nothing. Scaled out (sbatch --group G
--scale-out --checkpoint DIR, the same DIR): ssink commits the group's
offsets after each batch in its transaction, with the group's generation
(a copy the group moved on from fails the batch), unless a stage upstream
claimed them in DIR/group-offsets; a batch without messages commits them on
their own.

NATS JetStream (--nats nats://[USER:PASSWORD@]HOST:PORT/SUBJECT): each record
is a message on SUBJECT in --format (default json, one object; lines: the
field "value"; msgpack: the record; not console, csv or tsv), stored by the
JetStream stream that captures SUBJECT. The stream must exist, or
--create-stream NAME creates it, capturing SUBJECT, when none captures it.
Messages are published asynchronously, at most 1024 waiting for their ack,
and a batch ends (and is committed with --checkpoint) only once JetStream has
acknowledged all its records; a message refused, or not acknowledged within
30 s, stops ssink naming the batch and the record. Each message has the
headers Nats-Msg-Id, CKPT-BATCH-N (the checkpoint's id, or without
--checkpoint an id drawn for the run; the batch id; the record's number in
the batch, from 1), dstream-batch-id and dstream-batch-time. JetStream stores
a message whose id it has seen within the stream's duplicate window (2
minutes by default) only once: with 'sbatch --checkpoint DIR FILE...' and
'ssink --checkpoint DIR', a batch replayed after a crash is stored once
(exactly once), if the replay comes within the window; a replay later than
that stores the batch again.

RabbitMQ (--amqp 'amqp://USER:PASSWORD@HOST:PORT/VHOST?exchange=E&routing_key=K';
the vhost / is %2F or nothing): each record is a persistent message
published to exchange E with routing key K, or with --routing-key-field F
the value of field F as text, in --format (default json), with its content
type, the headers dstream-batch-id and dstream-batch-time (integers) and a
message id as --nats's. Without exchange=, the default exchange routes to
the queue named by the routing key. With publisher confirms: a batch ends
only once RabbitMQ has confirmed all its records; a message it refuses
(nack), or that no queue takes (returned: ssink publishes mandatory), stops
ssink naming the batch and the record. RabbitMQ drops no duplicates: a batch
replayed after a crash is published again (at least once; the message ids
let a consumer drop the copies).

For NATS and RabbitMQ a server that cannot be reached at start-up is tried again,
with a note on stderr, for --connect-timeout (default 30s), and then ssink
fails naming it; bad credentials and a missing stream, exchange or queue are
errors at start-up. A batch that fails part way leaves the records
published before the failure with the broker. Messages name the URL without
its password.

Dashboard (--serve HOST:PORT, e.g. 127.0.0.1:8080): a web page at
http://HOST:PORT/ that shows the stream as it flows: the latest batch as a
table in the console layout (its first 20 records, fewer past 256 KiB of
them, then "only showing top N rows") and the charts of --chart, updated as each batch ends, pushed to
the page (Server-Sent Events), in several browsers at once. --chart
line:x=batch,y=FIELD plots the sum of FIELD over each batch's records
across the kept batches; --chart bar:key=FIELD,y=FIELD,top=N the latest
batch's N records (default 20) with the greatest y, labelled by key; a
record without a number in y plots nothing. The last --keep batches (100)
are served to a page opened late. The same data for scripts: /batches (the
kept batches as JSON, ?last=N the last N) and /events (the event stream:
an event "batch" per batch, with the id RUN-SEQ that Last-Event-ID takes
to resume; "lost" with the count of batches this client missed because it
read too slowly; "end" at the end of the input). ssink never waits for a
browser: a client that stops reading misses batches, the pipeline does not
slow. The page's URL is noted on stderr (port 0 picks a free one); at the
end of the input ssink exits and the page says so. With --checkpoint, a
batch is committed once it is in the kept history: a restart shows the
batches after the last commit, in a new history (a page open across the
restart starts again); a crash between the two shows that batch again. A
viewer sees each batch of a run at most once: it is a live view.

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
  sbatch --format json -i 1m events.jsonl | ssink --files out/events --format parquet --roll-size 128M
  sbatch -i 10s --format json | ssink --exec 'curl -s --data-binary @- http://localhost:8080/ingest'
  sbatch --checkpoint ck -n 1000 app.log | sreduce -k value --count --running --mode update --checkpoint ck | ssink --checkpoint ck --sqlite counts.db --mode update --key value
  sbatch --checkpoint ck -n 1000 app.log | sreduce -k value --count --running --checkpoint ck | ssink --checkpoint ck --format json
  sbatch --checkpoint ck -i 10s app.log | sreduce -k value --count --running --checkpoint ck | ssink --checkpoint ck --postgres postgres://127.0.0.1:5432/test --mode complete
  sbatch --checkpoint ck --format json -i 1s events.jsonl | ssink --checkpoint ck --kafka kafka://127.0.0.1:9092/events --key user
  sbatch --checkpoint ck -i 1s app.log | ssink --checkpoint ck --nats nats://127.0.0.1:4222/logs --create-stream LOGS
  sbatch -i 1s app.log | smap --flat 'split(value, " ")' | sreduce -k value --count | ssink --serve 127.0.0.1:8080 --chart line:x=batch,y=count --chart bar:key=value,y=count,top=20
  sbatch --format json -i 1s events.jsonl | ssink --amqp 'amqp://guest:guest@127.0.0.1:5672/?exchange=events' --routing-key-field type`,
	Flags: flags(),
	Input: true,
	Action: func(e *stage.Env) error {
		o, err := options(e.Ctx, e.Stdout, e.Stderr)
		if err != nil {
			return err
		}
		o.Stats = &e.Stats
		o.Stop = e.Stop.RequestedC()
		s, err := sink.New(o)
		if err != nil {
			return err
		}
		if err := e.UseCheckpoint(o.Checkpoint, "ssink commits each batch it wrote into the checkpoint, so that a restart replays exactly the batches not written"); err != nil {
			return err
		}
		err = e.Loop(s)
		if err == nil {
			err = s.Finish() // the last file of --roll
		}
		// What was accepted before an error is written out.
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		return err
	},
}

// flags are ssink's flags: the destinations' are made from their
// declarations.
func flags() []cli.Flag {
	fs := []cli.Flag{
		&cli.StringFlag{Name: flagFormat, Aliases: []string{"f"}, Value: codec.Formats[0].Name, Usage: "write records as `FORMAT`: " + codec.Names()},
		&cli.IntFlag{Name: flagRows, Value: 20, Usage: "console: show at most `N` rows per batch"},
		&cli.BoolFlag{Name: flagNoTruncate, Usage: "console: show cells whole (left-aligned) instead of cutting them at 20 characters"},
		&cli.BoolFlag{Name: "skip-empty", Usage: "leave out the batches without records: no console table, file, command, request or transaction for them (they are still committed)"},
		&cli.StringFlag{Name: flagBatchField, Usage: "add the batch time (unix ms, an integer) to each record as field `NAME` (replacing a field of that name)"},
		&cli.StringFlag{Name: flagCheckpoint, Usage: "commit each batch written in `DIR`/commits, and skip the batches committed before (with sbatch --checkpoint DIR FILE...)"},
	}
	for _, d := range destinations {
		fs = append(fs, &cli.StringFlag{Name: d.Flag, Usage: d.Usage, Category: d.Category})
	}
	return append(fs,
		&cli.StringFlag{Name: flagSuffix, Usage: "--files: the file name's `SUFFIX` (default from the format: json, csv, tsv, txt, msgpack, parquet)", Category: "Files and commands"},
		&cli.IntFlag{Name: flagRoll, Value: 1, Usage: "--files: write `N` batches to each file, named after its first batch's time (the last file, at the end of the input, may have fewer); with --checkpoint the batches are committed when their file is renamed into place", Category: "Files and commands"},
		&cli.StringFlag{Name: flagRollSize, Usage: "--files: start a new file once the one in hand holds about `BYTES` (checked at each batch end, so a file may pass it by a batch; K, M, G suffixes count 1024s); with --roll, whichever comes first", Category: "Files and commands"},
		&cli.StringFlag{Name: flagCompressFiles, Usage: "--files: compress each file with `ALGO`, gzip or zstd, adding .gz or .zst to its suffix (--format parquet: its pages, instead of Snappy)", Category: "Files and commands"},
		&cli.StringFlag{Name: flagTable, Value: "records", Usage: "--sqlite, --postgres: write into table `NAME`", Category: "Databases"},
		&cli.StringFlag{Name: flagMode, Value: sqlsink.ModeAppend, Usage: "--sqlite, --postgres: output `MODE`: append (insert the rows), complete (replace the table's rows), update (upsert by --key)", Category: "Databases"},
		&cli.StringSliceFlag{Name: flagKey, Aliases: []string{"k"}, Usage: "--sqlite, --postgres --mode update: the fields `FIELD[,FIELD...]` that identify a row; --kafka: the one field whose value is the message key", Category: "Databases"},
		&cli.StringFlag{Name: flagCreateStream, Usage: "--nats: create the JetStream stream `NAME` capturing the subject if no stream captures it", Category: "Brokers"},
		&cli.StringFlag{Name: flagRoutingKeyField, Usage: "--amqp: take each message's routing key from field `F` (its value as text) instead of the URL's routing_key", Category: "Brokers"},
		&cli.StringSliceFlag{Name: flagChart, Usage: "--serve: draw a chart `KIND:OPTIONS` (repeatable): line:x=batch,y=FIELD (the sum of FIELD per batch, over the kept batches) or bar:key=FIELD,y=FIELD[,top=N] (the latest batch's top N records by y, default 20); title=TEXT names either", Category: "Dashboard"},
		&cli.IntFlag{Name: flagKeep, Value: servesink.DefaultKeep, Usage: "--serve: keep the last `N` batches for a page opened late and for /batches", Category: "Dashboard"},
		&cli.DurationFlag{Name: flagConnectTimeout, Value: sink.DefaultConnectTimeout, Usage: "--kafka, --nats, --amqp: at start-up, try again for `DURATION` while the server cannot be reached, then fail (0: try once)", Category: "Brokers"},
		&cli.DurationFlag{Name: flagTxnTimeout, Value: kafkasink.DefaultTxnTimeout, Usage: "--kafka with --checkpoint: the transaction timeout, `DURATION`: a batch must be written within it, and a run that dies in a batch holds back read_committed consumers of its partitions for up to that long (or until the next run starts)", Category: "Brokers"},
	)
}

// options reads the command line, and checks it against the declarations
// of the destinations and formats: an option the destination or format in
// use does not take is an error naming those that take it.
func options(ctx *cli.Context, stdout, stderr io.Writer) (sink.Options, error) {
	o := sink.Options{
		BatchField: ctx.String(flagBatchField),
		SkipEmpty:  ctx.Bool("skip-empty"),
		Checkpoint: ctx.String(flagCheckpoint),
		Table:      ctx.String(flagTable),
		Mode:       ctx.String(flagMode),
		Keys:       ctx.StringSlice(flagKey),

		CreateStream:    ctx.String(flagCreateStream),
		RoutingKeyField: ctx.String(flagRoutingKeyField),
		ConnectTimeout:  ctx.Duration(flagConnectTimeout),
		TxnTimeout:      ctx.Duration(flagTxnTimeout),

		Charts: ctx.StringSlice(flagChart),
		Keep:   ctx.Int(flagKeep),

		Codec:  codec.Options{Rows: ctx.Int(flagRows), Truncate: codec.CellWidth},
		Stdout: stdout,
		Stderr: stderr,
	}
	if ctx.NArg() > 0 {
		return o, stage.UsageError("unexpected argument %q: ssink reads its input from stdin or --in", ctx.Args().First())
	}
	if ctx.IsSet(flagBatchField) && o.BatchField == "" {
		return o, stage.UsageError("--%s needs a field name", flagBatchField)
	}
	if ctx.IsSet(flagCreateStream) && o.CreateStream == "" {
		return o, stage.UsageError("--%s needs a stream name", flagCreateStream)
	}
	if ctx.IsSet(flagRoutingKeyField) && o.RoutingKeyField == "" {
		return o, stage.UsageError("--%s needs a field name", flagRoutingKeyField)
	}
	if o.ConnectTimeout < 0 {
		return o, stage.UsageError("--%s %v: want 0 or more", flagConnectTimeout, o.ConnectTimeout)
	}
	if o.TxnTimeout <= 0 || o.TxnTimeout%time.Millisecond != 0 {
		return o, stage.UsageError("--%s %v: want a positive number of milliseconds", flagTxnTimeout, o.TxnTimeout)
	}
	if ctx.IsSet(flagKeep) && o.Keep < 1 { // 0 is servesink's default
		return o, stage.UsageError("--%s %d: want 1 or more batches", flagKeep, o.Keep)
	}
	if ctx.Bool(flagNoTruncate) {
		o.Codec.Truncate = 0
	}
	d, err := destination(ctx)
	if err != nil {
		return o, err
	}
	o.Dest, o.Target = d, ctx.String(d.Flag)
	if d.Needs != "" && o.Target == "" {
		return o, stage.UsageError("--%s needs %s", d.Flag, d.Needs)
	}
	for _, opt := range destinationOptions() {
		if ctx.IsSet(opt) && !slices.Contains(d.Takes, opt) {
			return o, stage.UsageError("--%s applies to %s", opt, takenBy(opt))
		}
	}
	formatOpts := formatOptions()
	if !d.Encodes {
		for _, opt := range append([]string{flagFormat}, formatOpts...) {
			if ctx.IsSet(opt) {
				return o, stage.Hint(stage.UsageError("--%s does not go with --%s", opt, d.Flag), "%s", d.Hint)
			}
		}
		return o, checkpointSet(ctx, o)
	}
	o.Format = d.DefaultFormat
	if ctx.IsSet(flagFormat) {
		o.Format = ctx.String(flagFormat)
	}
	f := codec.Lookup(o.Format)
	if f == nil {
		return o, checkpointSet(ctx, o) // sink.New names the formats
	}
	for _, opt := range formatOpts {
		if ctx.IsSet(opt) && !slices.Contains(f.Takes, opt) {
			return o, stage.UsageError("--%s applies to --format %s, not %s", opt, formatTaking(opt), f.Name)
		}
	}
	o.Suffix = f.Suffix
	if ctx.IsSet(flagSuffix) {
		o.Suffix = ctx.String(flagSuffix)
	}
	o.Roll, o.CompressFiles = ctx.Int(flagRoll), ctx.String(flagCompressFiles)
	if o.Roll < 1 {
		return o, stage.UsageError("--%s %d: want 1 or more batches per file", flagRoll, o.Roll)
	}
	if ctx.IsSet(flagRollSize) {
		var err error
		if o.RollSize, err = parseBytes(ctx.String(flagRollSize)); err != nil {
			return o, stage.UsageError("--%s %s", flagRollSize, err)
		}
		if !ctx.IsSet(flagRoll) {
			o.Roll = 0 // files bounded by their size only
		}
	}
	return o, checkpointSet(ctx, o)
}

// checkpointSet refuses an empty --checkpoint, which sink.Options cannot
// tell from none: the last check of the command line, before sink.New
// checks the values and opens anything.
func checkpointSet(ctx *cli.Context, o sink.Options) error {
	if ctx.IsSet(flagCheckpoint) && o.Checkpoint == "" {
		return stage.UsageError("--%s needs a directory", flagCheckpoint)
	}
	return nil
}

// destination returns the destination whose flag is set, or stdout.
func destination(ctx *cli.Context) (*sink.Destination, error) {
	var set []*sink.Destination
	for _, d := range destinations {
		if ctx.IsSet(d.Flag) {
			set = append(set, d)
		}
	}
	switch len(set) {
	case 0:
		return &sink.Stdout, nil
	case 1:
		return set[0], nil
	}
	return nil, conflict(set)
}

// conflict is the usage error of two destinations or more, in table order:
// two that write no format (databases) are named as two of their group;
// one of those with ones that encode names all these; ones that encode are
// named together.
func conflict(set []*sink.Destination) error {
	var plain []*sink.Destination
	for _, d := range set {
		if !d.Encodes {
			plain = append(plain, d)
		}
	}
	var names []string
	switch {
	case len(plain) > 1:
		return stage.UsageError("--%s does not go with --%s: run two ssink stages (after tee) for two %s", plain[1].Flag, plain[0].Flag, plain[1].Group)
	case len(plain) == 1:
		for _, d := range destinations {
			if d.Encodes {
				names = append(names, "--"+d.Flag)
			}
		}
		return stage.UsageError("--%s does not go with %s: run two ssink stages (after tee) for two outputs", plain[0].Flag, stage.OrList(names))
	}
	for _, d := range set {
		names = append(names, "--"+d.Flag)
	}
	return stage.UsageError("%s are two outputs: run two ssink stages (after tee) for both", strings.Join(names, " and "))
}

// destinationOptions lists the options the destinations take, in order.
func destinationOptions() []string {
	var opts []string
	for _, d := range destinations {
		for _, opt := range d.Takes {
			if !slices.Contains(opts, opt) {
				opts = append(opts, opt)
			}
		}
	}
	return opts
}

// takenBy names the destinations that take opt: "--sqlite or --postgres".
func takenBy(opt string) string {
	var names []string
	for _, d := range destinations {
		if slices.Contains(d.Takes, opt) {
			names = append(names, "--"+d.Flag)
		}
	}
	return stage.OrList(names)
}

// formatOptions lists the options the formats take, in order.
func formatOptions() []string {
	var opts []string
	for _, f := range codec.Formats {
		for _, opt := range f.Takes {
			if !slices.Contains(opts, opt) {
				opts = append(opts, opt)
			}
		}
	}
	return opts
}

// formatTaking is the first format that takes opt.
func formatTaking(opt string) string {
	for _, f := range codec.Formats {
		if slices.Contains(f.Takes, opt) {
			return f.Name
		}
	}
	return ""
}

// parseBytes reads a size in bytes: an integer, 1 or more, with an
// optional K, M or G (1024, 1024², 1024³).
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(s)
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			num = num[:n-1]
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 1 || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q: want a size in bytes, 1 or more, with an optional K, M or G", s)
	}
	return v * mult, nil
}

package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dstream/dstream/cmd/internal/stateflags"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/join"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

var command = &stage.Command{
	Name:      "sjoin",
	Usage:     "join each record with the rows of a static table, or with the records of another stream (batch by batch or over event time), of the same key",
	ArgsUsage: " ",
	Input:     true,
	Output:    true,
	Description: `sjoin joins each record of its input (the left side) with the rows of the
same key of a static table (--table: Structured Streaming's stream-static
join), or with the records of the same key in the batch of the same time of
another stream (--right: DStream's join family and cogroup), or with the
records of another stream over event time (--right --mode stream).

Keys: --on F,G joins records whose fields F and G both equal the row's F
and G. Values are equal as Spark SQL's = finds them after its implicit
casts: numbers by value (1 = 1.0), and an integer written as text in its
plain decimal form equals the integer ("42" = 42: a CSV cell and a JSON
number); other strings compare as strings ("007" is not 7). A null or
missing key field matches nothing.

Joined records: the key fields (the left's values), then the left record's
other fields, then the right's other fields; a right field whose name the
left record has too is renamed with --right-prefix (default right_). Every
match is a record: a key with three rows gives three. --how inner (the
default) drops a record without a match; --how left keeps it once, with
every column of the right null (right and full do the same for the right
stream's records).

The table (--table): a file, CSV or TSV with a header row (every value a
string), JSON lines or msgpack, its format by its suffix or --table-format;
sqlite:FILE:TABLE, a table of a SQLite database; or
postgres://USER@HOST:PORT/DB?table=TABLE, one of a PostgreSQL database
(schema.table works). It is read whole at start-up, where a table that
cannot be read, or has no column of a key field, is an error; its rows are
indexed by key in memory (about 20 bytes a row beside the rows' own bytes;
see docs/sjoin.md).

Reload: before each batch sjoin looks whether the table changed, and if it
did reads it again; the batch is joined with the table as it is then. A
file changed if its size, time or inode did (replace it whole, with mv,
rather than rewrite it in place); a SQLite table if another connection
committed to its database (PRAGMA data_version). PostgreSQL tells no such
thing cheaply: its table is read again every --reload (default 1m).
--reload DUR looks at most every DUR; --reload never reads the table once.
A table that cannot be read again is noted on stderr, and the batches go
on with the table read before.

Two streams, batch by batch (--right STREAM): the batch of the input and
the batch of STREAM at the same batch time are joined (DStream's join,
leftOuterJoin, rightOuterJoin, fullOuterJoin: --how inner, left, right,
full); a side without a batch at a time counts as empty there. STREAM is a
file or FIFO of frames (--right <(sbatch ... | smap ...) in bash), or a
socket endpoint (tcp-listen://, unix-listen://, tcp://, unix://). Both
streams must be cut at one interval: the same sbatch -i, or --time-field
with the same -i (sbatch --once or -n batches get the wall clock's time,
which the other side's seldom shares); with swindow in front of each side
it is a windowed join. Sides whose batches come at different intervals are
an error naming both. A record without a match comes out with the fields
the other side's records had so far, null. --cogroup writes each key of
either batch once instead: the key fields, then "left" and "right", the
lists of each side's records of the key (their other fields). The output
watermark is the lower of the two sides'.

Two streams over event time (--right STREAM --mode stream: Structured
Streaming's stream-stream join): each side keeps its records across
batches, and each new record is joined with the other side's; in a batch
the left's records come first, each joined with the right's of the batches
before, then the right's, joined with all the left's. --time-field F (in
--time-unit s or ms, an RFC 3339 string or a timestamp) and --watermark DUR:
the watermark is the lower of the two sides' latest event times minus DUR,
moved at each batch's end; a record at or before it is late, dropped and
counted. --within DUR: records match only when their times are at most DUR
apart, and a row leaves the state once its time plus DUR is at or before
the watermark; with the time field among --on (a window smap computed) a
row leaves once its time is. Without either the state keeps every record
of both streams. --how left, right or full need --watermark and --within
(or the time field among --on): a record comes out with the other side's
fields null when it leaves the state unmatched; at the end of both streams
(without --checkpoint) the unmatched rows still held come out in one more
batch. --checkpoint DIR saves both sides' state after each batch in
DIR/state/NAME (--name, default sjoin) and restores it on restart, as
sreduce --running does; the right stream is not replayed by the checkpoint.

Examples:
  sbatch --format json -i 1s | sjoin --table users.csv --on user_id | ssink
  sbatch --format json | sjoin --table users.jsonl --on user_id --how left | ssink --format csv
  sbatch --format json | sjoin --table sqlite:app.db:users --on id --right-prefix user_ | ssink
  sbatch --format json | sjoin --table 'postgres://app@db/app?table=users' --on id --reload 5m | ssink
  sbatch -i 1s --format json orders.jsonl | sjoin --right <(sbatch -i 1s --format json payments.jsonl) --on order_id --how left | ssink
  sbatch -i 1s --format json | sjoin --right tcp-listen://:9000 --on user --cogroup | ssink
  sbatch -i 1s --format json clicks.jsonl | sjoin --mode stream --right <(sbatch -i 1s --format json impressions.jsonl) \
      --on ad --time-field ts --watermark 10m --within 1h --how left | ssink`,
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "on", Usage: "join on the key fields `F[,F...]`", Category: "Join"},
		&cli.StringFlag{Name: "how", Value: "inner", Usage: "`TYPE` of join: inner, left, right or full (the records of a side without a match come out too, the other side's fields null); a static table takes inner or left", Category: "Join"},
		&cli.StringFlag{Name: "right-prefix", Value: join.DefaultPrefix, Usage: "rename a right field whose name the left record has too to `PREFIX`NAME", Category: "Join"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip a record that cannot be joined, counted in --progress (numSkippedRows), instead of failing", Category: "Join"},
		&cli.StringFlag{Name: "table", Usage: "join with the static table `TABLE`: FILE (.csv, .tsv, .json, .jsonl, .msgpack), sqlite:FILE:TABLE or postgres://...?table=TABLE", Category: "Static table"},
		&cli.StringFlag{Name: "table-format", Usage: "the `FORMAT` of the table file: " + strings.Join(join.TableFormats, ", ") + " (default: by its suffix)", Category: "Static table"},
		&cli.StringFlag{Name: "reload", Usage: "look for a change of the table at most every `DUR`, or never", DefaultText: "before every batch; 1m for PostgreSQL", Category: "Static table"},
		&cli.StringFlag{Name: "right", Usage: "join with the stream `STREAM`, batch by batch (or over event time with --mode stream): a file or FIFO of frames, tcp-listen://HOST:PORT or unix-listen:///PATH (tcp:// and unix:// connect)", Category: "Two streams"},
		&cli.BoolFlag{Name: "cogroup", Usage: "instead of joining, write each key once with the lists of each side's records (left, right)", Category: "Two streams"},
		&cli.StringFlag{Name: "mode", Value: "batch", Usage: "join two streams batch by batch (batch), or keep each side's records across batches and join over event time (stream): `MODE`", Category: "Two streams"},
		&cli.StringFlag{Name: "time-field", Usage: "with --mode stream, the event time of each record is in `FIELD`", Category: "Event time (--mode stream)"},
		&cli.StringFlag{Name: "time-unit", Value: "s", Usage: "`UNIT` of numeric event times: s or ms", Category: "Event time (--mode stream)"},
		&cli.DurationFlag{Name: "watermark", Usage: "how late a record may come: records at or before the lower of the two sides' latest event times minus `DUR` are dropped, and so are the state's rows no later record can match", Category: "Event time (--mode stream)"},
		&cli.DurationFlag{Name: "within", Usage: "a time-range condition: records match only when their event times are at most `DUR` apart", Category: "Event time (--mode stream)"},
	}, stateflags.Flags("sjoin", "both sides' state (with --mode stream)", "Event time (--mode stream)")...),
	Action: run,
}

func run(e *stage.Env) error {
	c := e.Ctx
	if c.NArg() > 0 {
		return stage.UsageError("unexpected argument %q: sjoin reads frames from its input and takes flags only", c.Args().First())
	}
	o, err := parseOptions(c)
	if err != nil {
		return err
	}
	switch {
	case c.IsSet("table") && c.IsSet("right"):
		return stage.UsageError("--table and --right: join with a static table or with a stream, not both")
	case c.IsSet("right"):
		return runStreams(e, o)
	case !c.IsSet("table"):
		return stage.UsageError("nothing to join with: give --table TABLE (a static table) or --right STREAM (a stream)")
	}
	for _, f := range append(streamFlags, eventFlags...) {
		if c.IsSet(f) {
			return stage.UsageError("--%s applies to a join of two streams (--right), not to --table", f)
		}
	}
	src, err := parseSource(c)
	if err != nil {
		return err
	}
	s, err := join.NewStatic(o, src, e.Out, &e.Stats, e.Stderr)
	if err != nil {
		src.Close()
		return err
	}
	defer s.Close()
	return e.Loop(s)
}

// streamFlags apply to a join of two streams only.
var streamFlags = []string{"cogroup", "mode"}

// eventFlags apply to --mode stream only.
var eventFlags = []string{"time-field", "time-unit", "watermark", "within", "checkpoint", "name"}

// tableFlags apply to a static table only.
var tableFlags = []string{"table-format", "reload"}

// runStreams joins the input with the stream --right, batch by batch.
func runStreams(e *stage.Env, o join.Options) error {
	c := e.Ctx
	for _, f := range tableFlags {
		if c.IsSet(f) {
			return stage.UsageError("--%s applies to a static table (--table), not to --right", f)
		}
	}
	cogroup := c.Bool("cogroup")
	if cogroup && c.IsSet("how") {
		return stage.UsageError("--how and --cogroup: a cogroup keeps every key of both sides, and has no type of join")
	}
	spec := c.String("right")
	var h stage.MultiHandler
	var finish func() error
	switch m := c.String("mode"); m {
	case "batch":
		for _, f := range eventFlags {
			if c.IsSet(f) {
				return stage.UsageError("--%s applies to a join over event time: add --mode stream", f)
			}
		}
		b, err := join.NewBatch(o, cogroup, spec, e.Out, &e.Stats)
		if err != nil {
			return err
		}
		h = b
	case "stream":
		if cogroup {
			return stage.UsageError("--cogroup groups the batches of one time: it has no --mode stream")
		}
		so, err := parseStreamOptions(c)
		if err != nil {
			return err
		}
		s, err := join.NewStream(o, so, e.Out, &e.Stats, e.Replaying)
		if err != nil {
			return err
		}
		e.KeepsWholeState()
		if err := e.UseCheckpoint(so.Checkpoint, "sjoin --mode stream keeps both sides' records across batches, and a restart must restore them"); err != nil {
			return err
		}
		h, finish = s, s.Finish
	default:
		return stage.UsageError("--mode %q: want batch or stream", m)
	}
	r, err := openRight(spec)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := e.LoopInputs([]stage.Input{{Name: "left", R: e.In}, {Name: "right " + spec, R: framing.NewReader(r)}}, h); err != nil {
		return err
	}
	if finish != nil && !e.Stop.Now() {
		return finish()
	}
	return nil
}

// parseStreamOptions reads the options of --mode stream.
func parseStreamOptions(c *cli.Context) (join.StreamOptions, error) {
	so := join.StreamOptions{TimeField: c.String("time-field"), Watermark: c.Duration("watermark"), HasWatermark: c.IsSet("watermark"),
		Within: c.Duration("within"), HasWithin: c.IsSet("within")}
	var err error
	if so.Checkpoint, so.Name, err = stateflags.Parse(c); err != nil {
		return so, err
	}
	if c.IsSet("time-field") && so.TimeField == "" {
		return so, stage.UsageError("--time-field needs a field name")
	}
	if so.Unit, err = codec.ParseTimeUnit(c.String("time-unit")); err != nil {
		return so, stage.UsageError("--time-unit: %v", err)
	}
	return so, nil
}

// openRight opens --right: a socket endpoint, or a file or FIFO of frames.
func openRight(spec string) (io.ReadCloser, error) {
	switch {
	case spec == "" || spec == "-":
		return nil, stage.UsageError("--right %q: the left stream is stdin (or --in); name the right one: a file or FIFO of frames, or %s", spec, "tcp-listen://HOST:PORT or unix-listen:///PATH")
	case stage.IsSocket(spec):
		return stage.OpenSocket(spec)
	}
	f, err := os.Open(spec)
	if err != nil {
		return nil, stage.Hint(fmt.Errorf("--right: %w", err), "--right names a file or FIFO of frames (--right <(sbatch ... | smap ...)), or a socket endpoint")
	}
	return f, nil
}

// parseOptions reads the options every join takes.
func parseOptions(c *cli.Context) (join.Options, error) {
	o := join.Options{On: stage.ParseList(c.String("on")), Prefix: c.String("right-prefix"), SkipBad: c.Bool("skip-bad")}
	var err error
	if o.How, err = join.ParseHow(c.String("how")); err != nil {
		return o, err
	}
	return o, o.Validate()
}

// parseSource reads --table, --table-format and --reload.
func parseSource(c *cli.Context) (*join.Source, error) {
	src, err := join.ParseSource(c.String("table"), c.String("table-format"))
	if err != nil {
		return nil, err
	}
	switch r := c.String("reload"); r {
	case "":
	case "never":
		src.Reload = -1
	default:
		d, err := time.ParseDuration(r)
		if err != nil || d < 0 {
			return nil, stage.UsageError("--reload %q: want a duration (30s, 5m) or never", r)
		}
		src.Reload = d
	}
	return src, nil
}

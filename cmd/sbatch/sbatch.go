package main

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/source"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

var command = &stage.Command{
	Name:      "sbatch",
	Usage:     "read input and cut it into micro-batches",
	ArgsUsage: "[FILE...]",
	Output:    true,
	Description: `sbatch is the source of a dstream pipeline: it reads stdin or the FILEs
(- is stdin) and writes a framed stream of batches for the next stage. A
FILE may be a socket (Spark's socketTextStream): tcp://HOST:PORT connects
to a server, tcp-listen://HOST:PORT listens and accepts one connection
(unix:// and unix-listen:// alike), read until the other side closes it.

--reconnect keeps reading the last input, a socket, when its connection
is lost (closed or reset by the other side), as Spark's receiver does:
tcp:// and unix:// connect again, waiting 100ms, then twice as long each
time up to 5s (with jitter); tcp-listen:// and unix-listen:// accept the
next connection. A note on stderr tells each loss and each return; empty
batches go on meanwhile, and the stream ends only at SIGINT or SIGTERM.
At a reset, the unended last line is dropped (the note counts its bytes)
rather than joined to the next connection's first line; at a close it is
the last line, as in a file. Each connection starts a new stream: with
csv and tsv, with its header row. --reconnect-timeout DUR gives up (exit
1, naming the socket) after DUR without a connection. Not with
--checkpoint (a socket cannot be read again), --once, or --format
msgpack.

A FILE may be a broker: kafka://HOST:PORT[,HOST:PORT...]/TOPIC[,TOPIC...]
reads every partition of the topics (Spark's Kafka source). Each message is
a record {"value", "key", "topic", "partition", "offset", "timestamp",
"headers"} (--format lines, the default); with --format json or msgpack the
value's fields, and the metadata as fields PREFIXkey... with --meta-field
PREFIX. It starts where --checkpoint's last batch ended, else at --group's
committed offsets, else at --start (latest). With --checkpoint, each batch's
offset range per partition is in DIR/offsets/N and a restart replays them;
the group's offsets follow the sink's commits. Without --checkpoint the
copies of sbatch in a --group share the partitions, and a batch's offsets
are committed once it has left (at least once). Records gone from Kafka are
an error, never a silent jump. A broker unreachable longer than
--server-timeout (30s) fails sbatch, naming it. --max-rate N caps the
records per second.

Records: a text line becomes {"value": LINE} (Spark's text source); with
--format json each line is one JSON object; csv and tsv take field names from
the header row and keep every cell a string (Spark without inferSchema);
msgpack reads maps back to back; parquet reads Parquet files, a record per
row, a field per column in the file's order, the column's type kept (a
null is a field left out; a struct, list or map column is a map or an
array). A Parquet FILE is read in place, by its footer (stdin whole into
memory first), and with --checkpoint its offsets count rows instead of
bytes; it is not followed.

Triggers (when a batch is cut):
  -i DUR      processing time: a batch every DUR of wall-clock time, aligned to
              the unix epoch; its batch time is the end of its interval. While
              the input is idle, empty batches go on (windows count on them).
  -i 0        continuous: a batch as soon as records are read, holding all
              that were read by then (what a read from the input gave, with
              what waits behind it), so a line leaves within the pipes' own
              latency. While the input is idle an empty batch leaves every
              --continuous-idle DUR (100ms). Its batch time is the time of
              the cut, rising strictly: two cuts in one millisecond take the
              next one, so above 1,000 batches a second the times run ahead
              of the clock. The cost: many small batches, each with its
              per-batch output downstream (sreduce counts per batch). Not
              with -n, --once, --time-field or --max-files.
  -n N        a batch every N records; with -i, whichever comes first. A batch
              cut by count takes the time it was cut as its batch time.
  --once      everything available as ONE batch, then end of stream. Its batch
              time is the time sbatch started. With -n or --time-field, what
              is available now cut by them, then end of stream (Spark's
              Trigger.AvailableNow): for a broker, up to the end offsets seen
              at the start.
  --time-field F
              event time: batch k holds the records whose field F falls in
              [k*DUR, (k+1)*DUR) (DUR from -i, default 1s), aligned to the unix
              epoch; its batch time is (k+1)*DUR. The first batch is the one
              holding the first record; gaps in time give empty batches, so a
              recorded log replays into exactly the batches it would have had
              live. A record older than the batch in hand joins it and is
              counted as late (numLateRows in --progress). Times are numbers
              of --time-unit since the epoch (fractions allowed), RFC 3339
              strings, or msgpack timestamps.

At the end of the input the batch in hand leaves at once. Batch ids count up
from 0. On SIGINT or SIGTERM sbatch ends the batch in hand and the stream,
and exits 0.

--watch DIR reads the files of a directory instead of FILE arguments
(Spark's file source): those there at the start, oldest first (by
modification time, then name), then each new one as it appears, until
SIGINT or SIGTERM (with --once: the files there now, as one batch). A file
is read once, whole, when it is seen, so a writer makes it under a name
starting with . or _ (skipped, as Spark skips them) and renames it when
complete. A new name is seen at once by a watch on the directory (inotify);
the directory is also listed every second, for the files a watch misses
(NFS), and every 100 ms where no watch can be set up.
  --glob PATTERN    only the files whose name matches PATTERN (*.json)
  --max-files N     a batch begins at most N new files (maxFilesPerTrigger);
                    the others wait for the next batches (with -i)
  --latest-first    the newest files first
  --clean delete|archive:DIR
                    once the sink has committed the batches that read a
                    file (the commits in the --checkpoint directory), delete
                    it or move it into DIR (cleanSource); never before
With --checkpoint, DIR/offsets/N lists the files batch N read, with their
byte ranges: a restart replays the batches the sink has not committed from
those files (one whose bytes a batch needs that is gone or shorter is an
error), goes on in the file the last batch ended in, then reads the files
that no batch read, those that came while it was down too. A file read is
never read again, even under the same name.

--follow (-F) keeps reading the last FILE as it grows, as tail -F does,
until SIGINT or SIGTERM: a partial last line waits for its end; a log
replaced by rename (rotated) or truncated is read again from its start,
with a note on stderr (with --checkpoint, whose offsets follow one file by
its path, that is an error). The file is looked at every 50 ms once its end
is read.

Checkpoint (--checkpoint DIR, with FILE arguments, --watch or a broker:
stdin and sockets cannot be read again): before batch N leaves, sbatch
writes DIR/offsets/N (atomically), the byte ranges of the files the batch
covers (a broker's: below) and its batch time. On restart with
the same DIR it replays every batch after the last one the sink committed
(DIR/commits, written by ssink --checkpoint DIR) with the same id, time and
bytes, then goes on where the last batch ended, with the ids after it: a file
that grew goes on from there, a file that is shorter than what was read of
it is an error. Without a sink committing into DIR nothing is replayed. A
CSV file resumed in its middle reads its header row again. Event-time
batches go on after the last batch written (the empty batches of a gap
included); a record of a batch already written is late and joins the next.
A restart with another format, trigger or list of files is refused. Offsets
more than 10 batches before the last commit are removed.

nats://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/STREAM reads a NATS
JetStream stream, alone. A message is a record {value, subject, sequence,
timestamp, headers} (--format lines), or its payload's fields (json,
msgpack; the metadata under --meta-field's prefix). --subject SUBJECT reads
only the messages of a subject (wildcards * and >). With --checkpoint,
DIR/offsets/N holds batch N's range of stream sequences, and a restart
replays exactly those (a batch whose messages are gone from the stream is
an error naming it); a new checkpoint starts where --durable NAME stands,
else at --start (latest by default, or earliest), and the durable is acked
up to each batch the sink commits. Without --checkpoint, sbatch reads the
durable (a pull consumer, made if missing, with explicit acks) and acks
each message once its batch has left: at least once. --once reads up to
the last message at the start. A server that does not answer is waited
for, with backoff and a note, up to --server-timeout; a missing stream or
refused credentials fail at once.

RabbitMQ: amqp://USER:PASS@HOST:PORT/VHOST?queue=QUEUE reads the queue
(the vhost is the path; none or / is the default). A missing queue is an
error at the start, unless --declare declares it (durable). A record is
{value: the body, message_id, exchange, routing_key, redelivered,
timestamp, headers} with --format lines; with json or msgpack the body's
fields, and the metadata with --meta-field PREFIX. A message is
acknowledged once a batch holding it is safe: with --checkpoint, once the
sink has committed it; without, once it has left sbatch. What is not
acknowledged RabbitMQ delivers again (redelivered) when the connection is
gone: at least once. At its end sbatch waits for the sink's commits (up to
5s after the last one) before it lets the connection go. A queue cannot
be read again: with --checkpoint a restart replays nothing, and the
messages of the batches not committed come again in the batches after
the last one written, with new ids. --prefetch N (default 16384, or 2x
-n; at most 65535) bounds the messages delivered and not acknowledged, so
a batch: -n may not exceed it, and --once alone reads at most N of the
messages the queue had at the start (--once -n N reads them all). A lost
connection is made again with backoff, with a note, for up to
--server-timeout; a login refused is an error at once.

Examples:
  printf 'hello world\nfoo\n' | sbatch --once | ssink
  tail -F access.log | sbatch -i 2s | smap --flat 'split(value, " ")' | sreduce -k value --count | ssink
  sbatch --watch /var/spool/events --format json -i 10s | ssink --sqlite events.db
  sbatch --follow --checkpoint ck -i 10s app.log | sreduce -k value --count --running --checkpoint ck | ssink --checkpoint ck --sqlite counts.db --mode complete
  sbatch --format json --time-field ts -i 1m events.jsonl | ssink --format json --batch-field batch
  sbatch --once --format parquet out/events-*.parquet | sreduce -k type --count | ssink
  sbatch --reconnect -i 5s tcp://logs.example:9999 | ssink --format lines
  sbatch -i 2s kafka://127.0.0.1:9092/clicks --group wc --checkpoint ck | sreduce -k value --count --running --checkpoint ck | ssink --checkpoint ck --sqlite counts.db --mode complete
  sbatch --once -n 10000 --start earliest --format json --meta-field kafka_ kafka://127.0.0.1:9092/events | ssink --format tsv
  seq 1 10 | sbatch -n 3 | ssink --format json --batch-field batch
  sbatch --checkpoint ck -n 1000 app.log | sreduce -k value --count --running --checkpoint ck | ssink --checkpoint ck
  sbatch --checkpoint ck -i 10s --durable orders --format json nats://127.0.0.1:4222/ORDERS | ssink --checkpoint ck --sqlite orders.db

  sbatch --checkpoint ck -i 1s --format json 'amqp://guest:guest@127.0.0.1:5672/?queue=events' | ssink --checkpoint ck --sqlite events.db`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "lines", Usage: "input `FORMAT`: " + strings.Join(codec.InputFormats, ", ") + " (jsonl and ndjson are json; text is lines)"},
		&cli.DurationFlag{Name: "interval", Aliases: []string{"i"}, Value: time.Second, Usage: "cut a batch every `DUR` (processing time; the event-time interval with --time-field); 0: continuous, a batch as soon as records are read"},
		&cli.DurationFlag{Name: "continuous-idle", Value: 100 * time.Millisecond, Usage: "with -i 0, an empty batch after `DUR` without records, so that time passes downstream"},
		&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Usage: "cut a batch every `N` records (with -i: whichever first)"},
		&cli.BoolFlag{Name: "once", Usage: "read everything available as one batch, then end"},
		&cli.StringFlag{Name: "time-field", Usage: "cut batches by the event time in `FIELD` instead of the wall clock"},
		&cli.StringFlag{Name: "time-unit", Value: "s", Usage: "`UNIT` of numeric event times: s or ms"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip malformed records (bad JSON, ragged CSV, bad times) and count them in --progress instead of failing"},
		&cli.StringFlag{Name: "watch", Usage: "read the files of directory `DIR`, then each new one as it appears (a file is read once, whole), until SIGINT or SIGTERM"},
		&cli.StringFlag{Name: "glob", Usage: "--watch: read only the files whose name matches `PATTERN` (*.json)"},
		&cli.IntFlag{Name: "max-files", Usage: "--watch: a batch begins at most `N` new files (with -i)"},
		&cli.BoolFlag{Name: "latest-first", Usage: "--watch: read the newest files first"},
		&cli.StringFlag{Name: "clean", Usage: "--watch --checkpoint: delete the files of the batches the sink committed, or move them into DIR: `delete|archive:DIR`"},
		&cli.BoolFlag{Name: "follow", Aliases: []string{"F"}, Usage: "keep reading the last FILE as it grows, as tail -F does, until SIGINT or SIGTERM"},
		&cli.BoolFlag{Name: "reconnect", Usage: "when the last input, a socket, is closed or reset, connect again (with backoff from 100ms to 5s) or accept the next connection, until SIGINT or SIGTERM"},
		&cli.DurationFlag{Name: "reconnect-timeout", Usage: "with --reconnect, give up (exit 1) after `DUR` without a connection", DefaultText: "never"},
		&cli.StringFlag{Name: "checkpoint", Usage: "record the input of each batch in `DIR`/offsets (FILE arguments, --watch or a broker); on restart, replay the batches the sink has not committed and go on where the last run stopped"},
		&cli.StringFlag{Name: "group", Aliases: []string{"durable"}, Category: "Brokers", Usage: "the consumer's `NAME` in the broker, whose record of progress follows the batches (the sink's commits, with --checkpoint): kafka://, the consumer group (without --checkpoint the copies of sbatch in it share the partitions); nats://, the durable pull consumer, made if missing (without --checkpoint sbatch reads it, and acks each message once its batch has left)"},
		&cli.BoolFlag{Name: "scale-out", Category: "Brokers", Usage: "kafka:// with --group and --checkpoint: this is one copy of a pipeline run as many (docs/scale-out.md); the group shares the partitions among the copies and moves them when one comes or goes, each copy's --checkpoint is its own, and the group's offsets, committed with the output of the first stage downstream that writes to Kafka (a stateful stage's changelog, ssink --kafka), say where each partition goes on"},
		&cli.StringFlag{Name: "subject", Category: "Brokers", Usage: "nats://: read only the messages of the stream whose subject matches `SUBJECT` (wildcards * and >)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar on stderr (shown when stderr is a terminal and the inputs are files)"},
		&cli.StringFlag{Name: "start", Category: "Brokers", Value: "latest", Usage: "where a new group or checkpoint starts reading: `earliest|latest`"},
		&cli.StringFlag{Name: "meta-field", Category: "Brokers", Usage: "--format json or msgpack: add the message's metadata (kafka://: key, topic, partition, offset, timestamp, headers; nats://: subject, sequence, timestamp, headers; amqp://: message_id, exchange, routing_key, redelivered, timestamp, headers) as fields named `PREFIX`NAME"},
		&cli.IntFlag{Name: "max-rate", Category: "Brokers", Usage: "read at most `N` records per second"},
		&cli.DurationFlag{Name: "server-timeout", Category: "Brokers", Value: 30 * time.Second, Usage: "give up (exit 1, naming the server) after a broker is unreachable for `DUR`"},
		&cli.BoolFlag{Name: "declare", Category: "Brokers", Usage: "amqp://: declare the queue (durable) if it does not exist, instead of failing"},
		&cli.IntFlag{Name: "prefetch", Category: "Brokers", Usage: "amqp://: at most `N` messages delivered and not acknowledged (RabbitMQ's basic.qos, 1 to 65535): a batch holds at most N", DefaultText: "16384, or 2x -n"},
	},
	Action: run,
}

// options turns the command line into the source's Options, refusing the
// combinations of flags that do not go together. What depends on the kind
// of an input (a socket cannot be followed, stdin cannot be replayed) the
// source checks, by its table of kinds.
func options(c *cli.Context) (source.Options, error) {
	o := source.Options{
		Inputs:      c.Args().Slice(),
		Format:      c.String("format"),
		Count:       c.Int("count"),
		Once:        c.Bool("once"),
		Follow:      c.Bool("follow"),
		TimeField:   c.String("time-field"),
		SkipBad:     c.Bool("skip-bad"),
		Checkpoint:  c.String("checkpoint"),
		IntervalSet: c.IsSet("interval"),

		Reconnect:        c.Bool("reconnect"),
		ReconnectTimeout: c.Duration("reconnect-timeout"),

		Group:         c.String("group"),
		ScaleOut:      c.Bool("scale-out"),
		Subject:       c.String("subject"),
		MetaField:     c.String("meta-field"),
		MaxRate:       c.Int("max-rate"),
		ServerTimeout: c.Duration("server-timeout"),
	}
	if c.IsSet("start") {
		o.Start = c.String("start")
	}
	o.Declare = c.Bool("declare")
	if c.IsSet("prefetch") {
		if o.Prefetch = c.Int("prefetch"); o.Prefetch < 1 {
			return o, stage.UsageError("--prefetch %d: want 1 to 65535 messages (RabbitMQ's limit)", o.Prefetch)
		}
	}
	if c.IsSet("watch") {
		switch {
		case c.String("watch") == "":
			return o, stage.UsageError("--watch needs a directory")
		case len(o.Inputs) > 0:
			return o, stage.UsageError("--watch reads the files of a directory: it does not take FILE arguments too")
		}
		o.Inputs = []string{"watch://" + c.String("watch")}
		if err := watchOptions(c, &o); err != nil {
			return o, err
		}
	} else {
		for _, f := range []string{"glob", "max-files", "latest-first", "clean"} {
			if c.IsSet(f) {
				return o, stage.UsageError("--%s picks the files of a watched directory: it needs --watch DIR", f)
			}
		}
	}
	switch iv := c.Duration("interval"); {
	case iv == 0:
		if err := continuous(c, &o); err != nil {
			return o, err
		}
	case c.IsSet("continuous-idle"):
		return o, stage.UsageError("--continuous-idle goes with -i 0, the continuous trigger")
	case iv < time.Millisecond || iv%time.Millisecond != 0:
		return o, stage.UsageError("--interval %v: want a whole number of milliseconds, at least 1ms (or 0: continuous)", iv)
	default:
		o.Interval = iv.Milliseconds()
	}
	if c.IsSet("count") && o.Count <= 0 {
		return o, stage.Hint(stage.UsageError("--count %d: want 1 or more records per batch", o.Count),
			"-n N cuts a batch every N records; to cut batches by time only, leave -n out and give -i DUR")
	}
	var err error
	if o.Unit, err = codec.ParseTimeUnit(c.String("time-unit")); err != nil {
		return o, stage.Usage(err)
	}
	if _, err := codec.NewDecoder(o.Format, strings.NewReader(""), ""); err != nil {
		return o, stage.Usage(err)
	}
	switch {
	case o.Once && c.IsSet("interval") && o.TimeField == "":
		return o, stage.Hint(stage.UsageError("--once reads what is there now: it does not go with -i, which cuts batches by the clock"),
			"--once alone makes one batch; with -n N, batches of N records; with --time-field, event-time batches")
	case o.TimeField != "" && c.IsSet("count"):
		return o, stage.UsageError("--time-field cuts batches by event time: it does not go with -n")
	case c.IsSet("time-unit") && o.TimeField == "":
		return o, stage.UsageError("--time-unit needs --time-field")
	case o.Follow && o.Once:
		return o, stage.UsageError("--follow reads on as the file grows: it does not go with --once, which ends at the end of the input")
	case o.Follow && codec.RowOffsets(o.Format):
		return o, stage.UsageError("--follow reads on as the file grows: a Parquet file is written whole, once")
	case o.Reconnect && codec.RowOffsets(o.Format):
		return o, stage.UsageError("--reconnect reads on from a new connection: a Parquet file is read whole, from its footer")
	case o.Reconnect && o.Once:
		return o, stage.UsageError("--reconnect reads on until SIGINT or SIGTERM: it does not go with --once, which ends at the end of the input")
	case o.Reconnect && o.Format == "msgpack":
		return o, stage.Hint(stage.UsageError("--reconnect drops the unended last line of a broken connection: --format msgpack has no lines"),
			"leave --reconnect out, or have the sender write lines (--format json: one JSON object a line)")
	case c.IsSet("reconnect-timeout") && !o.Reconnect:
		return o, stage.UsageError("--reconnect-timeout needs --reconnect")
	case o.ReconnectTimeout < 0 || c.IsSet("reconnect-timeout") && o.ReconnectTimeout == 0:
		return o, stage.UsageError("--reconnect-timeout %v: want a positive duration (leave it out to wait for ever)", o.ReconnectTimeout)
	case c.IsSet("checkpoint") && o.Checkpoint == "":
		return o, stage.UsageError("--checkpoint needs a directory")
	case o.Start != "" && o.Start != "earliest" && o.Start != "latest":
		return o, stage.UsageError("--start %s: want earliest or latest", o.Start)
	case c.IsSet("max-rate") && o.MaxRate <= 0:
		return o, stage.UsageError("--max-rate %d: want 1 or more records per second", o.MaxRate)
	case c.IsSet("server-timeout") && o.ServerTimeout <= 0:
		return o, stage.UsageError("--server-timeout %v: want a positive duration", o.ServerTimeout)
	case c.IsSet("group") && o.Group == "":
		return o, stage.UsageError("--group (--durable) needs a name")
	case o.ScaleOut && (o.Group == "" || o.Checkpoint == "" || len(o.Inputs) != 1 || !strings.HasPrefix(o.Inputs[0], "kafka://")):
		return o, stage.Hint(stage.UsageError("--scale-out reads one kafka:// input in a --group, with a --checkpoint of this copy's own"),
			"for example: sbatch kafka://127.0.0.1:9092/clicks --group clicks --scale-out --checkpoint /var/lib/dstream/1")
	case c.IsSet("subject") && o.Subject == "":
		return o, stage.UsageError("--subject needs a subject")
	}
	return o, nil
}

// continuous checks the flags of -i 0, the continuous trigger.
func continuous(c *cli.Context, o *source.Options) error {
	o.Continuous, o.Idle = true, c.Duration("continuous-idle")
	switch {
	case o.Idle < time.Millisecond:
		return stage.UsageError("--continuous-idle %v: want at least 1ms", o.Idle)
	case c.IsSet("count"), c.Bool("once"), c.IsSet("time-field"), c.IsSet("max-files"):
		return stage.Hint(stage.UsageError("-i 0 cuts a batch at every read: it does not go with -n, --once, --time-field or --max-files"),
			"give -i DUR for batches of DUR, or leave -i 0 for a batch as soon as records come")
	}
	return nil
}

// watchOptions reads the flags of a watched directory.
func watchOptions(c *cli.Context, o *source.Options) error {
	o.Glob, o.MaxFiles, o.LatestFirst = c.String("glob"), c.Int("max-files"), c.Bool("latest-first")
	if _, err := filepath.Match(o.Glob, ""); err != nil {
		return stage.UsageError("--glob %s: %v", o.Glob, err)
	}
	if c.IsSet("max-files") {
		switch {
		case o.MaxFiles <= 0:
			return stage.UsageError("--max-files %d: want 1 or more files per batch", o.MaxFiles)
		case c.Bool("once") || c.IsSet("time-field") || (c.IsSet("count") && !c.IsSet("interval")):
			// Files wait for the next batch, which only the clock cuts.
			return stage.Hint(stage.UsageError("--max-files holds files back for the next batches: it goes with -i only (not --once, -n alone or --time-field)"),
				"give -i DUR, the interval at which the batches that take the files are cut")
		}
	}
	if !c.IsSet("clean") {
		return nil
	}
	mode := c.String("clean")
	if c.String("checkpoint") == "" {
		return stage.Hint(stage.UsageError("--clean %s acts once the sink has committed a batch: it needs --checkpoint", mode),
			"give --checkpoint DIR to sbatch and to the sink (ssink --checkpoint DIR)")
	}
	switch arch, ok := strings.CutPrefix(mode, "archive:"); {
	case mode == "delete":
		o.Clean = "delete"
	case ok && arch != "":
		abs, err := filepath.Abs(arch)
		if err != nil {
			return stage.Usage(err)
		}
		watched, err := filepath.Abs(c.String("watch"))
		if err != nil {
			return stage.Usage(err)
		}
		if abs == watched {
			return stage.UsageError("--clean %s: the archive must be another directory than the watched one", mode)
		}
		o.Clean, o.Archive = "archive", arch
	default:
		return stage.UsageError("--clean %s: want delete or archive:DIR", mode)
	}
	return nil
}

func run(e *stage.Env) error {
	o, err := options(e.Ctx)
	if err != nil {
		return err
	}
	defer startBar(e, &o)()
	return source.Run(e, o)
}

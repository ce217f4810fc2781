package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dstream/dstream/input"
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

Records: a text line becomes {"value": LINE} (Spark's text source); with
--format json each line is one JSON object; csv and tsv take field names from
the header row and keep every cell a string (Spark without inferSchema);
msgpack reads maps back to back.

Triggers (when a batch is cut):
  -i DUR      processing time: a batch every DUR of wall-clock time, aligned to
              the unix epoch; its batch time is the end of its interval. While
              the input is idle, empty batches go on (windows count on them).
  -n N        a batch every N records; with -i, whichever comes first. A batch
              cut by count takes the time it was cut as its batch time.
  --once      everything available as ONE batch, then end of stream. Its batch
              time is the time sbatch started.
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
(Spark's file source): those there at the start, oldest first, then each
new one as it appears, until SIGINT or SIGTERM (with --once: the files
there now, as one batch). A file is read once, whole, when it is seen, so
a writer makes it under a name starting with . or _ (skipped, as Spark
skips them) and renames it when complete. Not with --checkpoint yet.

--follow (-F) keeps reading the last FILE as it grows, as tail -F does,
until SIGINT or SIGTERM: a partial last line waits for its end; a log
replaced by rename (rotated) or truncated is read again from its start,
with a note on stderr (with --checkpoint, whose offsets follow one file by
its path, that is an error). The file is looked at every 50 ms once its end
is read.

Checkpoint (--checkpoint DIR, with FILE arguments only: stdin cannot be read
again): before batch N leaves, sbatch writes DIR/offsets/N (atomically), the
byte ranges of the files the batch covers and its batch time. On restart with
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

Examples:
  printf 'hello world\nfoo\n' | sbatch --once | ssink
  tail -F access.log | sbatch -i 2s | smap --flat 'split(value, " ")' | sreduce -k value --count | ssink
  sbatch --watch /var/spool/events --format json -i 10s | ssink --sqlite events.db
  sbatch --follow --checkpoint ck -i 10s app.log | sreduce -k value --count --running --checkpoint ck | ssink --checkpoint ck --sqlite counts.db --mode complete
  sbatch --format json --time-field ts -i 1m events.jsonl | ssink --format json --batch-field batch
  seq 1 10 | sbatch -n 3 | ssink --format json --batch-field batch
  sbatch --checkpoint ck -n 1000 app.log | sreduce -k value --count --running --checkpoint ck | ssink --checkpoint ck`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "lines", Usage: "input `FORMAT`: " + strings.Join(input.Formats, ", ")},
		&cli.DurationFlag{Name: "interval", Aliases: []string{"i"}, Value: time.Second, Usage: "cut a batch every `DUR` (processing time; the event-time interval with --time-field)"},
		&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Usage: "cut a batch every `N` records (with -i: whichever first)"},
		&cli.BoolFlag{Name: "once", Usage: "read everything available as one batch, then end"},
		&cli.StringFlag{Name: "time-field", Usage: "cut batches by the event time in `FIELD` instead of the wall clock"},
		&cli.StringFlag{Name: "time-unit", Value: "s", Usage: "`UNIT` of numeric event times: s or ms"},
		&cli.BoolFlag{Name: "skip-bad", Usage: "skip malformed records (bad JSON, ragged CSV, bad times) and count them in --progress instead of failing"},
		&cli.StringFlag{Name: "watch", Usage: "read the files of directory `DIR`, then each new one as it appears (a file is read once, whole), until SIGINT or SIGTERM"},
		&cli.BoolFlag{Name: "follow", Aliases: []string{"F"}, Usage: "keep reading the last FILE as it grows, as tail -F does, until SIGINT or SIGTERM"},
		&cli.StringFlag{Name: "checkpoint", Usage: "record the input of each batch in `DIR`/offsets (FILE arguments only); on restart, replay the batches the sink has not committed and go on where the last run stopped"},
	},
	Action: run,
}

// config is the parsed command line.
type config struct {
	files     []string
	format    string
	interval  int64 // ms
	count     int
	once      bool
	follow    bool
	watch     string // --watch DIR, or ""
	timeField string
	unit      input.TimeUnit
	skipBad   bool
	// checkpoint is the checkpoint directory (--checkpoint), or "".
	checkpoint  string
	intervalSet bool // -i was given
}

func parseConfig(c *cli.Context) (*config, error) {
	cfg := &config{
		files:       c.Args().Slice(),
		format:      c.String("format"),
		count:       c.Int("count"),
		once:        c.Bool("once"),
		follow:      c.Bool("follow"),
		watch:       c.String("watch"),
		timeField:   c.String("time-field"),
		skipBad:     c.Bool("skip-bad"),
		checkpoint:  c.String("checkpoint"),
		intervalSet: c.IsSet("interval"),
	}
	if c.IsSet("watch") {
		switch {
		case cfg.watch == "":
			return nil, stage.UsageError("--watch needs a directory")
		case len(cfg.files) > 0:
			return nil, stage.UsageError("--watch reads the files of a directory: it does not take FILE arguments too")
		case c.Bool("follow"):
			return nil, stage.UsageError("--watch reads each file once, whole: it does not go with --follow")
		case c.IsSet("checkpoint"):
			return nil, stage.Hint(stage.UsageError("--watch does not go with --checkpoint yet"),
				"a checkpoint replays named files: give them as arguments (sbatch --checkpoint DIR FILE...), or leave --checkpoint out")
		}
	}
	if len(cfg.files) == 0 && cfg.watch == "" {
		cfg.files = []string{"-"}
	}
	iv := c.Duration("interval")
	if iv < time.Millisecond || iv%time.Millisecond != 0 {
		return nil, stage.UsageError("--interval %v: want a whole number of milliseconds, at least 1ms", iv)
	}
	cfg.interval = iv.Milliseconds()
	if c.IsSet("count") && cfg.count <= 0 {
		return nil, stage.Hint(stage.UsageError("--count %d: want 1 or more records per batch", cfg.count),
			"-n N cuts a batch every N records; to cut batches by time only, leave -n out and give -i DUR")
	}
	var err error
	if cfg.unit, err = input.ParseTimeUnit(c.String("time-unit")); err != nil {
		return nil, stage.Usage(err)
	}
	if _, err := input.New(cfg.format, strings.NewReader(""), ""); err != nil {
		return nil, stage.Usage(err)
	}
	switch {
	case cfg.once && (c.IsSet("count") || c.IsSet("interval")):
		return nil, stage.UsageError("--once takes everything as one batch: it does not go with -n or -i")
	case cfg.timeField != "" && (cfg.once || c.IsSet("count")):
		return nil, stage.UsageError("--time-field cuts batches by event time: it does not go with --once or -n")
	case c.IsSet("time-unit") && cfg.timeField == "":
		return nil, stage.UsageError("--time-unit needs --time-field")
	case cfg.follow && cfg.once:
		return nil, stage.UsageError("--follow reads on as the file grows: it does not go with --once, which ends at the end of the input")
	case cfg.follow && stage.IsSocket(cfg.files[len(cfg.files)-1]):
		return nil, stage.UsageError("--follow follows a file that grows: a socket is read as it comes anyway")
	case cfg.follow && cfg.files[len(cfg.files)-1] == "-":
		return nil, stage.Hint(stage.UsageError("--follow follows the last FILE argument, not stdin"),
			"name the file to follow (sbatch --follow app.log), or pipe tail -F into sbatch")
	}
	if err := checkFiles(cfg, c.IsSet("checkpoint")); err != nil {
		return nil, err
	}
	return cfg, nil
}

func run(e *stage.Env) error {
	cfg, err := parseConfig(e.Ctx)
	if err != nil {
		return err
	}
	var srcs []source
	var ck *tracker
	var more func() (source, bool, error)
	if cfg.watch != "" {
		w, err := newWatcher(cfg.watch, cfg.once, e.Stop.RequestedC())
		if err != nil {
			return err
		}
		more = w.next
	} else if cfg.checkpoint != "" {
		if ck, err = openTracker(cfg); err != nil {
			return err
		}
		srcs, err = ck.sources()
	} else {
		srcs, err = openSources(cfg.files, e)
	}
	if err != nil {
		return err
	}
	if cfg.follow {
		if err := follow(srcs, cfg, e); err != nil {
			return err
		}
	}
	p := newProducer(srcs, cfg)
	p.more = more
	go p.run()
	b := &batcher{e: e, cfg: cfg, chunks: p.out, free: p.free, ck: ck}
	return b.run()
}

// source is one input: a file or stdin.
type source struct {
	name string
	r    interface {
		Read([]byte) (int, error)
		Close() error
	}

	// With --checkpoint (see tracker):
	file      int         // index of the file in config.files
	start     int64       // offset in the file of r's first byte
	at        io.ReaderAt // the file from its start
	replay    bool        // r is a range of a replayed batch
	replayEnd bool        // the last range of a replayed batch
}

func openSources(files []string, e *stage.Env) ([]source, error) {
	var srcs []source
	for _, f := range files {
		if f == "-" {
			srcs = append(srcs, source{name: "stdin", r: nopClose{e.Stdin}})
			continue
		}
		if stage.IsSocket(f) {
			r, err := stage.OpenSocket(f)
			if err != nil {
				for _, s := range srcs {
					s.r.Close()
				}
				return nil, err
			}
			srcs = append(srcs, source{name: f, r: r})
			continue
		}
		fh, err := openFile(f)
		if err != nil {
			for _, s := range srcs {
				s.r.Close()
			}
			return nil, err
		}
		srcs = append(srcs, source{name: f, r: fh})
	}
	return srcs, nil
}

func openFile(name string) (*os.File, error) {
	fh, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, stage.Hint(fmt.Errorf("cannot read input: %w", err), "name an existing file, or - for stdin")
		}
		return nil, fmt.Errorf("cannot read input: %w", err)
	}
	return fh, nil
}

type nopClose struct {
	r interface{ Read([]byte) (int, error) }
}

func (n nopClose) Read(p []byte) (int, error) { return n.r.Read(p) }
func (nopClose) Close() error                 { return nil }

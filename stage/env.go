package stage

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/urfave/cli/v2"
)

// Common flags.
const (
	flagIn       = "in"
	flagOut      = "out"
	flagProgress = "progress"
	flagCompress = "compress"
	// flagStopTimeout bounds a graceful stop: see Stopper.
	flagStopTimeout = "stop-timeout"
)

func commonFlags(c *Command) []cli.Flag {
	var fs []cli.Flag
	if c.Input {
		fs = append(fs,
			&cli.StringFlag{Name: flagIn, Value: "-", Usage: "read frames from `ENDPOINT`: - (stdin), " + endpointHelp, Category: "Input and output"},
			&cli.DurationFlag{Name: flagStopTimeout, Usage: "after SIGINT or SIGTERM, wait at most `DUR` for the upstream to end its stream, then stop after the batch in hand (exit 1 if batches were left behind); a second signal stops sooner too", DefaultText: "none, wait for the upstream", Category: "Input and output"},
		)
	}
	if c.Output {
		fs = append(fs,
			&cli.StringFlag{Name: flagOut, Value: "-", Usage: "write frames to `ENDPOINT`: - (stdout), " + endpointHelp, Category: "Input and output"},
			&cli.StringFlag{Name: flagCompress, Value: "none", Usage: "compress record frames with `METHOD`: none, s2 or zstd (for sockets between machines and files; pipes are faster without)", Category: "Input and output"},
		)
	}
	if !c.Input && !c.Output {
		// A command without frames (sdash) has no batches to report.
		return fs
	}
	fs = append(fs, &cli.StringFlag{Name: flagMetrics, Usage: "serve Prometheus metrics (dstream_records_in_total{stage=...}, dstream_batch_duration_seconds, ...) at http://`HOST:PORT`/metrics", Category: "Monitoring"})
	fs = append(fs, &cli.StringFlag{Name: flagProgress, Usage: "write one JSON line per batch (Spark's StreamingQueryProgress fields, the stage's name and pid) to `DEST`: a file, - for stderr, or a collector (sdash --listen) at tcp://HOST:PORT or unix:///PATH, which may be down: lines are dropped meanwhile, never the stage's data", Category: "Monitoring"})
	return fs
}

// Env is what a stage's Action works with: its command line, its framed
// input and output (when it has them), signals and progress.
type Env struct {
	Name   string
	Ctx    *cli.Context
	Args   []string // the command line as given, Args[0] the program name
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	In       *framing.Reader // framed input, when the Command has Input
	Out      *framing.Writer // framed output, when the Command has Output
	Stop     *Stopper
	Progress *Progress // nil without --progress and --metrics
	// Stats of the batch in hand, reported to --progress at its end. Loop
	// resets it at each BatchBegin; a stage adds what it knows.
	Stats Stats

	input   stopReader
	inName  string // --in, when it is an endpoint
	closers []io.Closer
	ck      ckPart
}

func newEnv(c *Command, ctx *cli.Context, stdin io.Reader, stdout, stderr io.Writer) (*Env, error) {
	e := &Env{Name: c.Name, Ctx: ctx, Stdin: stdin, Stdout: stdout, Stderr: stderr}
	if p := ctx.String(flagProgress); p != "" {
		e.Progress = &Progress{name: c.Name}
		cl, err := openProgress(e.Progress, p, stderr)
		if err != nil {
			return nil, err
		}
		e.closers = append(e.closers, cl)
	}
	if addr := ctx.String(flagMetrics); addr != "" {
		if e.Progress == nil {
			e.Progress = &Progress{name: c.Name}
		}
		m := NewMetrics(c.Name)
		cl, err := serveMetrics(m, addr)
		if err != nil {
			e.close()
			return nil, err
		}
		e.Progress.Add(m)
		e.closers = append(e.closers, cl)
	}
	var timeout time.Duration
	if c.Input {
		if timeout = ctx.Duration(flagStopTimeout); timeout < 0 {
			e.close()
			return nil, UsageError("--%s %v: want a positive duration, or 0 to wait for the upstream", flagStopTimeout, timeout)
		}
	}
	e.Stop = newStopper(timeout)
	if c.Input {
		r, cl, err := openInput(ctx.String(flagIn), stdin)
		if err != nil {
			e.close()
			return nil, err
		}
		if cl != nil {
			e.closers = append(e.closers, cl)
		}
		if IsSocket(ctx.String(flagIn)) {
			e.inName = ctx.String(flagIn)
		}
		var restore io.Closer
		e.input, restore = newStopReader(r, e.Stop.now)
		if restore != nil {
			e.closers = append(e.closers, restore)
		}
		e.In = framing.NewReader(e.input)
	}
	if c.Output {
		comp, err := framing.ParseCompression(ctx.String(flagCompress))
		if err != nil {
			e.close()
			return nil, Usage(err)
		}
		w, cl, err := openOutput(c.Name, ctx.String(flagOut), stdout)
		if err != nil {
			e.close()
			return nil, err
		}
		if cl != nil {
			e.closers = append(e.closers, cl)
		}
		e.Out = framing.NewWriter(w)
		if err := e.Out.SetCompression(comp); err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

// run runs the action. On success the output stream is ended (End frame);
// on failure it is left without one, so that the next stage reports the
// stream as truncated rather than taking it as complete.
func (e *Env) run(action func(*Env) error) error {
	defer e.close()
	err := action(e)
	if err == nil && e.Out != nil {
		err = e.Out.Close()
	}
	if err != nil && !IsClosedPipe(err) {
		e.Progress.ReportError(err)
	}
	return err
}

func (e *Env) close() {
	if e.Stop != nil {
		e.Stop.stop()
	}
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i].Close()
	}
	e.closers = nil
}

// Batch identifies a batch: its id and its time (unix ms, end of interval).
type Batch struct {
	ID   uint64
	Time int64
}

func (b Batch) String() string { return fmt.Sprintf("batch %d", b.ID) }

// Handler is what a stage with framed input does with each frame. Loop
// calls Begin, then Block for each block of records, then End; Watermark
// between batches.
type Handler interface {
	Begin(b Batch) error
	Block(b Batch, recs framing.Records) error
	End(b Batch) error
	Watermark(t int64) error
}

// Loop reads the input to its end and hands every frame to h. It returns nil
// at the end of a well-formed stream. Errors name the batch. After each
// batch Loop reports progress.
//
// A signal alone changes nothing here: the stage goes on until its upstream
// ends the stream (graceful stop, see Stopper). Once the stop is forced,
// Loop stops after the batch in hand: it still takes what has already
// arrived of its input without waiting for more, and returns nil if that
// was all (the stream's end, watermarks, or nothing), or a stopError if a
// later batch had begun to arrive.
//
// A handler that is a LayoutChecker is given blocks whose layout it checks
// itself.
func (e *Env) Loop(h Handler) error {
	var f framing.Frame
	var cur Batch
	var written uint64 // e.Out.Written() at the batch's start
	var passed *uint64 // the last batch passed on
	e.input.allowStop(true)
	if _, ok := h.(LayoutChecker); ok {
		e.In.DeferCheck = true
	}
	for {
		err := e.In.Read(&f)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			if errors.Is(err, errStopped) {
				if e.In.Buffered() > 0 {
					// Part of a frame had arrived: a watermark, or more
					// likely the next batch.
					return e.Stop.StopLoss(passed, nil)
				}
				return nil
			}
			return e.readError(err)
		}
		switch f.Kind {
		case framing.KindBatchBegin:
			if e.Stop.Now() {
				// No new batch once the stop is forced.
				return e.Stop.StopLoss(passed, nil)
			}
			e.input.allowStop(false)
			cur = Batch{ID: f.BatchID, Time: f.Time}
			e.Stats = Stats{Batch: cur, Start: time.Now()}
			if e.Out != nil {
				written = e.Out.Written()
			}
			err = h.Begin(cur)
		case framing.KindRecords:
			e.Stats.InputRows += f.Count
			err = h.Block(cur, f.Records())
			if e.In.DeferCheck && errors.Is(err, framing.ErrCorrupt) {
				// A layout the handler checked (LayoutChecker), named
				// as the reader names it.
				return e.readError(fmt.Errorf("%v: %w", cur, err))
			}
		case framing.KindBatchEnd:
			if err = h.End(cur); err == nil {
				id := cur.ID
				passed = &id
				if e.Out != nil {
					// What this input batch made the stage write: the
					// output batches need not match the input's (swindow).
					e.Stats.OutputRows = e.Out.Written() - written
				}
				e.Progress.Report(&e.Stats)
				e.input.allowStop(true)
			}
		case framing.KindWatermark:
			err = h.Watermark(f.Time)
		case framing.KindCheckpoint:
			err = e.checkpointFrame(&f)
		}
		if err != nil {
			if IsClosedPipe(err) && e.Stop.Requested() {
				// The next stage stopped (a forced stop, or killed
				// by the signal) before this one passed its batches on.
				return e.Stop.StopLoss(passed, err)
			}
			return WithBatch(err, cur)
		}
	}
}

// Forward is a Handler that passes batches and watermarks on unchanged; a
// stage embeds it and overrides what it changes.
type Forward struct{ Out *framing.Writer }

// Begin opens the same batch on the output.
func (p Forward) Begin(b Batch) error { return p.Out.BeginBatch(b.ID, b.Time) }

// End closes the batch on the output.
func (p Forward) End(Batch) error { return p.Out.EndBatch() }

// Watermark passes the watermark on.
func (p Forward) Watermark(t int64) error { return p.Out.Watermark(t) }

// readError names an error of the input as read.
func (e *Env) readError(err error) error {
	if e.inName != "" {
		return fmt.Errorf("reading input from %s: %w", e.inName, err)
	}
	return fmt.Errorf("reading input: %w", err)
}

// LayoutChecker is a Handler that checks the layout of each block it is
// given as it walks it (framing.Records.Check, or a walk that checks each
// record's length: agg.Table.AddBlock), so that the reader need not check
// it first (framing.Reader.DeferCheck). Its Block returns an error
// wrapping framing.ErrCorrupt for a block that does not hold its records.
type LayoutChecker interface {
	Handler
	ChecksLayout()
}

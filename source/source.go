// Package source is the head of a dstream pipeline (the engine of sbatch): it
// reads raw input, decodes it into records (package codec) and cuts the
// records into micro-batches by the batch clock, writing the framed stream.
//
// The parts, each in its file:
//
//   - kinds.go: the kinds of input, a table by URL scheme: a file or stdin
//     (file.go), a socket (socket.go), a watched directory (watch.go), a
//     broker (kafka.go, nats.go: Feeds of messages, feed.go, tracked by
//     brokertrack.go). A new kind is a file with a Kind and one Register
//     line.
//   - producer.go: decodes the inputs in a goroutine of its own and hands
//     records over in chunks, each record with the position after it.
//   - clock.go: the batcher, the batch clock (an interval of processing
//     time, a count, once, event time).
//   - position.go: where the input stands (Position), and the Tracker that
//     keeps it in the checkpoint; offsets.go: the tracker of files, by byte
//     ranges (docs/design.md, Checkpoint).
//   - follow.go: a file read as it grows (tail -F); reconnect.go: a socket
//     connected again when it is lost (--reconnect).
package source

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
)

// Options is what sbatch reads and how it cuts batches. Run does not check
// the combinations of options a command line can get wrong (sbatch's flags
// do), only what depends on the kind of each input.
type Options struct {
	// Inputs are read one after another: file names, - for stdin, or URLs
	// of a registered Kind (tcp://HOST:PORT, watch://DIR...; see kinds.go).
	// None: stdin.
	Inputs []string
	// Format is the input format (codec.InputFormats).
	Format string
	// Interval is the batch interval in ms (at least 1): of processing time,
	// or of event time with TimeField.
	Interval int64
	// IntervalSet tells that the interval was asked for: with Count, the
	// batches are then cut by either, whichever comes first; else by Count
	// only.
	IntervalSet bool
	// Count cuts a batch every Count records (0: not by count).
	Count int
	// Continuous cuts a batch at every hand-over of the records read so far
	// (sbatch -i 0): the batch leaves as soon as the producer has them,
	// with the chunks that wait at the cut. While the input is idle an
	// empty batch leaves every Idle, so that time passes downstream. Not
	// with Count, Once or TimeField.
	Continuous bool
	Idle       time.Duration
	// Once reads everything available as one batch, then ends; with Count
	// or TimeField, what is available now is cut by them (AvailableNow).
	Once bool
	// Follow reads the last input on as it grows (tail -F).
	Follow bool
	// TimeField cuts batches by the event time in this field ("": by the
	// wall clock); Unit is the unit of numeric event times.
	TimeField string
	Unit      codec.TimeUnit
	// SkipBad skips malformed records, counting them in the progress.
	SkipBad bool
	// Reconnect connects again, with backoff, when the last input, a
	// socket, is closed or reset, instead of ending (see reconnect.go);
	// ReconnectTimeout gives up after so long without a connection (0:
	// never).
	Reconnect        bool
	ReconnectTimeout time.Duration
	// Checkpoint is the checkpoint directory ("": none): the inputs must be
	// of a Kind that replays.
	Checkpoint string

	// A watched directory (watch://DIR): MaxFiles is the most new files a
	// batch may begin (0: no limit; Spark's maxFilesPerTrigger);
	// LatestFirst reads the newest files first; Glob, if set, is the
	// pattern (path.Match) the base name of a file must match; Clean is
	// "delete" or "archive" (into the directory Archive) for the files of
	// the batches the sink committed (Spark's cleanSource; with Checkpoint).
	MaxFiles    int
	LatestFirst bool
	Glob        string
	Clean       string
	Archive     string

	// A broker (kafka://, nats://, amqp://): MetaField is the prefix of the
	// metadata fields of a message read as json or msgpack ("": none);
	// MaxRate caps the records read per second (0: no cap); Group is the
	// consumer group (Kafka) or durable consumer (NATS); Start is where a
	// new one starts: "earliest" or "latest" ("": latest).
	MetaField string
	MaxRate   int
	Group     string
	Start     string
	// Subject reads only the messages of a JetStream stream whose subject
	// matches it (NATS wildcards; "": all).
	Subject string
	// Declare declares a RabbitMQ queue that is missing; Prefetch bounds
	// the messages RabbitMQ delivers and sbatch has not acknowledged (0:
	// the default, see amqp.go).
	Declare  bool
	Prefetch int
	// ScaleOut makes this sbatch one copy of a scaled-out pipeline
	// (kafka:// with Group and Checkpoint; docs/scale-out.md): the group
	// assigns it partitions, which move between copies; the group's offsets,
	// not the checkpoint, say where each partition goes on.
	ScaleOut bool
	// ServerTimeout is how long a broker may stay unreachable, at the start
	// or later, before sbatch fails naming it.
	ServerTimeout time.Duration

	// Meter, if set, counts the bytes read and the records decoded, as
	// they go (sbatch's progress bar).
	Meter *Meter
}

// Meter counts what the producer has read so far. Its counters may be read
// at any time, from any goroutine.
type Meter struct {
	Bytes   atomic.Int64 // of the inputs read as bytes (not a broker's messages)
	Records atomic.Int64 // decoded, bad records skipped left out
}

// meterReader counts the bytes read from r.
type meterReader struct {
	r io.Reader
	m *Meter
}

func (c meterReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.Bytes.Add(int64(n))
	return n, err
}

// Input is one stream of bytes to decode: a file, stdin, a connection, a
// range of a file to replay.
type Input struct {
	Name string // for messages: the file name, stdin, the URL
	R    io.ReadCloser

	// With a checkpoint (see Tracker):
	Stream    int         // the number of the stream in the tracker (a file)
	Start     int64       // offset in the stream of R's first byte
	At        io.ReaderAt // the stream from its start, to read a CSV header again, or a Parquet file
	End       int64       // with Replay, the offset where R ends (a Parquet file's rows are read by offset, not from R)
	Replay    bool        // R is a range of a replayed batch
	ReplayEnd bool        // the last range of a replayed batch

	// A broker's input is a Feed of messages instead of R, whose records
	// hold the metadata Meta names.
	Feed Feed
	Meta *Meta
}

// close closes an input not read.
func (in *Input) close() {
	if in.Feed != nil {
		in.Feed.Close()
	} else {
		in.R.Close()
	}
}

// Source yields the inputs of one Kind, one after another: one for a file
// or a socket, one per file for a watched directory.
type Source interface {
	// Next returns the next input, or false when there is none; it may
	// wait for one (a watched directory waits for a new file until a stop).
	Next() (Input, bool, error)
	// Close closes the inputs not yielded yet.
	Close() error
}

// Run reads the inputs of o and writes their batches to e.Out until the
// input ends or a stop is asked for (e.Stop).
func Run(e *stage.Env, o Options) error {
	if len(o.Inputs) == 0 {
		o.Inputs = []string{"-"}
	}
	kinds, err := resolve(o)
	if err != nil {
		return err
	}
	var src Source
	var ck Tracker
	if o.Checkpoint != "" || kinds[0].Tracked {
		// resolve made sure that with a checkpoint the inputs are of one
		// kind, which replays.
		if ck, err = kinds[0].Track(Opening{Env: e, Options: &o}); err != nil {
			return err
		}
		if c, ok := ck.(io.Closer); ok {
			defer c.Close()
		}
		var ins []Input
		if ins, err = ck.Inputs(); err == nil && o.Follow {
			err = follow(&ins[len(ins)-1], o, e)
		}
		src = &list{ins: ins}
		if g, ok := ck.(growing); ok && err == nil {
			src = &sequence{src, g.More(e.Stop.RequestedC(), e.Stderr)}
		}
	} else {
		src, err = open(kinds, o, e)
	}
	if err != nil {
		return err
	}
	p := newProducer(src, o, e.Stop.RequestedC())
	p.track = ck != nil
	go p.run()
	b := &batcher{e: e, o: o, chunks: p.out, free: p.free}
	if ck != nil {
		at, _, _, _ := ck.Resume()
		b.ck = &cursor{t: ck, pos: at}
	}
	err = b.run()
	if en, ok := ck.(ender); ok && err == nil {
		// The stream's end goes out first: a stage that holds batches
		// until then (swindow's last windows) passes them on, and the
		// sink commits them, only after it.
		if err = e.Out.Close(); err == nil {
			en.End()
		}
	}
	return err
}

// open opens every input, in order, so that a missing one is an error before
// the first batch.
func open(kinds []*Kind, o Options, e *stage.Env) (Source, error) {
	srcs := make(sequence, 0, len(o.Inputs))
	for i, spec := range o.Inputs {
		s, err := kinds[i].Open(spec, Opening{Env: e, Options: &o, Follow: o.Follow && i == len(o.Inputs)-1, Reconnect: o.Reconnect && i == len(o.Inputs)-1})
		if err != nil {
			srcs.Close()
			return nil, err
		}
		srcs = append(srcs, s)
	}
	return &srcs, nil
}

// sequence is the sources of the inputs, one after another.
type sequence []Source

func (q *sequence) Next() (Input, bool, error) {
	for len(*q) > 0 {
		in, ok, err := (*q)[0].Next()
		if ok || err != nil {
			return in, ok, err
		}
		*q = (*q)[1:]
	}
	return Input{}, false, nil
}

func (q *sequence) Close() error {
	for _, s := range *q {
		s.Close()
	}
	*q = nil
	return nil
}

// list yields inputs opened already.
type list struct{ ins []Input }

// one yields one input.
func one(in Input) *list { return &list{ins: []Input{in}} }

func (l *list) Next() (Input, bool, error) {
	if len(l.ins) == 0 {
		return Input{}, false, nil
	}
	in := l.ins[0]
	l.ins = l.ins[1:]
	return in, true, nil
}

func (l *list) Close() error {
	for _, in := range l.ins {
		in.close()
	}
	l.ins = nil
	return nil
}

// nopClose is a reader whose Close does nothing: stdin, which is not
// sbatch's to close, and a range of a file that another input closes.
type nopClose struct {
	r io.Reader
}

func (n nopClose) Read(p []byte) (int, error) { return n.r.Read(p) }
func (nopClose) Close() error                 { return nil }

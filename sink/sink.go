// Package sink writes the records of a dstream stream out, batch by batch:
// the engine of ssink. A Sink is the stage.Handler; where its batches go is
// a Destination (stdout, a file per batch, a command per batch, an HTTP
// request per batch here, SQL databases in sink/sqlsink, a message per
// record into brokers in sink/kafkasink, sink/natssink and sink/amqpsink,
// a live web page in sink/servesink), and in which format, an encoder of
// package codec.
//
// Each destination is a file of its own that declares, as data, the flag
// that picks it and the options it takes (Destination); ssink checks its
// command line against those declarations, and a new destination is a file
// and a line in ssink's table.
package sink

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// Options configure a Sink. The option flags of ssink are named beside
// each field.
type Options struct {
	// Dest is where the batches go; nil is Stdout.
	Dest *Destination
	// Target is the value of Dest's flag: the PREFIX of --files, the
	// command of --exec, the URL of --post, the database of --sqlite or
	// --postgres, the URL of a broker (--kafka, --nats, --amqp).
	Target string

	// Format is the name of a codec.Format (--format), for a Dest that
	// encodes; "" is Dest.DefaultFormat.
	Format string
	// Codec holds the format's options (--rows, --no-truncate).
	Codec codec.Options
	// Suffix is the suffix of the file names of Files (--suffix), without
	// the dot; "" for none. (ssink gives it the format's Suffix by default.)
	Suffix string
	// Roll is the number of batches of each file of Files (--roll); 0 or
	// 1 is a file per batch, but 0 with RollSize is no bound. A file of several batches is out, and its
	// batches committed, at its last batch (or at the end of the input).
	Roll int
	// RollSize, if not 0, starts a new file of Files once the one in hand
	// holds about this many bytes (--roll-size), checked at each batch
	// end: a file holds whole batches, and may pass RollSize by a batch.
	// With Roll, a file ends at whichever comes first.
	RollSize int64
	// CompressFiles compresses the files of Files (--compress-files):
	// "gzip" or "zstd", adding .gz or .zst to the suffix; "" for none. A
	// format that writes whole files (parquet) compresses its pages with
	// it instead, and keeps its suffix.
	CompressFiles string

	// Table is the table of a database (--table), Mode its output mode
	// (--mode): append, complete or update. Keys are the fields that
	// identify a row in update mode (--key), as given: each may be a
	// comma-separated list; any value, an empty one too, in another mode
	// is an error. For --kafka, Keys is the one field whose value is the
	// message key.
	Table, Mode string
	Keys        []string

	// CreateStream is the JetStream stream --nats creates to capture its
	// subject when no stream does (--create-stream); "" for none.
	CreateStream string
	// RoutingKeyField, if not "", is the field whose value is the routing
	// key of each record's message (--routing-key-field, with --amqp).
	RoutingKeyField string
	// ConnectTimeout is how long a broker's destination tries again to
	// reach its server at start-up while it is not there
	// (--connect-timeout, DefaultConnectTimeout); 0 tries once.
	ConnectTimeout time.Duration
	// TxnTimeout is the transaction timeout of a transactional
	// destination (--txn-timeout, --kafka with --checkpoint); 0 is the
	// destination's default.
	TxnTimeout time.Duration
	// Stop, if not nil, is closed when the stage is asked to stop: a
	// destination that waits for its server gives up.
	Stop <-chan struct{}

	// SkipEmpty leaves out the batches without records: no console table,
	// file, command, request or transaction for them (--skip-empty). They
	// are committed as any other.
	SkipEmpty bool
	// Charts are the charts of --serve's page (--chart KIND:OPTIONS), as
	// given or split at commas (the pieces after the first of a chart are
	// joined back);
	// Keep is the batches it keeps for a page opened late (--keep; 0 is
	// servesink.DefaultKeep).
	Charts []string
	Keep   int

	// BatchField, if not "", is a field set to the batch time (unix ms)
	// in each record (--batch-field).
	BatchField string
	// Checkpoint is the checkpoint directory the sink commits each batch
	// written in, and skips the batches committed before (--checkpoint);
	// "" for none.
	Checkpoint string

	// Stdout takes the records of Stdout; the commands of --exec write to
	// Stdout and Stderr.
	Stdout, Stderr io.Writer
	// Stats, if not nil, gets the rows written of each batch
	// (OutputRows).
	Stats *stage.Stats
}

// A Writer writes the batches at a destination: Begin, a Record for each
// record of the batch, End. A codec.Encoder is one (on stdout).
type Writer interface {
	Begin(b stage.Batch) error
	// Record writes one record, a msgpack map. Its errors are about the
	// record; the sink names the batch and record.
	Record(rec []byte) error
	// End finishes the batch; the sink flushes its stdout after it, and
	// commits the batch in the checkpoint.
	End(b stage.Batch, n uint64) error
	// Flush is called once, on the way out, after an error too: it writes
	// out what was accepted (stdout), or throws away the batch in hand (a
	// batch's file, command, request or transaction is the whole batch
	// or nothing).
	Flush() error
}

// A holder is a Writer that may keep batches that ended in hand, out only
// later: --files --roll renames a file of several batches into place at
// its last. The sink commits no batch while Held, so that a commit (which
// is "up to") covers only batches that are out; Finish, at the end of a
// well-formed input, puts out what is held.
type holder interface {
	Held() bool
	Finish() error
}

// A Starter is a Writer that creates or connects to its destination only
// once the command line is checked and the checkpoint taken, so that a
// usage error creates nothing. ckpt is the checkpoint's id (checkpoint.ID)
// and dir its directory, "" and "" without one.
type Starter interface {
	Start(ckpt, dir string) error
}

// A commitKeeper is a Writer whose destination keeps its own record of the
// last batch committed, in the batch's own transaction, and skips a
// replayed batch by it (KeepsCommits, once started): the checkpoint's
// commit file is then a copy, not synced (checkpoint.Committer.Copy).
type commitKeeper interface {
	KeepsCommits() bool
}

// rowCounter is a Writer that writes other than a row per record: the SQL
// sink writes nothing of a batch that its table has already.
type rowCounter interface {
	Written() uint64
}

// A Destination declares an output of ssink: the flag that picks it, the
// options it takes, and how it opens. ssink checks its command line
// against these declarations: an option that the destination picked does
// not take is an error naming the destinations that take it.
type Destination struct {
	// Flag is the flag that picks it, whose value is its Target: "files"
	// ("" for Stdout, the default). Usage and Category are that flag's
	// help.
	Flag, Usage, Category string
	// Needs says what Target must be, for the usage error of an empty one
	// ("--files needs a PREFIX ..."); "" when Open checks it.
	Needs string
	// Encodes is set for a destination that writes records in a format
	// of codec (--format, with its options); DefaultFormat is the format
	// without --format.
	Encodes       bool
	DefaultFormat string
	// Hint says why a destination that does not encode refuses --format
	// and the format's options (the hint of that usage error).
	Hint string
	// Group is the kind of a destination that does not encode, plural,
	// for the usage error of two of them: "databases".
	Group string
	// Takes lists the options of its own (flag names): "suffix"; "table",
	// "mode", "key".
	Takes []string
	// Open returns the Writer of the destination for o; f is o's format
	// (nil when it does not encode), stdout the sink's buffered stdout.
	// It checks o and creates nothing (see Starter); errors about the
	// command line are stage.UsageError.
	Open func(o *Options, f *codec.Format, stdout *bufio.Writer) (Writer, error)
}

// Stdout is the default destination: the records on stdout, in --format
// (default console).
var Stdout = Destination{
	Encodes:       true,
	DefaultFormat: "console",
	Open: func(o *Options, f *codec.Format, stdout *bufio.Writer) (Writer, error) {
		return f.New(stdout, o.Codec), nil
	},
}

// Sink is the stage.Handler: it counts records, adds the batch field,
// hands records to the destination's Writer, flushes stdout at each batch
// end and commits the batch in the checkpoint.
type Sink struct {
	out   *bufio.Writer
	w     Writer
	field string // Options.BatchField, or ""
	stats *stage.Stats

	n     uint64 // records of the batch so far
	bld   record.Builder
	tbuf  []byte // the batch time as msgpack
	flds  record.Fields
	batch stage.Batch

	commits *checkpoint.Committer // with a checkpoint, or nil
	skip    bool                  // the batch in hand was committed before
	held    bool                  // the batch s.batch ended, out but not committed (holder)

	skipEmpty bool // Options.SkipEmpty
	pending   bool // the batch in hand is begun at the destination with its first record
}

// New checks o and opens the sink: its destination, and the checkpoint's
// commits. Errors about o are stage.UsageError, and come before anything
// is created.
func New(o Options) (*Sink, error) {
	d := o.Dest
	if d == nil {
		d = &Stdout
	}
	s := &Sink{out: bufio.NewWriterSize(o.Stdout, 64<<10), field: o.BatchField, stats: o.Stats, skipEmpty: o.SkipEmpty}
	var f *codec.Format
	if d.Encodes {
		if o.Format == "" {
			o.Format = d.DefaultFormat
		}
		if o.Codec.Rows < 0 {
			return nil, stage.UsageError("--rows %d: want 0 or more", o.Codec.Rows)
		}
		if f = codec.Lookup(o.Format); f == nil {
			return nil, stage.UsageError("unknown --format %q: want %s", o.Format, codec.Names())
		}
		if f.Whole && d == &Stdout {
			return nil, stage.Hint(stage.UsageError("--format %s writes whole files, not a stream on stdout", f.Name),
				"write a file per batch: ssink --files DIR/PREFIX --format %s", f.Name)
		}
		if f.OneField && s.field != "" {
			return nil, stage.Hint(stage.UsageError("--batch-field does not go with --format %s, which writes one field", f.Name),
				"use --format json, csv or tsv to see the batch time beside the fields")
		}
	}
	var err error
	if s.w, err = d.Open(&o, f, s.out); err != nil {
		return nil, err
	}
	// Last: a usage error creates nothing.
	var ckpt string // the checkpoint's id
	if o.Checkpoint != "" {
		if s.commits, err = checkpoint.OpenCommitter(o.Checkpoint); err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
		if ckpt, err = checkpoint.ID(o.Checkpoint); err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
		// Before any batch can reach the sink: see checkpoint.SinkFile.
		if err := checkpoint.WriteFile(filepath.Join(o.Checkpoint, checkpoint.SinkFile), []byte(d.Flag+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
	}
	if st, ok := s.w.(Starter); ok {
		if err := st.Start(ckpt, o.Checkpoint); err != nil {
			return nil, err
		}
	}
	if k, ok := s.w.(commitKeeper); ok && s.commits != nil {
		s.commits.Copy = k.KeepsCommits()
	}
	return s, nil
}

func (s *Sink) Begin(b stage.Batch) error {
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
	if s.skipEmpty {
		s.pending = true // begun with its first record, if any
		return nil
	}
	return s.w.Begin(b)
}

func (s *Sink) Block(b stage.Batch, recs framing.Records) error {
	if s.skip {
		return nil
	}
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		if s.pending {
			s.pending = false
			if err := s.w.Begin(b); err != nil {
				return err
			}
		}
		s.n++
		var err error
		if record.KindOf(rec) != record.KindMap {
			err = record.ErrNotMap
		} else {
			if s.field != "" {
				rec, err = s.withBatchField(rec)
			}
			if err == nil {
				err = s.w.Record(rec)
			}
		}
		if err != nil {
			return fmt.Errorf("batch %d, record %d: %w", b.ID, s.n, err)
		}
	}
	return nil
}

func (s *Sink) End(b stage.Batch) error {
	if s.skip {
		if s.stats != nil {
			s.stats.OutputRows = 0
		}
		return nil
	}
	if s.pending {
		// --skip-empty: the destination hears nothing of an empty batch;
		// it is still committed.
		s.pending = false
	} else if err := s.w.End(b, s.n); err != nil {
		return err
	}
	if s.stats != nil {
		s.stats.OutputRows = s.n
		if c, ok := s.w.(rowCounter); ok {
			s.stats.OutputRows = c.Written()
		}
	}
	if err := s.out.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if h, ok := s.w.(holder); ok && h.Held() {
		// Not out yet (--roll): committed with the batch that puts it out.
		s.held = true
		return nil
	}
	s.held = false
	if s.commits != nil {
		// Flushed is out, for stdout: the commit point. (For a database
		// the batch's transaction is committed; for --roll the file of the
		// batches since the last commit is renamed into place.)
		return s.commits.Commit(b.ID, b.Time)
	}
	return nil
}

// Finish, at the end of a well-formed input, puts out what the
// destination holds (the last file of --roll) and commits the last batch.
// Not after an error: the batches held are thrown away by Close, and
// replayed after the last commit.
func (s *Sink) Finish() error {
	h, ok := s.w.(holder)
	if !ok || !s.held {
		return nil
	}
	if err := h.Finish(); err != nil {
		return err
	}
	s.held = false
	if s.commits != nil {
		return s.commits.Commit(s.batch.ID, s.batch.Time)
	}
	return nil
}

func (s *Sink) Watermark(int64) error { return nil }

// Close, after the stage's loop, writes out what was accepted before an
// error (on stdout; the other destinations throw away the batch in hand)
// and closes the destination.
func (s *Sink) Close() error {
	err := s.w.Flush()
	if err == nil {
		if err = s.out.Flush(); err != nil {
			err = fmt.Errorf("writing output: %w", err)
		}
	}
	if c, ok := s.w.(io.Closer); ok {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// withBatchField returns rec with the batch field set to the batch time:
// in place if rec has it, else added last (as Spark's withColumn). The
// result is valid until the next call.
func (s *Sink) withBatchField(rec []byte) ([]byte, error) {
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

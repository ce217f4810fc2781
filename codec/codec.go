// Package codec holds dstream's text and binary formats, both ways: the
// decoders that turn raw input into records (sbatch --format: lines, json,
// csv, tsv, msgpack, parquet; decode*.go, NewDecoder) and the encoders that
// write records out (ssink --format: console, json, csv, tsv, lines,
// msgpack, parquet),
// whatever the destination (stdout, a file per batch, a command, an HTTP
// request). Each encoder is one entry of a table (Formats): a new one is a
// file and a line.
package codec

import (
	"bufio"
	"strings"

	"github.com/dstream/dstream/stage"
)

// An Encoder writes the records of a stream in one format, batch by batch.
// It writes to the bufio.Writer it was made with; whoever holds that
// flushes it after End.
type Encoder interface {
	// Begin starts a batch.
	Begin(b stage.Batch) error
	// Record writes one record, a msgpack map. Its errors are about the
	// record; the caller names the batch and record.
	Record(rec []byte) error
	// End finishes the batch; n is the number of its records.
	End(b stage.Batch, n uint64) error
	// Flush writes out what the encoder holds of the batch in hand (on the
	// way out after an error, what was accepted before it).
	Flush() error
}

// Options are the options of the formats that take any (console).
type Options struct {
	// Rows is the most rows console shows per batch (--rows; 0 or more).
	Rows int
	// Truncate cuts cells longer than this many characters, as Spark's
	// show(numRows, truncate); 0 shows them whole, left-aligned
	// (--no-truncate). CellWidth is the default.
	Truncate int
	// Compression is the codec of parquet's pages: "gzip" or "zstd"
	// (ssink --files --compress-files), "" for Snappy.
	Compression string
}

// CellWidth is where console cuts cells by default, as show (truncate = 20).
const CellWidth = 20

// A Format is one output format: its name, what it takes and how to make
// its encoder.
type Format struct {
	Name string // --format NAME

	// Suffix is the file name suffix of its files (ssink --files), without
	// the dot; ContentType is its Content-Type (ssink --post).
	Suffix, ContentType string

	// Takes lists the options of its own (flag names): console takes rows
	// and no-truncate.
	Takes []string

	// OneField is set for a format that writes one field of each record
	// (lines), to which no field can be added (--batch-field).
	OneField bool

	// MessageType is the content type of one record alone in the format,
	// as the body of a message of its own (ssink's brokers: a message per
	// record), without the newline that ends it in a stream; "" for a
	// format whose records do not stand alone (console and csv, whose
	// rows need their header).
	MessageType string

	// Whole is set for a format whose encoder writes a whole file at
	// Flush (parquet, its schema in its footer): it goes to a destination
	// of a file, a command or a request per batch, not to a stream.
	Whole bool

	// New returns an encoder writing to out.
	New func(out *bufio.Writer, o Options) Encoder
}

// Formats lists the formats, console (stdout's default) first.
var Formats = []*Format{
	{Name: "console", Suffix: "txt", ContentType: "text/plain; charset=utf-8", Takes: []string{"rows", "no-truncate"},
		New: func(out *bufio.Writer, o Options) Encoder { return newConsole(out, o.Rows, o.Truncate) }},
	{Name: "json", Suffix: "json", ContentType: "application/x-ndjson", MessageType: "application/json",
		New: func(out *bufio.Writer, _ Options) Encoder { return &jsonFormat{rows{out: out}} }},
	{Name: "csv", Suffix: "csv", ContentType: "text/csv; charset=utf-8",
		New: func(out *bufio.Writer, _ Options) Encoder { return newTabular(out, ',') }},
	{Name: "tsv", Suffix: "tsv", ContentType: "text/tab-separated-values; charset=utf-8",
		New: func(out *bufio.Writer, _ Options) Encoder { return newTabular(out, '\t') }},
	{Name: "lines", Suffix: "txt", ContentType: "text/plain; charset=utf-8", MessageType: "text/plain; charset=utf-8", OneField: true,
		New: func(out *bufio.Writer, _ Options) Encoder { return &linesFormat{rows{out: out}} }},
	{Name: "msgpack", Suffix: "msgpack", ContentType: "application/msgpack", MessageType: "application/msgpack",
		New: func(out *bufio.Writer, _ Options) Encoder { return &msgpackFormat{rows{out: out}} }},
	{Name: "parquet", Suffix: "parquet", ContentType: "application/vnd.apache.parquet", Whole: true,
		New: func(out *bufio.Writer, o Options) Encoder { return newParquet(out, o.Compression) }},
}

// Lookup returns the format of a name, or nil.
func Lookup(name string) *Format {
	for _, f := range Formats {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Names lists the names of the formats, as in a message: "console, json, ...".
func Names() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

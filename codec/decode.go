package codec

// The decoders: raw input into dstream records (sbatch). Every decoder
// reports where a bad record stands (file and line, or record number), and
// tells a bad record, which --skip-bad may pass over, from a broken input,
// which always stops the stage.

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// InputFormats, as named by --format.
var InputFormats = []string{"lines", "json", "csv", "tsv", "msgpack", "parquet"}

// Decoder yields one record at a time.
type Decoder interface {
	// Next appends the next record (a msgpack map) to dst. It returns io.EOF
	// at the end of the input; errors are *Error.
	Next(dst []byte) ([]byte, error)
	// Pos tells where the last record returned stands: a 1-based line
	// ("line") or record number ("record").
	Pos() (n int64, unit string)
	// Offset is the number of bytes of the input consumed up to the end of
	// the last record returned (or skipped as bad): where reading again
	// would go on with the next record. A checkpoint keeps it.
	Offset() int64
}

// Error is a problem with one record or with the input, naming where it is.
type Error struct {
	Name string // the input: a file name, or "stdin"
	Line int64  // 1-based line (or record number for msgpack); 0 if unknown
	Unit string // "line" or "record"
	Err  error
	// Bad is true when only this record is bad and the decoder can go on
	// with the next one (--skip-bad); false when the input itself is broken.
	Bad bool
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s %d: %v", e.Name, e.Unit, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Name, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsBad reports whether err is a bad record that can be skipped.
func IsBad(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Bad
}

// MaxLine bounds one line (and one record), as framing.MaxRecord bounds
// records on the wire.
const MaxLine = 32 << 20

// NewDecoder returns a decoder of format over r; name names r in errors.
func NewDecoder(format string, r io.Reader, name string) (Decoder, error) {
	switch strings.ToLower(format) {
	case "lines", "text", "":
		return newLines(r, name), nil
	case "json", "jsonl", "ndjson":
		return newJSON(r, name), nil
	case "csv":
		return newCSV(r, name, ','), nil
	case "tsv":
		return newCSV(r, name, '\t'), nil
	case "msgpack":
		return newMsgpack(r, name), nil
	case "parquet":
		return &parquetStream{r: r, name: name}, nil
	}
	return nil, fmt.Errorf("unknown format %q (want %s)", format, strings.Join(InputFormats, ", "))
}

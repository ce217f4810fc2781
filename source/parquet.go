package source

import (
	"fmt"
	"io"
	"os"

	"github.com/dstream/dstream/codec"
)

// Parquet files (sbatch --format parquet) are read by their footer, at
// offsets, not as a stream: their decoder takes the file itself (Input.At)
// and the rows to read, and a checkpoint keeps row numbers where it keeps
// byte offsets for the other formats (codec.RowOffsets): a batch's range
// is [first row, row after its last), a replayed range ends at
// Input.End, and a file read to its end is at its number of rows. A
// Parquet file is written once, whole: there is no growing file to follow.

// newDecoder returns the decoder of input s in format, reading r (s.R,
// metered) or, for a format read at offsets, s.At.
func newDecoder(format string, s *Input, r io.Reader, m *Meter) (codec.Decoder, error) {
	if codec.RowOffsets(format) && s.Replay && s.At == nil {
		// An empty range of a watched directory's batch, which needs
		// none of its file (watchtrack.go): no rows.
		return noRows{}, nil
	}
	if !codec.RowOffsets(format) || s.At == nil {
		if m != nil {
			r = meterReader{r, m}
		}
		return codec.NewDecoderAt(format, r, s.Name, s.Start, s.At)
	}
	size, err := sizeOf(s.At)
	if err != nil {
		return nil, &codec.Error{Name: s.Name, Err: err}
	}
	at := s.At
	if m != nil {
		at = meterReaderAt{at, m}
	}
	end := int64(-1)
	if s.Replay {
		end = s.End
	}
	return codec.NewParquetDecoder(at, size, s.Name, s.Start, end)
}

// sizeOf is the size of a file, or of a section of one.
func sizeOf(at io.ReaderAt) (int64, error) {
	switch f := at.(type) {
	case interface{ Stat() (os.FileInfo, error) }:
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	case interface{ Size() int64 }:
		return f.Size(), nil
	}
	return 0, fmt.Errorf("cannot tell the size of %T", at)
}

// meterReaderAt counts the bytes read from r.
type meterReaderAt struct {
	r io.ReaderAt
	m *Meter
}

func (c meterReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.m.Bytes.Add(int64(n))
	return n, err
}

// noRows is the decoder of an empty range.
type noRows struct{}

func (noRows) Next(dst []byte) ([]byte, error) { return dst, io.EOF }
func (noRows) Pos() (int64, string)            { return 0, "row" }
func (noRows) Offset() int64                   { return 0 }

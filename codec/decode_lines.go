package codec

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/dstream/dstream/record"
)

// lineReader reads lines without copying them when they fit its buffer.
type lineReader struct {
	r    *bufio.Reader
	name string
	line int64
	off  int64  // bytes consumed: the end of the last line returned
	long []byte // a line longer than the buffer, assembled
}

func newLineReader(r io.Reader, name string) lineReader {
	return lineReader{r: bufio.NewReaderSize(r, 256<<10), name: name}
}

// next returns the next line without its "\n" or "\r\n". The slice is valid
// until the next call.
func (l *lineReader) next() ([]byte, error) {
	b, err := l.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		l.long = append(l.long[:0], b...)
		for err == bufio.ErrBufferFull {
			if len(l.long) > MaxLine {
				l.line++
				return nil, &Error{Name: l.name, Line: l.line, Unit: "line", Err: fmt.Errorf("line longer than %d bytes", MaxLine)}
			}
			b, err = l.r.ReadSlice('\n')
			l.long = append(l.long, b...)
		}
		b = l.long
	}
	if err != nil && err != io.EOF {
		return nil, &Error{Name: l.name, Err: err}
	}
	if len(b) == 0 && err == io.EOF {
		return nil, io.EOF
	}
	l.line++
	l.off += int64(len(b))
	// As bytes.TrimSuffix twice, without its call to bytes.Equal per line.
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b, nil
}

func (l *lineReader) Pos() (int64, string) { return l.line, "line" }

func (l *lineReader) Offset() int64 { return l.off }

// lines makes each line a record {"value": line}, as Spark's text source.
type lines struct{ lineReader }

func newLines(r io.Reader, name string) *lines { return &lines{newLineReader(r, name)} }

func (d *lines) Next(dst []byte) ([]byte, error) {
	b, err := d.next()
	if err != nil {
		return dst, err
	}
	dst = append(dst, 0x81, 0xa5, 'v', 'a', 'l', 'u', 'e')
	return record.AppendStringBytes(dst, b), nil
}

// jsonLines reads one JSON object per line; blank lines are skipped, as
// Spark's JSON source does.
type jsonLines struct{ lineReader }

func newJSON(r io.Reader, name string) *jsonLines { return &jsonLines{newLineReader(r, name)} }

func (d *jsonLines) Next(dst []byte) ([]byte, error) {
	for {
		b, err := d.next()
		if err != nil {
			return dst, err
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		out, err := record.AppendJSONObject(dst, b)
		if err != nil {
			return dst, &Error{Name: d.name, Line: d.line, Unit: "line", Err: fmt.Errorf("bad JSON: %w", err), Bad: true}
		}
		return out, nil
	}
}

package codec

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// NewDecoderAt returns a decoder of format that goes on reading an input in the
// middle: r holds the input from byte offset start on, and at is the whole
// input from its beginning (a file). Offset counts from the beginning of the
// input, and Pos and errors name lines (or records) of the whole input.
//
// For csv and tsv the header row is read again from the beginning of at, so
// that a checkpoint keeps nothing but the offset. A start inside the header
// row goes on after it.
func NewDecoderAt(format string, r io.Reader, name string, start int64, at io.ReaderAt) (Decoder, error) {
	if start == 0 {
		return NewDecoder(format, r, name)
	}
	d, err := NewDecoder(format, r, name)
	if err != nil {
		return nil, err
	}
	if c, ok := d.(*csvDecoder); ok {
		h, end, err := readHeader(at, c.r.Comma, c.r.LazyQuotes)
		if err != nil {
			return nil, &Error{Name: name, Line: 1, Unit: "line", Err: fmt.Errorf("reading the header again: %w", err)}
		}
		if h != nil {
			if err := c.setHeader(h); err != nil {
				return nil, err
			}
			if start < end {
				if _, err := io.CopyN(io.Discard, r, end-start); err != nil {
					return nil, &Error{Name: name, Err: fmt.Errorf("reading the header again: %w", err)}
				}
				start = end
			}
		}
	}
	return &resumed{d: d, format: strings.ToLower(format), start: start, at: at, base: -1}, nil
}

// readHeader reads the first row of a CSV or TSV input and returns it with
// the offset where it ends; nil if the input has no row.
func readHeader(at io.ReaderAt, comma rune, lazy bool) ([]string, int64, error) {
	r := csv.NewReader(bufio.NewReaderSize(io.NewSectionReader(at, 0, math.MaxInt64), 4096))
	r.Comma, r.LazyQuotes = comma, lazy
	h, err := r.Read()
	if err == io.EOF {
		return nil, 0, nil
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, 0, err
	}
	return h, r.InputOffset(), nil
}

// resumed is a decoder that started at an offset of its input.
type resumed struct {
	d      Decoder
	format string
	start  int64
	at     io.ReaderAt
	// base is the number of lines (records for msgpack) before start, found
	// only when a position is asked for (an error): counting them costs a
	// read of everything before start. -1 until then.
	base int64
}

func (r *resumed) Offset() int64 { return r.start + r.d.Offset() }

func (r *resumed) Pos() (int64, string) {
	n, unit := r.d.Pos()
	return r.lineBase() + n, unit
}

func (r *resumed) Next(dst []byte) ([]byte, error) {
	dst, err := r.d.Next(dst)
	var e *Error
	if err != nil && errors.As(err, &e) && e.Line > 0 {
		e.Line += r.lineBase()
	}
	return dst, err
}

// lineBase counts the lines (or msgpack records) before start. A csv or tsv
// decoder counts the lines of what it reads from 1, as the lines decoders
// do; the header it was given is not among them.
func (r *resumed) lineBase() int64 {
	if r.base >= 0 {
		return r.base
	}
	sr := io.NewSectionReader(r.at, 0, r.start)
	var n int64
	if r.format == "msgpack" {
		m := newMsgpack(sr, "")
		for {
			if _, err := m.Next(nil); err == io.EOF || (err != nil && !IsBad(err)) {
				break
			}
		}
		n = m.n
	} else {
		buf := make([]byte, 64<<10)
		for {
			k, err := sr.Read(buf)
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			if err != nil {
				break
			}
		}
	}
	r.base = n
	return n
}

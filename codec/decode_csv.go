package codec

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"

	"github.com/dstream/dstream/record"
)

// csvDecoder reads CSV or TSV with a header row: each row becomes a record
// whose fields are named by the header and hold strings, as Spark's CSV
// source does without inferSchema. Unnamed header cells are called _c0,
// _c1, ... (Spark's names).
type csvDecoder struct {
	r      *csv.Reader
	name   string
	header []string
	hdrs   [][]byte // header names pre-encoded as msgpack str
}

func newCSV(r io.Reader, name string, sep rune) *csvDecoder {
	c := csv.NewReader(r)
	c.Comma = sep
	c.ReuseRecord = true
	if sep == '\t' {
		c.LazyQuotes = true // TSV seldom quotes; a stray quote is data
	}
	return &csvDecoder{r: c, name: name}
}

func (d *csvDecoder) fail(err error, bad bool) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		e := &Error{Name: d.name, Line: int64(pe.StartLine), Unit: "line", Err: pe.Err, Bad: bad}
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			e.Err = fmt.Errorf("%d fields, but the header has %d", pe.Column, len(d.header))
		}
		return e
	}
	return &Error{Name: d.name, Err: err}
}

func (d *csvDecoder) Pos() (int64, string) {
	line, _ := d.r.FieldPos(0)
	return int64(line), "line"
}

// Offset is the end of the last row read (the header included).
func (d *csvDecoder) Offset() int64 { return d.r.InputOffset() }

// setHeader names the columns after the header row h.
func (d *csvDecoder) setHeader(h []string) error {
	d.r.FieldsPerRecord = len(h)
	seen := map[string]bool{}
	for i, name := range h {
		if name == "" {
			name = fmt.Sprintf("_c%d", i)
		}
		if seen[name] {
			return &Error{Name: d.name, Line: 1, Unit: "line", Err: fmt.Errorf("the header names column %q twice", name)}
		}
		seen[name] = true
		d.header = append(d.header, name)
		d.hdrs = append(d.hdrs, record.AppendString(nil, name))
	}
	return nil
}

func (d *csvDecoder) Next(dst []byte) ([]byte, error) {
	if d.header == nil {
		h, err := d.r.Read()
		if err == io.EOF {
			return dst, io.EOF
		}
		if err != nil {
			return dst, d.fail(err, false)
		}
		if err := d.setHeader(h); err != nil {
			return dst, err
		}
	}
	row, err := d.r.Read()
	if err != nil {
		if err == io.EOF {
			return dst, err
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
			pe.Column = len(row)
		}
		return dst, d.fail(err, true)
	}
	dst = record.AppendMapHeader(dst, len(row))
	for i, cell := range row {
		dst = append(dst, d.hdrs[i]...)
		dst = record.AppendString(dst, cell)
	}
	return dst, nil
}

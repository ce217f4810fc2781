package codec

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// rows is the output of the formats that write one record at a time: each
// appends its record's text to buf, which goes out in pieces of rowsFlush
// bytes (bufio.Writer passes a piece that size straight through, without a
// copy) and at each batch end. Nothing is allocated per record, and each
// byte is copied once on its way out. Why not bufio.Writer.AvailableBuffer:
// appending past what is available allocates a new slice.
type rows struct {
	out *bufio.Writer
	buf []byte
}

const rowsFlush = 64 << 10

// added is called after each record: it writes buf out once it is full.
func (r *rows) added() error {
	if len(r.buf) < rowsFlush {
		return nil
	}
	return r.Flush()
}

func (r *rows) Flush() error {
	if len(r.buf) == 0 {
		return nil
	}
	err := write(r.out, r.buf)
	r.buf = r.buf[:0]
	return err
}

func (r *rows) Begin(stage.Batch) error       { return nil }
func (r *rows) End(stage.Batch, uint64) error { return r.Flush() }

// jsonFormat writes JSON lines.
type jsonFormat struct{ rows }

func (f *jsonFormat) Record(rec []byte) error {
	buf, n, err := record.AppendJSON(f.buf, rec)
	if err == nil && n != len(rec) {
		err = fmt.Errorf("%w: %d bytes after the map", record.ErrInvalid, len(rec)-n)
	}
	if err != nil {
		f.buf = buf[:len(f.buf)] // nothing of a bad record goes out
		return err
	}
	f.buf = append(buf, '\n')
	return f.added()
}

// linesFormat writes the field "value" of each record as text.
type linesFormat struct{ rows }

// lineField is the field --format lines writes: the column of Spark's text
// source and sink, and of the records sbatch makes of lines.
const lineField = "value"

func (f *linesFormat) Record(rec []byte) error {
	v, ok, err := record.Get(rec, lineField)
	if err != nil {
		return err
	}
	if !ok {
		return stage.Hint(fmt.Errorf("the record has no field %q", lineField),
			"--format lines writes the field %s of each record: use --format json to see whole records", lineField)
	}
	if s, ok := record.Str(v); ok && record.KindOf(v) == record.KindString {
		f.buf = append(f.buf, s...)
	} else {
		f.buf = record.FormatText(f.buf, v)
	}
	f.buf = append(f.buf, '\n')
	return f.added()
}

// msgpackFormat writes the records as they are.
type msgpackFormat struct{ rows }

func (f *msgpackFormat) Record(rec []byte) error {
	f.buf = append(f.buf, rec...)
	return f.added()
}

func write(w *bufio.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// tabular writes csv or tsv: a header row of the fields of the stream's
// first record, then one row per record in that column order.
type tabular struct {
	rows
	sep     byte // ',' or '\t'
	started bool // the header is written
	cols    []string
	index   map[string]int
	cells   []cell // where the record in hand has each column's value
	text    []byte // a cell's text
	flds    record.Fields
}

// cell is where a column's value stands in the record in hand: rec[start:end],
// empty when the record lacks the field. Offsets rather than slices, so
// that clearing them for each record is a plain memclr, without the write
// barriers of pointers.
type cell struct{ start, end int }

func newTabular(out *bufio.Writer, sep byte) *tabular {
	return &tabular{rows: rows{out: out}, sep: sep, index: map[string]int{}}
}

func (t *tabular) Record(rec []byte) error {
	if !t.started {
		if err := t.header(rec); err != nil {
			return err
		}
	}
	clear(t.cells)
	t.flds.Reset(rec)
	for i := 0; t.flds.Next(); i++ {
		k := t.flds.Key()
		c := i
		if i >= len(t.cols) || t.cols[i] != string(k) {
			var ok bool
			if c, ok = t.index[string(k)]; !ok {
				return t.extraField(k)
			}
		}
		end := t.flds.End()
		t.cells[c] = cell{end - len(t.flds.Value()), end}
	}
	if err := t.flds.Err(); err != nil {
		return err
	}
	buf := t.buf
	for c, cl := range t.cells {
		if c > 0 {
			buf = append(buf, t.sep)
		}
		buf = t.appendValue(buf, rec[cl.start:cl.end])
	}
	t.buf = append(buf, '\n')
	return t.added()
}

// header takes the columns from rec and writes the header row.
func (t *tabular) header(rec []byte) error {
	t.flds.Reset(rec)
	for t.flds.Next() {
		k := string(t.flds.Key())
		if _, dup := t.index[k]; !dup {
			t.index[k] = len(t.cols)
			t.cols = append(t.cols, k)
		}
	}
	if err := t.flds.Err(); err != nil {
		t.cols, t.index = nil, map[string]int{}
		return err
	}
	t.started = true
	t.cells = make([]cell, len(t.cols))
	buf := t.buf
	for c, name := range t.cols {
		if c > 0 {
			buf = append(buf, t.sep)
		}
		buf = t.appendText(buf, []byte(name))
	}
	t.buf = append(buf, '\n')
	return t.added()
}

func (t *tabular) extraField(k []byte) error {
	q := make([]string, len(t.cols))
	for i, c := range t.cols {
		q[i] = strconv.Quote(c)
	}
	what := "csv"
	if t.sep == '\t' {
		what = "tsv"
	}
	return stage.Hint(fmt.Errorf("field %q is not a column: the columns, from the stream's first record, are %s", k, strings.Join(q, ", ")),
		"%s output has the columns of the first record: give every record the same fields (smap), or use --format json", what)
}

// appendValue appends the cell of a raw value: nothing for a missing field or
// a null, else its text form (record.FormatText).
func (t *tabular) appendValue(dst, v []byte) []byte {
	if len(v) > 0 && v[0]&0xe0 == 0xa0 { // a short string, the usual cell
		return t.appendText(dst, v[1:])
	}
	if len(v) == 1 && v[0] < 0x80 { // a small count: digits, nothing to escape
		return strconv.AppendUint(dst, uint64(v[0]), 10)
	}
	switch record.KindOf(v) {
	case record.KindInvalid, record.KindNil:
		return dst
	case record.KindString:
		s, _ := record.Str(v)
		return t.appendText(dst, s)
	}
	t.text = record.FormatText(t.text[:0], v)
	return t.appendText(dst, t.text)
}

func (t *tabular) appendText(dst, s []byte) []byte {
	if t.sep == '\t' {
		return appendEscaped(dst, s, &tsvSpecial) // one row a line, escapes reversible
	}
	return appendCSV(dst, s, t.sep)
}

// appendCSV appends s as one CSV field, quoted when encoding/csv's Writer
// would quote it; the empty string is "". Why not encoding/csv.Writer: it
// takes a []string, a string allocated per cell, and writes the empty string
// as an empty cell, which reads back as null in Spark; Spark's CSV writer
// (option emptyValue) writes "" instead, and so does this.
func appendCSV(dst, s []byte, comma byte) []byte {
	if len(s) == 0 {
		return append(dst, '"', '"')
	}
	if !csvNeedsQuotes(s, comma) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for {
		i := bytes.IndexByte(s, '"')
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+1]...)
		dst = append(dst, '"')
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, '"')
}

// csvNeedsQuotes is encoding/csv's Writer.fieldNeedsQuotes for a non-empty
// field.
func csvNeedsQuotes(s []byte, comma byte) bool {
	if string(s) == `\.` {
		return true
	}
	for _, c := range s {
		if c == '\n' || c == '\r' || c == '"' || c == comma {
			return true
		}
	}
	r, _ := utf8.DecodeRune(s)
	return unicode.IsSpace(r)
}

// tsvSpecial marks the bytes a TSV field escapes, and what follows the
// backslash.
var tsvSpecial = [256]byte{'\\': '\\', '\t': 't', '\n': 'n', '\r': 'r'}

// tsvNeedsEscape reports whether s holds a byte of tsvSpecial, 8 bytes at
// a time: a byte below 0x0e (tab, newline and carriage return are) or a
// backslash. A byte below 0x0e that tsvSpecial leaves alone only sends s
// down appendEscaped's slower path, which then copies it as it is.
func tsvNeedsEscape(s []byte) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for len(s) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		y := x ^ ('\\' * lo) // a backslash becomes 0
		if ((x-0x0e*lo)&^x|(y-lo)&^y)&hi != 0 {
			return true
		}
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x0e || c == '\\' {
			return true
		}
	}
	return false
}

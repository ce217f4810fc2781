package codec

import (
	"bufio"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// The console format follows Spark: the console sink (ConsoleWrite) prints a
// header per batch and then Dataset.show(numRows, truncate) of the batch,
// whose layout is Dataset.showString's.

// minColWidth is showString's minimum column width.
const minColWidth = 3

// nullText is what show prints for a null (Spark 3.5 and later, ToPrettyString).
var nullText = []byte("NULL")

const (
	consoleRule = "-------------------------------------------\n"
	timeLayout  = "2006-01-02T15:04:05.000Z"
)

// console gathers the rows a batch shows and prints them at its end.
type console struct {
	out      *bufio.Writer
	rows     int // rows shown at most
	truncate int // cut cells longer than this; 0: never

	cols  []string       // columns, in order of first appearance
	index map[string]int // column by name
	text  []byte         // the shown text of the cells
	cells [][]span       // the shown rows, by column
	flds  record.Fields
	tmp   []byte // a value's text before escaping
	line  []byte
}

// span locates a cell's text in console.text; a zero span is a missing field.
type span struct {
	start, end int
	set        bool
}

func newConsole(out *bufio.Writer, rows, truncate int) *console {
	return &console{out: out, rows: rows, truncate: truncate, index: map[string]int{}}
}

// Flush has nothing to do: the table of a batch is written whole, at its end.
func (c *console) Flush() error { return nil }

func (c *console) Begin(stage.Batch) error {
	c.cols = c.cols[:0]
	clear(c.index)
	c.text = c.text[:0]
	c.cells = c.cells[:0]
	return nil
}

// Record adds a row while fewer than --rows are shown; the rows after those
// are only counted.
func (c *console) Record(rec []byte) error {
	if len(c.cells) >= c.rows {
		return nil
	}
	var row []span
	if n := len(c.cells); n < cap(c.cells) {
		row = c.cells[:n+1][n][:0]
	}
	c.flds.Reset(rec)
	for c.flds.Next() {
		k := c.flds.Key()
		col, ok := c.index[string(k)]
		if !ok {
			col = len(c.cols)
			c.cols = append(c.cols, string(k))
			c.index[string(k)] = col
		}
		for len(row) <= col {
			row = append(row, span{})
		}
		start := len(c.text)
		c.text = c.appendCell(c.text, c.flds.Value())
		row[col] = span{start, len(c.text), true}
	}
	if err := c.flds.Err(); err != nil {
		return err
	}
	c.cells = append(c.cells, row)
	return nil
}

// appendCell appends the shown text of a raw value: its text form
// (record.FormatText, NULL for null), escaped and cut as show does.
func (c *console) appendCell(dst, v []byte) []byte {
	var s []byte
	switch record.KindOf(v) {
	case record.KindNil:
		s = nullText
	case record.KindString:
		s, _ = record.Str(v)
	default:
		c.tmp = record.FormatText(c.tmp[:0], v)
		s = c.tmp
	}
	start := len(dst)
	dst = appendEscaped(dst, s, &metaEscapes)
	if c.truncate > 0 && javaLen(dst[start:]) > c.truncate {
		keep := c.truncate - 3
		if c.truncate < 4 { // show drops the ellipsis for tiny widths
			keep = c.truncate
		}
		dst = dst[:start+javaPrefix(dst[start:], keep)]
		if c.truncate >= 4 {
			dst = append(dst, "..."...)
		}
	}
	return dst
}

func (c *console) End(b stage.Batch, n uint64) error {
	w := c.out
	w.WriteString(consoleRule)
	w.WriteString("Batch: ")
	w.Write(strconv.AppendUint(c.line[:0], b.ID, 10))
	w.WriteString(" (")
	w.Write(time.UnixMilli(b.Time).UTC().AppendFormat(c.line[:0], timeLayout))
	w.WriteString(")\n")
	w.WriteString(consoleRule)

	// The header cells follow the data cells in c.text.
	head := make([]span, len(c.cols))
	for i, name := range c.cols {
		start := len(c.text)
		c.text = appendEscaped(c.text, []byte(name), &metaEscapes)
		head[i] = span{start, len(c.text), true}
	}
	widths := make([]int, len(c.cols))
	for i := range widths {
		widths[i] = max(minColWidth, c.width(head[i]))
		for _, row := range c.cells {
			if i < len(row) {
				widths[i] = max(widths[i], c.width(row[i]))
			} else {
				widths[i] = max(widths[i], len(nullText))
			}
		}
	}

	// Rows are written as showString's addString(start, sep, end): with
	// no columns, a rule is "++" and a row "||".
	rule := append(c.line[:0], '+')
	for i, wd := range widths {
		if i > 0 {
			rule = append(rule, '+')
		}
		for range wd {
			rule = append(rule, '-')
		}
	}
	rule = append(rule, '+', '\n')
	c.line = rule
	w.Write(rule)
	c.writeRow(head, widths)
	w.Write(rule)
	for _, row := range c.cells {
		c.writeRow(row, widths)
	}
	w.Write(rule)
	if n > uint64(c.rows) {
		w.WriteString("only showing top " + strconv.Itoa(c.rows))
		if c.rows == 1 {
			w.WriteString(" row\n")
		} else {
			w.WriteString(" rows\n")
		}
	}
	// show prints the table with println: an empty line follows.
	w.WriteByte('\n')
	return nil // write errors stick to w: its Flush, after End, reports them
}

// writeRow writes one row of the table, padding each cell to its column's
// width: on the left (right-aligned) when cells are cut, on the right when
// they are whole, as show does.
func (c *console) writeRow(row []span, widths []int) {
	w := c.out
	w.WriteByte('|')
	for i, wd := range widths {
		if i > 0 {
			w.WriteByte('|')
		}
		s := nullText
		if i < len(row) && row[i].set {
			s = c.text[row[i].start:row[i].end]
		}
		pad := wd - halfWidth(s)
		if c.truncate == 0 {
			w.Write(s)
		}
		for range pad {
			w.WriteByte(' ')
		}
		if c.truncate > 0 {
			w.Write(s)
		}
	}
	w.WriteString("|\n")
}

func (c *console) width(s span) int {
	if !s.set {
		return len(nullText)
	}
	return halfWidth(c.text[s.start:s.end])
}

// metaEscapes are the characters show writes as escapes (Spark's
// SchemaUtils.escapeMetaCharacters), so that a cell stays on its line.
var metaEscapes = [256]byte{'\n': 'n', '\r': 'r', '\t': 't', '\f': 'f', '\b': 'b', '\v': 'v', '\a': 'a'}

// appendEscaped appends s with each byte that has an entry in escapes
// written as a backslash and that entry (console cells, TSV fields).
func appendEscaped(dst, s []byte, escapes *[256]byte) []byte {
	if escapes == &tsvSpecial && !tsvNeedsEscape(s) {
		return append(dst, s...)
	}
	start := 0
	for i, ch := range s {
		if e := escapes[ch]; e != 0 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', e)
			start = i + 1
		}
	}
	return append(dst, s[start:]...)
}

// javaLen is the length of s as a Java String: UTF-16 code units. show
// measures and cuts cells in these.
func javaLen(s []byte) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		n += utf16Len(r)
		s = s[size:]
	}
	return n
}

// javaPrefix is the length in bytes of the longest prefix of s of at most n
// UTF-16 code units. Where Java would cut a surrogate pair in two, the
// prefix stops before it.
func javaPrefix(s []byte, n int) int {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRune(s[i:])
		if n -= utf16Len(r); n < 0 {
			break
		}
		i += size
	}
	return i
}

func utf16Len(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// halfWidth is the width of s in a terminal's columns as show counts it
// (Spark's Utils.stringHalfWidth): its Java length, plus one for each
// full-width character.
func halfWidth(s []byte) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		n += utf16Len(r)
		if isFullWidth(r) {
			n++
		}
		s = s[size:]
	}
	return n
}

// isFullWidth reports whether r is in the ranges Spark's stringHalfWidth
// counts as two columns wide.
func isFullWidth(r rune) bool {
	switch {
	case r < 0x1100:
		return false
	case r <= 0x115f,
		0x2e80 <= r && r <= 0xa4cf,
		0xac00 <= r && r <= 0xd7a3,
		0xf900 <= r && r <= 0xfaff,
		0xfe10 <= r && r <= 0xfe19,
		0xfe30 <= r && r <= 0xfe6f,
		0xff00 <= r && r <= 0xff60,
		0xffe0 <= r && r <= 0xffe6:
		return true
	}
	return false
}

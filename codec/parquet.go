package codec

// Parquet, written (ssink --files DIR --format parquet). A Parquet file
// states its schema in its footer, and the schema of dstream records is
// only known once they are seen: the encoder holds the records of its file
// (one batch, or the batches of --roll) and writes the whole file at Flush,
// a column per field, typed from every value the file holds.
//
// Types follow the SQL sinks' (sink/sqlsink, PostgreSQL's mapping, which
// is as strict as Parquet's): int BIGINT → INT64, float → DOUBLE, bool →
// BOOLEAN, string → STRING, bin → BYTE_ARRAY, timestamp → TIMESTAMP(UTC,
// NANOS), map and array → JSON; a missing field and a null are a null.
// Where they differ, because the encoder sees the whole file before it
// types a column, where a database types a column by its first value:
//   - a column is typed by its non-null values: a null first does not make
//     it a text column, and a column of nulls only is an optional STRING;
//   - integers and floats in one column make a DOUBLE column (a database
//     refuses the float), integers above MaxInt64 a UINT_64 column (or
//     DOUBLE, beside negative ones; PostgreSQL refuses them);
//   - any other mix is a STRING column, each value as its text
//     (record.FormatText), as a PostgreSQL TEXT column takes them, and a
//     mix with maps or arrays is a JSON column, each value as its JSON.
// A field twice in one record, an extension value other than a timestamp,
// and a timestamp beyond the nanoseconds of an int64 (years 1678 to 2261)
// are errors of the record.

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// parquetRowGroup is the most rows of a row group of the Parquet files
// written: a reader resumes at a row by skipping to its row group (about
// DuckDB's 122,880).
var parquetRowGroup int64 = 1 << 17

// parquetCodecs are the codecs of the pages written, by
// Options.Compression: Snappy by default, as Spark's.
var parquetCodecs = map[string]compress.Codec{"": &parquet.Snappy, "gzip": &parquet.Gzip, "zstd": &parquet.Zstd}

// A pqType is the type of a column written.
type pqType uint8

const (
	pqNull pqType = iota // only nulls: an optional STRING
	pqBool
	pqInt
	pqUint
	pqFloat
	pqString
	pqBinary
	pqTime
	pqJSON
)

// pqColumn is a column of the file in hand: a field of its records.
type pqColumn struct {
	name  string
	kinds uint32 // 1 << record.Kind of each non-null value seen
	neg   bool   // a negative integer was seen
	last  int    // the record that set it last, for fields given twice
	typ   pqType // resolved at Flush
}

// resolve types the column from the kinds of its values.
func (c *pqColumn) resolve() pqType {
	const (
		nums   = 1<<record.KindInt | 1<<record.KindUint | 1<<record.KindFloat
		nested = 1<<record.KindMap | 1<<record.KindArray
	)
	k := c.kinds
	switch {
	case k == 0:
		return pqNull
	case k&nested != 0:
		return pqJSON
	case k == 1<<record.KindBool:
		return pqBool
	case k == 1<<record.KindInt:
		return pqInt
	case k&^(1<<record.KindInt|1<<record.KindUint) == 0 && !c.neg:
		return pqUint
	case k&^nums == 0:
		return pqFloat
	case k == 1<<record.KindString:
		return pqString
	case k == 1<<record.KindBinary:
		return pqBinary
	case k == 1<<record.KindTime:
		return pqTime
	}
	return pqString
}

// node is the column's node in the schema: every column is optional.
func (c *pqColumn) node() parquet.Node {
	var n parquet.Node
	switch c.typ {
	case pqBool:
		n = parquet.Leaf(parquet.BooleanType)
	case pqInt:
		n = parquet.Int(64)
	case pqUint:
		n = parquet.Uint(64)
	case pqFloat:
		n = parquet.Leaf(parquet.DoubleType)
	case pqBinary:
		n = parquet.Leaf(parquet.ByteArrayType)
	case pqTime:
		n = parquet.TimestampAdjusted(parquet.Nanosecond, true)
	case pqJSON:
		n = parquet.JSON()
	default:
		n = parquet.String()
	}
	return parquet.Optional(n)
}

// parquetEncoder holds the records of a file and writes it at Flush.
type parquetEncoder struct {
	out   *bufio.Writer
	codec compress.Codec
	held  []byte // the records, back to back
	ends  []int  // the end of each in held
	cols  []pqColumn
	index map[string]int
	flds  record.Fields
	buf   []byte

	w     *parquet.Writer
	rows  []parquet.Row
	arena []byte // the text of values converted, for the rows in hand
}

func newParquet(out *bufio.Writer, compression string) *parquetEncoder {
	c := parquetCodecs[compression]
	if c == nil {
		panic("codec: unknown Parquet compression " + compression) // ssink checks --compress-files
	}
	return &parquetEncoder{out: out, codec: c, index: map[string]int{}}
}

func (e *parquetEncoder) Begin(stage.Batch) error { return nil }

func (e *parquetEncoder) End(stage.Batch, uint64) error { return nil }

// Record checks rec and holds it, noting the kinds of its values.
func (e *parquetEncoder) Record(rec []byte) error {
	n := len(e.ends) + 1 // this record's number, from 1
	e.flds.Reset(rec)
	for f := 0; e.flds.Next(); f++ {
		k, v := e.flds.Key(), e.flds.Value()
		i := e.column(f, k)
		if i < 0 {
			i = len(e.cols)
			e.index[string(k)] = i
			e.cols = append(e.cols, pqColumn{name: string(k)})
		}
		c := &e.cols[i]
		if c.last == n {
			return fmt.Errorf("field %q: the record has it twice", k)
		}
		c.last = n
		kind := record.KindOf(v)
		switch kind {
		case record.KindNil:
			continue
		case record.KindInt:
			if x, _ := record.Int(v); x < 0 {
				c.neg = true
			}
		case record.KindTime:
			t, ok := record.Time(v)
			if !ok {
				return fmt.Errorf("field %q: %w", k, record.ErrInvalid)
			}
			if s := t.Unix(); s <= math.MinInt64/int64(time.Second) || s >= math.MaxInt64/int64(time.Second) {
				return fmt.Errorf("field %q: %s: a Parquet timestamp in nanoseconds holds years 1678 to 2261", k, record.FormatText(e.buf[:0], v))
			}
		case record.KindMap, record.KindArray:
			var err error
			if e.buf, _, err = record.AppendJSON(e.buf[:0], v); err != nil {
				return fmt.Errorf("field %q: %w", k, err)
			}
		case record.KindExt:
			return fmt.Errorf("field %q: a msgpack extension value has no Parquet type", k)
		case record.KindInvalid:
			return fmt.Errorf("field %q: %w", k, record.ErrInvalid)
		}
		c.kinds |= 1 << kind
	}
	if err := e.flds.Err(); err != nil {
		return err
	}
	e.held = append(e.held, rec...)
	e.ends = append(e.ends, len(e.held))
	return nil
}

// column is the column of field k, the record's f-th, or -1. Records
// mostly have their fields in one order: the f-th column is tried first.
func (e *parquetEncoder) column(f int, k []byte) int {
	if f < len(e.cols) && e.cols[f].name == string(k) {
		return f
	}
	if i, ok := e.index[string(k)]; ok {
		return i
	}
	return -1
}

// HeldBytes is the size of the records held, as msgpack: what --roll-size
// measures of a file not written yet.
func (e *parquetEncoder) HeldBytes() int64 { return int64(len(e.held)) }

// errNoColumns is the error of a file whose records have no field.
var errNoColumns = errors.New("a Parquet file needs a column, and the records have no field")

// Flush writes the file of the records held, and forgets them.
func (e *parquetEncoder) Flush() error {
	defer e.reset()
	fields := make([]parquet.Field, len(e.cols))
	group := parquet.Group{}
	for i := range e.cols {
		c := &e.cols[i]
		c.typ = c.resolve()
		group[c.name] = c.node()
	}
	if len(e.cols) == 0 {
		return errNoColumns
	}
	// A Group lists its fields sorted by name: put them back in the order
	// of the records.
	for _, f := range group.Fields() {
		fields[e.index[f.Name()]] = f
	}
	schema := parquet.NewSchema("dstream", orderedGroup{group, fields})
	if err := e.writeRows(schema); err != nil {
		return err
	}
	if err := e.w.Close(); err != nil {
		return fmt.Errorf("writing Parquet: %w", err)
	}
	return nil
}

// writeRows writes the records held as rows, a chunk at a time.
func (e *parquetEncoder) writeRows(schema *parquet.Schema) error {
	const chunk = 1024
	ncol := len(e.cols)
	if cap(e.rows) < chunk {
		e.rows = make([]parquet.Row, chunk)
	}
	rows := e.rows[:chunk]
	for i := range rows {
		if cap(rows[i]) < ncol {
			rows[i] = make(parquet.Row, ncol)
		}
		rows[i] = rows[i][:ncol]
	}
	// (An encoder writes one file: ssink makes one per file.)
	e.w = parquet.NewWriter(e.out, schema, parquet.Compression(e.codec),
		parquet.MaxRowsPerRowGroup(parquetRowGroup), parquet.CreatedBy("dstream", "", ""))
	start := 0
	for r := 0; r < len(e.ends); r += chunk {
		n := min(chunk, len(e.ends)-r)
		e.arena = e.arena[:0]
		for j := range n {
			end := e.ends[r+j]
			e.row(rows[j], e.held[start:end])
			start = end
		}
		if _, err := e.w.WriteRows(rows[:n]); err != nil {
			return fmt.Errorf("writing Parquet: %w", err)
		}
	}
	return nil
}

// row sets row to the values of rec, by column, nulls where rec has none.
func (e *parquetEncoder) row(row parquet.Row, rec []byte) {
	for c := range row {
		row[c] = parquet.NullValue().Level(0, 0, c)
	}
	e.flds.Reset(rec)
	for f := 0; e.flds.Next(); f++ {
		c := e.column(f, e.flds.Key())
		if v, ok := e.value(e.flds.Value(), e.cols[c].typ); ok {
			row[c] = v.Level(0, 1, c)
		}
	}
}

// value converts v, checked by Record, for a column of type typ; ok is
// false for a null.
func (e *parquetEncoder) value(v []byte, typ pqType) (_ parquet.Value, ok bool) {
	kind := record.KindOf(v)
	if kind == record.KindNil {
		return parquet.Value{}, false
	}
	switch typ {
	case pqBool:
		return parquet.BooleanValue(v[0] == 0xc3), true
	case pqInt:
		x, _ := record.Int(v)
		return parquet.Int64Value(x), true
	case pqUint:
		if x, ok := record.Int(v); ok {
			return parquet.Int64Value(x), true
		}
		return parquet.Int64Value(int64(binaryUint64(v))), true
	case pqFloat:
		x, _ := record.Float(v)
		return parquet.DoubleValue(x), true
	case pqTime:
		t, _ := record.Time(v)
		return parquet.Int64Value(t.UnixNano()), true
	case pqBinary:
		s, _ := record.Str(v)
		return parquet.ByteArrayValue(s), true
	case pqJSON:
		start := len(e.arena)
		e.arena, _, _ = record.AppendJSON(e.arena, v)
		return parquet.ByteArrayValue(e.arena[start:len(e.arena):len(e.arena)]), true
	}
	if kind == record.KindString {
		s, _ := record.Str(v)
		return parquet.ByteArrayValue(s), true
	}
	start := len(e.arena)
	e.arena = record.FormatText(e.arena, v)
	return parquet.ByteArrayValue(e.arena[start:len(e.arena):len(e.arena)]), true
}

// binaryUint64 is the value of a msgpack uint 64.
func binaryUint64(v []byte) uint64 {
	var u uint64
	for _, b := range v[1:9] {
		u = u<<8 | uint64(b)
	}
	return u
}

// reset forgets the file written (or thrown away).
func (e *parquetEncoder) reset() {
	e.held, e.ends, e.cols = e.held[:0], e.ends[:0], e.cols[:0]
	clear(e.index)
}

// orderedGroup is a parquet.Group whose fields are in the order given.
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

func (g orderedGroup) Fields() []parquet.Field { return g.fields }

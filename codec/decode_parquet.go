package codec

// Parquet, read (sbatch --format parquet): a record per row, a field per
// column, in the file's column order, typed by the column's type. A null
// is a field left out: Parquet, as SQL, cannot tell a missing field from a
// null one, and the writer (parquet.go) writes both as a null. Nested
// columns (groups, lists, maps) are maps and arrays
// (decode_parquet_nested.go).
//
// Where a row stands is its number in the file, from 0: Offset is the
// number of the row after the last one returned, and a checkpoint keeps
// that (not a byte offset: a Parquet file is read by its footer, and its
// rows may be fewer or more than its bytes). A reader that goes on at row
// N skips to the row group that holds it.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// RowOffsets reports whether the offsets of format count rows, not bytes
// (parquet): a checkpoint cannot check them against the size of the file.
func RowOffsets(format string) bool { return format == "parquet" }

// pqRead is how a column's values become msgpack.
type pqRead uint8

const (
	rdBool pqRead = iota
	rdInt32
	rdInt64
	rdUint32
	rdUint64
	rdFloat
	rdDouble
	rdString
	rdBinary
	rdJSON
	rdTime    // INT64 TIMESTAMP, scaled by unit (ns per unit)
	rdDate    // INT32 DATE: days since the epoch, as a timestamp
	rdInt96   // a legacy timestamp (Spark, Impala)
	rdDecimal // a DECIMAL, as a float
	rdUUID
)

// pqReadColumn is a column of the file read.
type pqReadColumn struct {
	key   []byte // the field name, as msgpack
	read  pqRead
	unit  int64 // rdTime: nanoseconds per unit
	scale int32 // rdDecimal
}

// ParquetDecoder reads the rows of a Parquet file as records.
type ParquetDecoder struct {
	name string
	f    *parquet.File
	cols []pqReadColumn

	// A file with nested columns (groups, lists, maps) is read row by row
	// through the schema's reconstruction into Go values, walked with
	// the schema (parquet_nested.go); a flat one column by column.
	nested bool
	fields []pqNested
	row    map[string]any

	groups []parquet.RowGroup
	g      int          // the row group of rows, or the next one
	rows   parquet.Rows // the rows of group g-1, nil before the first
	first  int64        // the number of the first row of group g

	next int64 // the number of the next row to return
	end  int64 // the row to stop before
	buf  []parquet.Row
	bi   int // the next row of buf to return
	bn   int
	err  error // sticky
}

// NewParquetDecoder returns a decoder of the Parquet file at (of size
// bytes) that reads its rows from start up to end (-1: to its end); name
// names it in errors.
func NewParquetDecoder(at io.ReaderAt, size int64, name string, start, end int64) (_ *ParquetDecoder, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Name: name, Err: fmt.Errorf("corrupt Parquet file: %v", r)}
		}
	}()
	f, err := parquet.OpenFile(at, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return nil, &Error{Name: name, Err: fmt.Errorf("not a Parquet file (%w)", err)}
	}
	d := &ParquetDecoder{name: name, f: f, groups: f.RowGroups(), next: start, end: end}
	n := f.NumRows()
	if end < 0 || end > n {
		d.end = n
	}
	if start > n {
		// Only a checkpoint starts past row 0.
		return nil, stage.Hint(&Error{Name: name, Err: fmt.Errorf("the file has %d rows, and the checkpoint read it up to row %d: it was replaced", n, start)},
			"a checkpoint follows a Parquet file by its path and row number: put the file that was read back under its path to go on, or start the pipeline over with a new --checkpoint directory and an empty sink")
	}
	for _, c := range f.Schema().Fields() {
		if !c.Leaf() || c.Repeated() {
			d.nested = true
		}
	}
	if d.nested {
		if err := d.nestedFields(f.Schema()); err != nil {
			return nil, &Error{Name: name, Err: err}
		}
	} else {
		for _, c := range f.Schema().Fields() {
			rc, err := leafReader(c, c.Name())
			if err != nil {
				return nil, &Error{Name: name, Err: err}
			}
			d.cols = append(d.cols, rc)
		}
	}
	var total int64
	for _, g := range d.groups {
		total += g.NumRows()
	}
	if total != n {
		return nil, &Error{Name: name, Err: fmt.Errorf("corrupt Parquet file: its row groups hold %d rows, its footer says %d", total, n)}
	}
	if !d.nested && len(d.cols) != len(f.Schema().Columns()) {
		return nil, &Error{Name: name, Err: errors.New("corrupt Parquet file: its columns are not its fields")}
	}
	return d, nil
}

// leafReader is how the values of leaf c, named name, are read.
func leafReader(c parquet.Node, name string) (pqReadColumn, error) {
	rc := pqReadColumn{key: record.AppendString(nil, name)}
	t := c.Type()
	lt := t.LogicalType()
	var lv format.LogicalTypeValue
	if lt != nil {
		lv = lt.Value
	}
	switch t.Kind() {
	case parquet.Boolean:
		rc.read = rdBool
	case parquet.Int32:
		rc.read = rdInt32
		switch l := lv.(type) {
		case *format.DateType:
			rc.read = rdDate
		case *format.IntType:
			if !l.IsSigned {
				rc.read = rdUint32
			}
		case *format.DecimalType:
			rc.read, rc.scale = rdDecimal, l.Scale
		}
	case parquet.Int64:
		rc.read = rdInt64
		switch l := lv.(type) {
		case *format.TimestampType:
			rc.read = rdTime
			switch l.Unit.Value.(type) {
			case *format.MilliSeconds:
				rc.unit = 1e6
			case *format.MicroSeconds:
				rc.unit = 1e3
			default:
				rc.unit = 1
			}
		case *format.IntType:
			if !l.IsSigned {
				rc.read = rdUint64
			}
		case *format.DecimalType:
			rc.read, rc.scale = rdDecimal, l.Scale
		}
	case parquet.Int96:
		rc.read = rdInt96
	case parquet.Float:
		rc.read = rdFloat
	case parquet.Double:
		rc.read = rdDouble
	case parquet.ByteArray, parquet.FixedLenByteArray:
		rc.read = rdBinary
		switch l := lv.(type) {
		case *format.StringType, *format.EnumType:
			rc.read = rdString
		case *format.JsonType:
			rc.read = rdJSON
		case *format.DecimalType:
			rc.read, rc.scale = rdDecimal, l.Scale
		case *format.UUIDType:
			if t.Kind() == parquet.FixedLenByteArray && t.Length() == 16 {
				rc.read = rdUUID
			}
		}
	default:
		return rc, fmt.Errorf("column %q: Parquet type %v has no dstream type", name, t)
	}
	return rc, nil
}

// Pos is the number of the last row returned, from 1.
func (d *ParquetDecoder) Pos() (int64, string) { return d.next, "row" }

// Offset is the number of the row after the last one returned.
func (d *ParquetDecoder) Offset() int64 { return d.next }

// Next appends the record of the next row to dst.
func (d *ParquetDecoder) Next(dst []byte) (_ []byte, err error) {
	if d.err != nil {
		return dst, d.err
	}
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Name: d.name, Line: d.next + 1, Unit: "row", Err: fmt.Errorf("corrupt Parquet file: %v", r)}
		}
		if err != nil && err != io.EOF && !IsBad(err) {
			d.err = err
		}
	}()
	if d.bi == d.bn {
		if err := d.fill(); err != nil {
			return dst, err
		}
	}
	row := d.buf[d.bi]
	d.bi++
	d.next++
	start := len(dst)
	if d.nested {
		dst, err = d.nestedRecord(dst, row)
	} else {
		dst, err = d.record(dst, row)
	}
	if err != nil {
		return dst[:start], &Error{Name: d.name, Line: d.next, Unit: "row", Err: err, Bad: true}
	}
	return dst, nil
}

// fill reads the next rows into buf, opening the row group that holds the
// next row.
func (d *ParquetDecoder) fill() error {
	if d.next >= d.end {
		return io.EOF
	}
	if d.buf == nil {
		d.buf = make([]parquet.Row, 256)
	}
	if d.rows == nil || d.next >= d.first {
		if err := d.seek(); err != nil {
			return err
		}
	}
	want := min(int64(len(d.buf)), d.end-d.next, d.first-d.next)
	n, err := d.rows.ReadRows(d.buf[:want])
	if n > 0 {
		d.bi, d.bn = 0, n
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &Error{Name: d.name, Line: d.next + 1, Unit: "row", Err: fmt.Errorf("reading row group %d: %w", d.g-1, err)}
}

// seek opens the row group of row d.next and goes to it.
func (d *ParquetDecoder) seek() error {
	if d.rows != nil {
		d.rows.Close()
		d.rows = nil
	}
	var first int64
	for g := range d.groups {
		n := d.groups[g].NumRows()
		if d.next < first+n {
			d.rows = d.groups[g].Rows()
			d.g, d.first = g+1, first+n
			if off := d.next - first; off > 0 {
				if err := d.rows.SeekToRow(off); err != nil {
					return &Error{Name: d.name, Line: d.next + 1, Unit: "row", Err: fmt.Errorf("seeking in row group %d: %w", g, err)}
				}
			}
			return nil
		}
		first += n
	}
	return &Error{Name: d.name, Line: d.next + 1, Unit: "row", Err: io.ErrUnexpectedEOF}
}

// Close lets the file's rows go.
func (d *ParquetDecoder) Close() error {
	if d.rows != nil {
		d.rows.Close()
		d.rows = nil
	}
	return nil
}

// record appends the record of row: a field per column that is not null.
func (d *ParquetDecoder) record(dst []byte, row parquet.Row) ([]byte, error) {
	n := 0
	for _, v := range row {
		if !v.IsNull() {
			n++
		}
	}
	dst = record.AppendMapHeader(dst, n)
	for _, v := range row {
		if v.IsNull() {
			continue
		}
		c := v.Column()
		if c < 0 || c >= len(d.cols) {
			return dst, fmt.Errorf("a value of column %d, of %d", c, len(d.cols))
		}
		rc := &d.cols[c]
		dst = append(dst, rc.key...)
		var err error
		if dst, err = rc.append(dst, v); err != nil {
			return dst, fmt.Errorf("column %q: %w", rc.key[1:], err)
		}
	}
	return dst, nil
}

// append appends value v of the column as msgpack.
func (rc *pqReadColumn) append(dst []byte, v parquet.Value) ([]byte, error) {
	switch rc.read {
	case rdBool:
		return record.AppendBool(dst, v.Boolean()), nil
	case rdInt32:
		return record.AppendInt(dst, int64(v.Int32())), nil
	case rdUint32:
		return record.AppendInt(dst, int64(uint32(v.Int32()))), nil
	case rdInt64:
		return record.AppendInt(dst, v.Int64()), nil
	case rdUint64:
		if u := uint64(v.Int64()); u > math.MaxInt64 {
			return record.AppendUint(dst, u), nil
		}
		return record.AppendInt(dst, v.Int64()), nil
	case rdFloat:
		return appendFloat32(dst, v.Float()), nil
	case rdDouble:
		return record.AppendFloat(dst, v.Double()), nil
	case rdString:
		return record.AppendStringBytes(dst, v.ByteArray()), nil
	case rdBinary:
		return record.AppendBinary(dst, v.ByteArray()), nil
	case rdJSON:
		return record.AppendJSONValue(dst, v.ByteArray())
	case rdTime:
		x := v.Int64()
		sec, rem := x/(1e9/rc.unit), x%(1e9/rc.unit)
		if rem < 0 {
			sec, rem = sec-1, rem+1e9/rc.unit
		}
		return record.AppendTime(dst, time.Unix(sec, rem*rc.unit)), nil
	case rdDate:
		return record.AppendTime(dst, time.Unix(int64(v.Int32())*86400, 0)), nil
	case rdInt96:
		return record.AppendTime(dst, int96Time(v.Int96())), nil
	case rdDecimal:
		return record.AppendFloat(dst, decimal(v, rc.scale)), nil
	case rdUUID:
		b := v.ByteArray()
		if len(b) != 16 {
			return dst, fmt.Errorf("a UUID of %d bytes", len(b))
		}
		return record.AppendString(dst, fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])), nil
	}
	return dst, fmt.Errorf("unknown column kind %d", rc.read)
}

// appendFloat32 appends a msgpack float 32.
func appendFloat32(dst []byte, f float32) []byte {
	u := math.Float32bits(f)
	return append(dst, 0xca, byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
}

// int96Time is the time of a legacy INT96 timestamp: nanoseconds of the
// day, then the Julian day.
func int96Time(x deprecated.Int96) time.Time {
	ns := int64(x[1])<<32 | int64(x[0])
	day := int64(x[2]) - 2440588 // the Julian day of 1970-01-01
	return time.Unix(day*86400, 0).Add(time.Duration(ns))
}

// decimal is the value of a DECIMAL, as a float: exact up to 15 digits or
// so.
func decimal(v parquet.Value, scale int32) float64 {
	var u big.Int
	switch v.Kind() {
	case parquet.Int32:
		u.SetInt64(int64(v.Int32()))
	case parquet.Int64:
		u.SetInt64(v.Int64())
	default: // big-endian two's complement
		b := v.ByteArray()
		u.SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 {
			u.Sub(&u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
	}
	f, _ := new(big.Float).SetInt(&u).Float64()
	return f / math.Pow10(int(scale))
}

// parquetStream reads a Parquet file from a stream (stdin, a socket),
// whole into memory at the first Next: a Parquet file is read from its
// footer.
type parquetStream struct {
	r    io.Reader
	name string
	d    *ParquetDecoder
}

func (s *parquetStream) Next(dst []byte) ([]byte, error) {
	if s.d == nil {
		b, err := io.ReadAll(s.r)
		if err != nil {
			return dst, &Error{Name: s.name, Err: err}
		}
		if s.d, err = NewParquetDecoder(bytes.NewReader(b), int64(len(b)), s.name, 0, -1); err != nil {
			return dst, err
		}
	}
	return s.d.Next(dst)
}

func (s *parquetStream) Pos() (int64, string) { return s.Offset(), "row" }

func (s *parquetStream) Offset() int64 {
	if s.d == nil {
		return 0
	}
	return s.d.Offset()
}

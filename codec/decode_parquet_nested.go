package codec

// Nested Parquet columns, read: a group is a map, a repeated field or a
// LIST an array, a MAP a map (its keys as text, sorted), each leaf by the
// rules of a flat column (decode_parquet.go). A file with any such column
// is read row by row, through parquet-go's reconstruction of a row into Go
// values, walked together with the schema; a flat file is read column by
// column without it.

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/dstream/dstream/record"
)

// pqNested is how a field of a nested file is read.
type pqNested struct {
	key    []byte // the name, as msgpack
	name   string
	node   parquet.Node
	leaf   pqReadColumn // a leaf's values
	kind   nestKind
	elem   *pqNested   // a list's elements, a map's values
	fields []*pqNested // a group's fields
}

type nestKind uint8

const (
	nestLeaf nestKind = iota
	nestGroup
	nestList // a repeated field, or a LIST group
	nestMap
)

// maxNesting bounds the depth of a schema read, as record.MaxDepth bounds
// records.
const maxNesting = 64

// nestedFields plans the reading of the fields of schema s.
func (d *ParquetDecoder) nestedFields(s *parquet.Schema) error {
	for _, f := range s.Fields() {
		n, err := planNested(f, f.Name(), 0)
		if err != nil {
			return err
		}
		d.fields = append(d.fields, *n)
	}
	d.row = map[string]any{}
	return nil
}

// planNested plans the reading of node n, named name.
func planNested(n parquet.Node, name string, depth int) (*pqNested, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("column %q: nested deeper than %d", name, maxNesting)
	}
	p := &pqNested{key: record.AppendString(nil, name), name: name, node: n}
	if n.Repeated() {
		p.kind = nestList
		e, err := planNested(parquet.Required(n), name, depth+1)
		if err != nil {
			return nil, err
		}
		p.elem = e
		return p, nil
	}
	if n.Leaf() {
		var err error
		p.leaf, err = leafReader(n, name)
		return p, err
	}
	var lv format.LogicalTypeValue
	if lt := n.Type().LogicalType(); lt != nil {
		lv = lt.Value
	}
	fields := n.Fields()
	switch lv.(type) {
	case *format.ListType:
		// group (LIST) { repeated group list { element } }; an older
		// writer's repeated child may be the element itself.
		if len(fields) != 1 || !fields[0].Repeated() {
			return nil, fmt.Errorf("column %q: a LIST without its one repeated field", name)
		}
		el := parquet.Node(fields[0])
		if !el.Leaf() && len(el.Fields()) == 1 {
			el = el.Fields()[0]
		} else {
			el = parquet.Required(el)
		}
		e, err := planNested(el, name, depth+1)
		if err != nil {
			return nil, err
		}
		p.kind, p.elem = nestList, e
		return p, nil
	case *format.MapType:
		if len(fields) != 1 || fields[0].Leaf() || len(fields[0].Fields()) != 2 {
			return nil, fmt.Errorf("column %q: a MAP without its key_value group", name)
		}
		e, err := planNested(fields[0].Fields()[1], name, depth+1)
		if err != nil {
			return nil, err
		}
		p.kind, p.elem = nestMap, e
		return p, nil
	}
	p.kind = nestGroup
	for _, f := range fields {
		c, err := planNested(f, f.Name(), depth+1)
		if err != nil {
			return nil, err
		}
		p.fields = append(p.fields, c)
	}
	return p, nil
}

// nestedRecord appends the record of row, a field per top-level column
// that is not null.
func (d *ParquetDecoder) nestedRecord(dst []byte, row parquet.Row) ([]byte, error) {
	clear(d.row)
	if err := d.f.Schema().Reconstruct(&d.row, row); err != nil {
		return dst, err
	}
	n := 0
	for i := range d.fields {
		if !isNil(d.row[d.fields[i].name]) {
			n++
		}
	}
	dst = record.AppendMapHeader(dst, n)
	for i := range d.fields {
		f := &d.fields[i]
		v := d.row[f.name]
		if isNil(v) {
			continue
		}
		dst = append(dst, f.key...)
		var err error
		if dst, err = f.append(dst, v); err != nil {
			return dst, fmt.Errorf("column %q: %w", f.name, err)
		}
	}
	return dst, nil
}

// isNil tells a null: nil, or a nil pointer, map or slice of one.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Interface:
		return r.IsNil()
	}
	return false
}

// append appends value v of the field as msgpack.
func (p *pqNested) append(dst []byte, v any) ([]byte, error) {
	if isNil(v) {
		return record.AppendNil(dst), nil
	}
	if r := reflect.ValueOf(v); r.Kind() == reflect.Pointer {
		v = r.Elem().Interface() // an optional value
	}
	switch p.kind {
	case nestLeaf:
		pv, err := leafValue(p.leaf.read, v)
		if err != nil {
			return dst, err
		}
		return p.leaf.append(dst, pv)
	case nestList:
		r := reflect.ValueOf(v)
		if r.Kind() != reflect.Slice && r.Kind() != reflect.Array {
			return dst, fmt.Errorf("a list of %T", v)
		}
		if r.Kind() == reflect.Slice && r.Type().Elem().Kind() == reflect.Uint8 && p.elem.kind == nestLeaf {
			return dst, errors.New("a list of bytes")
		}
		dst = record.AppendArrayHeader(dst, r.Len())
		for i := range r.Len() {
			var err error
			if dst, err = p.elem.append(dst, r.Index(i).Interface()); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case nestMap:
		r := reflect.ValueOf(v)
		if r.Kind() != reflect.Map {
			return dst, fmt.Errorf("a map of %T", v)
		}
		type kv struct {
			k string
			v any
		}
		var kvs []kv
		for it := r.MapRange(); it.Next(); {
			kvs = append(kvs, kv{fmt.Sprint(it.Key().Interface()), it.Value().Interface()})
		}
		slices.SortFunc(kvs, func(a, b kv) int {
			if a.k < b.k {
				return -1
			}
			if a.k > b.k {
				return 1
			}
			return 0
		})
		dst = record.AppendMapHeader(dst, len(kvs))
		for _, e := range kvs {
			dst = record.AppendString(dst, e.k)
			var err error
			if dst, err = p.elem.append(dst, e.v); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return dst, fmt.Errorf("a group of %T", v)
	}
	n := 0
	for _, f := range p.fields {
		if !isNil(m[f.name]) {
			n++
		}
	}
	dst = record.AppendMapHeader(dst, n)
	for _, f := range p.fields {
		e := m[f.name]
		if isNil(e) {
			continue
		}
		dst = append(dst, f.key...)
		var err error
		if dst, err = f.append(dst, e); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// leafValue makes the Go value v of a reconstructed leaf the
// parquet.Value that pqReadColumn.append reads for kind rd.
func leafValue(rd pqRead, v any) (parquet.Value, error) {
	r := reflect.ValueOf(v)
	switch rd {
	case rdBool:
		if r.Kind() == reflect.Bool {
			return parquet.BooleanValue(r.Bool()), nil
		}
	case rdInt32, rdUint32, rdDate:
		if i, ok := intOf(r); ok {
			return parquet.Int32Value(int32(i)), nil
		}
	case rdInt64, rdUint64, rdTime:
		if i, ok := intOf(r); ok {
			return parquet.Int64Value(i), nil
		}
	case rdFloat, rdDouble:
		if r.CanFloat() {
			if rd == rdFloat {
				return parquet.FloatValue(float32(r.Float())), nil
			}
			return parquet.DoubleValue(r.Float()), nil
		}
	case rdInt96:
		if x, ok := v.(deprecated.Int96); ok {
			return parquet.Int96Value(x), nil
		}
	case rdDecimal:
		if i, ok := intOf(r); ok {
			return parquet.Int64Value(i), nil
		}
		if b, ok := bytesOf(r); ok {
			return parquet.FixedLenByteArrayValue(b), nil
		}
	case rdString, rdBinary, rdJSON, rdUUID:
		if b, ok := bytesOf(r); ok {
			return parquet.ByteArrayValue(b), nil
		}
	}
	return parquet.Value{}, fmt.Errorf("a value of Go type %T for a column of kind %d", v, rd)
}

// intOf is the integer of r, if it is one.
func intOf(r reflect.Value) (int64, bool) {
	switch {
	case r.CanInt():
		return r.Int(), true
	case r.CanUint():
		return int64(r.Uint()), true // as a UINT_64 column holds it
	}
	return 0, false
}

// bytesOf is the bytes of a string, a []byte or a [N]byte.
func bytesOf(r reflect.Value) ([]byte, bool) {
	switch {
	case r.Kind() == reflect.String:
		return []byte(r.String()), true
	case r.Kind() == reflect.Slice && r.Type().Elem().Kind() == reflect.Uint8:
		return r.Bytes(), true
	case r.Kind() == reflect.Array && r.Type().Elem().Kind() == reflect.Uint8:
		b := make([]byte, r.Len())
		reflect.Copy(reflect.ValueOf(b), r)
		return b, true
	}
	return nil, false
}

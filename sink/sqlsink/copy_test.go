package sqlsink

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/dstream/dstream/record"
	"github.com/jackc/pgx/v5/pgtype"
)

// copyTypes are column types of PostgreSQL by their names in f.types, and
// their OIDs.
var copyTypes = []struct {
	name string
	oid  uint32
}{
	{"bigint", pgtype.Int8OID},
	{"double precision", pgtype.Float8OID},
	{"text", pgtype.TextOID},
	{"boolean", pgtype.BoolOID},
	{"jsonb", pgtype.JSONBOID},
	{"integer", pgtype.Int4OID},
}

// copyValue is the msgpack of v.
func copyValue(t testing.TB, v any) []byte {
	var b record.Builder
	if err := b.Value("v", v); err != nil {
		t.Fatal(err)
	}
	var f record.Fields
	f.Reset(b.Bytes())
	if !f.Next() {
		t.Fatal(f.Err())
	}
	return f.Value()
}

// checkCopyRow compares appendRow's encoding of the value raw in a column
// of type typ with pgx's encoding of it as value makes it (encodeValue,
// what pgx's CopyFrom did): the same bytes, or both an error.
func checkCopyRow(t *testing.T, raw []byte, typ int) {
	f := &tableWriter{d: &postgresDialect, mode: ModeAppend, index: map[string]int{}}
	f.addCol("v", copyTypes[typ].name)
	f.pg.oids, f.pg.typeMap = []uint32{copyTypes[typ].oid}, pgtype.NewMap()
	f.raw[0] = raw
	got, err := f.appendRow(nil)

	want := binary.BigEndian.AppendUint16(nil, 1)
	x, werr := f.value(raw, f.types[0])
	if werr == nil {
		want, werr = f.encodeValue(want, 0, x)
	}
	if (err != nil) != (werr != nil) {
		t.Fatalf("%x in %s: error %v, want %v", raw, copyTypes[typ].name, err, werr)
	}
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("%x in %s: %x, want %x", raw, copyTypes[typ].name, got, want)
	}
}

// TestAppendRow checks appendRow's own encodings against pgx's, for values
// of every kind in every column type it encodes itself, and some it
// leaves to pgx.
func TestAppendRow(t *testing.T) {
	values := []any{nil, int64(0), int64(-1), int64(1 << 62), int64(math.MinInt64), int64(1 << 40),
		0.0, math.Copysign(0, -1), 1.5, -2.25e300, math.Inf(1), math.NaN(), float64(3),
		"", "héllo", "1", "2.5", "true", "x",
		true, false, []byte{0, 1}, map[string]any{"a": int64(1)}, []any{"x", 1.5}}
	for _, v := range values {
		for typ := range copyTypes {
			checkCopyRow(t, copyValue(t, v), typ)
		}
	}
}

// FuzzAppendRow checks appendRow against pgx's encoding for any value.
func FuzzAppendRow(f *testing.F) {
	for _, v := range []any{int64(7), 2.5, "s", true, nil} {
		f.Add(copyValue(f, v), uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, typ uint8) {
		if n, err := record.Skip(raw); err != nil || n != len(raw) {
			return // one whole value, as Fields gives
		}
		checkCopyRow(t, raw, int(typ)%len(copyTypes))
	})
}

package codec

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// writeParquet encodes recs (msgpack maps) as one Parquet file.
func writeParquet(t testing.TB, recs ...[]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	e := Lookup("parquet").New(w, Options{})
	b := stage.Batch{ID: 1, Time: 1000}
	if err := e.Begin(b); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := e.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.End(b, uint64(len(recs))); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return out.Bytes()
}

// jsonRecs makes records of JSON lines.
func jsonRecs(t testing.TB, lines ...string) [][]byte {
	var recs [][]byte
	for _, l := range lines {
		r, err := record.AppendJSONObject(nil, []byte(l))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// readParquet decodes a file from row start and returns its records as
// JSON lines, and the offset after each.
func readParquet(t testing.TB, data []byte, start, end int64) ([]string, []int64) {
	t.Helper()
	d, err := NewParquetDecoder(bytes.NewReader(data), int64(len(data)), "f.parquet", start, end)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var recs []string
	var offs []int64
	var rec []byte
	for {
		if rec, err = d.Next(rec[:0]); err == io.EOF {
			return recs, offs
		} else if err != nil {
			t.Fatal(err)
		}
		js, _, err := record.AppendJSON(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, string(js))
		offs = append(offs, d.Offset())
	}
}

// columnTypes is the schema of a file: each column's name and type.
func columnTypes(t testing.TB, data []byte) string {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, c := range f.Schema().Fields() {
		typ := c.Type().String()
		if !c.Optional() {
			typ += " required"
		}
		s = append(s, c.Name()+" "+typ)
	}
	return strings.Join(s, ", ")
}

func TestParquetTypes(t *testing.T) {
	tests := []struct {
		name  string
		in    []string
		types string
		out   []string // nil: in
	}{
		{name: "scalars", in: []string{`{"s":"x","i":-1,"f":1.5,"b":true}`},
			types: "s STRING, i INT(64,true), f DOUBLE, b BOOLEAN"},
		{name: "order-of-first-sight", in: []string{`{"z":1}`, `{"a":2,"z":3}`},
			types: "z INT(64,true), a INT(64,true)", out: []string{`{"z":1}`, `{"z":3,"a":2}`}},
		{name: "missing-and-null-read-back-missing", in: []string{`{"a":1,"b":null}`, `{"b":"x"}`},
			types: "a INT(64,true), b STRING", out: []string{`{"a":1}`, `{"b":"x"}`}},
		{name: "only-nulls", in: []string{`{"a":null,"b":1}`}, types: "a STRING, b INT(64,true)", out: []string{`{"b":1}`}},
		{name: "int-and-float", in: []string{`{"a":1}`, `{"a":2.5}`}, types: "a DOUBLE", out: []string{`{"a":1}`, `{"a":2.5}`}},
		{name: "uint", in: []string{`{"a":1}`, `{"a":18446744073709551615}`}, types: "a INT(64,false)"},
		{name: "uint-and-negative", in: []string{`{"a":-1}`, `{"a":18446744073709551615}`}, types: "a DOUBLE",
			out: []string{`{"a":-1}`, `{"a":18446744073709552000}`}},
		{name: "mixed-is-text", in: []string{`{"a":1}`, `{"a":"x"}`, `{"a":true}`}, types: "a STRING",
			out: []string{`{"a":"1"}`, `{"a":"x"}`, `{"a":"true"}`}},
		{name: "odd-names", in: []string{`{"":1,"a.b":2,"é ü":3,"x\u0000y":4}`},
			types: " INT(64,true), a.b INT(64,true), é ü INT(64,true), x\x00y INT(64,true)"},
		{name: "nested-is-json", in: []string{`{"a":{"b":[1,"x"]}}`, `{"a":[2.5]}`, `{"a":"s"}`}, types: "a JSON"},
	}
	for _, tt := range tests {
		data := writeParquet(t, jsonRecs(t, tt.in...)...)
		if got := columnTypes(t, data); got != tt.types {
			t.Errorf("%s: types %s, want %s", tt.name, got, tt.types)
		}
		want := tt.out
		if want == nil {
			want = tt.in
		}
		got, _ := readParquet(t, data, 0, -1)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: read back\n%s\nwant\n%s", tt.name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// The types JSON has not: times, binary, float32 kept as they are.
func TestParquetTimeAndBinary(t *testing.T) {
	tm := time.Date(2026, 12, 6, 9, 30, 1, 123456789, time.UTC)
	var r []byte
	r = record.AppendMapHeader(r, 2)
	r = record.AppendString(r, "t")
	r = record.AppendTime(r, tm)
	r = record.AppendString(r, "b")
	r = record.AppendBinary(r, []byte{0, 1, 255})
	data := writeParquet(t, r)
	if got, want := columnTypes(t, data), "t TIMESTAMP(isAdjustedToUTC=true,unit=NANOS), b BYTE_ARRAY"; got != want {
		t.Errorf("types %s, want %s", got, want)
	}
	d, err := NewParquetDecoder(bytes.NewReader(data), int64(len(data)), "f", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Next(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, r) {
		t.Errorf("read back %x, want %x", got, r)
	}
}

func TestParquetRecordErrors(t *testing.T) {
	e := newParquet(bufio.NewWriter(io.Discard), "")
	twice := jsonRecs(t, `{"a":1,"a":2}`)[0]
	if err := e.Record(twice); err == nil || err.Error() != `field "a": the record has it twice` {
		t.Errorf("a field twice: %v", err)
	}
	var ext []byte
	ext = record.AppendMapHeader(ext, 1)
	ext = record.AppendString(ext, "x")
	ext = append(ext, 0xd4, 1, 0) // fixext1 of type 1
	if err := e.Record(ext); err == nil || !strings.Contains(err.Error(), "extension") {
		t.Errorf("an extension: %v", err)
	}
}

// Rows over several row groups, read from every start: each read goes on
// where the whole read is at that row.
func TestParquetResume(t *testing.T) {
	defer func(n int64) { parquetRowGroup = n }(parquetRowGroup)
	parquetRowGroup = 7
	var lines []string
	for i := range 40 {
		lines = append(lines, `{"i":`+strings.Repeat("1", i%5+1)+`,"s":"r`+strings.Repeat("x", i%3)+`"}`)
	}
	data := writeParquet(t, jsonRecs(t, lines...)...)
	if f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data))); err != nil || len(f.RowGroups()) != 6 {
		t.Fatalf("want 6 row groups of at most 7 rows: %v", err)
	}
	all, offs := readParquet(t, data, 0, -1)
	if strings.Join(all, "\n") != strings.Join(lines, "\n") {
		t.Fatalf("read\n%s\nwant\n%s", strings.Join(all, "\n"), strings.Join(lines, "\n"))
	}
	for i, o := range offs {
		if o != int64(i+1) {
			t.Fatalf("offset after row %d: %d", i, o)
		}
	}
	for start := int64(0); start <= 40; start++ {
		for _, end := range []int64{start, min(start+9, 40), -1} {
			got, _ := readParquet(t, data, start, end)
			stop := end
			if stop < 0 {
				stop = 40
			}
			if strings.Join(got, "\n") != strings.Join(all[start:stop], "\n") {
				t.Errorf("rows [%d, %d): got %q", start, end, got)
			}
		}
	}
	if _, err := NewParquetDecoder(bytes.NewReader(data), int64(len(data)), "f", 41, -1); err == nil || !strings.Contains(err.Error(), "has 40 rows, and the checkpoint read it up to row 41") {
		t.Errorf("a start past the end: %v", err)
	}
}

func TestParquetNotParquet(t *testing.T) {
	d, err := NewDecoder("parquet", strings.NewReader("a,b\n1,2\n"), "in.csv")
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Next(nil)
	if err == nil || !strings.HasPrefix(err.Error(), "in.csv: not a Parquet file") {
		t.Errorf("got %v", err)
	}
}

// FuzzParquet reads damaged files: errors, never a panic; and a read that
// goes on at a row gives the rows the whole read gives from it.
func FuzzParquet(f *testing.F) {
	f.Add(writeParquet(f, jsonRecs(f, `{"s":"x","i":-1,"f":1.5,"b":true}`, `{"j":{"a":[1]},"s":null}`)...), uint8(1))
	f.Add(writeParquet(f, jsonRecs(f, `{"a":1}`, `{"a":"x"}`, `{"a":18446744073709551615}`)...), uint8(2))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"), uint8(0))
	f.Add(nestedFile(f), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, at uint8) {
		d, err := NewParquetDecoder(bytes.NewReader(data), int64(len(data)), "f", 0, -1)
		if err != nil {
			return
		}
		var all [][]byte
		var rec []byte
		for {
			if rec, err = d.Next(rec[:0]); err != nil {
				break
			}
			if _, err := record.Skip(rec); err != nil {
				t.Fatalf("bad msgpack of row %d: %v", len(all), err)
			}
			all = append(all, bytes.Clone(rec))
		}
		if err != io.EOF || int(at) > len(all) {
			return
		}
		d, err = NewParquetDecoder(bytes.NewReader(data), int64(len(data)), "f", int64(at), -1)
		if err != nil {
			t.Fatalf("again from row %d: %v", at, err)
		}
		for i := int(at); i < len(all); i++ {
			if rec, err = d.Next(rec[:0]); err != nil || !bytes.Equal(rec, all[i]) {
				t.Fatalf("row %d from row %d: %x, %v; want %x", i, at, rec, err, all[i])
			}
		}
	})
}

// parquetBenchRecords are 100k rows of the bench's 3 fields.
func parquetBenchRecords(b *testing.B) ([][]byte, int64) {
	var recs [][]byte
	var size int64
	for i := range 100000 {
		r, err := record.AppendJSONObject(nil, fmt.Appendf(nil, `{"id":%d,"name":"user%d","score":%d.5}`, i, i%1000, i%97))
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, r)
		size += int64(len(r))
	}
	return recs, size
}

func BenchmarkParquetWrite(b *testing.B) {
	recs, size := parquetBenchRecords(b)
	w := bufio.NewWriter(io.Discard)
	e := newParquet(w, "")
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range recs {
			if err := e.Record(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := e.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkParquetRead(b *testing.B) {
	recs, size := parquetBenchRecords(b)
	data := writeParquet(b, recs...)
	b.SetBytes(size)
	b.ReportAllocs()
	var rec []byte
	for b.Loop() {
		d, err := NewParquetDecoder(bytes.NewReader(data), int64(len(data)), "f", 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if rec, err = d.Next(rec[:0]); err != nil {
				break
			}
		}
		if err != io.EOF {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

type nestedInner struct {
	A int64
	B string `parquet:",optional"`
}

type nestedRow struct {
	ID   int64
	Tags []string
	In   nestedInner
	M    map[string]int64
	T    time.Time
	L    []nestedInner
	LL   []int32       `parquet:",list"`
	LS   []nestedInner `parquet:",list"`
	Opt  *nestedInner  `parquet:",optional"`
}

// Nested groups, repeated fields, LISTs and MAPs (as Spark writes structs,
// arrays and maps) read as maps and arrays, their leaves typed as flat
// columns are.
func TestParquetNested(t *testing.T) {
	data := nestedFile(t)
	got, offs := readParquet(t, data, 0, -1)
	want := []string{
		`{"ID":1,"Tags":["x","y"],"In":{"A":2,"B":"b"},"M":{"a":4,"k":3},"T":"1970-01-01T00:00:05.000000006Z","L":[{"A":7}],"LL":[4,5],"LS":[{"A":8,"B":"z"}],"Opt":{"A":9}}`,
		`{"ID":2,"Tags":[],"In":{"A":0},"M":{},"T":"1970-01-01T00:00:00Z","L":[],"LL":[],"LS":[]}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("read\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(offs) != 2 || offs[1] != 2 {
		t.Errorf("offsets %v", offs)
	}
	if got, _ := readParquet(t, data, 1, -1); len(got) != 1 || got[0] != want[1] {
		t.Errorf("from row 1: %q", got)
	}
}

// nestedFile is a file of nestedRow, written by parquet-go.
func nestedFile(t testing.TB) []byte {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[nestedRow](&buf)
	if _, err := w.Write([]nestedRow{
		{ID: 1, Tags: []string{"x", "y"}, In: nestedInner{A: 2, B: "b"}, M: map[string]int64{"k": 3, "a": 4}, T: time.Unix(5, 6).UTC(),
			L: []nestedInner{{A: 7}}, LL: []int32{4, 5}, LS: []nestedInner{{A: 8, B: "z"}}, Opt: &nestedInner{A: 9}},
		{ID: 2, T: time.Unix(0, 0)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParquetRoundTrip writes JSON lines as a Parquet file and reads it
// back: where every field keeps one type in the file, each row is its
// record, its fields in the file's column order, nulls left out (compared
// as JSON: a float 1.0 in a nested value reads back as the integer 1,
// which JSON writes alike).
func FuzzParquetRoundTrip(f *testing.F) {
	f.Add("{\"a\":1,\"b\":\"x\"}\n{\"b\":\"y\",\"c\":[1,{\"d\":null}],\"a\":null}\n")
	f.Add("{\"s\":\"\\u00e9\\n\",\"f\":-0.0,\"u\":18446744073709551615,\"t\":true}\n")
	f.Add("{\"a\":{}}\n{\"a\":[]}\n")
	f.Fuzz(func(t *testing.T, in string) {
		var recs [][]byte
		kinds := map[string]record.Kind{}
		var order []string
		for _, l := range strings.Split(in, "\n") {
			r, err := record.AppendJSONObject(nil, []byte(l))
			if err != nil {
				continue
			}
			var flds record.Fields
			seen := map[string]bool{}
			for flds.Reset(r); flds.Next(); {
				k, kind := string(flds.Key()), record.KindOf(flds.Value())
				if seen[k] {
					return // a field twice: an error of the encoder's
				}
				seen[k] = true
				if _, ok := kinds[k]; !ok {
					order = append(order, k)
					kinds[k] = record.KindNil
				}
				if kind == record.KindArray {
					kind = record.KindMap // one JSON column
				}
				switch prev := kinds[k]; {
				case kind == record.KindNil:
				case prev == record.KindNil:
					kinds[k] = kind
				case prev != kind:
					return // a field of two types: converted, not kept
				}
			}
			recs = append(recs, r)
		}
		if len(recs) == 0 || len(order) == 0 {
			return
		}
		data := writeParquet(t, recs...)
		got, _ := readParquet(t, data, 0, -1)
		if len(got) != len(recs) {
			t.Fatalf("%d rows, want %d", len(got), len(recs))
		}
		for i, r := range recs {
			vals := map[string][]byte{}
			var flds record.Fields
			for flds.Reset(r); flds.Next(); {
				if record.KindOf(flds.Value()) != record.KindNil {
					vals[string(flds.Key())] = flds.Value()
				}
			}
			var want []byte
			want = append(want, '{')
			for _, k := range order {
				if v, ok := vals[k]; ok {
					if len(want) > 1 {
						want = append(want, ',')
					}
					want, _, _ = record.AppendJSON(want, record.AppendString(nil, k))
					want = append(want, ':')
					want, _, _ = record.AppendJSON(want, v)
				}
			}
			want = append(want, '}')
			if got[i] != string(want) {
				t.Fatalf("row %d: %s, want %s", i, got[i], want)
			}
		}
	})
}

// Values converted to text or JSON (kept in a buffer reused from one
// chunk of rows to the next) read back whole over many chunks and row
// groups.
func TestParquetConvertedValues(t *testing.T) {
	defer func(n int64) { parquetRowGroup = n }(parquetRowGroup)
	parquetRowGroup = 1500
	var lines, want []string
	for i := range 5000 {
		if i%2 == 0 {
			lines = append(lines, fmt.Sprintf(`{"m":{"i":%d},"x":%d}`, i, i))
			want = append(want, fmt.Sprintf(`{"m":{"i":%d},"x":"%d"}`, i, i))
		} else {
			lines = append(lines, fmt.Sprintf(`{"m":[%d],"x":"s%d"}`, i, i))
			want = append(want, lines[i])
		}
	}
	got, _ := readParquet(t, writeParquet(t, jsonRecs(t, lines...)...), 0, -1)
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("row %d: %q, want %s", i, got[min(i, len(got)-1)], want[i])
		}
	}
}

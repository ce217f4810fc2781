package codec

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dstream/dstream/record"
)

// decodeAll runs a decoder to the end and returns the records as JSON lines,
// or the first error. With skip, bad records are passed over.
func decodeAll(t testing.TB, format, in string, skip bool, oneByte bool) (string, int, error) {
	var r io.Reader = strings.NewReader(in)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	d, err := NewDecoder(format, r, "in")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var rec, js []byte
	skipped := 0
	for {
		rec, err = d.Next(rec[:0])
		if err == io.EOF {
			return out.String(), skipped, nil
		}
		if err != nil {
			if skip && IsBad(err) {
				skipped++
				continue
			}
			return out.String(), skipped, err
		}
		if js, _, err = record.AppendJSON(js[:0], rec); err != nil {
			t.Fatalf("decoder made bad msgpack: %v", err)
		}
		out.Write(js)
		out.WriteByte('\n')
	}
}

func TestDecoders(t *testing.T) {
	tests := []struct {
		name, format, in, want, err string
		skip                        bool
		skipped                     int
	}{
		{name: "lines", format: "lines", in: "hello world\nfoo\n", want: "{\"value\":\"hello world\"}\n{\"value\":\"foo\"}\n"},
		{name: "lines-no-final-newline", format: "lines", in: "a\nb", want: "{\"value\":\"a\"}\n{\"value\":\"b\"}\n"},
		{name: "lines-crlf", format: "lines", in: "a\r\nb\r\n", want: "{\"value\":\"a\"}\n{\"value\":\"b\"}\n"},
		{name: "lines-empty-lines-are-records", format: "lines", in: "\n\n", want: "{\"value\":\"\"}\n{\"value\":\"\"}\n"},
		{name: "lines-empty-input", format: "lines", in: "", want: ""},
		{name: "json", format: "json", in: "{\"ts\":0.5,\"x\":1}\n\n  \n{\"b\":[1,\"x\"],\"a\":null}\n", want: "{\"ts\":0.5,\"x\":1}\n{\"b\":[1,\"x\"],\"a\":null}\n"},
		{name: "json-bad-line", format: "json", in: "{\"a\":1}\n{bad\n", want: "{\"a\":1}\n", err: "in: line 2: bad JSON"},
		{name: "json-not-object", format: "json", in: "[1]\n", err: "in: line 1: bad JSON"},
		{name: "json-skip-bad", format: "json", in: "{\"a\":1}\n{bad\n{\"a\":2}\n", skip: true, skipped: 1, want: "{\"a\":1}\n{\"a\":2}\n"},
		{name: "csv", format: "csv", in: "a,b\n1,\"x,y\"\n2,\"multi\nline\"\n", want: "{\"a\":\"1\",\"b\":\"x,y\"}\n{\"a\":\"2\",\"b\":\"multi\\nline\"}\n"},
		{name: "csv-ragged", format: "csv", in: "a,b\n1,2\n3\n", want: "{\"a\":\"1\",\"b\":\"2\"}\n", err: "in: line 3: 1 fields, but the header has 2"},
		{name: "csv-ragged-skip", format: "csv", in: "a,b\n1,2\n3\n4,5\n", skip: true, skipped: 1, want: "{\"a\":\"1\",\"b\":\"2\"}\n{\"a\":\"4\",\"b\":\"5\"}\n"},
		{name: "csv-unnamed-columns", format: "csv", in: "a,,\n1,2,3\n", want: "{\"a\":\"1\",\"_c1\":\"2\",\"_c2\":\"3\"}\n"},
		{name: "csv-duplicate-header", format: "csv", in: "a,a\n1,2\n", err: "in: line 1: the header names column \"a\" twice"},
		{name: "csv-header-only", format: "csv", in: "a,b\n", want: ""},
		{name: "tsv", format: "tsv", in: "a\tb\nx \"y\t2\n", want: "{\"a\":\"x \\\"y\",\"b\":\"2\"}\n"},
		{name: "msgpack", format: "msgpack", in: "\x81\xa1a\x01\x81\xa1a\x02", want: "{\"a\":1}\n{\"a\":2}\n"},
		{name: "msgpack-not-map", format: "msgpack", in: "\x81\xa1a\x01\x01", want: "{\"a\":1}\n", err: "in: record 2: not a map but int"},
		{name: "msgpack-truncated", format: "msgpack", in: "\x81\xa1a\x01\x81\xa1", want: "{\"a\":1}\n", err: "in: record 2"},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			got, skipped, err := decodeAll(t, tt.format, tt.in, tt.skip, oneByte)
			if got != tt.want {
				t.Errorf("%s: got\n%s\nwant\n%s", tt.name, got, tt.want)
			}
			if skipped != tt.skipped {
				t.Errorf("%s: skipped %d, want %d", tt.name, skipped, tt.skipped)
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("%s: unexpected error %v", tt.name, err)
			case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
				t.Errorf("%s: error %v, want prefix %q", tt.name, err, tt.err)
			}
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	if _, err := NewDecoder("xml", strings.NewReader(""), "in"); err == nil || !strings.Contains(err.Error(), "lines, json, csv, tsv, msgpack") {
		t.Fatalf("got %v", err)
	}
}

func TestLongLine(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	got, _, err := decodeAll(t, "lines", long+"\nshort\n", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"value\":\"" + long + "\"}\n{\"value\":\"short\"}\n"; got != want {
		t.Fatalf("long line mangled: got %d bytes, want %d", len(got), len(want))
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	d, _ := NewDecoder("lines", iotest.DataErrReader(iotest.ErrReader(boom)), "in")
	if _, err := d.Next(nil); !errors.Is(err, boom) || IsBad(err) {
		t.Fatalf("got %v", err)
	}
}

func TestEventTime(t *testing.T) {
	tests := []struct {
		raw  []byte
		unit TimeUnit
		want int64
		err  bool
	}{
		{record.AppendInt(nil, 2), Seconds, 2000, false},
		{record.AppendInt(nil, 2), Milliseconds, 2, false},
		{record.AppendFloat(nil, 0.5), Seconds, 500, false},
		{record.AppendFloat(nil, -0.5), Seconds, -500, false},
		{record.AppendFloat(nil, 2.2), Seconds, 2200, false},
		{record.AppendFloat(nil, 1795687200.102), Seconds, 1795687200102, false},
		{record.AppendFloat(nil, 0.0015), Seconds, 1, false},
		{record.AppendString(nil, "1970-01-01T00:00:01.5Z"), Seconds, 1500, false},
		{record.AppendString(nil, "2026-11-26T12:00:00+01:00"), Seconds, 1795690800000, false},
		{record.AppendString(nil, "yesterday"), Seconds, 0, true},
		{record.AppendNil(nil), Seconds, 0, true},
		{record.AppendBool(nil, true), Seconds, 0, true},
		{record.AppendInt(nil, 1<<62), Seconds, 0, true},
	}
	for i, tt := range tests {
		got, err := EventTime(tt.raw, tt.unit)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%d: got %d, %v; want %d, error %v", i, got, err, tt.want, tt.err)
		}
	}
}

// fuzzDecoder checks that a decoder never panics, makes only valid msgpack
// maps, never moves its Offset back or past the input, and always ends.
func fuzzDecoder(f *testing.F, format string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := NewDecoder(format, bytes.NewReader(data), "fuzz")
		if err != nil {
			t.Fatal(err)
		}
		var rec []byte
		var off int64
		for i := 0; i <= len(data)+1; i++ {
			rec, err = d.Next(rec[:0])
			if o := d.Offset(); o < off || o > int64(len(data)) {
				t.Fatalf("Offset %d after %d, input of %d bytes", o, off, len(data))
			} else {
				off = o
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				if !IsBad(err) {
					return
				}
				continue
			}
			if n, err := record.Skip(rec); err != nil || n != len(rec) {
				t.Fatalf("decoder made bad msgpack %x: %v", rec, err)
			}
			if _, _, err := record.MapLen(rec); err != nil {
				t.Fatalf("decoder made a non-map %x", rec)
			}
		}
		t.Fatalf("decoder did not end after %d records from %d bytes", len(data)+2, len(data))
	})
}

func FuzzLines(f *testing.F) { fuzzDecoder(f, "lines", "a\nb\r\n", "", "\n\n\n") }

func FuzzJSON(f *testing.F) {
	fuzzDecoder(f, "json", "{\"a\":1}\n{bad\n", "{\"b\":[1,\"x\",{\"c\":null}],\"d\":1.5e3}\n", "[1]\n")
}

func FuzzCSV(f *testing.F) {
	fuzzDecoder(f, "csv", "a,b\n1,\"x,y\"\n2,\"multi\nline\"\n", "a,a\n", ",,\n1,2\n3\n")
}

func FuzzTSV(f *testing.F) { fuzzDecoder(f, "tsv", "a\tb\nx \"y\t2\n") }

func FuzzMsgpack(f *testing.F) {
	fuzzDecoder(f, "msgpack", "\x81\xa1a\x01\x81\xa1a\x02", "\x01", "\xdf\xff\xff\xff\xff", "\xdb\xff\xff\xff\xf0")
}

// offsetsOf decodes in and returns the records as JSON lines and Offset
// after each record.
func offsetsOf(t *testing.T, d Decoder) ([]string, []int64) {
	t.Helper()
	var recs []string
	var offs []int64
	var rec []byte
	for {
		var err error
		rec, err = d.Next(rec[:0])
		if err == io.EOF {
			return recs, offs
		}
		if err != nil {
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

var offsetTests = []struct {
	name, format, in string
	want             []int64
}{
	{"lines", "lines", "a\nbc\r\n\nd", []int64{2, 6, 7, 8}},
	{"json-blank-lines", "json", "{\"a\":1}\n\n  \n{\"a\":2}\n\n", []int64{8, 20}},
	{"csv", "csv", "a,b\n1,\"x\ny\"\n2,3\n", []int64{12, 16}},
	{"csv-crlf-no-final-newline", "csv", "a,b\r\n1,2\r\n3,4", []int64{10, 13}},
	{"tsv", "tsv", "a\tb\nx\t1\ny\t2\n", []int64{8, 12}},
	{"msgpack", "msgpack", "\x81\xa1a\x01\x82\xa1a\x02\xa1b\xa1x", []int64{4, 12}},
}

// TestOffsets checks Offset after each record, for every format.
func TestOffsets(t *testing.T) {
	for _, tt := range offsetTests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			d, err := NewDecoder(tt.format, r, "in")
			if err != nil {
				t.Fatal(err)
			}
			_, got := offsetsOf(t, d)
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: offsets %v, want %v", tt.name, got, tt.want)
			}
		}
	}
}

// TestNewAt resumes every input at every record boundary (and at 0): the
// records and offsets from there are those of one whole read. csv and tsv
// read their header again from the start.
func TestNewAt(t *testing.T) {
	for _, tt := range offsetTests {
		d, _ := NewDecoder(tt.format, strings.NewReader(tt.in), "in")
		all, offs := offsetsOf(t, d)
		for i, start := range append([]int64{0}, offs...) {
			at := strings.NewReader(tt.in)
			d, err := NewDecoderAt(tt.format, strings.NewReader(tt.in[start:]), "in", start, at)
			if err != nil {
				t.Fatalf("%s at %d: %v", tt.name, start, err)
			}
			recs, got := offsetsOf(t, d)
			if !slices.Equal(recs, all[i:]) || !slices.Equal(got, offs[i:]) {
				t.Errorf("%s at %d: got %q %v, want %q %v", tt.name, start, recs, got, all[i:], offs[i:])
			}
		}
	}
}

// TestNewAtInsideHeader: a csv input resumed inside its header row (a file
// that held only part of it) goes on after the header.
func TestNewAtInsideHeader(t *testing.T) {
	in := "a,b\n1,2\n"
	d, err := NewDecoderAt("csv", strings.NewReader(in[3:]), "in", 3, strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	recs, offs := offsetsOf(t, d)
	if !slices.Equal(recs, []string{`{"a":"1","b":"2"}`}) || !slices.Equal(offs, []int64{8}) {
		t.Fatalf("got %q %v", recs, offs)
	}
}

// TestNewAtErrorLines: errors after a resume name the line (or record) of
// the whole input, not of the part read.
func TestNewAtErrorLines(t *testing.T) {
	tests := []struct {
		format, in string
		start      int64
		want       string
	}{
		{"json", "{\"a\":1}\n{\"a\":2}\n\n{bad\n", 8, "in: line 4: bad JSON"},
		{"csv", "a,b\n1,2\n3,4\n5\n", 8, "in: line 4: 1 fields, but the header has 2"},
		{"msgpack", "\x81\xa1a\x01\x81\xa1a\x02\x01", 4, "in: record 3: not a map"},
	}
	for _, tt := range tests {
		d, err := NewDecoderAt(tt.format, strings.NewReader(tt.in[tt.start:]), "in", tt.start, strings.NewReader(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		var rec []byte
		for err == nil {
			rec, err = d.Next(rec[:0])
		}
		if err == io.EOF || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.format, err, tt.want)
		}
	}
}

// FuzzNewAt: an input that decodes without error, resumed at any record
// boundary with NewAt, gives the same records and offsets from there.
func FuzzNewAt(f *testing.F) {
	for i, tt := range offsetTests {
		f.Add(uint8(i), []byte(tt.in), uint8(1))
	}
	formats := []string{"lines", "json", "csv", "tsv", "msgpack"}
	f.Fuzz(func(t *testing.T, format uint8, data []byte, at uint8) {
		name := formats[int(format)%len(formats)]
		d, _ := NewDecoder(name, bytes.NewReader(data), "in")
		var all []string
		var offs []int64
		var rec []byte
		var err error
		for {
			if rec, err = d.Next(rec[:0]); err != nil {
				break
			}
			all = append(all, string(rec))
			offs = append(offs, d.Offset())
		}
		if err != io.EOF || len(offs) == 0 {
			return
		}
		i := int(at) % len(offs)
		start := offs[i]
		d, err = NewDecoderAt(name, bytes.NewReader(data[start:]), "in", start, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s at %d: %v", name, start, err)
		}
		for j := i + 1; ; j++ {
			rec, err = d.Next(rec[:0])
			if err == io.EOF && j == len(all) {
				return
			}
			if err != nil || j >= len(all) || string(rec) != all[j] || d.Offset() != offs[j] {
				t.Fatalf("%s at %d: record %d: %x at %d, %v; want %x at %d", name, start, j, rec, d.Offset(), err, all[min(j, len(all)-1)], offs[min(j, len(offs)-1)])
			}
		}
	})
}

package record

import "testing"

// benchRecord is a typical log record of 8 fields.
func benchRecord() []byte {
	var b Builder
	b.Value("ts", 1795687200.102)
	b.Value("ip", "10.0.0.152")
	b.Value("method", "GET")
	b.Value("path", "/api/orders")
	b.Value("status", 200)
	b.Value("bytes", 27851)
	b.Value("ms", 4)
	b.Value("value", "a line of text of about sixty bytes, as a log line would be")
	return append([]byte(nil), b.Bytes()...)
}

func BenchmarkFields(b *testing.B) {
	rec := benchRecord()
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	var f Fields
	for b.Loop() {
		f.Reset(rec)
		for f.Next() {
		}
		if f.Err() != nil {
			b.Fatal(f.Err())
		}
	}
}

func BenchmarkPick(b *testing.B) {
	rec := benchRecord()
	names := []string{"path", "status"}
	spans := make([]Span, len(names))
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Pick(rec, names, spans); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSkip(b *testing.B) {
	rec := benchRecord()
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Skip(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildRecord(b *testing.B) {
	var r Builder
	var scratch []byte
	line := []byte("a line of text of about sixty bytes, as a log line would be")
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		scratch = AppendStringBytes(scratch[:0], line)
		r.Raw("value", scratch)
		r.Raw("n", AppendInt(scratch[len(scratch):], 42))
		_ = r.Bytes()
	}
}

// BenchmarkPicker is BenchmarkPick with a Picker, and the word count's
// record, {"value": word}, picked by both.
func BenchmarkPicker(b *testing.B) {
	word := AppendString(AppendString(AppendMapHeader(nil, 1), "value"), "the")
	for _, c := range []struct {
		name  string
		rec   []byte
		names []string
	}{{"log", benchRecord(), []string{"path", "status"}}, {"word", word, []string{"value"}}} {
		spans := make([]Span, len(c.names))
		b.Run(c.name+"/Pick", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := Pick(c.rec, c.names, spans); err != nil {
					b.Fatal(err)
				}
			}
		})
		p := NewPicker(c.names)
		b.Run(c.name+"/Picker", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Pick(c.rec, spans); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

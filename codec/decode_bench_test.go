package codec

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchInput is n lines of text of about 60 bytes each.
func benchInput(n int, line func(i int) string) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		b.WriteString(line(i))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func benchDecoder(b *testing.B, format string, data []byte, n int) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var rec []byte
	for b.Loop() {
		d, _ := NewDecoder(format, bytes.NewReader(data), "bench")
		for {
			var err error
			rec, err = d.Next(rec[:0])
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

func BenchmarkLines(b *testing.B) {
	const n = 10000
	data := benchInput(n, func(i int) string {
		return fmt.Sprintf("w%d w17 w3 w999 w42 w5 w6000 w7 w8 w%d some more text", i, i%100)
	})
	benchDecoder(b, "lines", data, n)
}

func BenchmarkJSON(b *testing.B) {
	const n = 10000
	data := benchInput(n, func(i int) string {
		return fmt.Sprintf(`{"ts":%d.25,"path":"/api/orders","status":200,"bytes":%d,"ok":true}`, 1795687200+i, i*7)
	})
	benchDecoder(b, "json", data, n)
}

func BenchmarkCSV(b *testing.B) {
	const n = 10000
	data := benchInput(n+1, func(i int) string {
		if i == 0 {
			return "ts,path,status,bytes"
		}
		return fmt.Sprintf("%d,/api/orders,200,%d", 1795687200+i, i*7)
	})
	benchDecoder(b, "csv", data, n)
}

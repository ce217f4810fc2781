package transform

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
)

// TestAppendSplit: appendSplit's records are the parts of strings.Split,
// for random strings of separators, zero bytes, 0xff and letters, parts of
// every length about 16 and 32 bytes, and every one-byte separator among
// them.
func TestAppendSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	alphabet := "ab ,\x00\xff"
	for range 20000 {
		var sb strings.Builder
		for range rng.IntN(300) {
			if rng.IntN(8) == 0 {
				sb.WriteString(strings.Repeat("x", rng.IntN(40)))
			}
			sb.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		s := sb.String()
		sep := alphabet[rng.IntN(len(alphabet))]
		pad := []byte(s)
		for range 16 {
			pad = append(pad, ^sep)
		}
		dst := make([]byte, 3, 3+9*(len(s)+1)+48)
		dst, n := appendSplit(dst, pad, len(s), sep)
		want := strings.Split(s, string([]byte{sep}))
		if n != len(want) {
			t.Fatalf("%q split at %q: %d records, want %d", s, sep, n, len(want))
		}
		recs := framing.NewRecords(dst[3:], n)
		for i, w := range want {
			rec, _ := recs.Next()
			v, ok, err := record.Get(rec, "value")
			got, _ := record.Str(v)
			if err != nil || !ok || string(got) != w || len(rec) != len(record.AppendString(record.AppendString([]byte{0x81}, "value"), w)) {
				t.Fatalf("%q split at %q: part %d is %x (%v), want %q", s, sep, i, rec, err, w)
			}
		}
		if rest, _ := recs.Rest(); len(rest) != 0 {
			t.Fatalf("%q split at %q: %d bytes after the records", s, sep, len(rest))
		}
	}
}

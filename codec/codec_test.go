package codec

import (
	"bytes"
	"encoding/csv"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestCSVQuoting checks appendCSV against encoding/csv: its Writer quotes
// the same fields, and its Reader reads every field back.
func TestCSVQuoting(t *testing.T) {
	fields := []string{"plain", "a,b", `say "hi"`, "two\nlines", "cr\r", " lead", "\tlead", "\u00a0nbsp", `\.`, `\.x`, "trail ", "ünïcödé", "semi;colon"}
	for _, f := range fields {
		var want bytes.Buffer
		w := csv.NewWriter(&want)
		w.Write([]string{f})
		w.Flush()
		got := string(appendCSV(nil, []byte(f), ',')) + "\n"
		if got != want.String() {
			t.Errorf("%q: %q, encoding/csv writes %q", f, got, want.String())
		}
	}
	var row []byte
	for i, f := range append(fields, "") {
		if i > 0 {
			row = append(row, ',')
		}
		row = appendCSV(row, []byte(f), ',')
	}
	got, err := csv.NewReader(bytes.NewReader(row)).Read()
	if err != nil {
		t.Fatal(err)
	}
	if want := append(fields, ""); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("read back %q, want %q", got, want)
	}
}

// TestTSVNeedsEscape: the 8-bytes-at-a-time check agrees with a byte by
// byte one over random strings rich in the bytes around the special ones,
// every special byte at every position of a string of up to 24 bytes.
func TestTSVNeedsEscape(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := []byte{0, 1, '\t', '\n', 0x0b, 0x0c, '\r', 0x0e, 0x0f, 0x7f, 0x80, 0xff, '[', '\\', ']', 'a', 0xdc}
	naive := func(s []byte) bool {
		for _, c := range s {
			if c < 0x0e || c == '\\' {
				return true
			}
		}
		return false
	}
	for range 200000 {
		s := make([]byte, rng.IntN(40))
		for i := range s {
			if rng.IntN(4) == 0 {
				s[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				s[i] = byte(0x0e + rng.IntN(0x5c-0x0e)) // plain
			}
		}
		if got, want := tsvNeedsEscape(s), naive(s); got != want {
			t.Fatalf("tsvNeedsEscape(%q) = %v, want %v", s, got, want)
		}
	}
	for n := 1; n <= 24; n++ {
		for i := range n {
			for _, c := range []byte{'\t', '\n', '\r', '\\', 0, 0x0d} {
				s := bytes.Repeat([]byte{'x'}, n)
				s[i] = c
				if !tsvNeedsEscape(s) {
					t.Fatalf("tsvNeedsEscape(%q) = false", s)
				}
			}
			if s := bytes.Repeat([]byte{0x0e}, n); tsvNeedsEscape(s) {
				t.Fatalf("tsvNeedsEscape(%q) = true", s)
			}
		}
	}
}

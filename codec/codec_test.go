package codec

import (
	"bytes"
	"encoding/csv"
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

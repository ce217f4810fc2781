package source

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/record"
)

// parquetFile writes rows {"i": 0}, {"i": 1}, ... as a Parquet file.
func parquetFile(t *testing.T, n int) string {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	e := codec.Lookup("parquet").New(w, codec.Options{})
	for i := range n {
		var rec []byte
		rec = record.AppendMapHeader(rec, 1)
		rec = record.AppendString(rec, "i")
		rec = record.AppendInt(rec, int64(i))
		if err := e.Record(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	path := filepath.Join(t.TempDir(), "f.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rows reads a decoder to its end: the values of i, and its error.
func rows(dec codec.Decoder) ([]int64, error) {
	var got []int64
	var rec []byte
	for {
		var err error
		if rec, err = dec.Next(rec[:0]); err == io.EOF {
			return got, nil
		} else if err != nil {
			return got, err
		}
		v, _, _ := record.Get(rec, "i")
		i, _ := record.Int(v)
		got = append(got, i)
	}
}

// The inputs of a tracker, as newDecoder reads them in Parquet: a file
// from a row on, a replayed range of rows, an empty range without a file
// (a watched directory's empty batch), stdin.
func TestParquetInputs(t *testing.T) {
	path := parquetFile(t, 10)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tt := range []struct {
		name string
		in   Input
		want string
	}{
		{"from row 4", Input{Name: path, R: f, Start: 4, At: f}, "[4 5 6 7 8 9]"},
		{"rows 2 to 5", Input{Name: path, R: nopClose{io.NewSectionReader(f, 2, 3)}, Start: 2, End: 5, At: f, Replay: true}, "[2 3 4]"},
		{"empty range", Input{Name: path, R: nopClose{strings.NewReader("")}, Replay: true, ReplayEnd: true}, "[]"},
		{"stdin", Input{Name: "stdin", R: nopClose{must(os.Open(path))}}, "[0 1 2 3 4 5 6 7 8 9]"},
	} {
		dec, err := newDecoder("parquet", &tt.in, tt.in.R, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := rows(dec)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if s := fmt.Sprint(got); s != tt.want {
			t.Errorf("%s: rows %s, want %s", tt.name, s, tt.want)
		}
	}
}

func must(f *os.File, err error) *os.File {
	if err != nil {
		panic(err)
	}
	return f
}

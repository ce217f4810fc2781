package source

import (
	"errors"
	"io"
	"net"
	"testing"
)

// fakeConn is a connection that yields its reads, then ends with err.
type fakeConn struct {
	net.Conn
	reads []string
	err   error
}

func (f *fakeConn) Read(p []byte) (int, error) {
	if len(f.reads) == 0 {
		return 0, f.err
	}
	n := copy(p, f.reads[0])
	if f.reads[0] = f.reads[0][n:]; f.reads[0] == "" {
		f.reads = f.reads[1:]
	}
	return n, nil
}

// A connection holds back an unended line until its end: at a reset it is
// dropped and counted, at a close it is the last line, as in a file.
func TestConnLines(t *testing.T) {
	reset := errors.New("read: connection reset by peer")
	for _, tc := range []struct {
		name    string
		reads   []string
		err     error
		want    string
		dropped int
	}{
		{"closed", []string{"a\nb", "c\nd"}, io.EOF, "a\nbc\nd", 0},
		{"reset", []string{"a\nb", "c\nd"}, reset, "a\nbc\n", 1},
		{"reset at a line end", []string{"a\n", "b\n"}, reset, "a\nb\n", 0},
		{"reset in the first line", []string{"par", "tial"}, reset, "", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{c: &fakeConn{reads: tc.reads, err: tc.err}, buf: make([]byte, 4)}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || c.dropped != tc.dropped {
				t.Errorf("read %q, dropped %d; want %q, dropped %d", got, c.dropped, tc.want, tc.dropped)
			}
			if c.err != tc.err {
				t.Errorf("ended with %v, want %v", c.err, tc.err)
			}
		})
	}
}

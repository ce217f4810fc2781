package codec

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/dstream/dstream/record"
	"github.com/vmihailenco/msgpack/v5"
)

// msgpackDecoder reads msgpack maps back to back, as `ssink --format msgpack`
// writes them. A value that is not a map is a bad record; a broken value
// breaks the input, since there is no line to resume at.
type msgpackDecoder struct {
	r    *bufio.Reader // shared with d, to tell the end from a cut value
	d    *msgpack.Decoder
	name string
	n    int64
	off  int64 // bytes consumed: the end of the last value read
}

func newMsgpack(r io.Reader, name string) *msgpackDecoder {
	br := bufio.NewReaderSize(r, 64<<10)
	return &msgpackDecoder{r: br, d: msgpack.NewDecoder(br), name: name}
}

func (m *msgpackDecoder) Pos() (int64, string) { return m.n, "record" }

func (m *msgpackDecoder) Offset() int64 { return m.off }

func (m *msgpackDecoder) Next(dst []byte) ([]byte, error) {
	if _, err := m.r.Peek(1); err == io.EOF {
		return dst, io.EOF
	}
	raw, err := m.d.DecodeRaw()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("truncated msgpack value")
		}
		return dst, &Error{Name: m.name, Line: m.n + 1, Unit: "record", Err: err}
	}
	m.n++
	m.off += int64(len(raw))
	if _, _, err := record.MapLen(raw); err != nil {
		return dst, &Error{Name: m.name, Line: m.n, Unit: "record", Err: fmt.Errorf("not a map but %v", record.KindOf(raw)), Bad: true}
	}
	return append(dst, raw...), nil
}

package input

import (
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
	d    *msgpack.Decoder
	name string
	n    int64
}

func newMsgpack(r io.Reader, name string) *msgpackDecoder {
	return &msgpackDecoder{d: msgpack.NewDecoder(r), name: name}
}

func (m *msgpackDecoder) Pos() (int64, string) { return m.n, "record" }

func (m *msgpackDecoder) Next(dst []byte) ([]byte, error) {
	raw, err := m.d.DecodeRaw()
	if err != nil {
		if err == io.EOF {
			return dst, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("truncated msgpack value")
		}
		return dst, &Error{Name: m.name, Line: m.n + 1, Unit: "record", Err: err}
	}
	m.n++
	if _, _, err := record.MapLen(raw); err != nil {
		return dst, &Error{Name: m.name, Line: m.n, Unit: "record", Err: fmt.Errorf("not a map but %v", record.KindOf(raw)), Bad: true}
	}
	return append(dst, raw...), nil
}

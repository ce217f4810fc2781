package sink

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
)

// This file holds what the destinations that send a message per record
// (the brokers: sink/natssink, sink/amqpsink) share: the body of a message
// in --format, the id that names a record across runs, and the connection
// at start-up to a server that may not be up yet (connect.go).

// A MessageEncoder encodes records one at a time, each as the body of a
// message of its own, in a format of codec whose records stand alone (its
// MessageType is set: json, lines, msgpack).
type MessageEncoder struct {
	enc codec.Encoder
	out *bufio.Writer
	buf bytes.Buffer
}

// NewMessageEncoder returns the encoder of records in format f with
// options o for the destination of flag; a format whose records do not
// stand alone is a usage error.
func NewMessageEncoder(flag string, f *codec.Format, o codec.Options) (*MessageEncoder, error) {
	if f.MessageType == "" {
		var names []string
		for _, g := range codec.Formats {
			if g.MessageType != "" {
				names = append(names, g.Name)
			}
		}
		return nil, stage.Hint(stage.UsageError("--format %s does not go with --%s, which sends a message per record", f.Name, flag),
			"a %s row needs its header: use --format %s", f.Name, stage.OrList(names))
	}
	m := &MessageEncoder{}
	m.out = bufio.NewWriterSize(&m.buf, 4096)
	m.enc = f.New(m.out, o)
	if err := m.enc.Begin(stage.Batch{}); err != nil { // a message's format has no batches
		return nil, err
	}
	return m, nil
}

// Encode returns the body of the message of rec, a msgpack map: the
// record in the format, without the newline that ends it in a stream. It
// is valid until the next call.
func (m *MessageEncoder) Encode(rec []byte) ([]byte, error) {
	m.buf.Reset()
	if err := m.enc.Record(rec); err != nil {
		return nil, err
	}
	if err := m.enc.Flush(); err != nil {
		return nil, err
	}
	if err := m.out.Flush(); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(m.buf.Bytes(), []byte{'\n'}), nil
}

// RunID is the first part of the ids of the messages of a run (see
// AppendMessageID): the checkpoint's id ckpt (checkpoint.ID), which a
// replay after a restart shares, or without a checkpoint ("") one drawn at
// random, so that the batch ids, which start at 0 on every run, name no
// record of an earlier run.
func RunID(ckpt string) string {
	if ckpt != "" {
		return ckpt
	}
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// AppendMessageID appends the id of record n (from 1, as messages number
// them) of batch id of run (RunID): "RUN-BATCH-N". A batch replayed with
// the same checkpoint has the same ids, by which a broker that drops
// duplicates (JetStream's Nats-Msg-Id) stores each record once.
func AppendMessageID(dst []byte, run string, batch, n uint64) []byte {
	dst = append(dst, run...)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, batch, 10)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, n, 10)
}

// MessageNumber is the record number n of a message id that
// AppendMessageID made, and false for another id.
func MessageNumber(id string) (uint64, bool) {
	i := len(id) - 1
	for i >= 0 && '0' <= id[i] && id[i] <= '9' {
		i--
	}
	if i < 0 || id[i] != '-' || i == len(id)-1 {
		return 0, false
	}
	n, err := strconv.ParseUint(id[i+1:], 10, 64)
	return n, err == nil
}

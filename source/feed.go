package source

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// A broker's input is a Feed of messages rather than a stream of bytes: the
// producer makes a record of each message (the value decoded by --format,
// with the message's metadata) instead of running a decoder over bytes.
// Where a message stands is a Position too: its stream is a partition (a
// JetStream stream, a queue), its offset the next one after it, so the
// batcher and the checkpoint track messages as they track files.

// Message is one message of a broker. Its slices are valid until the next
// Fetch.
type Message struct {
	Key         []byte // nil: none (a Kafka key, an AMQP message id)
	Value       []byte
	Topic       string // a topic, a subject, a routing key
	Exchange    string // the exchange an AMQP message was published to
	Partition   int32
	Offset      int64     // an offset, a stream sequence, a delivery's (amqp.go)
	Redelivered bool      // delivered before and not acknowledged (AMQP)
	Time        time.Time // zero: none
	Headers     []Header
	// Pos is where the input stands after the message: its stream and the
	// offset of the message after it.
	Pos Position
}

// Header is a header of a message.
type Header struct {
	Key   string
	Value []byte
}

// Feed yields the messages of a broker source (or of a batch to replay).
type Feed interface {
	// Fetch appends the next messages to dst and returns it, waiting until
	// there are some or stop is closed (then it may return none). It
	// returns io.EOF when the feed has ended: a replayed batch was read
	// whole, --once read up to the end seen at the start.
	Fetch(stop <-chan struct{}, dst []Message) ([]Message, error)
	// Close lets the feed go.
	Close() error
}

// Meta names the fields that hold a message's metadata in its record, per
// kind of broker ("" leaves one out): Kafka's are Spark's names (key, topic,
// partition, offset, timestamp, headers); RabbitMQ's are AMQP's
// (message_id, exchange, routing_key, redelivered, timestamp, headers).
type Meta struct {
	Key, Exchange, Topic, Partition, Offset, Redelivered, Time, Headers string
}

// feedFormats are the formats of a message value: lines makes the value the
// field "value" beside the metadata, as Spark's Kafka source does; json and
// msgpack make the value's fields the record, with the metadata under the
// --meta-field prefix, or none without it.
var feedFormats = map[string]bool{"lines": true, "json": true, "msgpack": true}

// checkFeedFormat returns the usage error of --format f for a broker.
func checkFeedFormat(f, input string) error {
	if feedFormats[f] {
		return nil
	}
	return stage.Hint(stage.UsageError("--format %s: %s gives messages, read as lines, json or msgpack", f, input),
		"--format lines makes each message a record of its value and its metadata (kafka://: key, topic, partition, offset, timestamp, headers; nats://: subject, sequence, timestamp, headers; amqp://: message_id, exchange, routing_key, redelivered, timestamp, headers); json and msgpack read the value's fields")
}

// messageRecord appends the record of message m to dst.
func messageRecord(dst []byte, m *Message, o *Options, meta *Meta, name string) ([]byte, error) {
	start := len(dst)
	prefix := o.MetaField
	var err error
	switch o.Format {
	case "lines":
		prefix = ""
		dst = append(dst, 0xde, 0, 0) // a map16 header, set below
		dst = record.AppendString(dst, "value")
		dst = record.AppendStringBytes(dst, m.Value)
		n := 1 + 0
		dst, n = appendMeta(dst, m, meta, prefix, n)
		dst[start+1], dst[start+2] = byte(n>>8), byte(n)
		return dst, nil
	case "json":
		dst, err = record.AppendJSONObject(dst, m.Value)
	case "msgpack":
		var n int
		if n, err = record.Skip(m.Value); err == nil && n != len(m.Value) {
			err = fmt.Errorf("%d bytes after the value", len(m.Value)-n)
		}
		if err == nil && record.KindOf(m.Value) != record.KindMap {
			err = errors.New("not a map")
		}
		dst = append(dst, m.Value...)
	}
	if err != nil {
		return dst[:start], &codec.Error{Name: name, Err: fmt.Errorf("message at %s: bad %s: %w", where(m, meta), o.Format, err), Bad: true}
	}
	if prefix == "" {
		return dst, nil
	}
	// The metadata goes after the value's fields: rebuild the map header
	// with the sum of both.
	fields, hdr, err := record.MapLen(dst[start:])
	if err != nil {
		return dst[:start], err
	}
	// The header becomes a map32 (5 bytes): the body moves right in
	// place, with no copy aside.
	end := len(dst)
	dst = append(dst, make([]byte, 5-hdr)...)
	copy(dst[start+5:], dst[start+hdr:end])
	dst[start] = 0xdf
	dst, fields = appendMeta(dst, m, meta, prefix, fields)
	dst[start+1], dst[start+2], dst[start+3], dst[start+4] = byte(fields>>24), byte(fields>>16), byte(fields>>8), byte(fields)
	return dst, nil
}

// where names message m in an error by the metadata its kind has: Kafka's
// TOPIC/PARTITION offset N, JetStream's SUBJECT sequence N.
func where(m *Message, meta *Meta) string {
	if meta.Partition != "" {
		return fmt.Sprintf("%s/%d offset %d", m.Topic, m.Partition, m.Offset)
	}
	return fmt.Sprintf("%s %s %d", m.Topic, meta.Offset, m.Offset)
}

// appendMeta appends the metadata fields of m named by meta, each name
// after prefix, and returns the count of fields n grown by them.
func appendMeta(dst []byte, m *Message, meta *Meta, prefix string, n int) ([]byte, int) {
	key := func(name string) {
		dst = record.AppendString(dst, prefix+name)
		n++
	}
	if meta.Key != "" {
		key(meta.Key)
		if m.Key == nil {
			dst = record.AppendNil(dst)
		} else {
			dst = record.AppendStringBytes(dst, m.Key)
		}
	}
	if meta.Exchange != "" {
		key(meta.Exchange)
		dst = record.AppendString(dst, m.Exchange)
	}
	if meta.Topic != "" {
		key(meta.Topic)
		dst = record.AppendString(dst, m.Topic)
	}
	if meta.Partition != "" {
		key(meta.Partition)
		dst = record.AppendInt(dst, int64(m.Partition))
	}
	if meta.Offset != "" {
		key(meta.Offset)
		dst = record.AppendInt(dst, m.Offset)
	}
	if meta.Redelivered != "" {
		key(meta.Redelivered)
		dst = record.AppendBool(dst, m.Redelivered)
	}
	if meta.Time != "" {
		key(meta.Time)
		if m.Time.IsZero() {
			dst = record.AppendNil(dst) // an AMQP message without a timestamp
		} else {
			dst = record.AppendTime(dst, m.Time)
		}
	}
	if meta.Headers != "" && len(m.Headers) > 0 {
		key(meta.Headers)
		dst = record.AppendMapHeader(dst, len(m.Headers))
		for _, h := range m.Headers {
			dst = record.AppendString(dst, h.Key)
			dst = record.AppendStringBytes(dst, h.Value)
		}
	}
	return dst, n
}

// feed makes records of the messages of input s until its feed ends.
func (p *producer) feed(s *Input) error {
	stop := p.stop
	var msgs []Message
	for {
		p.flush() // what was taken leaves while the feed waits
		var err error
		msgs, err = s.Feed.Fetch(stop, msgs[:0])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if len(msgs) == 0 {
			select {
			case <-stop:
				return nil
			default:
				continue
			}
		}
		for i := range msgs {
			m := &msgs[i]
			// Before the chunk is taken: a wait hands the chunk in hand
			// over.
			if err := p.limit(); err != nil {
				return err
			}
			if p.track && p.cur != nil && p.cur.n > 0 && p.cur.stream != m.Pos.Stream {
				p.flush() // a chunk holds records of one stream
			}
			// Before the chunk is taken: the wait hands the chunk in
			// hand over.
			if err := p.limit(); err != nil {
				return err
			}
			c := p.chunk()
			if p.track {
				c.stream = m.Pos.Stream
			}
			p.rec, err = messageRecord(p.rec[:0], m, p.o, s.Meta, s.Name)
			if err == nil && p.o.TimeField != "" {
				var t int64
				if t, err = p.eventTime(p.rec); err != nil {
					err = &codec.Error{Name: s.Name, Err: fmt.Errorf("message at %s: %w", where(m, s.Meta), err), Bad: true}
				} else {
					c.times = append(c.times, t)
				}
			}
			if err != nil {
				if p.o.SkipBad && codec.IsBad(err) {
					c.skipped++
					if p.track {
						// A skipped message moves the position too, once
						// the records before it are taken.
						c.skipEnd = m.Pos.Off
					}
					continue
				}
				return err
			}
			if len(p.rec) > framing.MaxRecord {
				return &codec.Error{Name: s.Name, Err: fmt.Errorf("message at %s: record of %d bytes exceeds the limit of %d", where(m, s.Meta), len(p.rec), framing.MaxRecord)}
			}
			c.block = framing.AppendRecord(c.block, p.rec)
			c.n++
			if p.track {
				c.ends = append(c.ends, m.Pos.Off)
			}
			if c.n >= chunkRecords || len(c.block) >= chunkBytes {
				p.flush()
			}
		}
	}
}

// limit waits as long as --max-rate asks before the next record.
func (p *producer) limit() error {
	if p.o.MaxRate <= 0 {
		return nil
	}
	if p.rate.n == 0 {
		p.rate.start = time.Now()
	}
	p.rate.n++
	due := p.rate.start.Add(time.Duration(float64(p.rate.n) / float64(p.o.MaxRate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		p.flush()
		select {
		case <-time.After(d):
		case <-p.stop:
		}
	}
	if time.Since(p.rate.start) > 10*time.Second {
		// Start over now and then, so that an idle spell does not let a
		// burst through above the rate.
		p.rate.n = 0
	}
	return nil
}

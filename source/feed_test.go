package source

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/dstream/dstream/record"
)

var testMessage = Message{Key: []byte("u1"), Topic: "clicks", Partition: 3, Offset: 42, Time: time.UnixMilli(1_800_000_000_000).UTC(),
	Headers: []Header{{"h", []byte("x")}}}

// The record of a message: Spark's row with lines, the value's fields with
// json and msgpack, the metadata under a prefix only when asked for.
func TestMessageRecord(t *testing.T) {
	mp, _ := record.AppendJSONObject(nil, []byte(`{"a":1}`))
	for _, tc := range []struct {
		name, format, meta string
		value              []byte
		want               string
	}{
		{"lines", "lines", "", []byte("hello"), `{"value":"hello","key":"u1","topic":"clicks","partition":3,"offset":42,"timestamp":"2027-01-15T08:00:00Z","headers":{"h":"x"}}`},
		{"lines ignore prefix", "lines", "m_", []byte("hello"), `{"value":"hello","key":"u1","topic":"clicks","partition":3,"offset":42,"timestamp":"2027-01-15T08:00:00Z","headers":{"h":"x"}}`},
		{"json", "json", "", []byte(`{"a":1,"b":"x"}`), `{"a":1,"b":"x"}`},
		{"json meta", "json", "m_", []byte(`{"a":1}`), `{"a":1,"m_key":"u1","m_topic":"clicks","m_partition":3,"m_offset":42,"m_timestamp":"2027-01-15T08:00:00Z","m_headers":{"h":"x"}}`},
		{"msgpack meta", "msgpack", "_", mp, `{"a":1,"_key":"u1","_topic":"clicks","_partition":3,"_offset":42,"_timestamp":"2027-01-15T08:00:00Z","_headers":{"h":"x"}}`},
		{"bad json", "json", "", []byte(`[1]`), "error: clicks: message at clicks/3 offset 42: bad json"},
		{"bad msgpack", "msgpack", "", []byte{0x01}, "error: clicks: message at clicks/3 offset 42: bad msgpack: not a map"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMessage
			m.Value = tc.value
			rec, err := messageRecord([]byte("prefix"), &m, &Options{Format: tc.format, MetaField: tc.meta}, &kafkaMeta, "clicks")
			var got string
			if err != nil {
				got = "error: " + err.Error()
				if !codec.IsBad(err) {
					t.Errorf("%v is not a bad record", err)
				}
				if string(rec) != "prefix" {
					t.Errorf("a bad message left %q", rec)
				}
			} else {
				if !strings.HasPrefix(string(rec), "prefix") {
					t.Fatalf("the record did not append: %q", rec)
				}
				js, _, jerr := record.AppendJSON(nil, rec[len("prefix"):])
				if jerr != nil {
					t.Fatal(jerr)
				}
				got = string(js)
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// FuzzMessageRecord: any value, in any format, gives a valid record or a
// bad-record error, never a panic or a broken map.
func FuzzMessageRecord(f *testing.F) {
	f.Add([]byte(`{"a":1}`), "m_", uint8(1))
	f.Add([]byte("line"), "", uint8(0))
	f.Add([]byte{0x81, 0xa1, 'a', 0x01}, "_", uint8(2))
	formats := []string{"lines", "json", "msgpack"}
	f.Fuzz(func(t *testing.T, value []byte, meta string, format uint8) {
		m := testMessage
		m.Value = value
		o := &Options{Format: formats[int(format)%3], MetaField: meta}
		rec, err := messageRecord(nil, &m, o, &kafkaMeta, "fuzz")
		if err != nil {
			if !codec.IsBad(err) {
				t.Fatalf("not a bad record: %v", err)
			}
			return
		}
		if n, err := record.Skip(rec); err != nil || n != len(rec) {
			t.Fatalf("broken record %x: %v", rec, err)
		}
		if record.KindOf(rec) != record.KindMap {
			t.Fatalf("not a map: %x", rec)
		}
	})
}

// BenchmarkMessageRecord makes records of 100-byte values, as the Kafka
// source does for each message: a line, and a JSON object with the
// metadata under a prefix.
func BenchmarkMessageRecord(b *testing.B) {
	for _, c := range []struct {
		name  string
		value string
		o     Options
	}{
		{"lines", strings.Repeat("x", 100), Options{Format: "lines"}},
		{"json-meta", `{"user":"u1","page":"/a/b/c","n":3,"text":"` + strings.Repeat("y", 50) + `"}`, Options{Format: "json", MetaField: "kafka_"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := testMessage
			m.Value = []byte(c.value)
			var rec []byte
			b.SetBytes(int64(len(m.Value)))
			b.ReportAllocs()
			for b.Loop() {
				rec, _ = messageRecord(rec[:0], &m, &c.o, &kafkaMeta, "bench")
			}
		})
	}
}

// --max-rate waits between messages without losing any: the wait hands the
// chunk in hand over, and the next record goes into a new one (it went
// into the chunk handed over, and was lost).
func TestFeedMaxRate(t *testing.T) {
	c, seeds := kafkatest.Cluster(t, 1, 1, "slow")
	produce(t, seeds, "slow", 0, 30)
	got, err := runKafka(t, Options{Inputs: []string{kafkatest.URL(c, "slow")}, Format: "lines", Once: true, Interval: 1000, Start: "earliest", MaxRate: 100})
	if err != nil {
		t.Fatal(err)
	}
	vs := values(got)
	for i := range 30 {
		if !slices.Contains(vs, fmt.Sprintf("v%d", i)) {
			t.Errorf("v%d is missing: %v", i, vs)
		}
	}
}

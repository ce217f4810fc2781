package sink

import (
	"strings"
	"testing"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/record"
)

// A record's message body is the record in the format, alone, without
// the newline that ends it in a stream; a format whose rows need a header
// is refused.
func TestMessageEncoder(t *testing.T) {
	rec := record.AppendString(record.AppendString(record.AppendMapHeader(nil, 1), "value"), "a\nb")
	for _, tc := range []struct{ format, want string }{
		{"json", `{"value":"a\nb"}`},
		{"lines", "a\nb"},
		{"msgpack", string(rec)},
	} {
		m, err := NewMessageEncoder("nats", codec.Lookup(tc.format), codec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // each alone
			got, err := m.Encode(rec)
			if err != nil || string(got) != tc.want {
				t.Errorf("%s: %q, %v; want %q", tc.format, got, err, tc.want)
			}
		}
		if allocs := testing.AllocsPerRun(100, func() { m.Encode(rec) }); allocs > 0 {
			t.Errorf("%s: %v allocations per record", tc.format, allocs)
		}
	}
	m, _ := NewMessageEncoder("nats", codec.Lookup("lines"), codec.Options{})
	if _, err := m.Encode(record.AppendMapHeader(nil, 0)); err == nil || !strings.Contains(err.Error(), `no field "value"`) {
		t.Errorf("lines without value: %v", err)
	}
	for _, f := range []string{"console", "csv", "tsv"} {
		_, err := NewMessageEncoder("amqp", codec.Lookup(f), codec.Options{})
		if err == nil || err.Error() != "--format "+f+" does not go with --amqp, which sends a message per record" {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestMessageID(t *testing.T) {
	id := string(AppendMessageID(nil, "0a1b", 12, 345))
	if id != "0a1b-12-345" {
		t.Errorf("id %q", id)
	}
	for _, tc := range []struct {
		id string
		n  uint64
		ok bool
	}{
		{id, 345, true},
		{"x-1-1", 1, true},
		{"", 0, false},
		{"12", 0, false},
		{"a-1-", 0, false},
		{"a-1-x", 0, false},
	} {
		if n, ok := MessageNumber(tc.id); n != tc.n || ok != tc.ok {
			t.Errorf("%q: %d, %v; want %d, %v", tc.id, n, ok, tc.n, tc.ok)
		}
	}
	if a, b := RunID(""), RunID(""); a == b || len(a) != 32 || RunID("ck") != "ck" {
		t.Errorf("RunID: %q, %q", a, b)
	}
}

package transform

import (
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// FuzzParseJSON runs --parse-json, whose decoder is
// record.AppendJSONObject, on any string: it must never panic, must accept
// exactly the JSON objects encoding/json accepts, and must give a valid
// record holding the object's keys and the record's other fields.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"user":"ann","n":3,"tags":[1,2],"o":{"x":null}}`, `{"a":1,"a":2}`,
		`{"k":"dup","z":0}`, ` {"a" : [1.5e3, -0, true, false]} `, `{"\u00e9\ud83d\ude00":"\n"}`,
		`[1]`, `1`, `"x"`, `null`, ``, `{`, `{"a":}`, `{"a":1,}`, `{"a":1e400}`, "{\"a\":\"\xff\"}",
	} {
		f.Add(s)
	}
	p, err := compile([]Op{{Kind: ParseJSON, Arg: "value"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b record.Builder
		b.Value("k", int64(1))
		b.Value("value", s)
		b.Value("z", int64(2))
		in := append([]byte(nil), b.Bytes()...)

		var stats stage.Stats
		w := framing.NewWriter(io.Discard)
		m := newEngine(p, w, io.Discard, &stats, false)
		w.BeginBatch(0, 0)
		m.top.setRaw(in, true)
		m.arena = m.arena[:0]
		perr := m.parseJSON(p[0], &m.top)

		var obj map[string]any
		jerr := json.Unmarshal([]byte(s), &obj)
		if jerr == nil && obj == nil {
			jerr = errors.New("null is not an object")
		}
		if perr != nil {
			if jerr == nil && !errors.Is(perr, record.ErrDepth) {
				t.Fatalf("--parse-json refused %q: %v", s, perr)
			}
			return
		}
		if jerr != nil {
			t.Fatalf("--parse-json took %q, encoding/json refuses it: %v", s, jerr)
		}
		out := encode(nil, m.top.fs)
		if _, _, err := record.AppendJSON(nil, out); err != nil {
			t.Fatalf("%q gave an invalid record: %v", s, err)
		}
		want := map[string]bool{}
		for k := range obj {
			want[k] = true
		}
		want["k"], want["z"] = true, true
		// encoding/json turns each byte of invalid UTF-8 into U+FFFD, which
		// record.AppendJSONObject keeps as it is: compare in the former's form.
		got, raw := map[string]bool{}, map[string]bool{}
		var fs record.Fields
		for fs.Reset(out); fs.Next(); {
			if raw[string(fs.Key())] {
				t.Fatalf("%q: key %q twice in %x", s, fs.Key(), out)
			}
			raw[string(fs.Key())] = true
			got[string([]rune(string(fs.Key())))] = true
		}
		if fs.Err() != nil {
			t.Fatal(fs.Err())
		}
		if len(got) != len(want) {
			t.Fatalf("%q: keys %v, want %v", s, got, want)
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("%q: keys %v, want %v", s, got, want)
			}
		}
	})
}

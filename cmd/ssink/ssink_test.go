package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
)

// t0 is the batch time of the first batch in tests: 2023-11-14T22:13:20Z.
const t0 = int64(1700000000000)

// batch is a batch of a test stream; its records are JSON objects, or raw
// msgpack when they start with no '{'.
type batch struct {
	id   uint64
	time int64
	recs []string
}

// stream frames batches as a stage would.
func stream(t testing.TB, bs ...batch) []byte {
	t.Helper()
	fb := make([]frametest.Batch, len(bs))
	for i, b := range bs {
		fb[i] = frametest.Batch{ID: b.id, Time: b.time, Recs: b.recs}
	}
	return frametest.Stream(t, fb)
}

func msgpackOf(t testing.TB, r string) []byte { return frametest.Record(t, r) }

func lines(vs ...string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf(`{"value":%q}`, v)
	}
	return out
}

// run runs ssink in process.
func run(in []byte, args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = command.Run(append([]string{"ssink"}, args...), bytes.NewReader(in), &o, &e)
	return o.String(), e.String(), code
}

// head is the console header of a batch.
func head(id int, t string) string {
	return "-------------------------------------------\n" +
		fmt.Sprintf("Batch: %d (%s)\n", id, t) +
		"-------------------------------------------\n"
}

const t0Text = "2023-11-14T22:13:20.000Z"

var tests = []struct {
	name    string
	args    []string
	in      []batch
	want    string
	code    int
	wantErr string // a substring of stderr; "" means stderr is empty
}{
	{
		name: "console",
		in:   []batch{{0, t0, lines("hello world", "foo")}},
		want: head(0, t0Text) + `+-----------+
|      value|
+-----------+
|hello world|
|        foo|
+-----------+

`,
	},
	{
		name: "console types, nulls and columns of all rows",
		in: []batch{{7, t0 + 1500, []string{
			`{"s":"x","i":-3,"f":2.5,"b":true}`,
			`{"n":null,"m":{"k":[1,"two",null]},"i":12345678901}`,
			`{}`,
			`{"s":"","e":[]}`,
		}}},
		want: head(7, "2023-11-14T22:13:21.500Z") + `+----+-----------+----+----+----+--------------------+----+
|   s|          i|   f|   b|   n|                   m|   e|
+----+-----------+----+----+----+--------------------+----+
|   x|         -3| 2.5|true|NULL|                NULL|NULL|
|NULL|12345678901|NULL|NULL|NULL|{"k":[1,"two",null]}|NULL|
|NULL|       NULL|NULL|NULL|NULL|                NULL|NULL|
|    |       NULL|NULL|NULL|NULL|                NULL|  []|
+----+-----------+----+----+----+--------------------+----+

`,
	},
	{
		name: "console --rows",
		args: []string{"--rows", "2"},
		in:   []batch{{0, t0, lines("a", "b", "c")}, {1, t0 + 1000, lines("d", "e")}},
		want: head(0, t0Text) + `+-----+
|value|
+-----+
|    a|
|    b|
+-----+
only showing top 2 rows

` + head(1, "2023-11-14T22:13:21.000Z") + `+-----+
|value|
+-----+
|    d|
|    e|
+-----+

`,
	},
	{
		name: "console --rows 1",
		args: []string{"--rows", "1"},
		in:   []batch{{0, t0, []string{`{"a":1}`, `{"b":2}`}}},
		want: head(0, t0Text) + `+---+
|  a|
+---+
|  1|
+---+
only showing top 1 row

`,
	},
	{
		name: "console --rows 0",
		args: []string{"--rows", "0"},
		in:   []batch{{0, t0, lines("a")}},
		want: head(0, t0Text) + "++\n||\n++\n++\nonly showing top 0 rows\n\n",
	},
	{
		name: "console cuts cells at 20",
		in: []batch{{0, t0, lines(
			"exactly twenty chars",
			"twenty-one characters",
			"日本語のテキストはとても長いですね、ほんとうに",
			"with\ttab and\nnewline inside",
			"😀😀😀😀😀😀😀😀😀😀😀",
		)}},
		want: head(0, t0Text) + `+-------------------------------------+
|                                value|
+-------------------------------------+
|                 exactly twenty chars|
|                 twenty-one charac...|
|日本語のテキストはとても長いですね...|
|                 with\ttab and\nne...|
|                  😀😀😀😀😀😀😀😀...|
+-------------------------------------+

`,
	},
	{
		name: "console --no-truncate",
		args: []string{"--no-truncate"},
		in:   []batch{{0, t0, []string{`{"value":"twenty-one characters","n":1}`, `{"value":"a\tb","n":22}`}}},
		want: head(0, t0Text) + `+---------------------+---+
|value                |n  |
+---------------------+---+
|twenty-one characters|1  |
|a\tb                 |22 |
+---------------------+---+

`,
	},
	{
		name: "console long header is whole",
		in:   []batch{{0, t0, []string{`{"a very long column name indeed":1}`}}},
		want: head(0, t0Text) + `+------------------------------+
|a very long column name indeed|
+------------------------------+
|                             1|
+------------------------------+

`,
	},
	{
		name: "console empty batch",
		in:   []batch{{0, t0, lines("a")}, {1, t0 + 1000, nil}},
		want: head(0, t0Text) + "+-----+\n|value|\n+-----+\n|    a|\n+-----+\n\n" +
			head(1, "2023-11-14T22:13:21.000Z") + "++\n||\n++\n++\n\n",
	},
	{
		name: "console --batch-field",
		args: []string{"--batch-field", "t"},
		in:   []batch{{0, t0, lines("a")}},
		want: head(0, t0Text) + `+-----+-------------+
|value|            t|
+-----+-------------+
|    a|1700000000000|
+-----+-------------+

`,
	},
	{
		name: "json",
		args: []string{"--format", "json"},
		in: []batch{
			{0, t0, []string{`{"value":"hello \"world\"","n":1,"f":0.5,"m":{"a":[true,null]}}`}},
			{1, t0 + 1000, nil},
			{2, t0 + 2000, lines("x", "y")},
		},
		want: `{"value":"hello \"world\"","n":1,"f":0.5,"m":{"a":[true,null]}}
{"value":"x"}
{"value":"y"}
`,
	},
	{
		name: "json --batch-field adds and replaces",
		args: []string{"--format", "json", "--batch-field", "batch"},
		in: []batch{
			{0, 1000, []string{`{"x":1}`, `{"batch":"old","x":2}`, `{}`}},
			{1, 3000, []string{`{"x":3,"batch":1,"batch":2}`}},
		},
		want: `{"x":1,"batch":1000}
{"batch":1000,"x":2}
{"batch":1000}
{"x":3,"batch":3000}
`,
	},
	{
		name: "csv",
		args: []string{"--format", "csv"},
		in: []batch{
			{0, t0, nil},
			{1, t0 + 1000, []string{
				`{"a":"plain","b":1,"c":"x"}`,
				`{"a":"with, comma","b":"with \"quote\"","c":"two\nlines"}`,
				`{"c":" leading space","a":""}`,
				`{"a":null,"b":[1,2],"c":{"k":"v"}}`,
			}},
			{2, t0 + 2000, []string{`{"a":"next batch"}`}},
		},
		want: `a,b,c
plain,1,x
"with, comma","with ""quote""","two
lines"
"",," leading space"
,"[1,2]","{""k"":""v""}"
next batch,,
`,
	},
	{
		name:    "csv extra field",
		args:    []string{"--format", "csv"},
		in:      []batch{{0, t0, []string{`{"a":1}`}}, {1, t0 + 1000, []string{`{"a":2}`, `{"a":3,"b":4}`, `{"a":5}`}}},
		want:    "a\n1\n2\n",
		code:    1,
		wantErr: "ssink: error: batch 1, record 2: field \"b\" is not a column: the columns, from the stream's first record, are \"a\"\nssink: hint: csv output has the columns of the first record: give every record the same fields (smap), or use --format json\n",
	},
	{
		name: "tsv",
		args: []string{"--format", "tsv", "--batch-field", "t"},
		in:   []batch{{0, 5000, []string{`{"a":"x\ty","b":"back\\slash"}`, `{"b":"line\nbreak\r","a":null}`}}},
		want: "a\tb\tt\nx\\ty\tback\\\\slash\t5000\n\tline\\nbreak\\r\t5000\n",
	},
	{
		name: "lines",
		args: []string{"--format", "lines"},
		in:   []batch{{0, t0, []string{`{"value":"hello world"}`, `{"n":1,"value":42}`, `{"value":{"a":1}}`, `{"value":""}`, `{"value":"a\tb"}`}}},
		want: "hello world\n42\n{\"a\":1}\n\na\tb\n",
	},
	{
		name:    "lines without value",
		args:    []string{"--format", "lines"},
		in:      []batch{{0, t0, lines("a")}, {1, t0 + 1000, []string{`{"value":"b"}`, `{"word":"c"}`}}},
		want:    "a\nb\n",
		code:    1,
		wantErr: "ssink: error: batch 1, record 2: the record has no field \"value\"\nssink: hint: --format lines writes the field value of each record: use --format json to see whole records\n",
	},
	{
		name:    "lines --batch-field",
		args:    []string{"--format", "lines", "--batch-field", "t"},
		in:      []batch{{0, t0, lines("a")}},
		code:    2,
		wantErr: "ssink: error: --batch-field does not go with --format lines, which writes one field\nssink: hint: use --format json, csv or tsv to see the batch time beside the fields\n",
	},
	{
		name:    "not a map",
		args:    []string{"--format", "json"},
		in:      []batch{{0, t0, []string{`{"value":"a"}`, "\x01"}}},
		want:    "{\"value\":\"a\"}\n",
		code:    1,
		wantErr: "ssink: error: batch 0, record 2: record: record is not a msgpack map\n",
	},
	{
		name:    "unknown format",
		args:    []string{"--format", "xml"},
		code:    2,
		wantErr: "ssink: error: unknown --format \"xml\": want console, json, csv, tsv, lines, msgpack, parquet\nssink: hint: see 'ssink --help'\n",
	},
	{
		name:    "--rows with json",
		args:    []string{"--format", "json", "--rows", "3"},
		code:    2,
		wantErr: "ssink: error: --rows applies to --format console, not json\n",
	},
	{
		name:    "negative --rows",
		args:    []string{"--rows", "-1"},
		code:    2,
		wantErr: "ssink: error: --rows -1: want 0 or more\n",
	},
	{
		name:    "argument",
		args:    []string{"file.txt"},
		code:    2,
		wantErr: "ssink: error: unexpected argument \"file.txt\": ssink reads its input from stdin or --in\n",
	},
	{
		name:    "empty --batch-field",
		args:    []string{"--batch-field", ""},
		code:    2,
		wantErr: "ssink: error: --batch-field needs a field name\n",
	},
}

func TestSink(t *testing.T) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(stream(t, tc.in...), tc.args...)
			if out != tc.want {
				t.Errorf("stdout\n%s\nwant\n%s", out, tc.want)
			}
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if tc.wantErr == "" && errOut != "" || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("stderr\n%s\nwant\n%s", errOut, tc.wantErr)
			}
		})
	}
}

func TestMsgpack(t *testing.T) {
	recs := []string{`{"a":1,"b":[true,null]}`, `{"value":"x"}`}
	out, errOut, code := run(stream(t, batch{0, t0, recs[:1]}, batch{1, t0 + 1000, recs[1:]}), "--format", "msgpack")
	want := append(msgpackOf(t, recs[0]), msgpackOf(t, recs[1])...)
	if out != string(want) || code != 0 || errOut != "" {
		t.Errorf("got %x, %d, %q; want %x", out, code, errOut, want)
	}
	out, _, _ = run(stream(t, batch{0, 1000, recs[1:]}), "--format", "msgpack", "--batch-field", "t")
	if want := msgpackOf(t, `{"value":"x","t":1000}`); out != string(want) {
		t.Errorf("with --batch-field: %x, want %x", out, want)
	}
}

// TestTruncatedKeepsBatches cuts a stream inside its second batch: the first
// batch stays printed, and the error says the stream was truncated.
func TestTruncatedKeepsBatches(t *testing.T) {
	full := stream(t, batch{0, t0, lines("a", "b")}, batch{1, t0 + 1000, lines("c", "d")})
	first := stream(t, batch{0, t0, lines("a", "b")})
	in := full[:len(first)+5] // the first batch, and part of the BatchBegin of the second
	for _, tc := range []struct {
		format, want string
	}{
		{"json", "{\"value\":\"a\"}\n{\"value\":\"b\"}\n"},
		{"console", head(0, t0Text) + "+-----+\n|value|\n+-----+\n|    a|\n|    b|\n+-----+\n\n"},
	} {
		out, errOut, code := run(in, "--format", tc.format)
		if out != tc.want || code != 1 || !strings.Contains(errOut, "truncated") {
			t.Errorf("%s: got %q, %d, %q; want %q, exit 1 and an error that says truncated", tc.format, out, code, errOut, tc.want)
		}
	}
}

func TestNotDstream(t *testing.T) {
	out, errOut, code := run([]byte("hello\n"))
	if out != "" || code != 1 || !strings.Contains(errOut, "ssink: error: reading input: framing: input is not a dstream stream") ||
		!strings.Contains(errOut, "ssink: hint:") || !strings.Contains(errOut, "sbatch") {
		t.Errorf("got %q, %d, %q", out, code, errOut)
	}
}

func TestProgress(t *testing.T) {
	_, errOut, code := run(stream(t, batch{0, t0, lines("a", "b", "c")}), "--format", "json", "--progress", "-")
	if code != 0 || !strings.Contains(errOut, `"numInputRows":3,"numOutputRows":3`) {
		t.Errorf("exit %d, progress %q", code, errOut)
	}
}

// failingWriter fails every write with err.
type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteError(t *testing.T) {
	in := stream(t, batch{0, t0, lines("a")})
	var e bytes.Buffer
	code := command.Run([]string{"ssink", "--format", "json"}, bytes.NewReader(in), failingWriter{io.ErrShortWrite}, &e)
	if code != 1 || !strings.Contains(e.String(), "ssink: error: writing output: short write") {
		t.Errorf("exit %d, stderr %q", code, e.String())
	}
	// A reader that went away (ssink | head) stops ssink quietly.
	for _, format := range []string{"json", "console"} {
		e.Reset()
		code = command.Run([]string{"ssink", "--format", format}, bytes.NewReader(in), failingWriter{syscall.EPIPE}, &e)
		if code != 0 || e.Len() != 0 {
			t.Errorf("%s on a closed pipe: exit %d, stderr %q", format, code, e.String())
		}
	}
}

// An upstream that resets the connection of --in tcp-listen:// in the
// middle of the stream: exit 1 naming the endpoint and the batch, the
// records that arrived written out, the stream not taken as complete.
func TestInputReset(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	in := stream(t, batch{0, t0, lines("a", "b")}, batch{1, t0 + 1000, lines("c", "d")})
	// Past batch 1's BatchBegin, inside its records.
	cut := len(stream(t, batch{0, t0, lines("a", "b")})) - framing.FrameHeaderLen + 30
	go func() {
		var c net.Conn
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if c, err = net.Dial("tcp", addr); err == nil {
				break
			}
		}
		if c == nil {
			t.Error("cannot connect:", err)
			return
		}
		c.Write(in[:cut])
		time.Sleep(50 * time.Millisecond) // let ssink read them first
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}()
	stdout, stderr, code := run(nil, "--in", "tcp-listen://"+addr, "--format", "json")
	if code != 1 || !strings.HasPrefix(stderr, "ssink: error: reading input from tcp-listen://"+addr+": batch 1: read tcp ") ||
		!strings.Contains(stderr, "connection reset by peer") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if want := "{\"value\":\"a\"}\n{\"value\":\"b\"}\n"; !strings.HasPrefix(stdout, want) {
		t.Errorf("stdout %q, want batch 0 first", stdout)
	}
}

// TestDeclarations checks that the options the destinations and formats
// declare are flags of ssink: a name that is none would never be set, and
// its check never fire.
func TestDeclarations(t *testing.T) {
	names := map[string]bool{}
	for _, f := range command.Flags {
		for _, n := range f.Names() {
			names[n] = true
		}
	}
	for _, d := range destinations {
		if !names[d.Flag] || d.Open == nil || d.Encodes != (d.DefaultFormat != "") || !d.Encodes && (d.Hint == "" || d.Group == "") {
			t.Errorf("destination --%s: flag %v, incomplete declaration %+v", d.Flag, names[d.Flag], *d)
		}
		for _, opt := range d.Takes {
			if !names[opt] {
				t.Errorf("destination --%s takes --%s, which is no flag of ssink", d.Flag, opt)
			}
		}
	}
	for _, f := range codec.Formats {
		for _, opt := range f.Takes {
			if !names[opt] {
				t.Errorf("format %s takes --%s, which is no flag of ssink", f.Name, opt)
			}
		}
	}
}

package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/dstream/dstream/expr"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

// item is one element of a test stream: a batch of records (JSON objects),
// or a watermark when wm is set.
type item struct {
	recs []string
	wm   int64
}

// t0 is the time of the first batch in tests: 2023-11-14T22:13:20Z.
const t0 = int64(1700000000000)

// stream frames the items, batch ids counting from 0 and times by a second,
// a watermark after the batch before it.
func stream(t testing.TB, items ...item) []byte {
	t.Helper()
	var bs []frametest.Batch
	for _, it := range items {
		if it.wm != 0 {
			if len(bs) == 0 {
				t.Fatal("a test stream starts with a batch, not a watermark")
			}
			bs[len(bs)-1].Watermark = it.wm
			continue
		}
		id := uint64(len(bs))
		bs = append(bs, frametest.Batch{ID: id, Time: t0 + int64(id)*1000, Recs: it.recs})
	}
	return frametest.Stream(t, bs)
}

func batch(recs ...string) item { return item{recs: recs} }

func lines(vs ...string) item {
	var it item
	for _, v := range vs {
		it.recs = append(it.recs, fmt.Sprintf(`{"value":%q}`, v))
	}
	return it
}

// runSmap runs smap in process.
func runSmap(in []byte, args ...string) (stdout []byte, stderr string, code int) {
	var o, e bytes.Buffer
	code = command.Run(append([]string{"smap"}, args...), bytes.NewReader(in), &o, &e)
	return o.Bytes(), e.String(), code
}

// show reads a stream back: a line "batch ID TIME" per batch followed by
// its records as JSON, and "watermark T" lines.
func show(t testing.TB, out []byte) string {
	t.Helper()
	var b strings.Builder
	r := framing.NewReader(bytes.NewReader(out))
	var f framing.Frame
	for {
		err := r.Read(&f)
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			t.Fatalf("reading the output: %v\n%s", err, b.String())
		}
		switch f.Kind {
		case framing.KindBatchBegin:
			fmt.Fprintf(&b, "batch %d %d\n", f.BatchID, f.Time-t0)
		case framing.KindWatermark:
			fmt.Fprintf(&b, "watermark %d\n", f.Time)
		case framing.KindRecords:
			recs := f.Records()
			for {
				rec, ok := recs.Next()
				if !ok {
					break
				}
				j, _, err := record.AppendJSON(nil, rec)
				if err != nil {
					t.Fatal(err)
				}
				b.Write(j)
				b.WriteByte('\n')
			}
		}
	}
}

func TestScanArgs(t *testing.T) {
	tests := []struct {
		args       []string
		ops        []string
		rearranged []string
	}{
		{[]string{"upper(value)"}, []string{"map upper(value)"}, []string{"--", "upper(value)"}},
		{[]string{"--filter", "a", "--set", "n=1", "--filter=b", "--select", "n"},
			[]string{"filter a", "set n=1", "filter b", "select n"},
			[]string{"--filter", "a", "--set", "n=1", "--filter=b", "--select", "n"}},
		{[]string{"x", "--filter", "y"}, []string{"map x", "filter y"}, []string{"--filter", "y", "--", "x"}},
		{[]string{"--filter", "y", "x", "--map", "z"}, []string{"filter y", "map x", "map z"}, []string{"--filter", "y", "--map", "z", "--", "x"}},
		{[]string{"--progress", "-", "--skip-bad", "-filter", "-x > 1", "--in=tcp://h:1", "e"},
			[]string{"filter -x > 1", "map e"},
			[]string{"--progress", "-", "--skip-bad", "-filter", "-x > 1", "--in=tcp://h:1", "--", "e"}},
		{[]string{"--flat", "l", "--", "--not-a-flag"}, []string{"flat l", "map --not-a-flag"}, []string{"--flat", "l", "--", "--not-a-flag"}},
		{[]string{"--exec"}, nil, []string{"--exec"}},
		{[]string{"--help"}, nil, []string{"--help"}},
	}
	for _, tt := range tests {
		ops, _, re := scanArgs(tt.args)
		var got []string
		for _, o := range ops {
			got = append(got, o.Kind.String()+" "+o.Arg)
		}
		if !reflect.DeepEqual(got, tt.ops) {
			t.Errorf("scanArgs(%q) ops = %q, want %q", tt.args, got, tt.ops)
		}
		if !reflect.DeepEqual(re, tt.rearranged) {
			t.Errorf("scanArgs(%q) rearranged = %q, want %q", tt.args, re, tt.rearranged)
		}
	}
}

// TestScanKnowsValueFlags checks the scan against the flags urfave/cli
// parses when smap runs, with the flag package's own rule (a flag takes a
// value unless it is a bool flag): the word after each flag is its value,
// never the map EXPR, for exactly the flags that take one. A flag added to
// smap or to every stage and missed by the scan fails here.
func TestScanKnowsValueFlags(t *testing.T) {
	c := newCommand(nil, nil)
	var flags []cli.Flag
	c.Action = func(e *stage.Env) error {
		flags = e.Ctx.App.Flags
		return nil
	}
	var stderr bytes.Buffer
	if code := c.Run([]string{"smap"}, bytes.NewReader(stream(t)), io.Discard, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	fs := flag.NewFlagSet("smap", flag.ContinueOnError)
	for _, f := range flags {
		if err := f.Apply(fs); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		takesValue := !ok || !b.IsBoolFlag()
		want := []string{"V", "EXPR"}
		if takesValue {
			want = want[1:]
		}
		for _, a := range []string{"-" + f.Name, "--" + f.Name} {
			if _, positional, _ := scanArgs([]string{a, "V", "EXPR"}); !reflect.DeepEqual(positional, want) {
				t.Errorf("scanArgs(%q) positional = %q, want %q (the flag takes a value: %v)", []string{a, "V", "EXPR"}, positional, want, takesValue)
			}
		}
	})
	if n < 14 { // smap's 10, in, out, compress, progress, help
		t.Errorf("only %d flags seen", n)
	}
}

func TestOperations(t *testing.T) {
	tests := []struct {
		name string
		in   []item
		args []string
		want string
	}{
		{"no operation", []item{lines("a"), batch(), {wm: 5}, lines("b", "c")}, nil,
			"batch 0 0\n{\"value\":\"a\"}\nbatch 1 1000\nwatermark 5\nbatch 2 2000\n{\"value\":\"b\"}\n{\"value\":\"c\"}\n"},
		{"map to a value", []item{lines("a", "b")}, []string{"upper(value)"},
			"batch 0 0\n{\"value\":\"A\"}\n{\"value\":\"B\"}\n"},
		{"map literal keeps key order", []item{lines("ab")}, []string{`{"z": value, "n": len(value), "a": 1}`},
			"batch 0 0\n{\"z\":\"ab\",\"n\":2,\"a\":1}\n"},
		{"map literal of constants", []item{lines("ab")}, []string{`{"z": 1, "a": 2}`},
			"batch 0 0\n{\"z\":1,\"a\":2}\n"},
		{"map field copied raw", []item{batch(`{"u":{"z":1,"a":[1,2.5]},"x":1}`)}, []string{`{"user": u}`},
			"batch 0 0\n{\"user\":{\"z\":1,\"a\":[1,2.5]}}\n"},
		{"map computed map sorted", []item{batch(`{"a":1}`)}, []string{`fromPairs([["z", a], ["b", 2]])`},
			"batch 0 0\n{\"b\":2,\"z\":1}\n"},
		{"map missing field", []item{batch(`{"a":1}`)}, []string{`{"b": b, "a": a}`},
			"batch 0 0\n{\"b\":null,\"a\":1}\n"},
		{"map nil", []item{batch(`{"a":1}`)}, []string{`b`},
			"batch 0 0\n{\"value\":null}\n"},
		{"integers stay integers", []item{batch(`{"v":1,"f":1.5,"big":9007199254740993}`)}, []string{"--set", "w=v*2", "--set", "g=f*2", "--set", "b2=big+1"},
			"batch 0 0\n{\"v\":1,\"f\":1.5,\"big\":9007199254740993,\"w\":2,\"g\":3,\"b2\":9007199254740994}\n"},
		{"filter", []item{lines("ab", "abcd", "", "hello")}, []string{"--filter", "len(value) > 3"},
			"batch 0 0\n{\"value\":\"abcd\"}\n{\"value\":\"hello\"}\n"},
		{"filter nil is false", []item{batch(`{"a":true}`, `{"b":1}`, `{"a":false}`)}, []string{"--filter", "a"},
			"batch 0 0\n{\"a\":true}\n"},
		{"filter true", []item{lines("a"), batch()}, []string{"--filter", "true"},
			"batch 0 0\n{\"value\":\"a\"}\nbatch 1 1000\n"},
		{"filter false", []item{lines("a", "b")}, []string{"--filter", "1 > 2"},
			"batch 0 0\n"},
		{"filter field named like a builtin", []item{batch(`{"count":3,"type":"x"}`, `{"count":30,"type":"x"}`)}, []string{"--filter", `count > 10 and type == "x"`},
			"batch 0 0\n{\"count\":30,\"type\":\"x\"}\n"},
		{"flat split", []item{lines("a b", "c", "", "d  e")}, []string{"--flat", `split(value, " ")`},
			"batch 0 0\n{\"value\":\"a\"}\n{\"value\":\"b\"}\n{\"value\":\"c\"}\n{\"value\":\"\"}\n{\"value\":\"d\"}\n{\"value\":\"\"}\n{\"value\":\"e\"}\n"},
		{"flat fields", []item{lines(" a  b ", "", "c")}, []string{"--flat", `fields(value)`},
			"batch 0 0\n{\"value\":\"a\"}\n{\"value\":\"b\"}\n{\"value\":\"c\"}\n"},
		{"flat list", []item{batch(`{"v":1}`)}, []string{"--flat", "[v, v*2]"},
			"batch 0 0\n{\"value\":1}\n{\"value\":2}\n"},
		{"flat maps", []item{batch(`{"items":[{"b":1,"a":2},{"b":3}]}`)}, []string{"--flat", "items"},
			"batch 0 0\n{\"a\":2,\"b\":1}\n{\"b\":3}\n"},
		{"flat nil", []item{batch(`{"v":1}`)}, []string{"--flat", "items"},
			"batch 0 0\n"},
		{"flat then more", []item{lines("a bb ccc")}, []string{"--flat", `split(value, " ")`, "--filter", "len(value) > 1", "--set", "n=len(value)"},
			"batch 0 0\n{\"value\":\"bb\",\"n\":2}\n{\"value\":\"ccc\",\"n\":3}\n"},
		{"flat twice", []item{lines("a,b c")}, []string{"--flat", `split(value, " ")`, "--flat", `split(value, ",")`},
			"batch 0 0\n{\"value\":\"a\"}\n{\"value\":\"b\"}\n{\"value\":\"c\"}\n"},
		{"flat of a computed list", []item{lines("a b")}, []string{"--flat", `map(split(value, " "), {{"w": #, "u": upper(#)}})`},
			"batch 0 0\n{\"u\":\"A\",\"w\":\"a\"}\n{\"u\":\"B\",\"w\":\"b\"}\n"},
		{"set adds and replaces", []item{batch(`{"a":1,"b":2}`)}, []string{"--set", "a=a+10", "--set", "c = b * 2"},
			"batch 0 0\n{\"a\":11,\"b\":2,\"c\":4}\n"},
		{"acceptance: filter set select in order", []item{lines("ab", "abcd", "hello world")}, []string{"--filter", "len(value) > 3", "--set", "n=len(value)", "--select", "value,n"},
			"batch 0 0\n{\"value\":\"abcd\",\"n\":4}\n{\"value\":\"hello world\",\"n\":11}\n"},
		{"order matters", []item{lines("ab", "abcd")}, []string{"--set", "n=len(value)", "--filter", "n > 3", "--drop", "value"},
			"batch 0 0\n{\"n\":4}\n"},
		{"map after flags", []item{lines("ab", "abcd")}, []string{"--filter", "len(value) > 3", `{"v": value}`},
			"batch 0 0\n{\"v\":\"abcd\"}\n"},
		{"map before flags", []item{lines("ab", "abcd")}, []string{`{"v": value}`, "--filter", "len(v) > 3"},
			"batch 0 0\n{\"v\":\"abcd\"}\n"},
		{"select order and missing", []item{batch(`{"a":1,"b":2,"c":3}`)}, []string{"--select", "c, a,zz"},
			"batch 0 0\n{\"c\":3,\"a\":1,\"zz\":null}\n"},
		{"drop", []item{batch(`{"a":1,"b":2,"c":3}`)}, []string{"--drop", "b,zz"},
			"batch 0 0\n{\"a\":1,\"c\":3}\n"},
		{"rename", []item{batch(`{"a":1,"b":2,"c":3}`)}, []string{"--rename", "a=x,zz=y", "--rename", "c=b"},
			"batch 0 0\n{\"x\":1,\"b\":3}\n"},
		{"parse-json", []item{batch(`{"key":"k","value":"{\"user\":\"ann\",\"n\":3,\"tags\":[1,2]}","ts":5}`)}, []string{"--parse-json", "value"},
			"batch 0 0\n{\"key\":\"k\",\"user\":\"ann\",\"n\":3,\"tags\":[1,2],\"ts\":5}\n"},
		{"parse-json replaces fields", []item{batch(`{"a":0,"j":"{\"a\":1,\"b\":2,\"b\":3}","b":9,"c":4}`)}, []string{"--parse-json", "j"},
			"batch 0 0\n{\"a\":1,\"b\":3,\"c\":4}\n"},
		{"parse-json then filter", []item{batch(`{"value":"{\"status\":500}"}`, `{"value":"{\"status\":200}"}`)}, []string{"--parse-json", "value", "--filter", "status >= 500"},
			"batch 0 0\n{\"status\":500}\n"},
		{"$env", []item{batch(`{"user-agent":"curl","a":1}`)}, []string{"--set", `ua=$env["user-agent"]`, "--set", "n=len($env)"},
			"batch 0 0\n{\"user-agent\":\"curl\",\"a\":1,\"ua\":\"curl\",\"n\":3}\n"},
		{"timestamps", []item{batch(`{"ts":"2024-05-01T12:34:56Z"}`)}, []string{"--set", `t=truncateTime(ts, "1h")`, "--set", `d=formatTime(t, "DateOnly")`},
			"batch 0 0\n{\"ts\":\"2024-05-01T12:34:56Z\",\"t\":\"2024-05-01T12:00:00Z\",\"d\":\"2024-05-01\"}\n"},
		{"exec", []item{lines("a", "b"), batch(), lines("c")}, []string{"--exec", `tr a-z A-Z`},
			"batch 0 0\n{\"VALUE\":\"A\"}\n{\"VALUE\":\"B\"}\nbatch 1 1000\nbatch 2 2000\n{\"VALUE\":\"C\"}\n"},
		{"exec non-objects and blank lines", []item{lines("a")}, []string{"--exec", `printf '1\n\n"x"\n[1]\n{}\n'`},
			"batch 0 0\n{\"value\":1}\n{\"value\":\"x\"}\n{\"value\":[1]}\n{}\n"},
		{"exec environment", []item{lines("a"), lines("b")}, []string{"--exec", `echo "{\"id\": $DSTREAM_BATCH_ID, \"t\": $DSTREAM_BATCH_TIME}"`},
			"batch 0 0\n{\"id\":0,\"t\":1700000000000}\nbatch 1 1000\n{\"id\":1,\"t\":1700000001000}\n"},
		{"ops around exec", []item{lines("ab", "abcd", "xyz")}, []string{"--filter", "len(value) > 2", "--set", "n=len(value)", "--exec", "cat", "--filter", "n > 3", "--exec", "cat"},
			"batch 0 0\n{\"value\":\"abcd\",\"n\":4}\n"},
		{"exec that stops reading", []item{lines("a", "b", "c")}, []string{"--exec", "head -n 1"},
			"batch 0 0\n{\"value\":\"a\"}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runSmap(stream(t, tt.in...), tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got := show(t, out); got != tt.want {
				t.Errorf("smap %q:\n%s\nwant:\n%s", tt.args, got, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []item
		args []string
		code int
		want string
	}{
		{"syntax", nil, []string{"--filter", "len(value) >"}, 2,
			"smap: error: --filter 'len(value) >': unexpected token EOF (1:12)\n | len(value) >\n | ...........^\nsmap: hint: see 'smap --help'\n"},
		{"syntax in map", nil, []string{"upper(value"}, 2,
			"smap: error: map 'upper(value': unexpected token EOF (1:11)\n | upper(value\n | ..........^\nsmap: hint: see 'smap --help'\n"},
		{"unknown function", nil, []string{"--set", `n=lenght(value)`}, 2,
			"smap: error: --set 'n=lenght(value)': unknown function lenght (1:1)\n | lenght(value)\n | ^\nsmap: hint: see 'smap --help'\n"},
		{"filter not bool", nil, []string{"--filter", "len(value)"}, 2,
			"smap: error: --filter 'len(value)': the expression gives int, not true or false\nsmap: hint: see 'smap --help'\n"},
		{"set without name", nil, []string{"--set", "len(value)"}, 2,
			"smap: error: --set 'len(value)': want NAME=EXPR\nsmap: hint: see 'smap --help'\n"},
		{"empty select", nil, []string{"--select", ","}, 2,
			"smap: error: --select ',': want a comma-separated list of fields\nsmap: hint: see 'smap --help'\n"},
		{"bad rename", nil, []string{"--rename", "a"}, 2,
			"smap: error: --rename 'a': want OLD=NEW[,OLD=NEW...], not \"a\"\nsmap: hint: see 'smap --help'\n"},
		{"two positionals", nil, []string{"upper(value)", "+", "x"}, 2,
			"smap: error: one map EXPR argument at most, got 3: 'upper(value)' '+' 'x'\nsmap: hint: quote the expression, as in smap 'upper(value)'; use --map EXPR for several maps\n"},
		{"unknown flag", nil, []string{"--filtre", "x"}, 2,
			"smap: error: unknown flag --filtre\nsmap: hint: did you mean --filter?\n"},
		{"missing value", nil, []string{"--filter"}, 2,
			"smap: error: flag needs an argument: -filter\nsmap: hint: see 'smap --help'\n"},
		{"runtime missing field", []item{lines("abc"), batch(`{"x":1}`, `{"value":"ab"}`, `{"y":2}`)}, []string{"--filter", "len(value) > 1"}, 1,
			"smap: error: batch 1, record 1: --filter 'len(value) > 1': invalid argument for len (type <nil>) (1:1) (the record has no field \"value\"); the record: {\"x\":1}\n"},
		{"runtime wrong type", []item{batch(`{"v":"x"}`)}, []string{"--set", "w=v*2"}, 1,
			"smap: error: batch 0, record 1: --set 'w=v*2': invalid operation: string * int (1:2); the record: {\"v\":\"x\"}\n"},
		{"filter gives a string", []item{lines("a")}, []string{"--filter", "value"}, 1,
			"smap: error: batch 0, record 1: --filter 'value': the expression gave string a, not true or false; the record: {\"value\":\"a\"}\n"},
		{"flat of a non-list", []item{lines("a")}, []string{"--flat", "value"}, 1,
			"smap: error: batch 0, record 1: --flat 'value': the expression gave string a, not a list; the record: {\"value\":\"a\"}\n"},
		{"flat split of a non-string", []item{batch(`{"value":1}`)}, []string{"--flat", `split(value, " ")`}, 1,
			"smap: error: batch 0, record 1: --flat 'split(value, \" \")': interface conversion: interface {} is int64, not string (1:1); the record: {\"value\":1}\n"},
		{"error after flat names the element", []item{lines("1 x")}, []string{"--flat", `split(value, " ")`, "--set", "n=int(value)"}, 1,
			"smap: error: batch 0, record 1: --set 'n=int(value)': invalid operation: int(x) (1:1); the record: {\"value\":\"x\"}\n"},
		{"parse-json missing", []item{batch(`{"a":1}`)}, []string{"--parse-json", "value"}, 1,
			"smap: error: batch 0, record 1: --parse-json 'value': the record has no such field \"value\"; the record: {\"a\":1}\n"},
		{"parse-json not a string", []item{batch(`{"value":1}`)}, []string{"--parse-json", "value"}, 1,
			"smap: error: batch 0, record 1: --parse-json 'value': field \"value\" is int, not a string of JSON; the record: {\"value\":1}\n"},
		{"parse-json bad JSON", []item{lines(`{"a":`)}, []string{"--parse-json", "value"}, 1,
			"smap: error: batch 0, record 1: --parse-json 'value': field \"value\": unexpected end of JSON input at offset 5; the record: {\"value\":\"{\\\"a\\\":\"}\n"},
		{"parse-json not an object", []item{lines(`[1]`)}, []string{"--parse-json", "value"}, 1,
			"smap: error: batch 0, record 1: --parse-json 'value': field \"value\": record: json value is not an object; the record: {\"value\":\"[1]\"}\n"},
		{"exec fails", []item{lines("a"), lines("b")}, []string{"--exec", "test $DSTREAM_BATCH_ID = 0"}, 1,
			"smap: error: batch 1: --exec 'test $DSTREAM_BATCH_ID = 0': the command failed: exit status 1\n"},
		{"exec bad line", []item{lines("a")}, []string{"--exec", `printf '{"a":1}\nnope\n'`}, 1,
			"smap: error: batch 0, --exec \"printf '{\\\"a\\\":1}\\\\nnope\\\\n'\" output line 2: invalid character 'o' in literal null (expecting 'u') at offset 1: \"nope\"\n"},
		{"error after exec", []item{lines("a")}, []string{"--exec", `printf '{"a":1}\n{"b":2}\n'`, "--set", "c=a+1"}, 1,
			"smap: error: batch 0, --exec \"printf '{\\\"a\\\":1}\\\\n{\\\"b\\\":2}\\\\n'\" output line 2: --set 'c=a+1': invalid operation: <nil> + int (1:2) (the record has no field \"a\"); the record: {\"b\":2}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runSmap(stream(t, tt.in...), tt.args...)
			if code != tt.code || stderr != tt.want {
				t.Errorf("smap %q: exit %d\n%s\nwant exit %d\n%s", tt.args, code, stderr, tt.code, tt.want)
			}
		})
	}
}

func TestSkipBad(t *testing.T) {
	in := stream(t, batch(`{"v":1}`, `{"v":"x"}`, `{"w":2}`, `{"v":3}`), lines("1 x 2"))
	out, stderr, code := runSmap(in, "--skip-bad", "--progress", "-", "--flat", `v != nil ? [v] : split(value, " ")`, "--set", "n=int(value)*2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "batch 0 0\n{\"value\":1,\"n\":2}\n{\"value\":3,\"n\":6}\nbatch 1 1000\n{\"value\":\"1\",\"n\":2}\n{\"value\":\"2\",\"n\":4}\n"
	if got := show(t, out); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for i, n := range []string{`"numSkippedRows":2`, `"numSkippedRows":1`} {
		l := strings.Split(stderr, "\n")[i]
		if !strings.Contains(l, n) {
			t.Errorf("progress line %d: %s, want %s", i, l, n)
		}
	}
	// A bad --exec line too.
	_, stderr, code = runSmap(stream(t, lines("a")), "--skip-bad", "--progress", "-", "--exec", `printf '{"a":1}\nnope\n'`)
	if code != 0 || !strings.Contains(stderr, `"numInputRows":1,"numOutputRows":1,"numSkippedRows":1`) {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// A record that only passes filters leaves as the bytes it came in, in
// runs; records around dropped ones keep their order.
func TestFilterRuns(t *testing.T) {
	var recs []string
	for i := range 200 {
		recs = append(recs, fmt.Sprintf(`{"i":%d,"s":"%s"}`, i, strings.Repeat("x", i%7)))
	}
	in := stream(t, batch(recs...), batch(), batch(recs[:3]...))
	for _, f := range []string{"i % 3 != 0", "i >= 0", "i < 0", "i % 50 > 10"} {
		out, stderr, code := runSmap(in, "--filter", f)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		// The same filter through --set, which re-encodes every record.
		out2, stderr, code := runSmap(in, "--filter", f, "--set", "s=s")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if got, want := show(t, out), show(t, out2); got != want {
			t.Errorf("--filter %q:\n%s\nwant\n%s", f, got, want)
		}
	}
}

func TestHelpDocumentsHelpers(t *testing.T) {
	out, _, code := runSmap(nil, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	help, err := readFile("../../docs/smap.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range helperNames() {
		if !bytes.Contains(out, []byte(name+"(")) {
			t.Errorf("smap --help does not document %s", name)
		}
		if !strings.Contains(help, "`"+name+"(") {
			t.Errorf("docs/smap.md does not document %s", name)
		}
	}
	for _, f := range []string{"--map", "--filter", "--flat", "--set", "--select", "--drop", "--rename", "--parse-json", "--exec", "--skip-bad"} {
		if !bytes.Contains(out, []byte(f)) {
			t.Errorf("smap --help does not mention %s", f)
		}
		if !strings.Contains(help, f) {
			t.Errorf("docs/smap.md does not mention %s", f)
		}
	}
}

func readFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}

func helperNames() []string {
	var names []string
	for _, h := range expr.Helpers {
		names = append(names, h.Name)
	}
	return names
}

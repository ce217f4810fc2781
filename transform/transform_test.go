package transform

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// t0 is the time of the first batch in tests: 2023-11-14T22:13:20Z.
const t0 = int64(1700000000000)

// command is the engine wired into a stage as smap wires it, without
// smap's command line: the operations are given, not parsed.
func command(o Options) *stage.Command {
	return &stage.Command{
		Name:   "smap",
		Input:  true,
		Output: true,
		Action: func(e *stage.Env) error {
			m, err := New(o, e.Out, e.Stderr, &e.Stats)
			if err != nil {
				return err
			}
			defer m.Close()
			return e.Loop(m)
		},
	}
}

// runStage runs the operations over the stream in, in process.
func runStage(in []byte, ops ...Op) (stdout []byte, stderr string, code int) {
	var o, e bytes.Buffer
	code = command(Options{Ops: ops}).Run([]string{"smap"}, bytes.NewReader(in), &o, &e)
	return o.Bytes(), e.String(), code
}

func TestKindNames(t *testing.T) {
	// The names are smap's flags, which messages show.
	want := []string{"map", "filter", "flat", "set", "select", "drop", "rename", "parse-json", "exec"}
	for k := Map; k <= Exec; k++ {
		if k.String() != want[k] {
			t.Errorf("Kind(%d) = %q, want %q", k, k, want[k])
		}
	}
	if s := (Exec + 1).String(); s != "Kind(9)" {
		t.Errorf("an unknown kind is %q", s)
	}
}

// The fast path of --flat 'split(FIELD, SEP)' writes exactly the records
// of the generic path, where the program runs and each string of its
// []string is encoded. (Frames may be cut at other records: the fast path
// hands the writer several records at once.)
func TestFlatSplitFastPath(t *testing.T) {
	inputs := []string{"", " ", "  ", "a", "a b", "a  b", " a b ", "héllo wörld", "a\u00a0b\u2003c", "日本 語",
		"\xff\xfe a \xc3", "a,b,,c,", ",", "x--y----z", strings.Repeat("word ", 40), strings.Repeat("x", 40),
		strings.Repeat("a ", 10000), strings.Repeat("é", 300),
		// Parts about the lengths where the encoding or the search changes.
		strings.Join([]string{strings.Repeat("a", 15), strings.Repeat("b", 16), strings.Repeat("c", 17), strings.Repeat("d", 31),
			strings.Repeat("e", 32), strings.Repeat("f", 127), strings.Repeat("g", 128), strings.Repeat("h", 300)}, " ") + " ",
		strings.Repeat("x", 17) + "," + strings.Repeat("y", 40)}
	var recs []string
	for _, s := range inputs {
		j, _, err := record.AppendJSON(nil, record.AppendString(nil, s))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, `{"value":`+string(j)+`,"other":1}`)
	}
	in := frametest.Stream(t, []frametest.Batch{{ID: 0, Time: t0, Recs: recs}, {ID: 1, Time: t0 + 1000}, {ID: 2, Time: t0 + 2000, Recs: recs}})
	for _, sep := range []string{`" "`, `","`, `"--"`, `""`, `"é"`} {
		for _, pair := range [][2]string{
			{`split(value, ` + sep + `)`, `split(value + "", ` + sep + `)`},
			{`fields(value)`, `fields(value + "")`},
		} {
			p, err := compile([]Op{{Kind: Flat, Arg: pair[0]}})
			if err != nil || p[0].split == nil {
				t.Fatalf("%s: no fast path (%v)", pair[0], err)
			}
			fast, stderr, code := runStage(in, Op{Kind: Flat, Arg: pair[0]})
			if code != 0 {
				t.Fatal(stderr)
			}
			slow, stderr, code := runStage(in, Op{Kind: Flat, Arg: pair[1]})
			if code != 0 {
				t.Fatal(stderr)
			}
			if f, s := frametest.Render(t, fast), frametest.Render(t, slow); f != s {
				t.Errorf("%s and %s differ:\n%s\n%s", pair[0], pair[1], f, s)
			}
			// Followed by another operation, the parts take the general
			// way through the pipeline.
			fast, stderr, code = runStage(in, Op{Kind: Flat, Arg: pair[0]}, Op{Kind: Set, Arg: "k=1"})
			if code != 0 {
				t.Fatal(stderr)
			}
			slow, stderr, code = runStage(in, Op{Kind: Flat, Arg: pair[1]}, Op{Kind: Set, Arg: "k=1"})
			if code != 0 {
				t.Fatal(stderr)
			}
			if f, s := frametest.Render(t, fast), frametest.Render(t, slow); f != s {
				t.Errorf("%s and %s, then --set, differ:\n%s\n%s", pair[0], pair[1], f, s)
			}
		}
	}
}

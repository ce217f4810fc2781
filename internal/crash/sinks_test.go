package crash

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// out is stdout as the append sink reads it: lines, with "|" where a run
// begins (also before the first line).
func out(s string) content {
	var c content
	for _, l := range strings.Fields(s) {
		if l == "|" {
			c.runs = append(c.runs, len(c.lines))
			continue
		}
		c.lines = append(c.lines, `{"k":"`+l[1:]+`","b":`+l[:1]+"}\n")
	}
	return c
}

// TestCompareAppend checks the at-least-once rule of stdout: every batch
// of the clean run, whole, in order; besides, only a batch written again
// right after itself where a run began. A line "1x" is record x of batch 1.
func TestCompareAppend(t *testing.T) {
	clean := out("| 1a 1b 2a 3a 3b")
	for _, c := range []struct {
		got, want string // want: a part of the message, "" if equal
	}{
		{"| 1a 1b 2a 3a 3b", ""},
		{"| 1a 1b | 2a 3a 3b", ""},
		{"| 1a 1b 2a | 2a 3a 3b", ""},                 // batch 2 flushed, not committed, written again
		{"| 1a 1b 2a | 2a | 2a 3a 3b", ""},            // and once more by a crashed restart
		{"| 1a 1b 2a 3a 3b | 3a 3b", ""},              // the last batch again
		{"| 1a 1b 2a 2a 3a 3b", "differs"},            // twice, but not at a run's start
		{"| 1a 1b 2a | 1a 1b 2a 3a 3b", "want batch"}, // two batches again
		{"| 1a 1b 3a 3b", "want batch 2, got batch 3"},
		{"| 2a 3a 3b", "want batch 1, got batch 2"},
		{"| 1a 1b 2a 3a", "batch 3 at line 4 differs: want 2 lines, got 1"},
		{"| 1a 1b 2a 3a | 3a 3b", "batch 3 at line 4 differs"}, // a partial batch
		{"| 1a 1b 2a", "1 of 3 batches missing, from batch 3 on"},
		{"| 1a 1b 2a 3a 3b 4a", "output after the last batch"},
		{"| 1a 1b 2a 3b 3a", "differs"},
		{"|", "3 of 3 batches missing"},
	} {
		got := (&appendSink{}).compare(clean, out(c.got))
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.got, got, c.want)
		}
	}
	if got := (&appendSink{}).compare(clean, content{lines: clean.lines, runs: []int{0, -1}}); !strings.Contains(got, "inside a line") {
		t.Errorf("a run beginning inside a line: got %q", got)
	}
}

func TestDiffSets(t *testing.T) {
	for _, c := range []struct {
		want, got, diff string
	}{
		{"a b c", "c b a", ""},
		{"a a b", "a b", `want 3 lines, got 2: 1 missing ("a"), 0 extra`},
		{"a b", "a b b x", `want 2 lines, got 4: 0 missing, 2 extra ("b", "x")`},
		{"a b c d e", "", `want 5 lines, got 0: 5 missing ("a", "b", "c", ...), 0 extra`},
	} {
		if got := diffSets(strings.Fields(c.want), strings.Fields(c.got)); got != c.diff {
			t.Errorf("diffSets(%q, %q) = %q, want %q", c.want, c.got, got, c.diff)
		}
	}
}

// TestFilesRead: the files of ssink --files in the order of their batch
// times, each line numbered, and a temporary file left behind as a line.
func TestFilesRead(t *testing.T) {
	tr := &trial{dir: t.TempDir()}
	s := &filesSink{dir: "out"}
	if err := s.setup(tr); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"p-10000.json": "c\n", "p-9000.json": "a\nb\n", "p-11000.json": "", ".p-12000.json.tmp-1": "d\n",
	} {
		if err := os.WriteFile(filepath.Join(tr.dir, "out", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.read(tr)
	if err != nil {
		t.Fatal(err)
	}
	want := "p-9000.json:1: a\n|p-9000.json:2: b\n|p-10000.json:1: c\n|p-11000.json: (empty)|temporary file left behind: .p-12000.json.tmp-1"
	if got := strings.Join(c.lines, "|"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

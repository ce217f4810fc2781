package crash

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dstream/dstream/internal/pgtest"
)

// The short fixed-seed run of the crash matrix, part of go test ./...: two
// trials of every variant (the postgres one skipped without a server, but
// in CI, CI=true, where that fails), kills and faults drawn from a fixed
// seed. Its plans include kills in the first milliseconds of a run (of
// ssink, of sbatch, of all stages), kills of a restart, a failed rename of
// a swindow snapshot and of ssink's commits. Where a kill falls in the
// stages' work depends on the machine's load, so a run finds a given bug
// with some probability, not always; scripts/crash.sh --trials N soaks
// longer.
const (
	shortSeed   = 507
	shortTrials = 2 // per variant
)

func TestCrashMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash matrix runs pipelines for about 20 s")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	touchSources(root)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "./cmd/...")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the stages: %v\n%s", err, out)
	}
	var out bytes.Buffer
	o := Options{
		Bin:      bin,
		Trials:   shortTrials * len(variants),
		Seed:     shortSeed,
		Variant:  regexp.MustCompile(""),
		Mode:     "both",
		Postgres: pgtest.URL(),
	}
	code := Run(o, &out, &out)
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(l, "crash: MISMATCH") || strings.HasPrefix(l, "crash: error") {
			t.Error(l)
		} else {
			t.Log(l)
		}
	}
	if code != 0 && !t.Failed() {
		t.Errorf("exit status %d", code)
	}
}

// touchSources opens the module's Go sources, so that go test's cache,
// which tracks the files a test opens, knows that this test depends on
// them: the stages are built by a go build it cannot see into (as the
// script tests in the root package do).
func touchSources(root string) {
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bench-out" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			if f, err := os.Open(path); err == nil {
				f.Close()
			}
		}
		return nil
	})
}

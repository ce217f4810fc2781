package dstream_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmdtest"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/*.ct from what the commands print")

// stages are the binaries the script tests run.
var stages = []string{"sbatch", "smap", "sreduce", "swindow", "ssink"}

var binDir string

// TestMain builds the real binaries once and puts them first on PATH, so that
// the scripts run them exactly as a user's shell would.
func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "dstream-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	args := append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs()...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the stages: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	wd, _ := os.Getwd()
	os.Setenv("TESTDATA", filepath.Join(wd, "testdata"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// touchSources opens every Go source file and go.mod, so that go test's
// cache, which tracks the files a test opens, knows that this test depends
// on them: the binaries are built by a `go build` it cannot see into, and a
// change to a stage must not leave a stale cached pass. (It runs inside the
// test: what TestMain opens before m.Run is not tracked.)
func touchSources() {
	filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bench-out" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || path == "go.mod" || path == "go.sum") {
			if f, err := os.Open(path); err == nil {
				f.Close()
			}
		}
		return nil
	})
}

func pkgs() []string {
	var p []string
	for _, s := range stages {
		p = append(p, "./cmd/"+s)
	}
	return p
}

// TestScripts runs testdata/*.ct. Besides the stages themselves, a script
// can run a real shell pipeline with `sh WORDS...`: the words are joined with
// single spaces and run by bash with pipefail, so that a failing stage
// anywhere in the pipeline fails the line.
func TestScripts(t *testing.T) {
	touchSources()
	ts, err := cmdtest.Read("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stages {
		ts.Commands[s] = cmdtest.Program(filepath.Join(binDir, s))
	}
	ts.Commands["sh"] = func(args []string, inputFile string) ([]byte, error) {
		cmd := exec.Command("bash", "-o", "pipefail", "-c", strings.Join(args, " "))
		if inputFile != "" {
			f, err := os.Open(inputFile)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			cmd.Stdin = f
		}
		return cmd.CombinedOutput()
	}
	ts.Run(t, *update)
}

package dstream_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmdtest"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/*.ct from what the commands print")

// stages are the binaries the script tests run.
var stages = []string{"sbatch", "smap", "sreduce", "swindow", "sunion", "sdedup", "sjoin", "ssink", "sdash"}

// tools are commands the scripts run beside the stages, built onto PATH
// with them: kfake serves a Kafka cluster (internal/kafkatest).
var tools = []string{"./internal/kafkatest/kfake"}

// binEnv names the directory of the built stages in the environment of a
// child test process (see TestScripts); its presence makes the process a
// child, which runs one script and builds nothing.
const binEnv = "DSTREAM_SCRIPT_BIN"

// scriptParallel is how many scripts run at once unless -parallel says
// otherwise. The scripts mostly wait (on pipes, on signals, on batch
// intervals), so more of them than there are cores keep the machine busy.
const scriptParallel = 16

var binDir string

// TestMain builds the real binaries once and puts them first on PATH, so that
// the scripts run them exactly as a user's shell would, beside the waitfor
// helper they use.
func TestMain(m *testing.M) {
	flag.Parse()
	if dir := os.Getenv(binEnv); dir != "" {
		binDir = dir // PATH and TESTDATA come from the parent too
		os.Exit(m.Run())
	}
	if !flagSet("test.parallel") {
		if err := flag.Set("test.parallel", strconv.Itoa(scriptParallel)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	dir, temporary, err := buildDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(func() int {
		if temporary {
			defer os.RemoveAll(dir)
		}
		if err := build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binDir = dir
		os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
		wd, _ := os.Getwd()
		os.Setenv("TESTDATA", filepath.Join(wd, "testdata"))
		return m.Run()
	}())
}

// buildDir returns the directory to build the stages in: one per checkout
// under the user's cache directory, kept between runs, because go build
// leaves a binary that is up to date alone and linking five stages afresh
// takes seconds; or, without a cache directory, a temporary one.
func buildDir() (dir string, temporary bool, err error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", false, err
	}
	if cache, err := os.UserCacheDir(); err == nil {
		sum := sha256.Sum256([]byte(wd))
		dir := filepath.Join(cache, "dstream-script-test", hex.EncodeToString(sum[:8]))
		if err := os.MkdirAll(dir, 0o755); err == nil {
			return dir, false, nil
		}
	}
	dir, err = os.MkdirTemp("", "dstream-bin-")
	return dir, true, err
}

// build builds the stages and the tools and writes the waitfor helper into
// dir; the helper is replaced by a rename, since another run may be
// executing it.
func build(dir string) error {
	args := append([]string{"build", "-o", dir + string(os.PathSeparator)}, append(pkgs(), tools...)...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("building the stages: %v\n%s", err, out)
	}
	tmp, err := os.CreateTemp(dir, ".waitfor-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(waitfor)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, "waitfor"))
	}
	return err
}

// waitfor is a command for the scripts, which wait with it for a state
// rather than sleeping for long enough: `waitfor [-t SECONDS] FILE [REGEX]`
// returns once FILE exists and, given REGEX, once a line of it matches
// (grep -E; binary files too), and fails naming what it waited for after
// SECONDS, 10 by default. It is a program on PATH, not a shell function, so
// that the commands of smap --exec (run by sh) have it too.
const waitfor = `#!/usr/bin/env bash
limit=10
if [ "$1" = -t ]; then limit=$2; shift 2; fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo 'usage: waitfor [-t SECONDS] FILE [REGEX]' >&2
	exit 2
fi
file=$1 re=$2
now=${EPOCHREALTIME/[.,]/}
end=$((now + limit * 1000000))
until [ -e "$file" ] && { [ -z "$re" ] || grep -qaE -- "$re" "$file"; }; do
	now=${EPOCHREALTIME/[.,]/}
	if [ "$now" -ge "$end" ]; then
		if [ ! -e "$file" ]; then
			echo "waitfor: $file did not appear within ${limit}s" >&2
		else
			echo "waitfor: no line of $file matched '$re' within ${limit}s" >&2
		fi
		exit 1
	fi
	sleep 0.02
done
`

// flagSet tells whether the command line set the flag.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// touchSources opens every Go source file, go.mod and the files under
// testdata, so that go test's cache, which tracks the files a test opens,
// knows that this test depends on them: the binaries are built by a `go
// build` it cannot see into, the scripts run in child processes and the
// fixtures are read by the stages, and a change to any of them must not leave
// a stale cached pass. (It runs inside the test: what TestMain opens before
// m.Run is not tracked.)
func touchSources() {
	filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bench-out" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || path == "go.mod" || path == "go.sum" || strings.HasPrefix(path, "testdata"+string(filepath.Separator))) {
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
	return append(p, tools...)
}

// TestScripts runs testdata/*.ct, each file as a parallel subtest named after
// it (go test -run TestScripts/sbatch-follow). go-cmdtest runs a file in a
// directory of its own but changes the process's working directory and
// environment to do it, so files cannot share a process: each subtest runs
// this test binary again, as a child that has go-cmdtest run that one file
// (-update rewrites it in place). A child's environment has PORT, a TCP port
// that was free a moment before, for the scripts that listen on one.
//
// Besides the stages themselves, a script can run a real shell pipeline with
// `sh WORDS...`: the words are joined with single spaces and run by bash with
// pipefail, so that a failing stage anywhere in the pipeline fails the line.
func TestScripts(t *testing.T) {
	if os.Getenv(binEnv) != "" {
		runSuite(t)
		return
	}
	touchSources()
	files, err := filepath.Glob(filepath.Join("testdata", "*.ct"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".ct")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if missing := needs(t, f); missing != "" {
				if os.Getenv("CI") == "true" {
					t.Fatal(missing)
				}
				t.Skip(missing)
			}
			var env []string
			if setUp := services[name]; setUp != nil {
				env = setUp(t) // or skip
			}
			runChild(t, name, env...)
		})
	}
}

// needs reads the lines "# needs: WORD..." of the script file and returns
// what of it is missing, "" if nothing: a WORD with a colon is a server's
// HOST:PORT, which must take a TCP connection; another is a command, which
// must be on PATH. A script whose server or tool is missing is skipped,
// saying how to get it, but in CI (CI=true), where it fails.
func needs(t *testing.T, file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		words, ok := strings.CutPrefix(l, "# needs: ")
		if !ok {
			continue
		}
		for _, w := range strings.Fields(words) {
			if strings.Contains(w, ":") {
				c, err := net.DialTimeout("tcp", w, 2*time.Second)
				if err != nil {
					return fmt.Sprintf("%s needs a server at %s: %v (scripts/services.sh starts the ones the tests use)", file, w, err)
				}
				c.Close()
			} else if _, err := exec.LookPath(w); err != nil {
				return fmt.Sprintf("%s needs the command %s: %v (scripts/install.sh installs the ones the tests use)", file, w, err)
			}
		}
	}
	return ""
}

// runChild runs testdata/NAME.ct in a child process, with env added to
// its environment, and reports its failure.
func runChild(t *testing.T, name string, env ...string) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	sub := "TestScripts/testdata/" + name
	args := []string{"-test.run=^TestScripts$/^testdata$/^" + regexp.QuoteMeta(name) + "$", "-test.count=1", "-test.v"}
	if d, ok := t.Deadline(); ok {
		// A script that hangs times out in its child, which names
		// the script and the command, before the parent times out.
		args = append(args, "-test.timeout="+(time.Until(d)*9/10).String())
	}
	if *update {
		args = append(args, "-update")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), binEnv+"="+binDir, "PORT="+port), env...)
	// Processes a script left running may hold the output pipe open
	// after the child has gone (a timed-out child above all).
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	switch {
	case !bytes.Contains(out, []byte("=== RUN   "+sub+"\n")):
		t.Fatalf("the child test process did not run %s: %v\n%s", sub, err, childLog(out))
	case err != nil:
		t.Errorf("%s", childLog(out))
	case testing.Verbose():
		t.Logf("%s", childLog(out))
	}
}

// goTestLine matches the lines go test itself prints about tests.
var goTestLine = regexp.MustCompile(`^\s*(=== (RUN|PAUSE|CONT|NAME) |--- (PASS|FAIL|SKIP): |(PASS|FAIL)$)`)

// childLog is what a child printed but for go test's own lines, which, passed
// on, would read as results of this process's tests (to go test -json too).
func childLog(out []byte) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(out), "\n") {
		if !goTestLine.MatchString(l) {
			b.WriteString(l)
		}
	}
	return b.String()
}

// freePort returns a TCP port on the loopback interface that nothing listens
// on now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// runSuite is the child's part: go-cmdtest runs the file that -test.run
// selects, as one of its own subtests.
func runSuite(t *testing.T) {
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

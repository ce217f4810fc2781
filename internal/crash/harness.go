// Package crash is the crash matrix of the checkpoint protocol: it runs
// pipelines with --checkpoint, crashes them, restarts them on the same
// checkpoint until a run completes, and checks that the sink holds what an
// uninterrupted run writes (README: Delivery guarantees). scripts/crash.sh
// builds the stages and runs it through the command scripts/crash.
//
// A trial takes a variant (a pipeline and its sink, see variants.go) and a
// seed. The variant's clean run, made once per invocation, is the pipeline
// run uninterrupted on the fixed input. The trial runs the same pipeline on
// a fresh checkpoint directory and, as its seed's plan says, either kills
// (SIGKILL) one stage or all of them (the process group) at a random
// moment, one run in three within its first 50 ms, and sometimes kills the
// restart too; or makes the K-th fsync or rename of one stage fail with EIO
// (strace's fault injection). Then it restarts the pipeline until a run
// completes with every stage's exit status 0, and compares the sink with
// the clean run's: a SQLite or PostgreSQL table and dstream_commits as sets
// of rows, the files of ssink --files in the order of their batch times,
// and stdout appended to one file by every run, where the README promises
// at least once: every batch of the clean run, whole, in order, and besides
// only a batch written again right after itself where a run began.
//
// Output: a line per mismatch, with a command that runs that trial again
// (the plan is the same; the moments a kill falls on in the stages' work
// depend on the machine's load), then
//
//	crash: P/N runs equal the clean run
//
// and exit status 1 if P < N. Trial i of an invocation has seed S+i and
// the variant i modulo the number of variants selected, so a trial is run
// again with --variant NAME --seed S+i --trials 1.
package crash

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Options are the harness's settings (scripts/crash's flags, named in
// parentheses).
type Options struct {
	Bin      string         // the directory of the stages' binaries (--bin)
	Trials   int            // trials in all, spread over the variants in turn (--trials)
	Seed     uint64         // trial i has seed Seed+i (--seed)
	Variant  *regexp.Regexp // the variants to run, by name (--variant)
	Keep     string         // keep the directories of mismatching trials (and the clean runs) here, if not "" (--keep)
	Verbose  bool           // a line per trial and per run (--v)
	Mode     string         // kill (kill -9 only), fault (failed fsync or rename only) or both (--mode)
	Postgres string         // the server of the postgres variant, a URL (--postgres)
}

// Run runs the trials of o, printing a line per mismatch and the summary
// "crash: P/N runs equal the clean run" to stdout and an error that stopped
// the harness to stderr; it returns the exit status: 0 if every trial
// equals its clean run, 1 otherwise.
func Run(o Options, stdout, stderr io.Writer) int {
	h, err := newHarness(o, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "crash: error: %v\n", err)
		return 1
	}
	equal, mismatches, err := h.matrix()
	if err != nil {
		fmt.Fprintf(stderr, "crash: error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "crash: %d/%d runs equal the clean run\n", equal, equal+len(mismatches))
	if len(mismatches) > 0 {
		return 1
	}
	return 0
}

// harness runs the matrix: trials of the selected variants, each compared
// with the variant's clean run.
type harness struct {
	Options
	out      io.Writer
	work     string // the trials' directories are made here
	variants []*variant
	faults   bool // fault injection runs (strace works)
	clean    map[string]*cleanRun
}

// cleanRun is a variant's uninterrupted run, made once per invocation.
type cleanRun struct {
	content content
	took    time.Duration
	batches int
}

// mismatch is a trial whose sink differs from the clean run's, or that
// could not complete.
type mismatch struct {
	variant string
	seed    uint64
	what    string // what differed
	runs    string // what was done to each run
	kept    string // the trial's directory, with --keep
}

func (m mismatch) String(mode string) string {
	repro := fmt.Sprintf("scripts/crash.sh --variant '^%s$' --seed %d --trials 1", m.variant, m.seed)
	if mode != "both" {
		repro += " --mode " + mode
	}
	s := fmt.Sprintf("crash: MISMATCH %s seed %d: %s [%s] repro: %s", m.variant, m.seed, m.what, m.runs, repro)
	if m.kept != "" {
		s += " (kept in " + m.kept + ")"
	}
	return s
}

// newHarness selects the variants and checks what they need: a variant
// that cannot run here (no PostgreSQL) is skipped with a message on out,
// unless CI=true, where that is an error; fault injection without a working
// strace (ptrace is not permitted in some containers) is skipped with a
// message, the trials killing instead. A Mode other than kill, fault or
// both is an error; a nil Variant selects every variant.
func newHarness(o Options, out io.Writer) (*harness, error) {
	if o.Mode != "kill" && o.Mode != "fault" && o.Mode != "both" {
		return nil, fmt.Errorf("mode %q: want kill, fault or both", o.Mode)
	}
	if o.Variant == nil {
		o.Variant = regexp.MustCompile("")
	}
	h := &harness{Options: o, out: out, clean: map[string]*cleanRun{}}
	for _, v := range variants {
		if !o.Variant.MatchString(v.name) {
			continue
		}
		if pg, ok := v.sink.(*postgresSink); ok {
			pg.url = o.Postgres
			if err := pg.available(); err != nil {
				if os.Getenv("CI") == "true" {
					return nil, fmt.Errorf("variant %s: PostgreSQL at %s: %w", v.name, o.Postgres, err)
				}
				fmt.Fprintf(out, "crash: skipping variant %s: PostgreSQL at %s cannot be reached: %v\n", v.name, o.Postgres, err)
				continue
			}
		}
		if s, ok := v.broker.(interface{ reachable() error }); ok {
			if err := s.reachable(); err != nil {
				if os.Getenv("CI") == "true" {
					return nil, fmt.Errorf("variant %s: %w", v.name, err)
				}
				fmt.Fprintf(out, "crash: skipping variant %s: %v\n", v.name, err)
				continue
			}
		}
		h.variants = append(h.variants, v)
	}
	if len(h.variants) == 0 {
		return nil, fmt.Errorf("no variant to run matches %q", o.Variant)
	}
	if o.Mode != "kill" {
		if err := straceWorks(); err != nil {
			if o.Mode == "fault" {
				return nil, fmt.Errorf("fault injection: %w", err)
			}
			fmt.Fprintf(out, "crash: skipping fault injection: %v\n", err)
		} else {
			h.faults = true
		}
	}
	for _, s := range []string{"sbatch", "smap", "sreduce", "swindow", "sunion", "sdedup", "sjoin", "ssink"} {
		if _, err := os.Stat(filepath.Join(o.Bin, s)); err != nil {
			return nil, fmt.Errorf("the stages are not built in %s: %w", o.Bin, err)
		}
	}
	return h, nil
}

// matrix runs the trials and returns the mismatches; err is for a harness
// that could not do its work (a clean run that failed, say).
func (h *harness) matrix() (equal int, mismatches []mismatch, err error) {
	if h.Keep != "" {
		if err := os.MkdirAll(h.Keep, 0o755); err != nil {
			return 0, nil, err
		}
		h.work = h.Keep
	} else {
		if h.work, err = os.MkdirTemp("", "dstream-crash-"); err != nil {
			return 0, nil, err
		}
		defer os.RemoveAll(h.work)
	}
	for i := range h.Trials {
		v := h.variants[i%len(h.variants)]
		seed := h.Seed + uint64(i)
		m, err := h.trial(v, seed)
		if err != nil {
			return equal, mismatches, err
		}
		if m == nil {
			equal++
			continue
		}
		mismatches = append(mismatches, *m)
		fmt.Fprintln(h.out, m.String(h.Mode))
	}
	return equal, mismatches, nil
}

// newTrial makes the directory of a trial and its destination.
func (h *harness) newTrial(v *variant, name string, seed uint64) (*trial, error) {
	dir := filepath.Join(h.work, name)
	os.RemoveAll(dir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	t := &trial{name: name, dir: dir, seed: seed, vars: map[string]string{}}
	if err := v.sink.setup(t); err != nil {
		return nil, err
	}
	return t, nil
}

// cleanOf returns the variant's clean run, running it the first time.
func (h *harness) cleanOf(v *variant) (*cleanRun, error) {
	if c := h.clean[v.name]; c != nil {
		return c, nil
	}
	t, err := h.newTrial(v, v.name+"-clean", 0)
	if err != nil {
		return nil, err
	}
	defer func() {
		if v.broker != nil {
			v.broker.teardown(t)
		}
		v.sink.teardown(t, h.Keep != "")
		if h.Keep != "" {
			os.WriteFile(filepath.Join(t.dir, "trial.log"), []byte(strings.Join(t.log, "\n")+"\n"), 0o644)
		}
	}()
	if err := h.input(v, t); err != nil {
		return nil, err
	}
	start := time.Now()
	ok, msg := h.runOnce(v, t, 0, nil, nil, 0, 0)
	took := time.Since(start)
	<-t.inputDone
	switch {
	case msg != "":
		return nil, fmt.Errorf("clean run of %s: %s", v.name, msg)
	case !ok:
		return nil, fmt.Errorf("clean run of %s failed (in %s): %s", v.name, t.dir, t.log[0])
	case t.writeErr != nil:
		return nil, t.writeErr
	}
	got, err := v.sink.read(t)
	if err != nil {
		return nil, fmt.Errorf("clean run of %s: reading its output: %w", v.name, err)
	}
	if len(got.lines) == 0 {
		return nil, fmt.Errorf("clean run of %s wrote nothing (in %s)", v.name, t.dir)
	}
	c := &cleanRun{content: got, took: took, batches: lastEntry(t.dir, "offsets") + 1}
	if c.batches == 0 {
		return nil, fmt.Errorf("clean run of %s left no ck/offsets (in %s)", v.name, t.dir)
	}
	if h.Verbose {
		fmt.Fprintf(h.out, "crash: clean run of %s: %d batches, %d lines, %v\n", v.name, c.batches, len(got.lines), took.Round(time.Millisecond))
	}
	if h.Keep == "" {
		os.RemoveAll(t.dir)
	}
	h.clean[v.name] = c
	return c, nil
}

// trial runs one trial: the variant's pipeline on a fresh checkpoint,
// crashed as the seed's plan says and restarted until a run completes, and
// its sink compared with the clean run's. It returns nil if they are equal.
func (h *harness) trial(v *variant, seed uint64) (*mismatch, error) {
	c, err := h.cleanOf(v)
	if err != nil {
		return nil, err
	}
	r := rng(seed, 0)
	p := newPlan(r, v, c.batches, h.faults, h.Mode != "fault")
	t, err := h.newTrial(v, fmt.Sprintf("%s-s%d", v.name, seed), seed)
	if err != nil {
		return nil, err
	}
	m := &mismatch{variant: v.name, seed: seed}
	defer func() {
		keep := h.Keep != "" && m.what != ""
		if v.broker != nil {
			v.broker.teardown(t)
		}
		v.sink.teardown(t, keep)
		os.WriteFile(filepath.Join(t.dir, "trial.log"), []byte(strings.Join(t.log, "\n")+"\n"), 0o644)
		if !keep {
			os.RemoveAll(t.dir)
		}
	}()
	if err := h.input(v, t); err != nil {
		return nil, err
	}
	m.what = h.execute(v, t, p, c)
	<-t.inputDone
	if m.what == "" && t.writeErr != nil {
		m.what = t.writeErr.Error()
	}
	if m.what == "" {
		got, err := v.sink.read(t)
		if err != nil {
			m.what = "reading the sink: " + err.Error()
		} else {
			m.what = v.sink.compare(c.content, got)
		}
	}
	var runs []string
	for _, l := range t.log {
		runs = append(runs, strings.SplitN(l, ";", 2)[0])
	}
	m.runs = strings.Join(runs, "; ")
	if h.Verbose {
		status := "equal"
		if m.what != "" {
			status = "DIFFERS"
		}
		fmt.Fprintf(h.out, "crash: %s seed %d: %s\n", v.name, seed, status)
		for _, l := range t.log {
			fmt.Fprintf(h.out, "    %s\n", l)
		}
	}
	if m.what == "" {
		return nil, nil
	}
	if h.Keep != "" {
		m.kept = t.dir
	}
	return m, nil
}

// input writes in.jsonl and the variant's files for t and, for a variant
// that reads a broker, sets the broker up with the same events.
func (h *harness) input(v *variant, t *trial) error {
	for name, data := range v.files {
		if err := os.WriteFile(filepath.Join(t.dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	if err := writeInput(t, v); err != nil {
		return err
	}
	if v.broker != nil {
		return v.broker.setup(t)
	}
	return nil
}

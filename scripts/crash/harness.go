package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// options are the harness's settings (the command line's flags).
type options struct {
	bin      string         // the stages' binaries
	trials   int            // trials in all, spread over the variants in turn
	seed     uint64         // trial i has seed seed+i
	variant  *regexp.Regexp // the variants to run, by name
	keep     string         // keep the directories of mismatching trials here
	verbose  bool           // a line per trial and per run
	mode     string         // kill, fault or both
	postgres string         // the server of the postgres variant
}

// harness runs the matrix: trials of the selected variants, each compared
// with the variant's clean run.
type harness struct {
	options
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
// message, the trials killing instead.
func newHarness(o options, out io.Writer) (*harness, error) {
	h := &harness{options: o, out: out, clean: map[string]*cleanRun{}}
	for _, v := range variants {
		if !o.variant.MatchString(v.name) {
			continue
		}
		if pg, ok := v.sink.(*postgresSink); ok {
			pg.url = o.postgres
			if err := pg.available(); err != nil {
				if os.Getenv("CI") == "true" {
					return nil, fmt.Errorf("variant %s: PostgreSQL at %s: %w", v.name, o.postgres, err)
				}
				fmt.Fprintf(out, "crash: skipping variant %s: PostgreSQL at %s cannot be reached: %v\n", v.name, o.postgres, err)
				continue
			}
		}
		h.variants = append(h.variants, v)
	}
	if len(h.variants) == 0 {
		return nil, fmt.Errorf("no variant to run matches %q", o.variant)
	}
	if o.mode != "kill" {
		if err := straceWorks(); err != nil {
			if o.mode == "fault" {
				return nil, fmt.Errorf("fault injection: %w", err)
			}
			fmt.Fprintf(out, "crash: skipping fault injection: %v\n", err)
		} else {
			h.faults = true
		}
	}
	for _, s := range []string{"sbatch", "smap", "sreduce", "swindow", "ssink"} {
		if _, err := os.Stat(filepath.Join(o.bin, s)); err != nil {
			return nil, fmt.Errorf("the stages are not built in %s: %w", o.bin, err)
		}
	}
	return h, nil
}

// matrix runs the trials and returns the mismatches; err is for a harness
// that could not do its work (a clean run that failed, say).
func (h *harness) matrix() (equal int, mismatches []mismatch, err error) {
	if h.keep != "" {
		if err := os.MkdirAll(h.keep, 0o755); err != nil {
			return 0, nil, err
		}
		h.work = h.keep
	} else {
		if h.work, err = os.MkdirTemp("", "dstream-crash-"); err != nil {
			return 0, nil, err
		}
		defer os.RemoveAll(h.work)
	}
	for i := range h.trials {
		v := h.variants[i%len(h.variants)]
		seed := h.seed + uint64(i)
		m, err := h.trial(v, seed)
		if err != nil {
			return equal, mismatches, err
		}
		if m == nil {
			equal++
			continue
		}
		mismatches = append(mismatches, *m)
		fmt.Fprintln(h.out, m.String(h.mode))
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
		v.sink.teardown(t, h.keep != "")
		if h.keep != "" {
			os.WriteFile(filepath.Join(t.dir, "trial.log"), []byte(strings.Join(t.log, "\n")+"\n"), 0o644)
		}
	}()
	if err := writeInput(t, v.follow); err != nil {
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
	if h.verbose {
		fmt.Fprintf(h.out, "crash: clean run of %s: %d batches, %d lines, %v\n", v.name, c.batches, len(got.lines), took.Round(time.Millisecond))
	}
	if h.keep == "" {
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
	p := newPlan(r, v, c.batches, h.faults, h.mode != "fault")
	t, err := h.newTrial(v, fmt.Sprintf("%s-s%d", v.name, seed), seed)
	if err != nil {
		return nil, err
	}
	m := &mismatch{variant: v.name, seed: seed}
	defer func() {
		keep := h.keep != "" && m.what != ""
		v.sink.teardown(t, keep)
		os.WriteFile(filepath.Join(t.dir, "trial.log"), []byte(strings.Join(t.log, "\n")+"\n"), 0o644)
		if !keep {
			os.RemoveAll(t.dir)
		}
	}()
	if err := writeInput(t, v.follow); err != nil {
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
	if h.verbose {
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
	if h.keep != "" {
		m.kept = t.dir
	}
	return m, nil
}

// Command crash is the crash matrix of the checkpoint protocol: it runs
// pipelines with --checkpoint, crashes them, restarts them on the same
// checkpoint until a run completes, and checks that the sink holds what an
// uninterrupted run writes (README: Delivery guarantees).
//
//	go run ./scripts/crash --bin DIR [--trials N] [--seed S] [--variant REGEX]
//	    [--mode kill|fault|both] [--keep DIR] [-v]
//
// scripts/crash.sh builds the stages into a temporary DIR and runs it.
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
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("crash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{postgres: "postgres://127.0.0.1:5432/test"}
	if u := os.Getenv("DSTREAM_POSTGRES_URL"); u != "" {
		o.postgres = u
	}
	fs.StringVar(&o.bin, "bin", "", "the directory of the stages' binaries (go build -o DIR ./cmd/...)")
	fs.IntVar(&o.trials, "trials", 20, "trials in all, the variants taking turns")
	seed := fs.Uint64("seed", 0, "seed of the first trial (trial i has seed+i; default: from the clock)")
	pattern := fs.String("variant", "", "run the variants whose name matches `REGEX`")
	fs.StringVar(&o.mode, "mode", "both", "kill (kill -9 only), fault (failed fsync or rename only) or both")
	fs.StringVar(&o.keep, "keep", "", "keep the directories of mismatching trials (and the clean runs) in `DIR`")
	fs.StringVar(&o.postgres, "postgres", o.postgres, "the PostgreSQL server of the postgres variant (a schema per trial)")
	fs.BoolVar(&o.verbose, "v", false, "print every trial and what happened in each run")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: scripts/crash.sh [--trials N] [--seed S] [--variant REGEX] [--mode kill|fault|both] [--keep DIR] [-v]")
		fmt.Fprintln(stderr, "   or: crash --bin DIR [the same flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var err error
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.bin == "":
		err = fmt.Errorf("--bin DIR is needed: the directory of the stages (scripts/crash.sh builds them)")
	case o.trials < 1:
		err = fmt.Errorf("--trials %d: want at least 1", o.trials)
	case o.mode != "kill" && o.mode != "fault" && o.mode != "both":
		err = fmt.Errorf("--mode %q: want kill, fault or both", o.mode)
	}
	if err == nil {
		o.variant, err = regexp.Compile(*pattern)
	}
	if err != nil {
		fmt.Fprintf(stderr, "crash: error: %v\n", err)
		return 2
	}
	o.seed = *seed
	if !isSet(fs, "seed") {
		o.seed = uint64(time.Now().UnixNano() % 1e6)
		fmt.Fprintf(stdout, "crash: seed %d\n", o.seed)
	}
	return matrix(o, stdout, stderr)
}

// matrix runs the trials of o, printing to stdout; it returns the exit
// status.
func matrix(o options, stdout, stderr io.Writer) int {
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

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

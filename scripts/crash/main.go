// Command crash runs the crash matrix of the checkpoint protocol
// (internal/crash, where what a trial does is described): pipelines with
// --checkpoint crashed, restarted until a run completes, and their sinks
// compared with an uninterrupted run's.
//
//	go run ./scripts/crash --bin DIR [--trials N] [--seed S] [--variant REGEX]
//	    [--mode kill|fault|both] [--keep DIR] [-v]
//
// scripts/crash.sh builds the stages into a temporary DIR and runs it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/dstream/dstream/internal/crash"
	"github.com/dstream/dstream/internal/pgtest"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("crash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := crash.Options{Postgres: pgtest.URL()}
	fs.StringVar(&o.Bin, "bin", "", "the directory of the stages' binaries (go build -o DIR ./cmd/...)")
	fs.IntVar(&o.Trials, "trials", 20, "trials in all, the variants taking turns")
	seed := fs.Uint64("seed", 0, "seed of the first trial (trial i has seed+i; default: from the clock)")
	pattern := fs.String("variant", "", "run the variants whose name matches `REGEX`")
	fs.StringVar(&o.Mode, "mode", "both", "kill (kill -9 only), fault (failed fsync or rename only) or both")
	fs.StringVar(&o.Keep, "keep", "", "keep the directories of mismatching trials (and the clean runs) in `DIR`")
	fs.StringVar(&o.Postgres, "postgres", o.Postgres, "the PostgreSQL server of the postgres variant (a schema per trial)")
	fs.BoolVar(&o.Verbose, "v", false, "print every trial and what happened in each run")
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
	case o.Bin == "":
		err = fmt.Errorf("--bin DIR is needed: the directory of the stages (scripts/crash.sh builds them)")
	case o.Trials < 1:
		err = fmt.Errorf("--trials %d: want at least 1", o.Trials)
	case o.Mode != "kill" && o.Mode != "fault" && o.Mode != "both":
		err = fmt.Errorf("--mode %q: want kill, fault or both", o.Mode)
	}
	if err == nil {
		o.Variant, err = regexp.Compile(*pattern)
	}
	if err != nil {
		fmt.Fprintf(stderr, "crash: error: %v\n", err)
		return 2
	}
	o.Seed = *seed
	if !isSet(fs, "seed") {
		o.Seed = uint64(time.Now().UnixNano() % 1e6)
		fmt.Fprintf(stdout, "crash: seed %d\n", o.Seed)
	}
	return crash.Run(o, stdout, stderr)
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Command scale runs the scale-out trial of issue #16 (internal/scale,
// where what a trial does is described): copies of a two-tier Kafka
// pipeline, one of each tier killed mid-stream and a new one started, the
// PostgreSQL table compared with the counts of the input.
//
//	go run ./scripts/scale --bin DIR [--trials N] [--seed S] [--keep DIR]
//	    [--postgres URL] [--reference=false] [--events N] [--users N] [-v]
//
// scripts/scale.sh builds the stages into a temporary DIR and runs it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dstream/dstream/internal/pgtest"
	"github.com/dstream/dstream/internal/scale"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := scale.Options{Postgres: pgtest.URL()}
	fs.StringVar(&o.Bin, "bin", "", "the directory of the stages' binaries (go build -o DIR ./cmd/...)")
	fs.IntVar(&o.Trials, "trials", 20, "trials, each with a kill -9 of one copy of each tier")
	seed := fs.Uint64("seed", 0, "seed of the first trial (trial i has seed+i; default: from the clock)")
	fs.StringVar(&o.Keep, "keep", "", "keep the directories (checkpoints, stderr) and PostgreSQL schemas of mismatching trials in `DIR`")
	fs.StringVar(&o.Postgres, "postgres", o.Postgres, "the PostgreSQL server (a schema per trial; default also from DSTREAM_POSTGRES_URL)")
	fs.BoolVar(&o.Reference, "reference", true, "first run one uninterrupted copy of each tier, whose table must equal the input's counts")
	fs.IntVar(&o.Events, "events", scale.DefaultEvents, "events per trial")
	fs.IntVar(&o.Users, "users", scale.DefaultUsers, "users the events are drawn from")
	fs.BoolVar(&o.Verbose, "v", false, "print every trial")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: scripts/scale.sh [--trials N] [--seed S] [--keep DIR] [--postgres URL] [--reference=false] [--events N] [--users N] [-v]")
		fmt.Fprintln(stderr, "   or: scale --bin DIR [the same flags]")
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
		err = fmt.Errorf("--bin DIR is needed: the directory of the stages (scripts/scale.sh builds them)")
	case o.Trials < 0:
		err = fmt.Errorf("--trials %d: want 0 or more", o.Trials)
	case o.Events < 1 || o.Users < 1:
		err = fmt.Errorf("--events %d --users %d: want at least 1 of each", o.Events, o.Users)
	}
	if err != nil {
		fmt.Fprintf(stderr, "scale: error: %v\n", err)
		return 2
	}
	o.Seed = *seed
	if !isSet(fs, "seed") {
		o.Seed = uint64(time.Now().UnixNano() % 1e6)
		fmt.Fprintf(stdout, "scale: seed %d\n", o.Seed)
	}
	return scale.Run(o, stdout, stderr)
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

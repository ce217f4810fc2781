// Package scale is the scale-out trial of issue #16: copies of a two-tier
// pipeline share Kafka partitions, one copy of each tier is killed (kill -9
// of its whole pipeline) in the middle of the stream and a new copy joins
// later, and the PostgreSQL table the stateful tier writes must equal the
// one an uninterrupted single copy writes. scripts/scale.sh builds the
// stages and runs it through the command scripts/scale.
//
// A trial, from its seed: a kfake cluster of 3 brokers in this process,
// topics in and mid of 12 partitions, a PostgreSQL schema of its own, and
// events {"user":"u042","n":17} over about 1000 users, produced into in
// over a few seconds, unkeyed, partition by partition in turn. Three copies
// of each tier run as their own process groups, each with a checkpoint
// directory of its own:
//
//	tier 1: sbatch kafka://K/in --group t1 --scale-out --checkpoint C | smap --select user
//	        | ssink --checkpoint C --kafka kafka://K/mid --key user
//	tier 2: sbatch kafka://K/mid --group t2 --scale-out --checkpoint C
//	        | sreduce -k user --count --running --mode update --checkpoint C
//	        | ssink --checkpoint C --postgres PG --table counts --mode update --key user
//
// At a random moment while the events flow, one copy of each tier is
// killed; a few seconds later a fourth copy of that tier starts. The trial
// waits until the table holds the count of every user's events, and has
// held it for a while after the dead copies' partitions have moved (the
// group's session timeout) and the new copies have joined; or until a
// deadline (90 s), or the table, not equal, has not changed for 30 s. Then
// it stops every copy with SIGTERM (systemctl stop) and compares the table
// with the counts of the input.
//
// Once per invocation, before the trials, one uninterrupted copy of each
// tier runs on the first trial's input: its table must equal the counts
// too (the issue's "the table an uninterrupted single copy writes"), or
// the harness stops there.
//
// Output: a line per mismatch, with the users that differ, the copies'
// stderr and the command that runs the trial again, then
//
//	scale: P/N trials equal
//
// and exit status 1 if P < N. Trial i has seed S+i.
package scale

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// The input of a trial, unless Options say otherwise: the issue's "mid-
// stream" needs a stream that flows for a few seconds, and a thousand keys
// spread over every partition.
const (
	DefaultEvents = 60000
	DefaultUsers  = 1000
)

// Options are the harness's settings (scripts/scale's flags, named in
// parentheses).
type Options struct {
	Bin       string // the directory of the stages' binaries (--bin)
	Trials    int    // (--trials)
	Seed      uint64 // trial i has seed Seed+i (--seed)
	Keep      string // keep the directories and schemas of mismatching trials here, if not "" (--keep)
	Verbose   bool   // a line per trial (-v)
	Postgres  string // the server, a URL; each trial makes a schema of its own (--postgres)
	Reference bool   // run the uninterrupted single copy first (--reference)
	Events    int    // events per trial (--events)
	Users     int    // users they are drawn from (--users)
}

// Run runs the reference run and the trials of o, printing a line per
// mismatch and the summary "scale: P/N trials equal" to stdout, and an
// error that stopped the harness to stderr; it returns the exit status: 0
// if every trial is equal, 1 otherwise.
func Run(o Options, stdout, stderr io.Writer) int {
	if o.Events <= 0 {
		o.Events = DefaultEvents
	}
	if o.Users <= 0 {
		o.Users = DefaultUsers
	}
	for _, s := range []string{"sbatch", "smap", "sreduce", "ssink"} {
		if _, err := os.Stat(filepath.Join(o.Bin, s)); err != nil {
			fmt.Fprintf(stderr, "scale: error: the stages are not built in %s: %v\n", o.Bin, err)
			return 1
		}
	}
	admin, err := sql.Open("pgx", o.Postgres)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		fmt.Fprintf(stderr, "scale: error: PostgreSQL at %s cannot be reached: %v\n", o.Postgres, err)
		fmt.Fprintf(stderr, "scale: hint: start it with scripts/services.sh (scripts/install.sh installs it), or name another server with --postgres URL or DSTREAM_POSTGRES_URL\n")
		return 1
	}
	defer admin.Close()

	// The copies run in process groups of their own, which a Ctrl-C at the
	// terminal does not reach: the harness stops them itself.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := &harness{Options: o, admin: admin, out: stdout}
	if h.Keep != "" {
		err = os.MkdirAll(h.Keep, 0o755)
		h.work = h.Keep
	} else if h.work, err = os.MkdirTemp("", "dstream-scale-"); err == nil {
		defer os.RemoveAll(h.work)
	}
	if err != nil {
		fmt.Fprintf(stderr, "scale: error: %v\n", err)
		return 1
	}

	if o.Reference {
		r, err := h.run(ctx, "reference", o.Seed, plan{copies: 1})
		if err != nil {
			fmt.Fprintf(stderr, "scale: error: %v\n", err)
			return 1
		}
		if !r.equal {
			fmt.Fprint(stdout, r.report("reference", h.repro(o.Seed, true)))
			fmt.Fprintln(stdout, "scale: the uninterrupted single copy of each tier does not write the counts of its input: no trial can be equal; fix that first")
			return 1
		}
		fmt.Fprintf(stdout, "scale: reference run (one copy of each tier, no kill, seed %d): equal after %v\n", o.Seed, r.took)
		r.printNotes(stdout, "reference run")
	}
	equal := 0
	for i := range o.Trials {
		seed := o.Seed + uint64(i)
		name := fmt.Sprintf("trial-%d", seed)
		r, err := h.run(ctx, name, seed, newPlan(seed))
		if err != nil {
			fmt.Fprintf(stderr, "scale: error: %s: %v\n", name, err)
			return 1
		}
		if r.equal {
			equal++
			if o.Verbose {
				fmt.Fprintf(stdout, "scale: trial %d/%d seed %d: equal after %v; %s\n", i+1, o.Trials, seed, r.took, r.what)
			}
			r.printNotes(stdout, fmt.Sprintf("trial %d/%d seed %d", i+1, o.Trials, seed))
			continue
		}
		fmt.Fprint(stdout, r.report(fmt.Sprintf("trial %d/%d", i+1, o.Trials), h.repro(seed, false)))
	}
	fmt.Fprintf(stdout, "scale: %d/%d trials equal\n", equal, o.Trials)
	if equal < o.Trials {
		return 1
	}
	return 0
}

// harness is what the trials share.
type harness struct {
	Options
	admin *sql.DB // to make and drop the trials' schemas
	out   io.Writer
	work  string // the trials' directories are made here
}

// repro is the command that runs a trial again (the reference run, if
// reference): its plan and input are the same; the moments the kills fall
// on in the copies' work depend on the machine's load.
func (h *harness) repro(seed uint64, reference bool) string {
	s := fmt.Sprintf("scripts/scale.sh --seed %d", seed)
	if reference {
		s += " --trials 0"
	} else {
		s += " --trials 1 --reference=false"
	}
	if h.Events != DefaultEvents || h.Users != DefaultUsers {
		s += fmt.Sprintf(" --events %d --users %d", h.Events, h.Users)
	}
	return s + " --keep DIR"
}

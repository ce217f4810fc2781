package scale

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/dstream/dstream/internal/pgtest"
	"github.com/dstream/dstream/internal/procgroup"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kfake"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

const (
	partitions = 12
	// spread is how long the events take to be produced: the kills fall
	// in it, while the stream flows.
	spread = 4 * time.Second
	// deadline, from the first event, is when a trial stops waiting for
	// the table to hold the input's counts.
	deadline = 90 * time.Second
	// moved is how long after a kill the trial waits at least before it
	// takes an equal table for the end: the group's session timeout
	// (about 10 s), after which the dead copy's partitions move and are
	// replayed by their new owners, and the dead copy's Kafka transaction
	// times out (--txn-timeout 10s), with a margin. A table equal before
	// that could still be overwritten by a replay that counts twice.
	moved = 15 * time.Second
	// joined is the same for a copy that joins: its rebalance moves
	// partitions from live copies.
	joined = 5 * time.Second
	// settle is how long an equal table must stay equal.
	settle = 3 * time.Second
	// quiet ends a trial before the deadline whose table, not equal, has
	// not changed for this long since it could have: nothing is coming.
	// Long enough for a session timeout of 45 s (franz-go's default),
	// should a copy not set the 10 s the trial counts on in moved.
	quiet = 30 * time.Second
	// stopTimeout bounds a graceful stop of a copy; after it the copy is
	// killed and reported as hung.
	stopTimeout = 30 * time.Second
)

// plan is what a trial does: how many copies of each tier it starts, and
// per tier, which one it kills and when (nil for no kill).
type plan struct {
	copies int
	kills  [2]*kill
}

// kill is the kill of copy copy (0-based) of a tier at at, counted from
// the first event, and the start of a new copy at join.
type kill struct {
	copy     int
	at, join time.Duration
}

// newPlan draws a trial's plan from its seed: three copies of each tier;
// per tier, one of them killed at a moment in the time the events take to
// come (from 0.5 s on, when the copies have their partitions), and a
// fourth copy started 1 to 6 s after the kill.
func newPlan(seed uint64) plan {
	rng := rand.New(rand.NewPCG(seed, 0xc0b1e5))
	p := plan{copies: 3}
	for t := range p.kills {
		at := 500*time.Millisecond + time.Duration(rng.Int64N(int64(spread-500*time.Millisecond)))
		at = at.Round(time.Millisecond)
		join := at + time.Second + time.Duration(rng.Int64N(int64(5*time.Second)))
		p.kills[t] = &kill{copy: rng.IntN(p.copies), at: at, join: join.Round(time.Millisecond)}
	}
	return p
}

func (p plan) String() string {
	var s []string
	for t, k := range p.kills {
		if k != nil {
			s = append(s, fmt.Sprintf("tier %d: kill -9 copy %d at %v, copy %d starts at %v", t+1, k.copy+1, k.at, p.copies+1, k.join))
		}
	}
	if s == nil {
		if p.copies == 1 {
			return "one copy of each tier, no kill"
		}
		return fmt.Sprintf("%d copies of each tier, no kill", p.copies)
	}
	return strings.Join(s, "; ")
}

// tierCopy is one copy of a tier: its pipeline, in a process group of its own,
// and its directory (checkpoint and the stages' stderr).
type tierCopy struct {
	name   string // t1c2: tier 1, copy 2
	dir    string
	p      *procgroup.Pipeline
	killed bool
	stderr []string // the last lines of each stage's stderr, at the end
}

// result is how a trial ended.
type result struct {
	seed   uint64
	equal  bool
	took   time.Duration // from the first event to an equal table, or to the stop
	what   string        // the plan
	notes  []string      // what came of it that is not as planned: a copy that failed or hung
	diff   []string
	sum    string
	copies []*tierCopy
	kept   string // the trial's directory and schema, kept (--keep)
}

// report describes a trial that is not equal: the users that differ, the
// copies' ends and stderr, and how to run it again (repro).
func (r *result) report(name, repro string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scale: MISMATCH %s seed %d: %s [%s] repro: %s\n", name, r.seed, r.sum, r.how(), repro)
	const most = 20
	for i, d := range r.diff {
		if i == most {
			fmt.Fprintf(&b, "  ... and %d more users\n", len(r.diff)-most)
			break
		}
		fmt.Fprintf(&b, "  %s\n", d)
	}
	for _, c := range r.copies {
		how := c.p.Status()
		if c.killed {
			how += " (killed)"
		}
		fmt.Fprintf(&b, "  copy %s: %s\n", c.name, how)
		for _, l := range c.stderr {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	if r.kept != "" {
		fmt.Fprintf(&b, "  kept: %s\n", r.kept)
	}
	return b.String()
}

// printNotes prints, for a trial that is equal, what did not go as
// planned (a copy that failed, or did not stop on SIGTERM): no mismatch,
// but something to look into.
func (r *result) printNotes(w io.Writer, name string) {
	for _, n := range r.notes {
		fmt.Fprintf(w, "scale: note: %s: %s\n", name, n)
	}
}

// how is the plan and the notes.
func (r *result) how() string { return strings.Join(append([]string{r.what}, r.notes...), "; ") }

// tails returns the last n lines of each stderr file in dir.
func tails(dir string, n int) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.err"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > n {
			out = append(out, fmt.Sprintf("%s: (%d lines before)", filepath.Base(f), len(lines)-n))
			lines = lines[len(lines)-n:]
		}
		out = append(out, lines...)
	}
	return out
}

// run runs one trial (or the reference run) named name. err is for a trial
// that could not be made (kfake, PostgreSQL, a copy that could not start);
// what the copies do, failing included, is in the result.
func (h *harness) run(ctx context.Context, name string, seed uint64, p plan) (*result, error) {
	r := &result{seed: seed, what: p.String()}
	dir := filepath.Join(h.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(partitions, "in", "mid"))
	if err != nil {
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	defer cluster.Close()
	kafka := kafkatest.Seeds(cluster)
	schema, pg, err := pgtest.CreateSchema(h.admin, h.Postgres, "scale_"+strings.ReplaceAll(name, "-", "_"))
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if keep {
			r.kept = fmt.Sprintf("%s, schema %s", dir, schema)
			return
		}
		pgtest.DropSchema(h.admin, schema)
		os.RemoveAll(dir)
	}()
	os.WriteFile(filepath.Join(dir, "postgres-url"), []byte(pg+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "kafka"), []byte(kafka+"\n"), 0o644)
	in := newInput(seed, h.Events, h.Users)
	db, err := sql.Open("pgx", pg)
	if err != nil {
		return nil, err
	}
	defer db.Close()

	var copies [2][]*tierCopy
	start := func(tier int) error {
		c := &tierCopy{name: fmt.Sprintf("t%dc%d", tier+1, len(copies[tier])+1)}
		c.dir = filepath.Join(dir, c.name)
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return err
		}
		out, err := os.Create(filepath.Join(c.dir, "ssink.out"))
		if err != nil {
			return err
		}
		defer out.Close()
		if c.p, err = procgroup.Start(c.dir, h.stages(tier, kafka, pg), out); err != nil {
			return fmt.Errorf("copy %s: %w", c.name, err)
		}
		copies[tier] = append(copies[tier], c)
		r.copies = append(r.copies, c)
		return nil
	}
	// Whatever happens, no copy outlives the trial.
	defer func() {
		for _, c := range r.copies {
			c.p.Kill(-1)
			c.p.Wait(stopTimeout)
		}
	}()
	for tier := range 2 {
		for range p.copies {
			if err := start(tier); err != nil {
				return nil, err
			}
		}
	}

	t0 := time.Now()
	produced := make(chan error, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { produced <- in.produce(pctx, cluster.ListenAddrs(), "in", partitions, spread) }()

	// The events: each kill and each join, in the order of their moments.
	type event struct {
		at   time.Duration
		tier int
		join bool
	}
	var events []event
	notBefore := spread + time.Second
	for tier, k := range p.kills {
		if k != nil {
			events = append(events, event{k.at, tier, false}, event{k.join, tier, true})
			notBefore = max(notBefore, k.at+moved, k.join+joined)
		}
	}
	slices.SortFunc(events, func(a, b event) int { return cmp.Compare(a.at, b.at) })

	var notes []string
	var got map[string]int64
	equalSince, changed := time.Duration(-1), time.Duration(0)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return nil, errors.New("interrupted")
		case err := <-produced:
			if err != nil {
				return nil, err
			}
			produced = nil
		case <-tick.C:
		}
		now := time.Since(t0)
		for len(events) > 0 && events[0].at <= now {
			e := events[0]
			events = events[1:]
			k := p.kills[e.tier]
			if e.join {
				if err := start(e.tier); err != nil {
					return nil, err
				}
				continue
			}
			c := copies[e.tier][k.copy]
			c.killed = true
			if !c.p.Kill(-1) {
				notes = append(notes, fmt.Sprintf("copy %s had exited before its kill (%s)", c.name, c.p.Status()))
			}
		}
		last := got
		if got, err = readCounts(db); err != nil {
			return nil, err
		}
		if !maps.Equal(last, got) {
			changed = now
		}
		if d := diff(in.counts, got); d != nil {
			equalSince = -1
		} else if equalSince < 0 {
			equalSince = now
		}
		switch {
		case equalSince >= 0 && now >= notBefore && now-equalSince >= settle:
			r.took = equalSince.Round(time.Millisecond)
			break wait
		case now >= deadline:
			notes = append(notes, fmt.Sprintf("not equal by the deadline, %v", deadline))
			break wait
		case equalSince < 0 && produced == nil && now-max(changed, notBefore) >= quiet:
			notes = append(notes, fmt.Sprintf("the table, not equal, had not changed for %v at %v", quiet, now.Round(time.Millisecond)))
			break wait
		}
		if len(events) == 0 {
			for tier := range copies {
				if !anyRunning(copies[tier]) {
					notes = append(notes, fmt.Sprintf("every copy of tier %d has exited", tier+1))
					break wait
				}
			}
		}
	}

	// A graceful stop of every copy, as systemctl stop: SIGTERM to each
	// of its processes.
	for _, c := range r.copies {
		if !c.killed {
			c.p.Stop()
		}
	}
	finished := make([]bool, len(r.copies))
	var wg sync.WaitGroup
	for i, c := range r.copies {
		wg.Go(func() { finished[i] = c.p.Wait(stopTimeout) })
	}
	wg.Wait()
	for i, c := range r.copies {
		switch {
		case c.killed:
		case !finished[i]:
			notes = append(notes, fmt.Sprintf("copy %s hung: not stopped %v after SIGTERM (%s)", c.name, stopTimeout, c.p.Status()))
		case !c.p.OK():
			notes = append(notes, fmt.Sprintf("copy %s failed: %s", c.name, c.p.Status()))
		}
	}
	for _, c := range r.copies {
		c.stderr = tails(c.dir, 5)
	}
	if r.took == 0 {
		r.took = time.Since(t0).Round(time.Millisecond)
	}
	if got, err = readCounts(db); err != nil {
		return nil, err
	}
	r.diff = diff(in.counts, got)
	r.sum = summary(in.counts, got)
	r.equal = r.diff == nil
	r.notes = notes
	keep = !r.equal && h.Keep != ""
	return r, nil
}

// stages are the command lines of a copy of tier (0: the stateless tier
// that keys the events by user into mid; 1: the stateful tier that counts
// them into PostgreSQL). Each copy runs in its own directory, its
// checkpoint ck in it. sbatch's URL comes last: urfave/cli takes no flag
// after the first argument.
func (h *harness) stages(tier int, kafka, pg string) []procgroup.Stage {
	var lines [][]string
	if tier == 0 {
		lines = [][]string{
			{"sbatch", "-i", "200ms", "--group", "t1", "--scale-out", "--checkpoint", "ck",
				"--format", "json", "--start", "earliest", "kafka://" + kafka + "/in"},
			{"smap", "--select", "user"},
			{"ssink", "--checkpoint", "ck", "--kafka", "kafka://" + kafka + "/mid", "--key", "user", "--txn-timeout", "10s"},
		}
	} else {
		lines = [][]string{
			{"sbatch", "-i", "200ms", "--group", "t2", "--scale-out", "--checkpoint", "ck",
				"--format", "json", "--meta-field", "_", "--start", "earliest", "kafka://" + kafka + "/mid"},
			{"sreduce", "-k", "user", "--count", "--running", "--mode", "update", "--checkpoint", "ck"},
			{"ssink", "--checkpoint", "ck", "--postgres", pg, "--table", "counts", "--mode", "update", "--key", "user"},
		}
	}
	stages := make([]procgroup.Stage, len(lines))
	for i, l := range lines {
		stages[i] = procgroup.Stage{Name: l[0], Path: filepath.Join(h.Bin, l[0]), Args: l[1:], Stderr: l[0] + ".err"}
	}
	return stages
}

func anyRunning(copies []*tierCopy) bool {
	for _, c := range copies {
		if c.p.Running(-1) {
			return true
		}
	}
	return false
}

// readCounts reads the table counts: the count of each user. A table not
// made yet (no batch written) is empty.
func readCounts(db *sql.DB) (map[string]int64, error) {
	rows, err := db.Query(`SELECT "user", "count" FROM counts`)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading table counts: %w", err)
	}
	defer rows.Close()
	got := map[string]int64{}
	for rows.Next() {
		var user string
		var n int64
		if err := rows.Scan(&user, &n); err != nil {
			return nil, fmt.Errorf("reading table counts: %w", err)
		}
		got[user] = n
	}
	return got, rows.Err()
}

package crash

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/internal/procgroup"
)

// A plan is what a trial does to its runs, drawn from the trial's seed:
// either kills, kill i in run i (so a restart is crashed too when there
// are several), or one fault injected into the first run. The runs after
// the planned ones are left alone until one completes.
type plan struct {
	kills []kill
	fault *fault
}

// kill is a kill -9 of one stage, or of all of them (the process group,
// stage < 0), at a moment of the run: within its first 50 ms (early), or a
// fraction of the clean run's duration. Only the fraction is drawn from the
// seed: where the moment falls in the work of the stages depends on the
// machine's load, so a trial is repeatable in its plan, not exactly in its
// course.
type kill struct {
	stage int
	early bool
	at    float64 // ms within the first 50 if early, else a fraction of the clean run
}

func (k kill) after(clean time.Duration) time.Duration {
	if k.early {
		return time.Duration(k.at * float64(time.Millisecond))
	}
	return time.Duration(k.at * float64(clean))
}

// fault makes one call of one stage fail with EIO: the k-th fsync (or
// fdatasync), or the rename that makes the stage's checkpoint entry of
// batch N (sbatch's offsets/N, a state snapshot N.snapshot, ssink's
// commits/N). strace counts the calls of a syscall per thread, and a Go
// program makes them from several threads, so "the k-th fsync" is that of
// whichever thread gets there first, and may never come; the rename, found
// by its path, is exact.
type fault struct {
	stage int
	sync  bool // fsync call k, else the rename of batch k's entry
	k     int
}

// entry is the checkpoint file that stage writes for batch id.
func entry(stage string, id int) string {
	switch stage {
	case "sbatch":
		return fmt.Sprintf("ck/offsets/%d", id)
	case "ssink":
		return fmt.Sprintf("ck/commits/%d", id)
	}
	return fmt.Sprintf("ck/state/%s/%d.snapshot", stage, id)
}

// wrap is the strace command line that runs stage with the fault, logging
// the calls of the syscalls it fails to log.
func (f *fault) wrap(stage, log string) []string {
	if f.sync {
		return straceWrap("fsync,fdatasync", f.k, "", log)
	}
	return straceWrap("rename,renameat,renameat2", 1, entry(stage, f.k), log)
}

func (f *fault) String(stage string) string {
	if f.sync {
		return fmt.Sprintf("fsync call %d fails in %s", f.k, stage)
	}
	return fmt.Sprintf("%s's rename to %s fails", stage, entry(stage, f.k))
}

// What the plans draw from.
const (
	faultShare = 4 // one trial in faultShare injects a fault, where strace runs
	earlyShare = 3 // one kill in earlyShare falls in the first 50 ms of its run
)

// newPlan draws a trial's plan. batches is the number of batches of the
// clean run, which bounds the calls a fault may hit: sbatch and the stateful
// stages sync twice per batch (the file, the directory), and ssink the same
// for its commits (SQLite syncs its own files besides).
func newPlan(r *rand.Rand, v *variant, batches int, faults, kills bool) plan {
	if faults && (!kills || r.IntN(faultShare) == 0) {
		stages := v.checkpointed()
		f := &fault{stage: stages[r.IntN(len(stages))], sync: r.IntN(2) == 0}
		if f.sync {
			f.k = 1 + r.IntN(2*batches+2)
		} else {
			f.k = r.IntN(batches)
		}
		return plan{fault: f}
	}
	// One kill mostly; the restart killed too in one trial in three.
	n := 1
	for n < 3 && r.IntN(3) == 0 {
		n++
	}
	var p plan
	for range n {
		k := kill{stage: r.IntN(len(v.stages)+1) - 1}
		if r.IntN(earlyShare) == 0 {
			u := r.Float64()
			k.early, k.at = true, 50*u*u // more of them in the first few ms, when the stages start
		} else {
			k.at = r.Float64()
		}
		p.kills = append(p.kills, k)
	}
	return p
}

// rng returns the random source of stream of a trial's seed. ChaCha8, not
// PCG: PCG's first numbers for nearby seeds are alike, and trials have
// consecutive seeds.
func rng(seed uint64, stream byte) *rand.Rand {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	key[8] = stream
	return rand.New(rand.NewChaCha8(key))
}

// trial is the state of one trial (or of a clean run) in its directory.
type trial struct {
	name string // variant-sSEED, or variant-clean
	dir  string
	seed uint64
	vars map[string]string
	// runStarts: where each run's output began in the stdout file of an
	// appending sink.
	runStarts []int64
	// inputDone is closed when in.jsonl is complete (at once, but for a
	// followed file, which a writer appends while the runs go on).
	inputDone chan struct{}
	writeErr  error    // the followed file's writer's, once inputDone is closed
	drops     *dropper // the files of a watched directory (watch.go)
	early     int      // runs of a watched directory stopped too early (see stopWatched)
	log       []string // what happened, a line per run
}

func (t *trial) logf(format string, args ...any) {
	t.log = append(t.log, fmt.Sprintf(format, args...))
}

// What bounds a trial.
const (
	maxFailedRuns = 6                      // runs failing by themselves (no kill, no fault) before a trial gives up
	followWrite   = 600 * time.Millisecond // how long the writer of a followed file takes
	followIdle    = 5 * time.Second        // see stopFollowed
)

// runTimeout is how long a run may take before it counts as hung.
func runTimeout(clean time.Duration) time.Duration { return 30*time.Second + 10*clean }

// execute runs the variant's pipeline in t until a run completes with
// exit 0, applying plan p, and returns a description of what went wrong
// ("" if a run completed). c is the clean run.
func (h *harness) execute(v *variant, t *trial, p plan, c *cleanRun) string {
	failed := 0
	for n := 0; ; n++ {
		var k *kill
		var f *fault
		if n < len(p.kills) {
			k = &p.kills[n]
		}
		if n == 0 {
			f = p.fault
		}
		ok, msg := h.runOnce(v, t, n, k, f, c.took, c.batches)
		switch {
		case msg != "":
			return msg
		case ok:
			return ""
		case k == nil && f == nil:
			if failed++; failed == maxFailedRuns {
				return fmt.Sprintf("no run completed: %d runs in a row failed without a crash (last: %s)", failed, t.log[len(t.log)-1])
			}
		}
	}
}

// runOnce runs the pipeline once (run n), with kill k or fault f if not
// nil, and reports whether every stage exited 0; msg is set for a run that
// could not be run or hung. clean and batches are the clean run's duration
// and batches (0 for the clean run itself).
func (h *harness) runOnce(v *variant, t *trial, n int, k *kill, f *fault, clean time.Duration, batches int) (ok bool, msg string) {
	stages := make([]procgroup.Stage, len(v.stages))
	for i := range v.stages {
		args := v.args(i, t.vars)
		stages[i] = procgroup.Stage{Name: args[0], Path: filepath.Join(h.Bin, args[0]), Args: args[1:],
			Stderr: fmt.Sprintf("run-%d.%s.err", n, args[0])}
	}
	var dropped string
	if v.watch && n > 0 {
		var err error
		if dropped, err = dropWhileDown(t, n); err != nil {
			return false, err.Error()
		}
	}
	var straceLog string
	if f != nil {
		straceLog = fmt.Sprintf("run-%d.strace", n)
		stages[f.stage].Wrap = f.wrap(stages[f.stage].Name, straceLog)
	}
	out, err := v.sink.stdout(t, n)
	if err != nil {
		return false, err.Error()
	}
	pl, err := procgroup.Start(t.dir, stages, out)
	out.Close()
	if err != nil {
		return false, err.Error()
	}
	if v.follow {
		go stopFollowed(pl, t, max(batches-2, -1))
	}
	if v.watch {
		go stopWatched(pl, t, t.early)
	}
	if v.stopper != nil {
		go v.stopper(pl, t, max(batches-2, -1))
	}
	hit := make(chan bool, 1)
	if k != nil {
		go func() {
			select {
			case <-time.After(k.after(clean)):
				hit <- pl.Kill(k.stage)
			case <-pl.Exited():
				hit <- false
			}
		}()
	}
	finished := pl.Wait(runTimeout(clean))
	took := time.Since(pl.Started()).Round(time.Millisecond)

	what := "no crash"
	switch {
	case k != nil:
		target := "all stages"
		if k.stage >= 0 {
			target = stages[k.stage].Name
		}
		what = fmt.Sprintf("kill -9 %s at %v", target, k.after(clean).Round(100*time.Microsecond))
		if !<-hit {
			what += " (too late: the run was over)"
		}
	case f != nil:
		what = f.String(stages[f.stage].Name)
		if b, err := os.ReadFile(filepath.Join(t.dir, straceLog)); err == nil && !strings.Contains(string(b), "INJECTED") {
			what += " (not reached)"
		}
	}
	ok = pl.OK()
	if ok && v.watch && !watchedAll(t) {
		ok = false
		t.early++
		dropped += " (stopped before sbatch had read every file: run again)"
	}
	t.logf("run %d: %s%s; %s after %v%s", n, what, dropped, pl.Status(), took, pl.FirstErrors(t.dir))
	if !finished {
		return false, fmt.Sprintf("run %d hung: not done after %v (%s)", n, runTimeout(clean), what)
	}
	return ok, ""
}

// stopFollowed ends a run of a followed file as a user would, with SIGTERM
// to sbatch (stage 0), once the file is complete and sbatch has read all of
// it. In a trial (last >= 0) also the batches before the one in hand must
// be through: a stop during sbatch's replay of uncommitted batches, which
// reads them at their offsets and not at the file's end, ends the stream
// before them (they are replayed at the next start). So it waits until the
// sink has committed batch last (the clean run's batch before its last,
// which a graceful stop ends), or, should that never come, until nothing
// was committed for followIdle. It gives up when the run is over.
func stopFollowed(p *procgroup.Pipeline, t *trial, last int) {
	path, _ := filepath.Abs(filepath.Join(t.dir, "in.jsonl"))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	committed, since := -1, time.Now()
	for {
		select {
		case <-p.Exited():
			return
		case <-tick.C:
		}
		if c := lastEntry(t.dir, "commits"); c != committed {
			committed, since = c, time.Now()
		}
		select {
		case <-t.inputDone:
		default:
			continue
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		if pos, ok := p.ReadPos(0, path); !ok || pos != fi.Size() {
			continue
		}
		if last < 0 || committed >= last || time.Since(since) >= followIdle {
			p.Terminate(0)
			return
		}
	}
}

// lastEntry is the last batch in the log (offsets, commits) of the
// checkpoint of the trial in dir, or -1.
func lastEntry(dir, log string) int {
	ents, _ := os.ReadDir(filepath.Join(dir, "ck", log))
	last := -1
	for _, e := range ents {
		if id, err := strconv.Atoi(e.Name()); err == nil && id > last {
			last = id
		}
	}
	return last
}

// writeInput writes in.jsonl for t: at once, or for a followed file, in
// chunks of random sizes (cut anywhere, inside lines too) over followWrite,
// as a log grows; for a watched directory, it starts the writer of its
// files (writeWatched).
func writeInput(t *trial, v *variant) error {
	if v.watch {
		return writeWatched(t, v.parquet)
	}
	path := filepath.Join(t.dir, "in.jsonl")
	if v.parquet {
		if err := writeParquet(filepath.Join(t.dir, "in.parquet"), input()); err != nil {
			return err
		}
	}
	t.inputDone = make(chan struct{})
	if !v.follow {
		defer close(t.inputDone)
		return os.WriteFile(path, input(), 0o644)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	data := input()
	const tick = 10 * time.Millisecond
	avg := len(data) / int(followWrite/tick)
	r := rng(t.seed, 1)
	go func() {
		defer close(t.inputDone)
		defer f.Close()
		for len(data) > 0 {
			n := min(len(data), 1+r.IntN(2*avg))
			if _, err := f.Write(data[:n]); err != nil {
				t.writeErr = fmt.Errorf("writing in.jsonl: %w", err)
				return
			}
			data = data[n:]
			time.Sleep(tick)
		}
	}()
	return nil
}

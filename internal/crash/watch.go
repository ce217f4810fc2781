package crash

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dstream/dstream/internal/procgroup"
)

// The watch variant's input: the events (input) and, last, a sentinel, in
// files of whole lines that a writer drops into the directory in/, which
// sbatch --watch reads. Its batches are cut by event time, so they are the
// same whichever way the lines were cut into files, as long as the files
// are read in their order: each is written under a name starting with a
// dot and renamed in (as docs/sbatch.md asks), with modification times a
// second apart, and sbatch reads the files it finds at once oldest first.
//
// The sentinel is a record of the batch after the last event's: reading
// it ends the batch before it, so once the sink has committed that batch,
// sbatch has read every file, and SIGTERM ends the run with the sentinel's
// batch (see stopWatched).
var watchInput = sync.OnceValue(func() (w struct {
	lines [][]byte
	last  int // the batch of the sentinel
}) {
	w.lines = bytes.SplitAfter(input(), []byte("\n"))
	w.lines = w.lines[:len(w.lines)-1] // (after the last newline)
	first, maxTs := math.Inf(1), math.Inf(-1)
	for i, l := range w.lines {
		ts := tsOf(l)
		if i == 0 {
			first = ts
		}
		maxTs = max(maxTs, ts)
	}
	end := math.Floor(maxTs) + 1.5
	w.lines = append(w.lines, fmt.Appendf(nil, "{\"ts\":%.3f,\"k\":\"end\",\"v\":0}\n", end))
	// Batch k of -i 1s is the second k of event time, and the first
	// record's batch has id 0.
	w.last = int(math.Floor(end) - math.Floor(first))
	return w
})

// tsOf is the ts field of an event line, {"ts":SECONDS,...}.
func tsOf(l []byte) float64 {
	_, rest, _ := bytes.Cut(l, []byte(`"ts":`))
	num, _, _ := bytes.Cut(rest, []byte(","))
	ts, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		panic(fmt.Sprintf("crash: event %q: no ts: %v", l, err))
	}
	return ts
}

// How the watch variant's files are cut and dropped.
const (
	watchFiles   = 40            // files in all, on average
	watchModBase = 1_700_000_000 // the modification time of file 0, in unix seconds
	watchDowns   = 3             // the most files dropped before a restart
)

// dropper drops the files of a trial into its directory in/, in order:
// from a writer, over followWrite, and, between runs, from the harness
// (drop).
type dropper struct {
	dir   string
	ext   string // of the files' names: jsonl, parquet
	mu    sync.Mutex
	files [][]byte
	next  int // the number of the next file to drop
	err   error
}

// newDropper cuts the watch variant's input into files of whole lines, of
// sizes drawn from the trial's seed.
func newDropper(t *trial) *dropper {
	d := &dropper{dir: filepath.Join(t.dir, "in"), ext: "jsonl"}
	lines := watchInput().lines
	r := rng(t.seed, 1)
	avg := len(lines) / watchFiles
	for len(lines) > 0 {
		n := min(len(lines), 1+r.IntN(2*avg))
		d.files = append(d.files, bytes.Join(lines[:n], nil))
		lines = lines[n:]
	}
	return d
}

// toParquet makes the files Parquet files of the same rows.
func (d *dropper) toParquet() error {
	for i, f := range d.files {
		var err error
		if d.files[i], err = parquetOf(f); err != nil {
			return err
		}
	}
	d.ext = "parquet"
	return nil
}

// drop drops the next n files (fewer if fewer are left) and reports how
// many it dropped.
func (d *dropper) drop(n int) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	done := 0
	for ; done < n && d.next < len(d.files) && d.err == nil; done++ {
		name := fmt.Sprintf("%04d.%s", d.next, d.ext)
		tmp := filepath.Join(d.dir, "."+name)
		mod := time.Unix(watchModBase+int64(d.next), 0)
		d.err = os.WriteFile(tmp, d.files[d.next], 0o644)
		if d.err == nil {
			d.err = os.Chtimes(tmp, mod, mod)
		}
		if d.err == nil {
			d.err = os.Rename(tmp, filepath.Join(d.dir, name))
		}
		if d.err != nil {
			d.err = fmt.Errorf("dropping %s into in/: %w", name, d.err)
			break
		}
		d.next++
	}
	return done, d.err
}

// write drops the files one by one over followWrite, and then closes
// t.inputDone.
func (d *dropper) write(t *trial) {
	defer close(t.inputDone)
	tick := followWrite / time.Duration(len(d.files))
	for {
		n, err := d.drop(1)
		if err != nil {
			t.writeErr = err
			return
		}
		if n == 0 {
			return
		}
		time.Sleep(tick)
	}
}

// writeWatched makes in/ and starts the writer of t's files.
func writeWatched(t *trial, parquet bool) error {
	t.drops = newDropper(t)
	if parquet {
		if err := t.drops.toParquet(); err != nil {
			return err
		}
	}
	if err := os.Mkdir(t.drops.dir, 0o755); err != nil {
		return err
	}
	t.inputDone = make(chan struct{})
	go t.drops.write(t)
	return nil
}

// dropWhileDown drops up to watchDowns files, of those not dropped yet,
// before run n (n >= 1) starts, while no stage runs: the restart must read
// them as it reads those that come while it runs. How many is drawn from
// the trial's seed.
func dropWhileDown(t *trial, n int) (string, error) {
	want := 1 + rng(t.seed, byte(2+n)).IntN(watchDowns)
	got, err := t.drops.drop(want)
	if err != nil || got == 0 {
		return "", err
	}
	return fmt.Sprintf(", %d file%s dropped before it", got, plural(got)), nil
}

// stopWatched ends a run of the watch variant as a user would, with
// SIGTERM to sbatch (stage 0), once it has read every file: once all are
// dropped and the sink has committed the batch before the sentinel's
// (which reading the sentinel ended). Not before every batch written is
// committed, too: a stop during the replay of the batches the last run
// did not see committed would end the stream before them. It gives up
// when the run is over.
//
// That is not enough in a restart after a kill that left the sentinel's
// batch unwritten: the batch before it is committed from the start, but
// the run has still to read the sentinel. Nothing outside sbatch tells
// when it has (the file is open only for a moment), so such a run may be
// stopped too early: it ends well, without the sentinel's batch, which
// watchedAll sees; the trial then runs the pipeline again, as a user
// would, and this waits longer before the stop: 50 ms for each run
// stopped too early (early) before. As stopFollowed, it stops sbatch also
// when nothing was committed for followIdle.
func stopWatched(p *procgroup.Pipeline, t *trial, early int) {
	last := watchInput().last
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	committed, since := -1, time.Now()
	for {
		select {
		case <-p.Exited():
			return
		case <-tick.C:
		}
		c := lastEntry(t.dir, "commits")
		if c != committed {
			committed, since = c, time.Now()
		}
		select {
		case <-t.inputDone:
		default:
			continue
		}
		if c >= last-1 && lastEntry(t.dir, "offsets") <= c {
			break
		}
		if time.Since(since) >= followIdle {
			// The sink died (killed) while sbatch idles: with event-time
			// batches it writes nothing until a record comes, so it would
			// not learn of it until the stop.
			p.Terminate(0)
			return
		}
	}
	select {
	case <-p.Exited():
		return
	case <-time.After(time.Duration(early) * 50 * time.Millisecond):
	}
	p.Terminate(0)
}

// watchedAll tells whether the sink has committed the sentinel's batch:
// a run that ended well had read every file.
func watchedAll(t *trial) bool { return lastEntry(t.dir, "commits") >= watchInput().last }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

package crash

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"

	"github.com/dstream/dstream/internal/procgroup"
)

// A variant is one pipeline of the matrix: its stages and its sink. Every
// variant reads the same events (see events), from in.jsonl or, for a
// watched directory, from the files of in/ (watch.go), and cuts batches
// by event time (--time-field) or by count (-n), so that a batch holds the
// same records in every run: batch ids and contents are deterministic; so
// are batch times with --time-field, but not with -n (a batch's time is the
// moment it was cut), so no -n variant writes batch times.
type variant struct {
	name string
	// stages are the command lines of the stages, split at spaces (no
	// quoting: no argument has a space); $NAME is a variable of the trial,
	// set by the sink (the database URL).
	stages []string
	sink   sink
	// files are written into the trial's directory before its first run,
	// by name: inputs a stage reads besides the events (an initial state).
	files map[string]string
	// follow: a writer appends in.jsonl while the pipeline runs (sbatch
	// --follow reads it as it grows), and a run ends, once the writer is
	// done and sbatch has read the whole file, with SIGTERM to sbatch (its
	// graceful stop: the batch in hand and the end of the stream go on).
	follow bool
	// broker, if not nil, serves the input from a broker instead of the
	// file in.jsonl (the events are the same), set up per trial.
	broker broker
	// watch: sbatch --watch in reads the input as files that a writer
	// drops into the directory in/ while the pipeline runs, and before a
	// restart, while no stage runs; a run ends, once the writer is done
	// and sbatch has read every file, with SIGTERM to sbatch (watch.go).
	watch bool
	// parquet: the events are in.parquet too (a row per event, written
	// as ssink --format parquet writes), for sbatch --format parquet;
	// with watch, the files dropped are Parquet files.
	parquet bool
	// stopper, if set, ends each run as a user would (SIGTERM), for a
	// source that does not end (a broker's): it is started with the run,
	// and last is the clean run's batch before its last, or -1 for the
	// clean run itself (see stopFollowed).
	stopper func(p *procgroup.Pipeline, t *trial, last int)
}

// broker is a broker a variant reads from, set up for each trial with the
// events and torn down after it.
type broker interface {
	setup(t *trial) error
	teardown(t *trial)
}

// The pieces the variants share.
const (
	eventBatches = "sbatch --checkpoint ck --format json --time-field ts -i 1s in.jsonl"
	runningCount = "sreduce -k k --count --sum v --running --mode update --checkpoint ck"
)

var variants = []*variant{
	{
		name:   "sreduce-update",
		stages: []string{eventBatches, runningCount, "ssink --checkpoint ck --sqlite out.db --table t --mode update --key k"},
		sink:   &sqliteSink{file: "out.db", table: "t"},
	},
	{
		// -n: the batch times differ from run to run; the table does not
		// hold them, and dstream_commits is compared without them.
		name: "sreduce-complete",
		stages: []string{"sbatch --checkpoint ck --format json -n 50 in.jsonl",
			"sreduce -k k --count --sum v --running --mode complete --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t --mode complete"},
		sink: &sqliteSink{file: "out.db", table: "t", noTimes: true},
	},
	{
		name: "swindow-batch",
		stages: []string{eventBatches, "swindow -l 6s -s 2s -k k --count --sum v --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t --batch-field w"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		name: "swindow-event-tumbling",
		stages: []string{eventBatches, "swindow --time-field ts --watermark 2s -l 5s -k k --count --sum v --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t --batch-field b"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		name: "swindow-event-sliding",
		stages: []string{eventBatches, "swindow --time-field ts --watermark 2s -l 6s -s 2s -k k --count --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t --batch-field b"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		// Non-invertible aggregates over batch time: Two-Stacks over the
		// slices, whose stacks the state restores.
		name: "swindow-batch-max",
		stages: []string{eventBatches, "swindow -l 6s -s 2s -k k --count --max v --min v --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t --batch-field w"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		// Event time in update mode, Two-Stacks: a window's row again at
		// every batch that changes it, the span lasting across batches.
		name: "swindow-event-sliding-max-update",
		stages: []string{eventBatches, "swindow --time-field ts --watermark 2s -l 6s -s 2s -k k --max v --count --mode update --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t --batch-field b"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		// First and last by arrival over slices of event time: the
		// arrivals restored with the slices.
		name: "swindow-event-firstlast",
		stages: []string{eventBatches, "swindow --time-field ts --watermark 2s -l 6s -s 2s -k k --first v --last v --count --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t --batch-field b"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		// The records as they are: a key the restored state lost would
		// come out again, a key restored too new would be missing. The
		// event time is not a key: every key is kept (and the late
		// records dropped).
		name: "sdedup",
		stages: []string{eventBatches, "sdedup -k k --time-field ts --watermark 5s --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		// Within the watermark: a key is forgotten 5 s of event time after
		// its first record, so the state both grows and shrinks across
		// the restarts.
		name: "sdedup-within",
		stages: []string{eventBatches, "sdedup -k k --time-field ts --watermark 5s --within-watermark --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		// An initial state (keys of the events, and x1, which no event
		// updates) and keys expired by the 6 s gap, written once with
		// expired true: a replay from batch 0 before any commit starts
		// from the initial state again, a later one from the saved state.
		name: "sreduce-initial-expired",
		stages: []string{eventBatches,
			"sreduce -k k --count --sum v --running --mode update --ttl 3s --emit-expired --initial initial.jsonl --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t --mode update --key k --batch-field b"},
		sink: &sqliteSink{file: "out.db", table: "t"},
		files: map[string]string{"initial.jsonl": `{"k":"k01","count":100,"sum_v":5000}
{"k":"k07","count":1,"sum_v":-1}
{"k":"x1","count":3,"sum_v":30}
`},
	},
	{
		// A window shorter than its slide: the batches between windows
		// are in none.
		name: "swindow-batch-gaps",
		stages: []string{eventBatches, "swindow -l 2s -s 3s -k k --count --sum v --checkpoint ck",
			"ssink --checkpoint ck --sqlite out.db --table t --batch-field w"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		// Sessions of a gap per key (--session-gap-expr), k05's none.
		name: "swindow-session-gap",
		stages: []string{eventBatches, `swindow --time-field ts --watermark 2s --session-gap-expr k<"k03"?"1500ms":k=="k05"?"0s":"700ms" -k k --count --sum v --checkpoint ck`,
			"ssink --checkpoint ck --sqlite out.db --table t --batch-field b"},
		sink: &sqliteSink{file: "out.db", table: "t"},
	},
	{
		name:   "files",
		stages: []string{eventBatches, "sreduce -k k --count --sum v", "ssink --checkpoint ck --files out/p"},
		sink:   &filesSink{dir: "out"},
	},
	{
		// --roll: 3 batches to a file, committed when it is renamed into
		// place; a crash in the middle of a file replays its batches.
		name:   "files-roll",
		stages: []string{eventBatches, "sreduce -k k --count --sum v", "ssink --checkpoint ck --files out/p --roll 3"},
		sink:   &filesSink{dir: "out"},
	},
	{
		// Parquet both ways: sbatch reads in.parquet, replaying by row
		// offsets, and ssink writes 3 batches to a Parquet file, written
		// whole and renamed into place at its last.
		name:    "files-parquet",
		stages:  []string{"sbatch --checkpoint ck --format parquet --time-field ts -i 1s in.parquet", "sreduce -k k --count --sum v", "ssink --checkpoint ck --files out/p --format parquet --roll 3"},
		sink:    &filesSink{dir: "out", parquet: true},
		parquet: true,
	},
	{
		name:   "postgres",
		stages: []string{eventBatches, "sreduce -k k --count --sum v", "ssink --checkpoint ck --postgres $PG --table t --batch-field b"},
		sink:   &postgresSink{table: "t"},
	},
	{
		name:   "append",
		stages: []string{eventBatches, runningCount, "ssink --checkpoint ck --format json --batch-field b"},
		sink:   &appendSink{file: "out.jsonl"},
	},
	{
		// The acceptance: Kafka (4 partitions) -> smap ->
		// sreduce --running -> PostgreSQL, exactly once. --once -n 50:
		// what the topic has, in batches of 50 (AvailableNow).
		name: "kafka",
		stages: []string{"sbatch --checkpoint ck --format json --once -n 50 --start earliest --group crash kafka://$KAFKA/events",
			"smap --filter v>=0 --select k,v", runningCount,
			"ssink --checkpoint ck --postgres $PG --table t --mode update --key k"},
		sink:   &postgresSink{table: "t", noTimes: true},
		broker: &kafkaInput{},
	},
	{
		// The round trip: Kafka to Kafka, each message keyed by k (on
		// Java's partition for it), a transaction per batch; every message
		// once in topic out for a read_committed consumer.
		name: "kafka-roundtrip",
		stages: []string{"sbatch --checkpoint ck --format json --once -n 50 --start earliest kafka://$KAFKA/events",
			"smap --filter v%3!=0 --select k,v",
			"ssink --checkpoint ck --kafka kafka://$KAFKA/out --key k"},
		sink:   kafkaTopic{},
		broker: &kafkaInput{},
	},
	{
		name: "follow",
		stages: []string{"sbatch --follow --checkpoint ck --format json --time-field ts -i 1s in.jsonl",
			runningCount, "ssink --checkpoint ck --sqlite out.db --table t --mode update --key k"},
		sink:   &sqliteSink{file: "out.db", table: "t"},
		follow: true,
	},
	{
		// The records as they are: a file read twice, or not at all,
		// shows as rows too many or missing.
		name: "watch",
		stages: []string{"sbatch --watch in --checkpoint ck --format json --time-field ts -i 1s",
			"ssink --checkpoint ck --sqlite out.db --table t"},
		sink:  &sqliteSink{file: "out.db", table: "t"},
		watch: true,
	},
	{
		// Parquet files dropped into the directory: offsets count rows.
		name: "watch-parquet",
		stages: []string{"sbatch --watch in --checkpoint ck --format parquet --time-field ts -i 1s",
			"ssink --checkpoint ck --sqlite out.db --table t"},
		sink:    &sqliteSink{file: "out.db", table: "t"},
		watch:   true,
		parquet: true,
	},
	{
		// --clean: a file is deleted once the batches that read it are
		// committed, never before (a replay would find it gone).
		name: "watch-clean",
		stages: []string{"sbatch --watch in --checkpoint ck --clean delete --format json --time-field ts -i 1s",
			"ssink --checkpoint ck --sqlite out.db --table t"},
		sink:  &sqliteSink{file: "out.db", table: "t"},
		watch: true,
	},
}

// args returns the command line of stage i, its variables expanded.
func (v *variant) args(i int, vars map[string]string) []string {
	f := strings.Fields(v.stages[i])
	for j := range f {
		f[j] = os.Expand(f[j], func(k string) string { return vars[k] })
	}
	return f
}

// checkpointed returns the stages that write into the checkpoint directory
// (and so fsync and rename): the ones a fault is injected into.
func (v *variant) checkpointed() []int {
	var s []int
	for i, st := range v.stages {
		if strings.Contains(st, "--checkpoint") {
			s = append(s, i)
		}
	}
	return s
}

// Events is the input of every variant: JSON lines {"ts", "k", "v"}, ts in
// unix seconds (with milliseconds) from a fixed start, about 50 a second
// for 80 s, keys "k00".."k29" drawn from a Zipf distribution, v an
// integer below 1000. One record in 20 is up to 3 s late (it joins the
// batch in hand, and a watermark of 2 s drops some of them), and a gap of
// 6 s in the middle gives empty batches.
const (
	inputSeed   = 20260109
	inputEvents = 4000
	inputStart  = 1_800_000_000
)

var input = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(inputSeed, 0))
	z := rand.NewZipf(r, 1.2, 1, 29)
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	t := float64(inputStart)
	for i := range inputEvents {
		t += r.ExpFloat64() / 50
		if i == inputEvents/2 {
			t += 6
		}
		ts := t
		if r.IntN(20) == 0 {
			ts -= 3 * r.Float64()
		}
		fmt.Fprintf(w, "{\"ts\":%.3f,\"k\":\"k%02d\",\"v\":%d}\n", ts, z.Uint64(), r.IntN(1000))
	}
	w.Flush()
	return b.Bytes()
})

package source

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// contBatch is what a test keeps of one batch.
type contBatch struct {
	id     uint64
	time   int64
	values []string
}

// runContinuous runs sbatch -i 0 over what write writes, and returns its
// batches.
func runContinuous(t *testing.T, idle time.Duration, write func(w io.Writer)) []contBatch {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		write(pw)
		pw.Close()
	}()
	var out bytes.Buffer
	e := &stage.Env{Name: "sbatch", Stdin: pr, Out: framing.NewWriter(&out)}
	if err := Run(e, Options{Format: "lines", Continuous: true, Idle: idle}); err != nil {
		t.Fatal(err)
	}
	if err := e.Out.Close(); err != nil {
		t.Fatal(err)
	}
	var bs []contBatch
	r := framing.NewReader(&out)
	var f framing.Frame
	for {
		if err := r.Read(&f); err != nil {
			t.Fatal(err)
		}
		switch f.Kind {
		case framing.KindBatchBegin:
			bs = append(bs, contBatch{id: f.BatchID, time: f.Time})
		case framing.KindRecords:
			recs := f.Records()
			for {
				rec, ok := recs.Next()
				if !ok {
					break
				}
				js, _, err := record.AppendJSON(nil, rec)
				if err != nil {
					t.Fatal(err)
				}
				bs[len(bs)-1].values = append(bs[len(bs)-1].values, string(js))
			}
		case framing.KindEnd:
			return bs
		}
	}
}

// checkContinuous checks what holds whatever the timing: ids count up from
// 0, times rise strictly, and the records are lines 1 to n, in order.
func checkContinuous(t *testing.T, bs []contBatch, n int) {
	t.Helper()
	next := 1
	for i, b := range bs {
		if b.id != uint64(i) {
			t.Fatalf("batch %d has id %d", i, b.id)
		}
		if i > 0 && b.time <= bs[i-1].time {
			t.Fatalf("batch %d has time %d, not after batch %d's %d", i, b.time, i-1, bs[i-1].time)
		}
		for _, v := range b.values {
			if want := fmt.Sprintf(`{"value":"%d"}`, next); v != want {
				t.Fatalf("batch %d: record %s, want %s", i, v, want)
			}
			next++
		}
	}
	if next != n+1 {
		t.Fatalf("%d records, want %d", next-1, n)
	}
}

// A burst: every line once, in batches with consecutive ids and strictly
// rising times, also with many cuts in one millisecond.
func TestContinuousBurst(t *testing.T) {
	const n = 300_000
	bs := runContinuous(t, time.Second, func(w io.Writer) {
		// Small writes, so that the producer hands over many chunks.
		for i := 1; i <= n; i += 100 {
			var b []byte
			for j := i; j < i+100; j++ {
				b = strconv.AppendInt(b, int64(j), 10)
				b = append(b, '\n')
			}
			w.Write(b)
		}
	})
	checkContinuous(t, bs, n)
	if len(bs) < 2 {
		t.Errorf("%d batches for %d small writes: the cut waits for more than what was read", len(bs), n/100)
	}
}

// A trickle: each line leaves in a batch of its own, cut at its read, not
// at the idle tick (10s, longer than the test).
func TestContinuousCutAtRead(t *testing.T) {
	const gap = 200 * time.Millisecond
	var written []int64
	bs := runContinuous(t, 10*time.Second, func(w io.Writer) {
		for i := 1; i <= 3; i++ {
			written = append(written, time.Now().UnixMilli())
			fmt.Fprintf(w, "%d\n", i)
			time.Sleep(gap)
		}
	})
	checkContinuous(t, bs, 3)
	if len(bs) != 3 {
		t.Fatalf("%d batches for 3 lines written %v apart, want one each", len(bs), gap)
	}
	for i, b := range bs {
		// The batch time is the time of the cut.
		if lag := b.time - written[i]; lag > 150 {
			t.Errorf("line %d written at %d left in a batch of time %d: %d ms later", i+1, written[i], b.time, lag)
		}
	}
}

// While idle, empty batches go on every --continuous-idle.
func TestContinuousIdle(t *testing.T) {
	const idle = 20 * time.Millisecond
	bs := runContinuous(t, idle, func(w io.Writer) {
		for i := 1; i <= 2; i++ {
			fmt.Fprintf(w, "%d\n", i)
			time.Sleep(10 * idle)
		}
	})
	checkContinuous(t, bs, 2)
	empty := 0
	for _, b := range bs {
		if len(b.values) == 0 {
			empty++
		}
	}
	// 2 gaps of 10 idle intervals: about 9 empty batches each.
	if empty < 8 {
		t.Errorf("%d empty batches over %v idle, every %v: want at least 8", empty, 2*10*idle, idle)
	}
}

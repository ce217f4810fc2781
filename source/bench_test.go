package source

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/stage"
)

// BenchmarkOnce runs the hot path of sbatch --once: the producer decoding
// lines in its goroutine, the batcher writing their chunks as one batch.
func BenchmarkOnce(b *testing.B) {
	lines := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 100_000)
	b.SetBytes(int64(len(lines)))
	b.ReportAllocs()
	for b.Loop() {
		e := &stage.Env{Name: "sbatch", Stdin: bytes.NewReader(lines), Out: framing.NewWriter(io.Discard)}
		if err := Run(e, Options{Format: "lines", Once: true, Interval: 1000}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCountTracked cuts a batch every 1000 records with the position
// moved as with --checkpoint (the Tracker a stub that writes nothing): the
// loop of runCount without its select on a stop, which needs a running
// stage.
func BenchmarkCountTracked(b *testing.B) {
	lines := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 100_000)
	b.SetBytes(int64(len(lines)))
	b.ReportAllocs()
	for b.Loop() {
		e := &stage.Env{Name: "sbatch", Stdin: bytes.NewReader(lines), Out: framing.NewWriter(io.Discard)}
		o := Options{Format: "lines", Count: 1000, Interval: 1000, Checkpoint: "unused"}
		p := newProducer(&list{ins: []Input{{Name: "stdin", R: nopClose{e.Stdin}}}}, o, nil)
		go p.run()
		bt := &batcher{e: e, o: o, chunks: p.out, free: p.free, ck: &cursor{t: nopTracker{}}, w: e.Out, buffered: true}
		for c := range p.out {
			if err := bt.takeCounted(c, 0); err != nil {
				b.Fatal(err)
			}
			if c.eof || c.err != nil {
				break
			}
		}
		if err := bt.end(0); err != nil {
			b.Fatal(err)
		}
	}
}

// nopTracker tracks nothing.
type nopTracker struct{}

func (nopTracker) Dir() string                             { return "" }
func (nopTracker) Inputs() ([]Input, error)                { return nil, nil }
func (nopTracker) Replay() []stage.Batch                   { return nil }
func (nopTracker) Resume() (Position, uint64, int64, bool) { return Position{}, 0, 0, false }
func (nopTracker) Reached(Position, bool)                  {}
func (nopTracker) Write(uint64, int64, Position) error     { return nil }

// BenchmarkContinuous runs sbatch -i 0 over a file-like input: a batch at
// every hand-over of the producer (about one per 64 KiB chunk here).
func BenchmarkContinuous(b *testing.B) {
	lines := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 100_000)
	b.SetBytes(int64(len(lines)))
	b.ReportAllocs()
	for b.Loop() {
		e := &stage.Env{Name: "sbatch", Stdin: bytes.NewReader(lines), Out: framing.NewWriter(io.Discard)}
		if err := Run(e, Options{Format: "lines", Continuous: true, Idle: time.Second}); err != nil {
			b.Fatal(err)
		}
	}
}

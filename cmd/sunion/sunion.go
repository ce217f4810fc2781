package main

import (
	"strings"

	"github.com/dstream/dstream/stage"
	"github.com/dstream/dstream/union"
)

var command = &stage.Command{
	Name:      "sunion",
	Usage:     "the union of the input and other streams of the same batch interval (DStream.union)",
	ArgsUsage: "STREAM...",
	Input:     true,
	Output:    true,
	Description: `sunion writes the union of its input (stdin, or --in) and each STREAM: one
batch per batch time, holding the records of every stream's batch at that
time, the input's first, then each STREAM's in the order given (DStream's
union and StreamingContext.union; Structured Streaming's union).

A STREAM is a file or FIFO of frames (a process substitution <(sbatch ...)
is one), or an endpoint that accepts one connection of frames,
tcp-listen://HOST:PORT or unix-listen:///PATH (or connects: tcp://,
unix://). Each is opened when sunion starts reading, so FIFOs fed by one
upstream through tee open in any order. The flags go before the STREAMs.

Batches are aligned by batch time: the streams must have the same batch
interval, as DStream.union requires, and then their batches at the same
time make one batch, with the id of the first stream's (in the order above)
that has one. A stream without a batch at a time, or that has ended, counts
as empty there; sunion ends when every stream has. Batch times must rise on
each stream. The records of the streams after the first are held until
their batch at that time is whole, so sunion holds at most one batch of each
in memory.

Watermarks: the output watermark is the minimum of the streams' latest
watermarks (Spark's default multiple-watermark policy), passed on when it
rises; a stream that has ended no longer holds it back.

Checkpoint: sunion keeps no state. A Checkpoint frame (a source replaying
with sbatch --checkpoint) is passed on once. Streams of one replaying source
split with tee are fine; otherwise a stream announcing a checkpoint and
another with batches and none, or another checkpoint, are refused: their
batch ids would mix, and a sink's commits with them.

A stream that fails or ends without its end-of-stream frame stops sunion
with an error naming it (Spark's union fails when an input stream returns
no batch).

Examples:
  sbatch -i 1s a.log | sunion <(sbatch -i 1s b.log) | ssink
  mkfifo errors.fifo
  sbatch -i 1s --format json | tee >(smap --filter 'status >= 500' > errors.fifo) | sunion errors.fifo | ssink
  sbatch -i 1s app.log | sunion tcp-listen://:7070 unix-listen:///run/edge.sock | sreduce -k value --count | ssink`,
	Action: run,
}

func run(e *stage.Env) error {
	if e.Ctx.NArg() == 0 {
		return stage.Hint(stage.UsageError("no STREAM to unite with the input"),
			"give one or more streams of frames: files, FIFOs, <(sbatch ...), tcp-listen://HOST:PORT or unix-listen:///PATH")
	}
	specs := e.Ctx.Args().Slice()
	for _, spec := range specs {
		if spec == "-" {
			return stage.UsageError("STREAM -: stdin is sunion's input already (or --in): name the other streams")
		}
		if strings.HasPrefix(spec, "-") {
			// Only after "--": anywhere else it is a flag.
			return stage.UsageError("STREAM %s: a name that begins with - reads as a flag: write ./%s", spec, spec)
		}
	}
	ins := []stage.Input{e.MainInput()}
	for _, spec := range specs {
		in, err := e.OpenInput(spec)
		if err != nil {
			return err
		}
		ins = append(ins, in)
	}
	return e.LoopInputs(ins, union.New(e.Out, len(ins)))
}

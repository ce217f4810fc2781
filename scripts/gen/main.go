// Command gen makes the benchmark inputs of scripts/bench.sh and measures
// end-to-end latency (internal/gen describes what each subcommand writes).
//
//	go run ./scripts/gen words -lines 500000 -per 10 -vocab 10000 -o FILE
//	go run ./scripts/gen keys -n 1000000 -o FILE
//	go run ./scripts/gen latency -rate 100000 -d 5s -- 'sbatch -i 10ms | ssink --format lines'
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/dstream/dstream/internal/gen"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: gen words|keys|latency [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "words":
		err = words(args[1:])
	case "keys":
		err = keys(args[1:])
	case "latency":
		err = latency(args[1:])
	default:
		fmt.Fprintf(os.Stderr, "gen: error: unknown subcommand %q (words, keys, latency)\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen: error: %v\n", err)
		return 1
	}
	return 0
}

func words(args []string) error {
	fs := flag.NewFlagSet("words", flag.ContinueOnError)
	lines := fs.Int("lines", 500000, "lines to write")
	per := fs.Int("per", 10, "words per line")
	vocab := fs.Int("vocab", 10000, "vocabulary size")
	out := fs.String("o", "-", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return gen.WriteFile(*out, func(w *bufio.Writer) error { return gen.Words(w, *lines, *per, *vocab) })
}

func keys(args []string) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	n := fs.Int("n", 1000000, "distinct keys")
	out := fs.String("o", "-", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return gen.WriteFile(*out, func(w *bufio.Writer) error { return gen.Keys(w, *n) })
}

func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	var o gen.LatencyOptions
	fs.IntVar(&o.Rate, "rate", 100000, "lines per second")
	fs.DurationVar(&o.Duration, "d", 5*time.Second, "how long to send")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "records sent in this first part are not counted")
	fs.DurationVar(&o.Tick, "tick", time.Millisecond, "send the lines due every `DUR`")
	fs.IntVar(&o.Pad, "pad", 40, "bytes of padding after the timestamp (a line of ~60 bytes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("latency: want one pipeline argument, e.g. 'sbatch -i 10ms | ssink --format lines'")
	}
	o.Pipeline = fs.Arg(0)
	r, err := gen.Latency(o, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Println(r)
	return nil
}

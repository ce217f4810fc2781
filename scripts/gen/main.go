// Command gen makes the benchmark inputs of scripts/bench.sh and measures
// end-to-end latency (internal/gen describes what each subcommand writes).
//
//	go run ./scripts/gen words -lines 500000 -per 10 -vocab 10000 -o FILE
//	go run ./scripts/gen keys -n 1000000 -o FILE
//	go run ./scripts/gen latency -rate 100000 -d 5s -- 'sbatch -i 10ms | ssink --format lines'
//	go run ./scripts/gen time -o FILE -- COMMAND [ARG...]
//
// time runs COMMAND and writes to FILE "WALL_USER_SYS_MAXRSS" (seconds,
// seconds, seconds, KB), as GNU time's -f %e_%U_%S_%M does but to the
// microsecond, of COMMAND and the children it waited for; it exits as
// COMMAND did. A CPU time to the hundredth of a second (GNU time's) could
// not tell 5% of the word count's 0.2 s.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/dstream/dstream/internal/gen"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: gen words|keys|latency|time [flags]")
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
	case "time":
		return timeCmd(args[1:])
	default:
		fmt.Fprintf(os.Stderr, "gen: error: unknown subcommand %q (words, keys, latency, time)\n", args[0])
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

// timeCmd is gen time: see the package's comment.
func timeCmd(args []string) int {
	fs := flag.NewFlagSet("time", flag.ContinueOnError)
	out := fs.String("o", "", "the file to write the times to")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: gen time -o FILE -- COMMAND [ARG...]")
		return 2
	}
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		fmt.Fprintf(os.Stderr, "gen: error: %v\n", err)
		return 127
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		fmt.Fprintln(os.Stderr, "gen: error: no resource usage on this system")
		return 1
	}
	sec := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	line := fmt.Sprintf("%.6f_%.6f_%.6f_%d\n", wall.Seconds(), sec(ru.Utime), sec(ru.Stime), ru.Maxrss)
	if werr := os.WriteFile(*out, []byte(line), 0o644); werr != nil {
		fmt.Fprintf(os.Stderr, "gen: error: %v\n", werr)
		return 1
	}
	return cmd.ProcessState.ExitCode()
}

// Command gen makes the benchmark inputs of scripts/bench.sh and measures
// end-to-end latency. Everything it writes is a function of its flags and a
// fixed seed, so every run of the benchmarks reads the same bytes.
//
//	go run ./scripts/gen words -lines 500000 -per 10 -vocab 10000 -o FILE
//	go run ./scripts/gen keys -n 1000000 -o FILE
//	go run ./scripts/gen latency -rate 100000 -d 5s -- 'sbatch -i 10ms | ssink --format lines'
//
// words: lines of -per words, each word drawn from a Zipf distribution
// (exponent 1, as in natural language) over a vocabulary of -vocab
// pronounceable words ("ba", "ke", ..., "bake", ...): the most frequent words
// are the shortest.
//
// keys: -n distinct keys ("key0000000", ...), one a line, in a shuffled order.
//
// latency: runs the pipeline under sh -c, writes to its stdin at a steady
// -rate lines a second, each line beginning with its send time (wall clock, in
// ns since the epoch: both ends run on this machine), reads the pipeline's
// output, and reports p50/p90/p99/max of receive time - send time over the
// records sent after -warmup. The output's lines must begin with the number
// that was sent (ssink --format lines, or tsv without its header).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

const seed = 20240601

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

// writeFile writes through fill into a temporary file beside path and renames
// it into place, so an interrupted run never leaves a short input in the
// cache that the next run would trust.
func writeFile(path string, fill func(w *bufio.Writer) error) error {
	if path == "" || path == "-" {
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		if err := fill(w); err != nil {
			return err
		}
		return w.Flush()
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fill(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

var (
	consonants = []byte("bdfghjklmnprstvwxyz") // 19
	vowels     = []byte("aeiou")               // 5
)

// word returns the pronounceable word of rank k: k in bijective base
// len(syllables), one consonant-vowel syllable per digit, so that every rank
// has its own word and low ranks have short words.
func word(k int) string {
	n := len(consonants) * len(vowels)
	var b []byte
	for k++; k > 0; k = (k - 1) / n {
		d := (k - 1) % n
		b = append(b, vowels[d%len(vowels)], consonants[d/len(vowels)])
	}
	slices.Reverse(b)
	return string(b)
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
	if *vocab < 1 || *per < 1 || *lines < 0 {
		return errors.New("words: -vocab and -per must be positive, -lines not negative")
	}
	voc := make([]string, *vocab)
	cdf := make([]float64, *vocab)
	sum := 0.0
	for k := range voc {
		voc[k] = word(k)
		sum += 1 / float64(k+1)
		cdf[k] = sum
	}
	r := rand.New(rand.NewPCG(seed, 1))
	return writeFile(*out, func(w *bufio.Writer) error {
		for range *lines {
			for j := range *per {
				if j > 0 {
					w.WriteByte(' ')
				}
				k := sort.SearchFloat64s(cdf, r.Float64()*sum)
				w.WriteString(voc[min(k, len(voc)-1)])
			}
			if err := w.WriteByte('\n'); err != nil {
				return err
			}
		}
		return nil
	})
}

func keys(args []string) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	n := fs.Int("n", 1000000, "distinct keys")
	out := fs.String("o", "-", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 2))
	perm := r.Perm(*n)
	return writeFile(*out, func(w *bufio.Writer) error {
		buf := []byte("key")
		for _, k := range perm {
			buf = strconv.AppendInt(buf[:3], int64(k), 10)
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
}

func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	rate := fs.Int("rate", 100000, "lines per second")
	dur := fs.Duration("d", 5*time.Second, "how long to send")
	warm := fs.Duration("warmup", time.Second, "records sent in this first part are not counted")
	tick := fs.Duration("tick", time.Millisecond, "send the lines due every `DUR`")
	pad := fs.Int("pad", 40, "bytes of padding after the timestamp (a line of ~60 bytes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("latency: want one pipeline argument, e.g. 'sbatch -i 10ms | ssink --format lines'")
	}
	cmd := exec.Command("sh", "-c", fs.Arg(0))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}

	// The reader keeps every latency; 100k/s for a few seconds is small.
	var (
		wg       sync.WaitGroup
		lat      []time.Duration
		received int
		readErr  error
	)
	start := time.Now()
	warmNs := start.Add(*warm).UnixNano()
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			now := time.Now().UnixNano()
			b := sc.Bytes()
			i := 0
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				i++
			}
			sent, err := strconv.ParseInt(string(b[:i]), 10, 64)
			if err != nil {
				continue // a header row, say
			}
			received++
			if sent >= warmNs {
				lat = append(lat, time.Duration(now-sent))
			}
		}
		readErr = sc.Err()
	}()

	padding := make([]byte, *pad)
	for i := range padding {
		padding[i] = 'x'
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	sent := 0
	var line []byte
	for {
		el := time.Since(start)
		if el >= *dur {
			break
		}
		due := int(el.Seconds() * float64(*rate))
		if due > sent {
			ns := time.Now().UnixNano()
			for ; sent < due; sent++ {
				line = strconv.AppendInt(line[:0], ns, 10)
				line = append(line, ' ')
				line = append(line, padding...)
				line = append(line, '\n')
				w.Write(line)
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing to the pipeline: %w", err)
			}
		}
		time.Sleep(*tick)
	}
	sendTime := time.Since(start)
	stdin.Close()
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	if readErr != nil {
		return readErr
	}
	if received != sent {
		return fmt.Errorf("sent %d lines, received %d", sent, received)
	}
	if len(lat) == 0 {
		return errors.New("no records after the warm-up")
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	ms := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 2, 64) }
	// One line of key=value pairs, for the script to pick apart.
	fmt.Printf("sent=%d rate=%.0f counted=%d p50_ms=%s p90_ms=%s p99_ms=%s max_ms=%s\n",
		sent, float64(sent)/sendTime.Seconds(), len(lat), ms(q(0.50)), ms(q(0.90)), ms(q(0.99)), ms(lat[len(lat)-1]))
	return nil
}

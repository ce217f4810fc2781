// Package gen makes the benchmark inputs of scripts/bench.sh and measures
// end-to-end latency; the command scripts/gen runs it. Everything it writes
// is a function of its arguments and a fixed seed, so every run of the
// benchmarks reads the same bytes.
//
// Words: lines of words, each word drawn from a Zipf distribution (exponent
// 1, as in natural language) over a vocabulary of pronounceable words ("ba",
// "ke", ..., "bake", ...): the most frequent words are the shortest.
//
// Keys: distinct keys ("key0000000", ...), one a line, in a shuffled order.
//
// Latency: runs a pipeline under sh -c, writes to its stdin at a steady rate,
// each line beginning with its send time (wall clock, in ns since the epoch:
// both ends run on this machine), reads the pipeline's output, and reports
// p50/p90/p99/max of receive time - send time over the records sent after
// the warm-up. The output's lines must begin with the number that was sent
// (ssink --format lines, or tsv without its header).
package gen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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

// WriteFile writes through fill into a temporary file beside path and renames
// it into place, so an interrupted run never leaves a short input in the
// cache that the next run would trust. A path of "" or "-" is stdout.
func WriteFile(path string, fill func(w *bufio.Writer) error) error {
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

// Words writes lines lines of per words each, drawn from a vocabulary of
// vocab words (the flags -lines, -per and -vocab of scripts/gen words).
func Words(w *bufio.Writer, lines, per, vocab int) error {
	if vocab < 1 || per < 1 || lines < 0 {
		return errors.New("words: -vocab and -per must be positive, -lines not negative")
	}
	voc := make([]string, vocab)
	cdf := make([]float64, vocab)
	sum := 0.0
	for k := range voc {
		voc[k] = word(k)
		sum += 1 / float64(k+1)
		cdf[k] = sum
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for range lines {
		for j := range per {
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
}

// Keys writes n distinct keys, one a line, in a shuffled order (scripts/gen
// keys -n).
func Keys(w *bufio.Writer, n int) error {
	r := rand.New(rand.NewPCG(seed, 2))
	buf := []byte("key")
	for _, k := range r.Perm(n) {
		buf = strconv.AppendInt(buf[:3], int64(k), 10)
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// LatencyOptions are the settings of Latency (scripts/gen latency's flags,
// named in parentheses).
type LatencyOptions struct {
	Pipeline string        // the pipeline, run under sh -c (the argument)
	Rate     int           // lines a second (-rate)
	Duration time.Duration // how long to send (-d)
	Warmup   time.Duration // records sent in this first part are not counted (-warmup)
	Tick     time.Duration // send the lines due every Tick (-tick)
	Pad      int           // bytes of padding after the timestamp (-pad)
}

// LatencyResult is what Latency measured.
type LatencyResult struct {
	Sent               int     // lines sent (and received)
	Rate               float64 // lines a second actually sent
	Counted            int     // lines sent after the warm-up, whose latencies count
	P50, P90, P99, Max time.Duration
}

// String is the result as one line of key=value pairs, for a script to
// pick apart.
func (r LatencyResult) String() string {
	ms := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 2, 64) }
	return fmt.Sprintf("sent=%d rate=%.0f counted=%d p50_ms=%s p90_ms=%s p99_ms=%s max_ms=%s",
		r.Sent, r.Rate, r.Counted, ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
}

// Latency runs o.Pipeline, its stderr going to stderr, sends it lines at
// o.Rate and measures the time each takes to come out.
func Latency(o LatencyOptions, stderr io.Writer) (LatencyResult, error) {
	cmd := exec.Command("sh", "-c", o.Pipeline)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return LatencyResult{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return LatencyResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return LatencyResult{}, err
	}

	// The reader keeps every latency; 100k/s for a few seconds is small.
	var (
		wg       sync.WaitGroup
		lat      []time.Duration
		received int
		readErr  error
	)
	start := time.Now()
	warmNs := start.Add(o.Warmup).UnixNano()
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

	padding := make([]byte, o.Pad)
	for i := range padding {
		padding[i] = 'x'
	}
	w := bufio.NewWriterSize(stdin, 1<<20)
	sent := 0
	var line []byte
	for {
		el := time.Since(start)
		if el >= o.Duration {
			break
		}
		due := int(el.Seconds() * float64(o.Rate))
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
				return LatencyResult{}, fmt.Errorf("writing to the pipeline: %w", err)
			}
		}
		time.Sleep(o.Tick)
	}
	sendTime := time.Since(start)
	stdin.Close()
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		return LatencyResult{}, fmt.Errorf("pipeline: %w", err)
	}
	if readErr != nil {
		return LatencyResult{}, readErr
	}
	if received != sent {
		return LatencyResult{}, fmt.Errorf("sent %d lines, received %d", sent, received)
	}
	if len(lat) == 0 {
		return LatencyResult{}, errors.New("no records after the warm-up")
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	return LatencyResult{
		Sent: sent, Rate: float64(sent) / sendTime.Seconds(), Counted: len(lat),
		P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: lat[len(lat)-1],
	}, nil
}

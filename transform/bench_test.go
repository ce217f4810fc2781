package transform

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/benchutil"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// benchInput is a stream of batches of {"value": LINE}, LINE about 60
// bytes of 10 words (the field notes' record), framed as sbatch frames it.
var benchInput = sync.OnceValues(func() ([]byte, int) { return genInput(false) })

// statusInput is the same lines with an HTTP status code after them,
// {"value": LINE, "status": CODE}, one record in ten a 5xx.
var statusInput = sync.OnceValues(func() ([]byte, int) { return genInput(true) })

func genInput(status bool) ([]byte, int) {
	const batches, perBatch = 100, 10000
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the of and to in is was that for it with as his on be at by had are but from or have an they which one you were all we her she there would their will when who him been has more if no out")
	codes := []int64{200, 200, 200, 200, 200, 200, 301, 404, 500, 503}
	hdr := byte(0x81) // a map of one field
	if status {
		hdr = 0x82
	}
	var buf bytes.Buffer
	w := framing.NewWriter(&buf)
	var rec, line []byte
	for id := range batches {
		w.BeginBatch(uint64(id), int64(id)*1000)
		for range perBatch {
			line = line[:0]
			for k := range 10 {
				if k > 0 {
					line = append(line, ' ')
				}
				line = append(line, words[rng.IntN(len(words))]...)
			}
			rec = record.AppendStringBytes(append(rec[:0], hdr, 0xa5, 'v', 'a', 'l', 'u', 'e'), line)
			if status {
				rec = record.AppendInt(record.AppendString(rec, "status"), codes[rng.IntN(len(codes))])
			}
			w.WriteRecord(rec)
		}
		w.EndBatch()
	}
	w.Close()
	return buf.Bytes(), batches * perBatch
}

// countingWriter counts the records of the stream written to it, as the
// next stage would read them.
type countingWriter struct {
	pw   *io.PipeWriter
	done chan int
}

func newCounter() *countingWriter {
	pr, pw := io.Pipe()
	c := &countingWriter{pw: pw, done: make(chan int, 1)}
	go func() { c.done <- consume(pr) }()
	return c
}

func (c *countingWriter) Write(p []byte) (int, error) { return c.pw.Write(p) }

func (c *countingWriter) wait() int {
	c.pw.Close()
	return <-c.done
}

// consume reads a stream to its end and walks every record, as a sink
// reading the field value would; it returns the number of records.
func consume(r io.Reader) int {
	fr := framing.NewReader(r)
	var f framing.Frame
	n, sum := 0, 0
	for fr.Read(&f) == nil {
		if f.Kind != framing.KindRecords {
			continue
		}
		recs := f.Records()
		for {
			rec, ok := recs.Next()
			if !ok {
				break
			}
			v, _, _ := record.Get(rec, "value")
			sum += len(v)
			n++
		}
	}
	io.Copy(io.Discard, r)
	return n
}

// benchSmap runs the engine in process over the bench input as smap runs
// it, a stage reading frames, the operations, writing frames (thrown away).
// It reports records per second of wall time and of CPU time.
func benchSmap(b *testing.B, ops ...Op) { benchSmapOn(b, benchInput, ops...) }

func benchSmapOn(b *testing.B, input func() ([]byte, int), ops ...Op) {
	in, n := input()
	cmd := command(Options{Ops: ops})
	args := []string{"smap"}
	c := newCounter()
	var stderr bytes.Buffer
	if code := cmd.Run(args, bytes.NewReader(in), c, &stderr); code != 0 {
		b.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := c.wait()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	cpu0 := benchutil.CPUTime()
	for b.Loop() {
		if code := cmd.Run(args, bytes.NewReader(in), io.Discard, &stderr); code != 0 {
			b.Fatalf("exit %d: %s", code, stderr.String())
		}
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(n*b.N)/s, "in-rec/s")
	b.ReportMetric(float64(out*b.N)/s, "out-rec/s")
	if cpu := (benchutil.CPUTime() - cpu0).Seconds(); cpu > 0 {
		b.ReportMetric(float64(out*b.N)/cpu, "out-rec/cpu-s")
	}
	b.ReportMetric(0, "ns/op")
}

func BenchmarkPassthrough(b *testing.B) { benchSmap(b) }
func BenchmarkFilterTrue(b *testing.B)  { benchSmap(b, Op{Kind: Filter, Arg: "true"}) }

// BenchmarkFilterKeepAll runs an expression on every record that keeps
// them all: they leave as the raw block.
func BenchmarkFilterKeepAll(b *testing.B) { benchSmap(b, Op{Kind: Filter, Arg: "len(value) > 0"}) }
func BenchmarkFilterHalf(b *testing.B)    { benchSmap(b, Op{Kind: Filter, Arg: `value < "m"`}) }
func BenchmarkFlatSplit(b *testing.B)     { benchSmap(b, Op{Kind: Flat, Arg: `split(value, " ")`}) }

// BenchmarkFlatSplitGeneric is the same split without the fast path.
func BenchmarkFlatSplitGeneric(b *testing.B) {
	benchSmap(b, Op{Kind: Flat, Arg: `split(value + "", " ")`})
}
func BenchmarkSetSelect(b *testing.B) {
	benchSmap(b, Op{Kind: Set, Arg: "n=len(value)"}, Op{Kind: Select, Arg: "value,n"})
}
func BenchmarkMapLiteral(b *testing.B) {
	benchSmap(b, Op{Kind: Map, Arg: `{"w": upper(value), "n": len(value)}`, Positional: true})
}
func BenchmarkParseJSON(b *testing.B) {
	benchSmap(b, Op{Kind: Set, Arg: `value=sprintf("{\"v\": %q, \"n\": 1}", value)`}, Op{Kind: ParseJSON, Arg: "value"})
}

// BenchmarkFilterSimple runs predicates that expr.Program.FastBool
// evaluates on the raw record, with no binding and no VM: smap as a whole
// (records/s of wall time), and its operations alone (records per CPU
// second; none/core is smap with no operation, which passes each block on
// without walking its records).
func BenchmarkFilterSimple(b *testing.B) {
	b.Run("none/core", func(b *testing.B) { benchCoreOn(b, statusBlocks) })
	for _, src := range []string{`value != ""`, `status >= 500`, `len(value) > 3 && value startsWith "a"`} {
		b.Run(src+"/smap", func(b *testing.B) { benchSmapOn(b, statusInput, Op{Kind: Filter, Arg: src}) })
		b.Run(src+"/core", func(b *testing.B) { benchCoreOn(b, statusBlocks, Op{Kind: Filter, Arg: src}) })
	}
}

// BenchmarkPipeline compares a pipeline of three stages joined by real
// pipes (a producer writing frames | smap --filter true | a consumer
// walking every record) with the same pipeline without smap.
func BenchmarkPipeline(b *testing.B) {
	in, n := benchInput()
	for _, mid := range []*Op{nil, {Kind: Filter, Arg: "true"}, {Kind: Filter, Arg: "len(value) > 0"}} {
		name := "without-smap"
		if mid != nil {
			name = fmt.Sprintf("smap --%s %s", mid.Kind, mid.Arg)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				pr, pw, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					pw.Write(in)
					pw.Close()
				}()
				src := pr
				var mr, mw *os.File
				var code int
				var stderr bytes.Buffer
				done := make(chan struct{})
				if mid != nil {
					if mr, mw, err = os.Pipe(); err != nil {
						b.Fatal(err)
					}
					go func() {
						code = command(Options{Ops: []Op{*mid}}).Run([]string{"smap"}, pr, mw, &stderr)
						mw.Close()
						close(done)
					}()
					src = mr
				} else {
					close(done)
				}
				if got := consume(src); got != n {
					b.Fatalf("%d records, want %d", got, n)
				}
				<-done
				if code != 0 {
					b.Fatalf("exit %d: %s", code, stderr.String())
				}
				pr.Close()
				if mr != nil {
					mr.Close()
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rec/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// coreBlocks is the bench input read once into its blocks, for benchmarks
// of the operations alone: no reading, no writing, one goroutine.
var coreBlocks = sync.OnceValues(func() ([][]byte, []int) { return blocksOf(benchInput) })

// statusBlocks is statusInput's blocks.
var statusBlocks = sync.OnceValues(func() ([][]byte, []int) { return blocksOf(statusInput) })

func blocksOf(input func() ([]byte, int)) (blocks [][]byte, counts []int) {
	in, _ := input()
	r := framing.NewReader(bytes.NewReader(in))
	var f framing.Frame
	for r.Read(&f) == nil {
		if f.Kind == framing.KindRecords {
			blocks = append(blocks, append([]byte(nil), f.Payload...))
			counts = append(counts, int(f.Count))
		}
	}
	return blocks, counts
}

// benchCore runs the operations over the bench input's blocks in one
// goroutine, the output framed but thrown away: the cost of smap's own
// work, per core.
func benchCore(b *testing.B, ops ...Op) { benchCoreOn(b, coreBlocks, ops...) }

func benchCoreOn(b *testing.B, input func() ([][]byte, []int), ops ...Op) {
	p, err := compile(ops)
	if err != nil {
		b.Fatal(err)
	}
	blocks, counts := input()
	n := 0
	for _, c := range counts {
		n += c
	}
	w := framing.NewWriter(io.Discard)
	var stats stage.Stats
	m := newEngine(p, w, io.Discard, &stats, false)
	b.ReportAllocs()
	out := uint64(0)
	cpu0 := benchutil.CPUTime()
	for b.Loop() {
		bt := stage.Batch{ID: 1}
		m.Begin(bt)
		for i, blk := range blocks {
			if err := m.Block(bt, framing.NewRecords(blk, counts[i])); err != nil {
				b.Fatal(err)
			}
		}
		out += w.BatchCount()
		m.End(bt)
	}
	s := b.Elapsed().Seconds()
	if cpu := (benchutil.CPUTime() - cpu0).Seconds(); cpu > 0 {
		// Records per second of CPU time: per core, and steadier than the
		// wall clock on a shared machine.
		s = cpu
	}
	b.ReportMetric(float64(n*b.N)/s, "in-rec/cpu-s")
	b.ReportMetric(float64(out)/s, "out-rec/cpu-s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkCoreFilterKeepAll(b *testing.B) { benchCore(b, Op{Kind: Filter, Arg: "len(value) > 0"}) }
func BenchmarkCoreFlatSplit(b *testing.B)     { benchCore(b, Op{Kind: Flat, Arg: `split(value, " ")`}) }
func BenchmarkCoreSetSelect(b *testing.B) {
	benchCore(b, Op{Kind: Set, Arg: "n=len(value)"}, Op{Kind: Select, Arg: "value,n"})
}
func BenchmarkCoreMapLiteral(b *testing.B) {
	benchCore(b, Op{Kind: Map, Arg: `{"w": upper(value), "n": len(value)}`, Positional: true})
}

package join

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/benchutil"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

var cities = []string{"paris", "rome", "oslo", "lima", "kyiv", "quito", "accra", "hanoi", "dakar", "perth"}

// writeUsers writes a CSV table of n users, id 0 to n-1:
// id,name,city,plan.
func writeUsers(tb testing.TB, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "id,name,city,plan")
	for i := range n {
		fmt.Fprintf(w, "%d,user-%07d,%s,%s\n", i, i, cities[i%len(cities)], []string{"free", "pro"}[i%2])
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

// clicks returns n records {"id": K, "page": "/p/N", "ms": N}, K uniformly
// drawn in [0, keys): every lookup is a random access into the table.
func clicks(n, keys int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	recs := make([][]byte, n)
	for i := range recs {
		b := record.AppendMapHeader(nil, 3)
		b = record.AppendInt(record.AppendString(b, "id"), int64(r.IntN(keys)))
		b = record.AppendString(record.AppendString(b, "page"), fmt.Sprintf("/p/%d", i%1000))
		recs[i] = record.AppendInt(record.AppendString(b, "ms"), int64(i%5000))
	}
	return recs
}

var users1M string // the CSV of 1M users, made once per test binary

func usersTable(tb testing.TB) string {
	if users1M == "" {
		dir, err := os.MkdirTemp("", "sjoin-bench-")
		if err != nil {
			tb.Fatal(err)
		}
		users1M = filepath.Join(dir, "users.csv")
		writeUsers(tb, users1M, 1_000_000)
	}
	return users1M
}

func TestMain(m *testing.M) {
	code := m.Run()
	if users1M != "" {
		os.RemoveAll(filepath.Dir(users1M))
	}
	os.Exit(code)
}

// BenchmarkStaticJoin is `sjoin --table users.csv --on id` against 1M
// users (ids as the CSV's strings, the stream's as integers), batches of
// 100k records with uniformly random ids (a tenth without a match), through
// the handler (no pipe, no framing decode): one op is one batch. The ids of
// hot-1k are a thousand only, whose rows stay in the cache: the cost of a
// join without the cache misses of the lookups.
func BenchmarkStaticJoin(b *testing.B) {
	for _, c := range []struct {
		name string
		how  How
		keys int // the stream's ids are drawn in [0, keys)
	}{{"inner", Inner, 1_100_000}, {"left", Left, 1_100_000}, {"inner-hot-1k", Inner, 1000}} {
		how := c.how
		b.Run(c.name, func(b *testing.B) {
			src, err := ParseSource(usersTable(b), "")
			if err != nil {
				b.Fatal(err)
			}
			src.Reload = -1
			s, err := NewStatic(Options{On: []string{"id"}, How: how, Prefix: DefaultPrefix}, src, framing.NewWriter(io.Discard), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			const perBatch = 100_000
			fs := frametest.Blocks(clicks(perBatch, c.keys))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := benchutil.CPUTime()
			for i := range b.N {
				bt := stage.Batch{ID: uint64(i), Time: int64(i+1) * 1000}
				if err := s.Begin(bt); err != nil {
					b.Fatal(err)
				}
				for j := range fs {
					if err := s.Block(bt, fs[j].Records()); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.End(bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*perBatch/b.Elapsed().Seconds(), "records/s")
			if cpu := benchutil.CPUTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(b.N)*perBatch/cpu.Seconds(), "records/cpu-s")
			}
		})
	}
}

// BenchmarkLoadCSV loads the table of 1M users: the start-up, and each
// reload.
func BenchmarkLoadCSV(b *testing.B) {
	src, err := ParseSource(usersTable(b), "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		if _, err := src.Load([]string{"id"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(1e6*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestTableMemory loads 1M users and reports the bytes a row costs: the
// table's own estimate and the live heap. It fails beyond 100 bytes a row.
func TestTableMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	path := usersTable(t)
	src, err := ParseSource(path, "")
	if err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	tab, err := src.Load([]string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	fi, _ := os.Stat(path)
	rows := float64(tab.Len())
	t.Logf("1M rows (%.1f MB of CSV) loaded in %v: table %.1f bytes/row (rows' bytes %.1f, index %.1f), live heap %.1f bytes/row, peak RSS %s",
		float64(fi.Size())/1e6, took.Round(time.Millisecond), float64(tab.MemoryUsed())/rows, float64(len(tab.data))/rows,
		float64(8*len(tab.slots))/rows, float64(heap)/rows, benchutil.PeakRSS())
	if per := float64(heap) / rows; per > 100 {
		t.Errorf("%.1f bytes a row, want at most 100", per)
	}
	runtime.KeepAlive(tab)
}

package join

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

func TestSide(t *testing.T) {
	s := newSide(1)
	body := record.AppendMapHeader(nil, 1)
	body = record.AppendString(record.AppendString(body, "v"), string(bytes.Repeat([]byte("x"), 100)))
	const n = 30000
	for i := range n {
		raw := record.AppendInt(nil, int64(i%1000))
		key, _ := appendKey(nil, raw)
		if _, err := s.add(key, int64(n-i), false, raw, body); err != nil { // times falling: the heap sorts them
			t.Fatal(err)
		}
	}
	count := func(k int64) int {
		key, _ := appendKey(nil, record.AppendInt(nil, k))
		c := 0
		for r := s.first(key); r >= 0; r = s.rows[r].next {
			if !bytes.Equal(s.body(r), body) {
				t.Fatalf("row %d: body %x", r, s.body(r))
			}
			c++
		}
		return c
	}
	if c := count(7); c != 30 {
		t.Errorf("key 7: %d rows, want 30", c)
	}
	var times []int64
	removed, err := s.evict(2*n/3, func(r int32) error { times = append(times, s.rows[r].t); return nil })
	if err != nil || removed != 2*n/3 || s.live != n/3 {
		t.Fatalf("evicted %d (%v), %d left; want %d and %d", removed, err, s.live, 2*n/3, n/3)
	}
	for i, tm := range times {
		if tm != int64(i+1) {
			t.Fatalf("evicted in the order %v...", times[:i+1])
		}
	}
	if s.garbage != 0 {
		t.Errorf("%d bytes of garbage: no compaction", s.garbage)
	}
	if c := count(7); c != 10 {
		t.Errorf("key 7 after: %d rows, want 10", c)
	}
	// The rows of half the keys gone: their index entries too.
	s.evict(n, nil)
	if len(s.index) != 0 || s.live != 0 || len(s.heap) != 0 {
		t.Errorf("all evicted: %d keys, %d rows, %d in the heap", len(s.index), s.live, len(s.heap))
	}
}

// joinEvents returns n records a side: {"user": U, "ts": SECONDS, "x": N},
// users drawn from users, the times rising by span/n a record with a jitter
// of a few seconds (out of order), cut in batches of 10 s of event time.
func joinEvents(n, users int, span time.Duration, side string) []framing.Frame {
	r := rand.New(rand.NewPCG(uint64(len(side)), 9))
	step := span.Seconds() / float64(n)
	var frames []framing.Frame
	var block []byte
	count := 0
	for i := range n {
		ts := float64(i)*step + r.Float64()*5
		b := record.AppendMapHeader(nil, 3)
		b = record.AppendInt(record.AppendString(b, "user"), int64(r.IntN(users)))
		b = record.AppendFloat(record.AppendString(b, "ts"), ts)
		b = record.AppendString(record.AppendString(b, side), fmt.Sprintf("%s-%d", side, i))
		block = framing.AppendRecord(block, b)
		count++
		if count == 1000 || i == n-1 {
			frames = append(frames, framing.Frame{Kind: framing.KindRecords, Count: uint64(count), Payload: block})
			block, count = nil, 0
		}
	}
	return frames
}

// TestStreamStateBounded joins 1M records a side over 100 minutes of event
// time, with a watermark of 10 minutes and --within 1m, full outer, and
// checks that the state stops growing once the watermark has passed its
// first rows: its rows and bytes at the end are within a tenth of what they
// were at a quarter of the way. It logs the figures, and the heap.
func TestStreamStateBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n, per = 1_000_000, 1000
	span := 100 * time.Minute
	left, right := joinEvents(n, 100_000, span, "l"), joinEvents(n, 100_000, span, "r")
	s, err := NewStream(Options{On: []string{"user"}, How: Full, Prefix: DefaultPrefix},
		StreamOptions{TimeField: "ts", Unit: codec.Seconds, Watermark: 10 * time.Minute, HasWatermark: true, Within: time.Minute, HasWithin: true},
		framing.NewWriter(io.Discard), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A batch is 1000 records a side: 6 s of event time.
	a := &stage.Aligned{In: make([]stage.Batch, 2), Has: []bool{true, true}}
	var quarter [2]int64
	for i := range left {
		a.Batch = stage.Batch{ID: uint64(i), Time: int64(i+1) * 6000}
		a.In[0], a.In[1] = a.Batch, a.Batch
		if err := s.Begin(a); err != nil {
			t.Fatal(err)
		}
		if err := s.Block(a, 0, left[i].Records()); err != nil {
			t.Fatal(err)
		}
		if err := s.Block(a, 1, right[i].Records()); err != nil {
			t.Fatal(err)
		}
		if err := s.End(a); err != nil {
			t.Fatal(err)
		}
		if (i+1)%(len(left)/10) == 0 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			l, r := s.Rows()
			t.Logf("%3d%%: %d + %d rows, state %.1f MB (%.0f bytes a row), heap in use %.1f MB",
				(i+1)*100/len(left), l, r, float64(s.MemoryUsed())/1e6, float64(s.MemoryUsed())/float64(l+r), float64(m.HeapInuse)/1e6)
			if (i+1)*4 >= len(left) && quarter[0] == 0 {
				quarter = [2]int64{int64(l + r), s.MemoryUsed()}
			}
			if (i + 1) == len(left) {
				if rows := int64(l + r); rows > quarter[0]*11/10 {
					t.Errorf("%d rows at the end, %d at a quarter: the state grows", rows, quarter[0])
				}
				if mem := s.MemoryUsed(); mem > quarter[1]*11/10 {
					t.Errorf("%d bytes at the end, %d at a quarter: the state grows", mem, quarter[1])
				}
			}
		}
	}
}

// FuzzStreamState loads arbitrary snapshots: an error or a state, never a
// panic, and a state that saves back to what it loaded from.
func FuzzStreamState(f *testing.F) {
	s, err := NewStream(Options{On: []string{"k"}, How: Full, Prefix: DefaultPrefix},
		StreamOptions{TimeField: "t", Unit: codec.Seconds, Watermark: time.Second, HasWatermark: true, Within: time.Second, HasWithin: true},
		framing.NewWriter(io.Discard), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	a := &stage.Aligned{Batch: stage.Batch{ID: 0, Time: 1000}, In: make([]stage.Batch, 2), Has: []bool{true, true}}
	s.Begin(a)
	var l, r []byte
	for _, js := range []string{`{"k":1,"t":5,"a":"x"}`, `{"k":null,"t":6}`, `{"k":"2","t":7,"b":[1,2]}`} {
		rec, _ := record.AppendJSONObject(nil, []byte(js))
		l = framing.AppendRecord(l, rec)
		r = framing.AppendRecord(r, rec)
	}
	s.Block(a, 0, framing.NewRecords(l, 3))
	s.Block(a, 1, framing.NewRecords(r, 3))
	s.End(a)
	var snap bytes.Buffer
	if err := s.save(&snap); err != nil {
		f.Fatal(err)
	}
	f.Add(snap.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s2, _ := NewStream(Options{On: []string{"k"}, How: Full, Prefix: DefaultPrefix},
			StreamOptions{TimeField: "t", Unit: codec.Seconds, Watermark: time.Second, HasWatermark: true, Within: time.Second, HasWithin: true},
			framing.NewWriter(io.Discard), nil, nil)
		if err := s2.load(data); err != nil {
			return
		}
		var out bytes.Buffer
		if err := s2.save(&out); err != nil {
			t.Fatal(err)
		}
		// Every row can be written out and evicted.
		s2.out.BeginBatch(1, 2000)
		for i := range 2 {
			if _, err := s2.evict(i, 1<<62); err != nil {
				t.Fatal(err)
			}
		}
		s2.out.EndBatch()
	})
}

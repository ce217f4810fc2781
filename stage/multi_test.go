package stage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/record"
)

// union is a test stage over several inputs: each aligned batch becomes one
// output batch with the records of input 0, then input 1, and so on. Its
// trace has a line per aligned batch, "ID@TIME 0:ID 1:- ...: RECORDS" (- for
// an input without a batch at TIME), and one per watermark, "wm T".
type union struct {
	out    *framing.Writer
	blocks [][]byte
	counts []int
	line   string
	trace  []string
}

func newUnion(out *framing.Writer, n int) *union {
	return &union{out: out, blocks: make([][]byte, n), counts: make([]int, n)}
}

func (u *union) Begin(a *Aligned) error {
	u.line = fmt.Sprintf("%d@%d", a.ID, a.Time)
	for i, has := range a.Has {
		if has {
			u.line += fmt.Sprintf(" %d:%d", i, a.In[i].ID)
		} else {
			u.line += fmt.Sprintf(" %d:-", i)
		}
	}
	return u.out.BeginBatch(a.ID, a.Time)
}

func (u *union) Block(a *Aligned, input int, recs framing.Records) error {
	if !a.Has[input] {
		return fmt.Errorf("a block of input %d, which has no batch at %d", input, a.Time)
	}
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		u.blocks[input] = framing.AppendRecord(u.blocks[input], rec)
		u.counts[input]++
	}
	return nil
}

func (u *union) End(*Aligned) error {
	u.line += ":"
	for i := range u.blocks {
		recs := framing.NewRecords(u.blocks[i], u.counts[i])
		for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
			js, _, err := record.AppendJSON(nil, rec)
			if err != nil {
				return err
			}
			u.line += " " + string(js)
		}
		if u.counts[i] > 0 {
			if err := u.out.WriteRawBlock(u.blocks[i], u.counts[i]); err != nil {
				return err
			}
		}
		u.blocks[i], u.counts[i] = u.blocks[i][:0], 0
	}
	u.trace = append(u.trace, u.line)
	return u.out.EndBatch()
}

func (u *union) Watermark(t int64) error {
	u.trace = append(u.trace, fmt.Sprintf("wm %d", t))
	return u.out.Watermark(t)
}

// A test stream is a list of items: a batch (b), a watermark (wm) or a
// checkpoint (ck); build frames them, in blocks of at most 40 bytes.
type item struct {
	batch *frametest.Batch
	wm    *int64
	ck    string
}

func b(id uint64, t int64, recs ...string) item {
	return item{batch: &frametest.Batch{ID: id, Time: t, Recs: recs}}
}
func wm(t int64) item   { return item{wm: &t} }
func ck(id string) item { return item{ck: id} }

func build(tb testing.TB, items ...item) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := framing.NewWriter(&buf)
	w.BlockSize = 40
	for _, it := range items {
		switch {
		case it.wm != nil:
			w.Watermark(*it.wm)
		case it.ck != "":
			w.Checkpoint(it.ck, "/ck/"+it.ck)
		default:
			w.BeginBatch(it.batch.ID, it.batch.Time)
			for _, r := range it.batch.Recs {
				m, err := record.AppendJSONObject(nil, []byte(r))
				if err != nil {
					tb.Fatalf("%s: %v", r, err)
				}
				w.WriteRecord(m)
			}
			w.EndBatch()
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// runUnion runs the union over the streams, named left, right, third, and
// returns its trace and output.
func runUnion(tb testing.TB, streams ...[]byte) (trace []string, out []byte, err error) {
	tb.Helper()
	names := []string{"left", "right", "third"}
	var ins []Input
	for i, s := range streams {
		ins = append(ins, Input{Name: names[i], R: framing.NewReader(bytes.NewReader(s))})
	}
	var buf bytes.Buffer
	e := &Env{Name: "union", Out: framing.NewWriter(&buf)}
	u := newUnion(e.Out, len(ins))
	done := make(chan error, 1)
	go func() { done <- e.LoopInputs(ins, u) }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		tb.Fatal("LoopInputs did not return")
	}
	if err == nil {
		err = e.Out.Close()
	}
	return u.trace, buf.Bytes(), err
}

func TestLoopInputsAlignment(t *testing.T) {
	tests := []struct {
		name        string
		left, right []item
		want        []string
	}{
		{"aligned",
			[]item{b(0, 1000, `{"l":0}`), b(1, 2000, `{"l":1}`, `{"l":2}`)},
			[]item{b(0, 1000, `{"r":0}`), b(1, 2000, `{"r":1}`)},
			[]string{`0@1000 0:0 1:0: {"l":0} {"r":0}`, `1@2000 0:1 1:1: {"l":1} {"l":2} {"r":1}`}},
		{"missing batch on the right",
			[]item{b(0, 1000, `{"l":0}`), b(1, 2000, `{"l":1}`), b(2, 3000, `{"l":2}`)},
			[]item{b(5, 1000, `{"r":5}`), b(6, 3000, `{"r":6}`)},
			[]string{`0@1000 0:0 1:5: {"l":0} {"r":5}`, `1@2000 0:1 1:-: {"l":1}`, `2@3000 0:2 1:6: {"l":2} {"r":6}`}},
		{"missing batch on the left takes the right's id",
			[]item{b(0, 2000, `{"l":0}`)},
			[]item{b(7, 1000, `{"r":7}`), b(8, 2000, `{"r":8}`)},
			[]string{`7@1000 0:- 1:7: {"r":7}`, `0@2000 0:0 1:8: {"l":0} {"r":8}`}},
		{"no common time",
			[]item{b(0, 1000, `{"l":0}`), b(1, 3000, `{"l":1}`)},
			[]item{b(0, 2000, `{"r":0}`), b(1, 4000, `{"r":1}`)},
			[]string{`0@1000 0:0 1:-: {"l":0}`, `0@2000 0:- 1:0: {"r":0}`, `1@3000 0:1 1:-: {"l":1}`, `1@4000 0:- 1:1: {"r":1}`}},
		{"left ends first",
			[]item{b(0, 1000, `{"l":0}`)},
			[]item{b(0, 1000, `{"r":0}`), b(1, 2000, `{"r":1}`), b(2, 3000)},
			[]string{`0@1000 0:0 1:0: {"l":0} {"r":0}`, `1@2000 0:- 1:1: {"r":1}`, `2@3000 0:- 1:2:`}},
		{"right ends first",
			[]item{b(0, 1000), b(1, 2000, `{"l":1}`)},
			[]item{b(0, 1000, `{"r":0}`)},
			[]string{`0@1000 0:0 1:0: {"r":0}`, `1@2000 0:1 1:-: {"l":1}`}},
		{"right empty",
			[]item{b(0, 1000, `{"l":0}`)},
			nil,
			[]string{`0@1000 0:0 1:-: {"l":0}`}},
		{"both empty", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trace, out, err := runUnion(t, build(t, tt.left...), build(t, tt.right...))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Join(trace, "\n"), strings.Join(tt.want, "\n"); got != want {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
			// The output is a well-formed stream of the same batches.
			var want strings.Builder
			for _, l := range tt.want {
				id, _, _ := strings.Cut(l, " ")
				recs := ""
				if i := strings.Index(l, ": "); i >= 0 {
					recs = l[i+1:]
				}
				want.WriteString(id + ":" + recs + "\n")
			}
			if got := frametest.Render(t, out); got != want.String() {
				t.Fatalf("output\n%s\nwant\n%s", got, want.String())
			}
		})
	}
}

func TestLoopInputsWatermark(t *testing.T) {
	tests := []struct {
		name        string
		left, right []item
		want        []string
	}{
		{"the minimum of the two",
			[]item{b(0, 1000), wm(500), b(1, 2000), wm(1500), b(2, 3000)},
			[]item{b(0, 1000), wm(700), b(1, 2000), wm(900), b(2, 3000)},
			[]string{"0@1000 0:0 1:0:", "wm 500", "1@2000 0:1 1:1:", "wm 900", "2@3000 0:2 1:2:"}},
		{"rises only",
			[]item{b(0, 1000), wm(800), b(1, 2000), wm(600), b(2, 3000), wm(1200), b(3, 4000)},
			[]item{b(0, 1000), wm(900), b(1, 2000), wm(950), b(2, 3000), wm(1000), b(3, 4000)},
			[]string{"0@1000 0:0 1:0:", "wm 800", "1@2000 0:1 1:1:", "2@3000 0:2 1:2:", "wm 1000", "3@4000 0:3 1:3:"}},
		{"only inputs that sent one count",
			[]item{wm(800), b(0, 1000), wm(1800), b(1, 2000), wm(2800), b(2, 3000)},
			[]item{b(0, 1000), b(1, 2000), wm(300), b(2, 3000)},
			[]string{"wm 800", "0@1000 0:0 1:0:", "wm 1800", "1@2000 0:1 1:1:", "2@3000 0:2 1:2:"}},
		{"an ended input no longer holds it back",
			[]item{b(0, 1000), wm(100)},
			[]item{b(0, 1000), wm(5000), b(1, 2000), b(2, 3000)},
			[]string{"0@1000 0:0 1:0:", "wm 5000", "1@2000 0:- 1:1:", "2@3000 0:- 1:2:"}},
		{"a missing batch",
			[]item{b(0, 1000), wm(400), b(1, 2000), wm(1400), b(2, 3000)},
			[]item{b(0, 1000), wm(600), b(1, 3000)},
			[]string{"0@1000 0:0 1:0:", "wm 400", "1@2000 0:1 1:-:", "wm 600", "2@3000 0:2 1:1:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trace, out, err := runUnion(t, build(t, tt.left...), build(t, tt.right...))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Join(trace, "\n"), strings.Join(tt.want, "\n"); got != want {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
			if got, want := watermarks(t, out), watermarksOf(tt.want); got != want {
				t.Fatalf("output watermarks %s, want %s", got, want)
			}
		})
	}
}

// watermarks lists the Watermark frames of a stream.
func watermarks(t *testing.T, s []byte) string {
	r := framing.NewReader(bytes.NewReader(s))
	var f framing.Frame
	var l []string
	for {
		err := r.Read(&f)
		if err == io.EOF {
			return strings.Join(l, " ")
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind == framing.KindWatermark {
			l = append(l, fmt.Sprint(f.Time))
		}
	}
}

func watermarksOf(trace []string) string {
	var l []string
	for _, s := range trace {
		if t, ok := strings.CutPrefix(s, "wm "); ok {
			l = append(l, t)
		}
	}
	return strings.Join(l, " ")
}

func TestLoopInputsErrors(t *testing.T) {
	good := build(t, b(0, 1000, `{"l":0}`), b(1, 2000, `{"l":1}`))
	long := build(t, b(0, 1000, `{"r":0}`), b(1, 2000, `{"r":1}`, `{"r":2}`, `{"r":3}`))
	tests := []struct {
		name        string
		left, right []byte
		err         string
		is          error
		trace       int // aligned batches done before the error
	}{
		{"right truncated between batches", good, frametest.Cut(t, []frametest.Batch{{ID: 0, Time: 1000}}),
			"reading input 1 (right): after batch 0: framing: stream truncated: the stream ended without its end-of-stream frame", framing.ErrTruncated, 1},
		{"right truncated inside a batch", good, long[:len(long)-60],
			"reading input 1 (right): batch 1: framing: stream truncated: the stream ended inside a", framing.ErrTruncated, 1},
		{"left empty", nil, good,
			"reading input 0 (left): framing: stream truncated: the input is empty", framing.ErrTruncated, 0},
		{"left not dstream", []byte("hello\n"), good,
			"reading input 0 (left): framing: input is not a dstream stream", framing.ErrNotDstream, 0},
		{"times do not rise", build(t, b(0, 2000), b(1, 2000)), good,
			"input 0 (left): batch 1 at time 2000 does not come after batch 0 at time 2000: batch times must rise", nil, 2},
		{"another checkpoint", build(t, ck("a"), b(0, 1000)), build(t, ck("b"), b(0, 1000)),
			"another than input", nil, 0},
		{"a checkpoint on one input only", build(t, ck("a"), b(0, 1000)), build(t, b(0, 1000)),
			"input 1 (right): its batches do not come from the source of input 0 (left), which replays from a checkpoint", nil, 0},
		{"a checkpoint on the other input only", build(t, b(0, 1000)), build(t, ck("a"), b(0, 2000)),
			"input 0 (left): its batches do not come from the source of input 1 (right)", nil, 0},
		{"a checkpoint announced later", good, build(t, b(0, 1000, `{"r":0}`), ck("a"), b(1, 2000)),
			"input 0 (left): its batches do not come from the source of input 1 (right)", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trace, _, err := runUnion(t, tt.left, tt.right)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v is not %v", err, tt.is)
			}
			if len(trace) != tt.trace {
				t.Fatalf("%d aligned batches before the error, want %d: %q", len(trace), tt.trace, trace)
			}
		})
	}
}

// TestLoopInputsSharedUpstream: two inputs written in turn by one writer,
// as tee does, through unbuffered pipes. Reading the inputs one after
// another would block for good in the first batch larger than a write.
func TestLoopInputsSharedUpstream(t *testing.T) {
	var items []item
	var want []string
	for i := range 5 {
		recs := make([]string, 50)
		for j := range recs {
			recs[j] = fmt.Sprintf(`{"v":%d}`, j)
		}
		items = append(items, b(uint64(i), int64(1000*(i+1)), recs...))
		want = append(want, fmt.Sprintf("%d@%d 0:%d 1:%d", i, 1000*(i+1), i, i))
	}
	s := build(t, items...)
	lr, lw := io.Pipe()
	rr, rw := io.Pipe()
	go func() {
		for i := 0; i < len(s); i += 64 {
			for _, w := range []*io.PipeWriter{lw, rw} {
				if _, err := w.Write(s[i:min(i+64, len(s))]); err != nil {
					return
				}
			}
		}
		lw.Close()
		rw.Close()
	}()
	var buf bytes.Buffer
	e := &Env{Name: "union", Out: framing.NewWriter(&buf)}
	u := newUnion(e.Out, 2)
	done := make(chan error, 1)
	go func() {
		done <- e.LoopInputs([]Input{{"left", framing.NewReader(lr)}, {"right", framing.NewReader(rr)}}, u)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		lr.Close()
		rr.Close()
		t.Fatal("LoopInputs is stuck")
	}
	if len(u.trace) != len(want) {
		t.Fatalf("%d aligned batches, want %d", len(u.trace), len(want))
	}
	for i, l := range u.trace {
		if !strings.HasPrefix(l, want[i]+":") || strings.Count(l, `{"v":`) != 100 {
			t.Fatalf("aligned batch %d: %s", i, l)
		}
	}
}

// TestLoopInputsCheckpoint: the Checkpoint frame both inputs carry goes out
// once, before the first batch.
func TestLoopInputsCheckpoint(t *testing.T) {
	_, out, err := runUnion(t, build(t, ck("a"), b(0, 1000)), build(t, ck("a"), b(0, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	r := framing.NewReader(bytes.NewReader(out))
	var f framing.Frame
	var kinds []string
	for r.Read(&f) == nil {
		kinds = append(kinds, f.Kind.String())
	}
	if got, want := strings.Join(kinds, " "), "Checkpoint BatchBegin BatchEnd End"; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
}

// TestLoopInputsStop: a stop between aligned batches ends the loop, though
// an input has not ended.
func TestLoopInputsStop(t *testing.T) {
	s := build(t, b(0, 1000, `{"l":0}`))
	lr, lw := io.Pipe()
	defer lr.Close()
	go lw.Write(s[:len(s)-framing.FrameHeaderLen]) // all but End: the input waits
	stop := &Stopper{requested: make(chan struct{}), now: make(chan struct{})}
	var buf bytes.Buffer
	e := &Env{Name: "union", Out: framing.NewWriter(&buf), Stop: stop}
	u := endSignal{newUnion(e.Out, 2), make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- e.LoopInputs([]Input{{"left", framing.NewReader(lr)}, {"right", framing.NewReader(bytes.NewReader(s))}}, u)
	}()
	select {
	case <-u.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("no aligned batch")
	}
	close(stop.now)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not stop")
	}
	if want := []string{`0@1000 0:0 1:0: {"l":0} {"l":0}`}; strings.Join(u.trace, "\n") != want[0] {
		t.Fatalf("trace %q, want %q", u.trace, want)
	}
}

// endSignal is a union that tells when it has ended an aligned batch.
type endSignal struct {
	*union
	ended chan struct{}
}

func (u endSignal) End(a *Aligned) error {
	err := u.union.End(a)
	u.ended <- struct{}{}
	return err
}

package dedup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/stage"
)

// bt is a test batch: id i at time (i+1) s.
func bt(i uint64, recs ...string) frametest.Batch {
	return frametest.Batch{ID: i, Time: int64(i+1) * 1000, Recs: recs}
}

// run passes the batches through a new engine of o and returns its output
// rendered (frametest.Render, a line per batch, then "wm T" per watermark
// frame) and the state's figures per batch, "total/updated/removed/late/dups".
func run(t *testing.T, o Options, bs ...frametest.Batch) (out string, state []string, err error) {
	t.Helper()
	var buf bytes.Buffer
	w := framing.NewWriter(&buf)
	var stats stage.Stats
	e, err := New(o, w, &stats, nil)
	if err != nil {
		return "", nil, err
	}
	if err := feed(e, frametest.Stream(t, bs), &stats, &state); err != nil {
		return "", state, err
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return render(t, buf.Bytes()), state, nil
}

// feed hands the frames of stream to h, as stage.Env.Loop does.
func feed(h stage.Handler, stream []byte, stats *stage.Stats, state *[]string) error {
	r := framing.NewReader(bytes.NewReader(stream))
	var f framing.Frame
	var b stage.Batch
	for {
		err := r.Read(&f)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch f.Kind {
		case framing.KindBatchBegin:
			b = stage.Batch{ID: f.BatchID, Time: f.Time}
			*stats = stage.Stats{}
			err = h.Begin(b)
		case framing.KindRecords:
			err = h.Block(b, f.Records())
		case framing.KindBatchEnd:
			if err = h.End(b); err == nil && state != nil {
				s := stats.State
				*state = append(*state, fmt.Sprintf("%d/%d/%d/%d/%d", s.NumRowsTotal, s.NumRowsUpdated,
					s.NumRowsRemoved, s.NumRowsDroppedByWatermark, s.CustomMetrics["numDroppedDuplicateRows"]))
			}
		case framing.KindWatermark:
			err = h.Watermark(f.Time)
		}
		if err != nil {
			return err
		}
	}
}

// render is frametest.Render with the watermark frames, "wm T".
func render(t *testing.T, s []byte) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(frametest.Render(t, s), "\n"), "\n")
	r := framing.NewReader(bytes.NewReader(s))
	var f framing.Frame
	var out []string
	i := 0
	for r.Read(&f) == nil {
		switch f.Kind {
		case framing.KindBatchEnd:
			out = append(out, lines[i])
			i++
		case framing.KindWatermark:
			out = append(out, fmt.Sprintf("wm %d", f.Time))
		}
	}
	return strings.Join(out, "\n")
}

func TestKeys(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		recs []string
		want string
	}{
		{"all fields, in any order", nil,
			[]string{`{"a":1,"b":"x"}`, `{"b":"x","a":1}`, `{"a":1,"b":"y"}`, `{"a":1}`, `{}`, `{}`},
			`0@1000: {"a":1,"b":"x"} {"a":1,"b":"y"} {"a":1} {}`},
		{"a field missing is null", []string{"k"},
			[]string{`{"v":1}`, `{"k":null,"v":2}`, `{"k":0,"v":3}`},
			`0@1000: {"v":1} {"k":0,"v":3}`},
		{"types apart", []string{"k"},
			// 1.0 as a float64: JSON's 1.0 reads as the integer 1
			[]string{`{"k":1}`, "\x81\xa1k\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", `{"k":"1"}`, `{"k":1}`},
			`0@1000: {"k":1} {"k":1} {"k":"1"}`}, // the second is the float, which JSON writes as 1
		{"one encoding per value", []string{"k"},
			// {"k": 5} as an int8, then as a fixint; a long string as str16
			[]string{"\x81\xa1k\xd0\x05", `{"k":5}`, "\x81\xa1k\xda\x00\x02ab", `{"k":"ab"}`},
			`0@1000: {"k":5} {"k":"ab"}`},
		{"two fields", []string{"a", "b"},
			[]string{`{"a":1,"b":2,"c":1}`, `{"b":2,"a":1,"c":2}`, `{"a":2,"b":1}`, `{"a":1}`, `{"a":1,"b":null}`},
			`0@1000: {"a":1,"b":2,"c":1} {"a":2,"b":1} {"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := run(t, Options{Keys: tt.keys}, bt(0, tt.recs...))
			if err != nil {
				t.Fatal(err)
			}
			if out != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", out, tt.want)
			}
		})
	}
}

func TestAcrossBatches(t *testing.T) {
	// StreamingDeduplicationSuite, "deduplicate with some columns".
	out, state, err := run(t, Options{Keys: []string{"_1"}},
		bt(0, `{"_1":"a","_2":1}`), bt(1, `{"_1":"a","_2":2}`), bt(2, `{"_1":"b","_2":1}`), bt(3))
	if err != nil {
		t.Fatal(err)
	}
	want := `0@1000: {"_1":"a","_2":1}
1@2000:
2@3000: {"_1":"b","_2":1}
3@4000:`
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if got, want := strings.Join(state, " "), "1/1/0/0/0 1/0/0/0/1 2/1/0/0/0 2/0/0/0/0"; got != want {
		t.Fatalf("state %s, want %s", got, want)
	}
}

// seconds is a batch of records {"v": S} for each S.
func seconds(i uint64, ss ...int) frametest.Batch {
	var recs []string
	for _, s := range ss {
		recs = append(recs, fmt.Sprintf(`{"v":%d}`, s))
	}
	return bt(i, recs...)
}

func TestWatermark(t *testing.T) {
	var first []int
	for range 5 {
		for s := 10; s <= 15; s++ {
			first = append(first, s)
		}
	}
	tests := []struct {
		name    string
		o       Options
		batches []frametest.Batch
		out     string
		state   string
	}{
		{"deduplicate with watermark",
			Options{TimeField: "v", Watermark: 10 * time.Second},
			[]frametest.Batch{seconds(0, first...), seconds(1, 25), seconds(2, 10), seconds(3, 45)},
			`0@1000: {"v":10} {"v":11} {"v":12} {"v":13} {"v":14} {"v":15}
wm 5000
1@2000: {"v":25}
wm 15000
2@3000:
3@4000: {"v":45}
wm 35000`,
			"6/6/0/0/24 1/1/6/0/0 1/0/0/1/0 1/1/1/0/0"},
		{"the time is not a key: late records dropped, keys kept",
			Options{Keys: []string{"k"}, TimeField: "v", Watermark: time.Second},
			[]frametest.Batch{bt(0, `{"k":1,"v":1}`, `{"k":1,"v":2}`, `{"k":2,"v":2}`), bt(1, `{"k":3,"v":10}`),
				bt(2, `{"k":1,"v":12}`, `{"k":4,"v":5}`)},
			`0@1000: {"k":1,"v":1} {"k":2,"v":2}
wm 1000
1@2000: {"k":3,"v":10}
wm 9000
2@3000:
wm 11000`,
			"2/2/0/0/1 3/1/0/0/0 3/0/0/1/1"},
		{"within the watermark: the subset of columns without the event time",
			Options{Keys: []string{"_1"}, TimeField: "_2", Watermark: 2 * time.Second, WithinWatermark: true},
			[]frametest.Batch{bt(0, `{"_1":"a","_2":17}`), bt(1, `{"_1":"a","_2":16}`), bt(2, `{"_1":"a","_2":13}`),
				bt(3, `{"_1":"b","_2":22}`, `{"_1":"c","_2":21}`), bt(4, `{"_1":"a","_2":21}`), bt(5, `{"_1":"d","_2":25}`)},
			`0@1000: {"_1":"a","_2":17}
wm 15000
1@2000:
2@3000:
3@4000: {"_1":"b","_2":22} {"_1":"c","_2":21}
wm 20000
4@5000: {"_1":"a","_2":21}
5@6000: {"_1":"d","_2":25}
wm 23000`,
			"1/1/0/0/0 1/0/0/0/1 1/0/0/1/0 2/2/1/0/0 3/1/0/0/0 2/1/2/0/0"},
		{"a record at the watermark is late",
			Options{TimeField: "v"},
			[]frametest.Batch{seconds(0, 5), seconds(1, 5, 6), seconds(2, 4, 7)},
			`0@1000: {"v":5}
wm 5000
1@2000: {"v":6}
wm 6000
2@3000: {"v":7}
wm 7000`,
			"0/1/1/0/0 0/1/1/1/0 0/1/1/1/0"}, // no delay: a key goes with its batch
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, state, err := run(t, tt.o, tt.batches...)
			if err != nil {
				t.Fatal(err)
			}
			if out != tt.out {
				t.Fatalf("got\n%s\nwant\n%s", out, tt.out)
			}
			if got := strings.Join(state, " "); got != tt.state {
				t.Fatalf("state %s, want %s", got, tt.state)
			}
		})
	}
}

func TestWatermarkFrames(t *testing.T) {
	in := []frametest.Batch{{ID: 0, Time: 1000, Recs: []string{`{"v":3}`}, Watermark: 500}, {ID: 1, Time: 2000, Watermark: 900}}
	// Without an event time, upstream watermarks pass on.
	out, _, err := run(t, Options{}, in...)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0@1000: {\"v\":3}\nwm 500\n1@2000:\nwm 900"; out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	// With one, sdedup's own.
	out, _, err = run(t, Options{TimeField: "v", Unit: codec.Seconds}, in...)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0@1000: {\"v\":3}\nwm 3000\n1@2000:"; out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

func TestBadRecords(t *testing.T) {
	recs := bt(4, `{"v":1}`, `{"w":2}`, `{"v":"soon"}`, `{"v":3}`)
	_, _, err := run(t, Options{TimeField: "v"}, recs)
	if want := `batch 4, record 2 {"w":2}: no time field "v"`; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	var stats stage.Stats
	var buf bytes.Buffer
	e, err := New(Options{TimeField: "v", SkipBad: true}, framing.NewWriter(&buf), &stats, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := feed(e, frametest.Stream(t, []frametest.Batch{recs}), &stats, nil); err != nil {
		t.Fatal(err)
	}
	if stats.Skipped != 2 {
		t.Fatalf("%d skipped, want 2", stats.Skipped)
	}
}

func TestWithinWatermarkNeedsTime(t *testing.T) {
	_, err := New(Options{WithinWatermark: true}, framing.NewWriter(io.Discard), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "needs an event time") {
		t.Fatalf("error %v", err)
	}
}

// TestCheckpoint: a run stopped after batch 2, whose sink committed batch
// 1, restarts from the keys as of batch 1, and the source replays batch 2:
// the output is an uninterrupted run's.
func TestCheckpoint(t *testing.T) {
	batches := []frametest.Batch{
		bt(0, `{"k":"a","t":1}`, `{"k":"b","t":1}`),
		bt(1, `{"k":"a","t":2}`, `{"k":"c","t":12}`),
		bt(2, `{"k":"b","t":3}`, `{"k":"d","t":13}`),
		bt(3, `{"k":"d","t":14}`, `{"k":"e","t":14}`, `{"k":"a","t":14}`),
	}
	o := Options{Keys: []string{"k"}, TimeField: "t", Watermark: 5 * time.Second, WithinWatermark: true, Name: "sdedup"}
	whole, _, err := run(t, o, batches...)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o.Checkpoint = dir
	first, _, err := run(t, o, batches[:3]...)
	if err != nil {
		t.Fatal(err)
	}
	frametest.Commit(t, dir, 1)
	rest, _, err := runReplaying(t, o, batches[2:]...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(first, "\n")
	var upTo1 []string
	for _, l := range lines {
		if strings.HasPrefix(l, "2@") {
			break
		}
		upTo1 = append(upTo1, l)
	}
	if got := strings.Join(upTo1, "\n") + "\n" + rest; got != whole {
		t.Fatalf("with a restart:\n%s\nuninterrupted:\n%s", got, whole)
	}
	// Other keys do not read that state.
	o.Keys = []string{"t"}
	e, err := New(o, framing.NewWriter(io.Discard), nil, func() bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	var m *checkpoint.MismatchError
	if err := e.Begin(stage.Batch{ID: 2, Time: 3000}); !errors.As(err, &m) {
		t.Fatalf("other keys: error %v, want a mismatch", err)
	}
}

// runReplaying is run downstream of a source replaying from the checkpoint.
func runReplaying(t *testing.T, o Options, bs ...frametest.Batch) (string, []string, error) {
	t.Helper()
	var buf bytes.Buffer
	w := framing.NewWriter(&buf)
	var stats stage.Stats
	e, err := New(o, w, &stats, func() bool { return true })
	if err != nil {
		return "", nil, err
	}
	var state []string
	if err := feed(e, frametest.Stream(t, bs), &stats, &state); err != nil {
		return "", state, err
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return render(t, buf.Bytes()), state, nil
}

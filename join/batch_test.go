package join

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/stage"
)

// runBatch runs the per-batch join of left and right and returns its output
// rendered.
func runBatch(t *testing.T, o Options, cogroup bool, left, right []frametest.Batch) (string, error) {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	var out bytes.Buffer
	e := &stage.Env{Name: "sjoin", Out: framing.NewWriter(&out)}
	h, err := NewBatch(o, cogroup, "r.dstream", e.Out, nil)
	if err != nil {
		return "", err
	}
	err = e.LoopInputs([]stage.Input{
		{Name: "left", R: framing.NewReader(bytes.NewReader(frametest.Stream(t, left)))},
		{Name: "right r.dstream", R: framing.NewReader(bytes.NewReader(frametest.Stream(t, right)))},
	}, h)
	if err == nil {
		err = e.Out.Close()
	}
	return frametest.RenderCut(t, out.Bytes()), err
}

func TestBatchNullKeys(t *testing.T) {
	left := []frametest.Batch{{ID: 0, Time: 1000, Recs: []string{`{"k":null,"v":1}`, `{"v":2}`, `{"k":1,"v":3}`}}}
	right := []frametest.Batch{{ID: 0, Time: 1000, Recs: []string{`{"k":null,"w":1}`, `{"w":2}`, `{"k":1.0,"w":3}`}}}
	for _, c := range []struct {
		how     How
		cogroup bool
		want    string
	}{
		// A null key matches nothing, but comes out of an outer join.
		{Inner, false, `0@1000: {"k":1,"v":3,"w":3}`},
		{Full, false, `0@1000: {"k":null,"v":1,"w":null} {"k":null,"v":2,"w":null} {"k":1,"v":3,"w":3} {"k":null,"v":null,"w":1} {"k":null,"v":null,"w":2}`},
		// A cogroup groups the null keys, as a groupBy.
		{Inner, true, `0@1000: {"k":null,"left":[{"v":1},{"v":2}],"right":[{"w":1},{"w":2}]} {"k":1,"left":[{"v":3}],"right":[{"w":3}]}`},
	} {
		got, err := runBatch(t, Options{On: []string{"k"}, How: c.how}, c.cogroup, left, right)
		if err != nil || strings.TrimSpace(got) != c.want {
			t.Errorf("%v cogroup=%v: %v\n%s\nwant\n%s", c.how, c.cogroup, err, got, c.want)
		}
	}
}

// An absent side's fields are those its records had so far; a right field
// is renamed only when the left record at hand has its name.
func TestBatchNullColumns(t *testing.T) {
	left := []frametest.Batch{
		{ID: 0, Time: 1000, Recs: []string{`{"k":1,"a":1}`}},
		{ID: 1, Time: 2000, Recs: []string{`{"k":2,"b":2}`}},
	}
	right := []frametest.Batch{
		{ID: 0, Time: 1000, Recs: []string{`{"k":9,"x":1}`}},
		{ID: 1, Time: 2000, Recs: []string{`{"k":8,"a":2}`}},
	}
	got, err := runBatch(t, Options{On: []string{"k"}, How: Full}, false, left, right)
	want := `0@1000: {"k":1,"a":1,"x":null} {"k":9,"a":null,"x":1}
1@2000: {"k":2,"b":2,"x":null,"a":null} {"k":8,"a":null,"b":null,"right_a":2}
`
	if err != nil || got != want {
		t.Errorf("%v\n%s\nwant\n%s", err, got, want)
	}
}

func TestBatchIntervals(t *testing.T) {
	var left, right []frametest.Batch
	for i := range 8 {
		left = append(left, frametest.Batch{ID: uint64(i), Time: int64(i+1) * 1000})
		right = append(right, frametest.Batch{ID: uint64(i), Time: int64(i+1) * 2000})
	}
	_, err := runBatch(t, Options{On: []string{"k"}}, false, left, right)
	if err == nil || !strings.Contains(err.Error(), "the left's batches come every 1s and the right's (r.dstream) every 2s") {
		t.Errorf("got %v", err)
	}
	// A boundary skipped now and then is no other interval.
	right = right[:0]
	for _, s := range []int64{1, 2, 4, 5, 6, 8} {
		right = append(right, frametest.Batch{ID: uint64(s), Time: s * 1000})
	}
	if _, err := runBatch(t, Options{On: []string{"k"}}, false, left, right); err != nil {
		t.Error(err)
	}
}

func TestBatchCogroupKey(t *testing.T) {
	if _, err := NewBatch(Options{On: []string{"left"}, Prefix: "r_"}, true, "r", nil, nil); err == nil {
		t.Error("--on left with --cogroup: no error")
	}
}

package window

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/stage"
)

// TestNewRefuses: Options that no window can be made of are an error
// naming the flag that set them.
func TestNewRefuses(t *testing.T) {
	count := reduce(t, []string{"k"}, "count")
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "--length 0s: want a positive whole number of milliseconds"},
		{sliding(1000, 0, count), "--slide 0s: want a positive whole number"},
		{Options{Length: 1500 * time.Microsecond, Slide: time.Second}, "--length 1.5ms: want a positive whole number"},
		{events(sliding(2000, 3000, count), codec.Seconds, EventOptions{}), "--slide 3s is longer than --length 2s"},
		{events(Options{Agg: count}, codec.Seconds, EventOptions{Session: time.Second, SessionGap: `"1s"`}), "--session and --session-gap-expr are two ways"},
		{events(Options{Agg: count}, codec.Seconds, EventOptions{SessionGap: `1 +`}), "--session-gap-expr '1 +': unexpected token"},
		{events(Options{Agg: count}, codec.Seconds, EventOptions{SessionGap: ` `}), "--session-gap-expr ' ': the expression is empty"},
		{events(sliding(1000, 1000, count), codec.Seconds, EventOptions{SessionGap: `"1s"`}), "--length and --slide do not go with --session"},
		{events(sliding(1000, 1000, agg.Config{}), codec.Seconds, EventOptions{}), "event-time windows aggregate"},
		{events(sliding(1000, 1000, count), codec.Seconds, EventOptions{Watermark: -time.Second}), "--watermark -1s"},
		{events(sliding(1000, 1000, count), codec.Seconds, EventOptions{Mode: "x"}), `--mode "x": want append, update or complete`},
		{events(Options{Agg: count}, codec.Seconds, EventOptions{Session: -time.Second}), "--session -1s: want a positive"},
		{events(sliding(1000, 1000, count), codec.Seconds, EventOptions{Session: time.Second}), "--length and --slide do not go with --session"},
		{Options{Length: time.Second, Slide: time.Second, Agg: agg.Config{Aggs: []agg.Spec{{Kind: agg.Sum, Field: "v", Name: "x"}, {Kind: agg.Max, Field: "v", Name: "x"}}}}, `two output fields named "x"`},
	} {
		_, err := New(c.o, framing.NewWriter(io.Discard), nil, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v, want an error with %q", c.o, err, c.want)
		}
	}
	// The defaults: an event-time window in append mode, without stats or
	// a checkpoint.
	w, err := New(events(sliding(1000, 1000, count), codec.Seconds, EventOptions{}), framing.NewWriter(io.Discard), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	feedJSON(t, w, 0, `{"t":0.5,"k":"a"}`)
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var _ stage.Handler = w
}

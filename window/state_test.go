package window

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
)

// FuzzLoadState: a damaged saved state is an error, never a panic, in both
// kinds of window.
func FuzzLoadState(f *testing.F) {
	bo := checked(f, sliding(2000, 1000, reduce(f, []string{"k"}, "count", "sum:v")))
	eo := checked(f, events(sliding(10_000, 10_000, reduce(f, []string{"k"}, "count")), codec.Seconds, EventOptions{}))
	so := checked(f, events(Options{Agg: reduce(f, []string{"k"}, "count")}, codec.Seconds, EventOptions{Session: 5 * time.Second}))
	// Sliding, sliced: slices of 5 s, a window of max assembled by Two-Stacks.
	mo := checked(f, events(sliding(10_000, 5000, reduce(f, []string{"k"}, "max:t")), codec.Seconds, EventOptions{}))
	// Sliced and ordered: first and last, with the slices' arrivals.
	fo := checked(f, events(sliding(10_000, 5000, reduce(f, []string{"k"}, "first:t", "last:t")), codec.Seconds, EventOptions{}))
	bw, _ := newWindower(framing.NewWriter(io.Discard), bo)
	ew, _ := newEventWindower(framing.NewWriter(io.Discard), eo)
	sw, _ := newEventWindower(framing.NewWriter(io.Discard), so)
	mw, _ := newEventWindower(framing.NewWriter(io.Discard), mo)
	fw, _ := newEventWindower(framing.NewWriter(io.Discard), fo)
	// Seeds: real states after a few batches.
	feedJSON(f, bw, 0, `{"k":"a","v":1}`, `{"k":"b","v":2}`)
	feedJSON(f, bw, 1, `{"k":"a","v":3}`)
	for _, w := range []*eventWindower{ew, sw, mw, fw} {
		feedJSON(f, w, 0, `{"t":1,"k":"a"}`, `{"t":12,"k":"b"}`)
		feedJSON(f, w, 1, `{"t":3,"k":"a"}`)
	}
	f.Add(bw.saveState())
	for _, w := range []*eventWindower{ew, sw, mw, fw} {
		s, _ := w.saveState()
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w1, _ := newWindower(framing.NewWriter(io.Discard), bo)
		if err := w1.loadState(b); err == nil {
			// What loads saves a state that loads into the same.
			s1 := w1.saveState()
			w2, _ := newWindower(framing.NewWriter(io.Discard), bo)
			if err := w2.loadState(s1); err != nil {
				t.Fatalf("a saved state does not load: %v", err)
			}
			if s2 := w2.saveState(); !bytes.Equal(s1, s2) {
				t.Fatalf("save, load, save: %x, then %x", s1, s2)
			}
		}
		for _, opts := range []*options{eo, so, mo, fo} {
			w, _ := newEventWindower(framing.NewWriter(io.Discard), opts)
			if err := w.loadState(b); err == nil {
				s1, err := w.saveState()
				if err != nil {
					t.Fatal(err)
				}
				w2, _ := newEventWindower(framing.NewWriter(io.Discard), opts)
				if err := w2.loadState(s1); err != nil {
					t.Fatalf("a saved state does not load: %v", err)
				}
			}
		}
	})
}

// TestLoadStateVersion: a state of another layout version is refused
// naming both versions (a state of version 1 began with the byte 1, which
// msgpack reads as the integer 1).
func TestLoadStateVersion(t *testing.T) {
	o := checked(t, sliding(2000, 1000, reduce(t, []string{"k"}, "count")))
	w, _ := newWindower(framing.NewWriter(io.Discard), o)
	feedJSON(t, w, 0, `{"k":"a"}`)
	s := w.saveState()
	if s[0] != stateVersion {
		t.Fatalf("state %x: want version %d first", s, stateVersion)
	}
	for _, v := range []byte{1, 2, 3, 5} {
		old := append([]byte{v}, s[1:]...)
		w2, _ := newWindower(framing.NewWriter(io.Discard), o)
		err := w2.loadState(old)
		if want := fmt.Sprintf("a state of version %d, this program reads version %d", v, stateVersion); err == nil || !errors.Is(err, ErrState) || !strings.Contains(err.Error(), want) {
			t.Errorf("version %d: %v, want ErrState and %q", v, err, want)
		}
	}
	if err := w.loadState(s); err != nil {
		t.Fatalf("its own state: %v", err)
	}
}

package dedup

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/stage"
)

// saved is the state e saves.
func saved(tb testing.TB, e *Engine) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := e.save(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func newEngine(tb testing.TB, o Options) *Engine {
	tb.Helper()
	e, err := New(o, framing.NewWriter(io.Discard), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

var stateOptions = Options{Keys: []string{"k"}, TimeField: "t", Watermark: 5 * time.Second}

// withState is an engine after a few batches.
func withState(tb testing.TB) *Engine {
	e := newEngine(tb, stateOptions)
	var stats stage.Stats
	if err := feed(e, frametest.Stream(tb, []frametest.Batch{
		bt(0, `{"k":"a","t":1}`, `{"k":"b","t":2}`), bt(1, `{"k":3,"t":12}`),
	}), &stats, nil); err != nil {
		tb.Fatal(err)
	}
	return e
}

// FuzzLoadState: a damaged saved state is an error, never a panic, and
// what loads saves a state that loads into the same.
func FuzzLoadState(f *testing.F) {
	f.Add(saved(f, withState(f)))
	f.Add(saved(f, newEngine(f, stateOptions)))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := newEngine(t, stateOptions)
		if err := e.load(b); err != nil {
			return
		}
		s1 := saved(t, e)
		e2 := newEngine(t, stateOptions)
		if err := e2.load(s1); err != nil {
			t.Fatalf("a saved state does not load: %v", err)
		}
		if s2 := saved(t, e2); !bytes.Equal(s1, s2) {
			t.Fatalf("save, load, save: %x, then %x", s1, s2)
		}
	})
}

func TestLoadState(t *testing.T) {
	e := withState(t)
	s := saved(t, e)
	r := newEngine(t, stateOptions)
	if err := r.load(s); err != nil {
		t.Fatal(err)
	}
	if r.seen.Len() != 3 || r.wm != e.wm || r.maxT != e.maxT || !r.haveWM || !r.haveMax {
		t.Fatalf("loaded %d keys, watermark %d (%v), max %d: want 3, %d, %d", r.seen.Len(), r.wm, r.haveWM, r.maxT, e.wm, e.maxT)
	}
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"truncated":      {s[:len(s)-1], agg.ErrCorrupt},
		"trailing bytes": {append(bytes.Clone(s), 0), errState},
		"not a state":    {[]byte("hello"), errState},
		"empty":          {nil, errState},
		"version 2":      {append([]byte{0x02}, s[1:]...), errState},
	} {
		r := newEngine(t, stateOptions)
		err := r.load(tc.b)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
		if name == "version 2" && (err == nil || !strings.Contains(err.Error(), "version 2")) {
			t.Errorf("%s: error %v does not name the version", name, err)
		}
	}
}

package stage

import (
	"testing"
	"time"
)

// The waits double from 100ms to 5s and stay there; each is drawn in
// [bound/2, bound]; Reset starts again from 100ms.
func TestBackoff(t *testing.T) {
	bounds := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for _, tc := range []struct {
		name string
		rand func(int64) int64
		want func(bound time.Duration) time.Duration
	}{
		{"least", func(int64) int64 { return 0 }, func(b time.Duration) time.Duration { return b / 2 }},
		{"most", func(n int64) int64 { return n - 1 }, func(b time.Duration) time.Duration { return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{rand: tc.rand}
			for round := range 2 {
				for i, ms := range bounds {
					bound := ms * time.Millisecond
					if got, want := b.Next(), tc.want(bound); got != want {
						t.Fatalf("round %d, wait %d: %v, want %v", round, i, got, want)
					}
				}
				b.Reset()
			}
		})
	}
	var b Backoff // the zero value draws at random
	for range 20 {
		if d := b.Next(); d < BackoffMin/2 || d > BackoffMax {
			t.Fatalf("wait %v out of [%v, %v]", d, BackoffMin/2, BackoffMax)
		}
	}
}

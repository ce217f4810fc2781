package stage

import (
	"math/rand/v2"
	"time"
)

// The waits of a Backoff: from BackoffMin, doubling up to BackoffMax.
const (
	BackoffMin = 100 * time.Millisecond
	BackoffMax = 5 * time.Second
)

// Backoff gives the waits between attempts to connect to a server that is
// not there (yet): each wait is drawn in [bound/2, bound], the bound
// doubling from BackoffMin to BackoffMax. Why the jitter: the stages of
// many pipelines whose server restarts would otherwise all knock again in
// the same millisecond. The zero value is ready to use.
type Backoff struct {
	bound time.Duration       // of the next wait; 0: BackoffMin
	rand  func(n int64) int64 // in [0, n); nil: rand.Int64N
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.bound == 0 {
		b.bound = BackoffMin
	}
	r := b.rand
	if r == nil {
		r = rand.Int64N
	}
	d := b.bound/2 + time.Duration(r(int64(b.bound/2)+1))
	b.bound = min(2*b.bound, BackoffMax)
	return d
}

// Reset starts again from BackoffMin, after a connection.
func (b *Backoff) Reset() { b.bound = 0 }

// Fresh tells that no wait was given since the start or the last Reset.
func (b *Backoff) Fresh() bool { return b.bound == 0 }

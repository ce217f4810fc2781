package stage

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Grace is how long a stage with framed input keeps going after SIGINT or
// SIGTERM, waiting for its upstream to end the stream. Ctrl-C reaches every
// process of a shell pipeline at once; the source ends its batch in hand and
// the stream, and the stages after it drain what is in flight, so nothing
// accepted is lost (Spark's graceful stop). If the upstream has not ended by
// then, or at a second signal, the stage stops after the batch in hand.
var Grace = 5 * time.Second

// Stopper tracks SIGINT and SIGTERM.
type Stopper struct {
	requested chan struct{} // closed at the first signal
	now       chan struct{} // closed at the second signal, or Grace after the first
	reqOnce   sync.Once
	nowOnce   sync.Once
	sigc      chan os.Signal
	pipec     chan os.Signal
	done      chan struct{}
}

func newStopper() *Stopper {
	s := &Stopper{
		requested: make(chan struct{}),
		now:       make(chan struct{}),
		sigc:      make(chan os.Signal, 2),
		pipec:     make(chan os.Signal, 1),
		done:      make(chan struct{}),
	}
	signal.Notify(s.sigc, syscall.SIGINT, syscall.SIGTERM)
	// With SIGPIPE caught, a write to a closed pipe returns EPIPE, and the
	// stage stops quietly instead of being killed.
	signal.Notify(s.pipec, syscall.SIGPIPE)
	go s.watch()
	return s
}

func (s *Stopper) watch() {
	var grace <-chan time.Time
	for {
		select {
		case <-s.sigc:
			if s.Requested() {
				s.nowOnce.Do(func() { close(s.now) })
				continue
			}
			s.reqOnce.Do(func() { close(s.requested) })
			grace = time.After(Grace)
		case <-grace:
			s.nowOnce.Do(func() { close(s.now) })
		case <-s.done:
			return
		}
	}
}

func (s *Stopper) stop() {
	signal.Stop(s.sigc)
	signal.Stop(s.pipec)
	close(s.done)
}

// RequestedC is closed when a signal asked the stage to stop.
func (s *Stopper) RequestedC() <-chan struct{} { return s.requested }

// Requested reports whether a signal asked the stage to stop.
func (s *Stopper) Requested() bool {
	select {
	case <-s.requested:
		return true
	default:
		return false
	}
}

// Now reports whether the stage must stop at the next batch boundary even
// though its upstream goes on.
func (s *Stopper) Now() bool {
	select {
	case <-s.now:
		return true
	default:
		return false
	}
}

// errStopped ends a read that a stop interrupted between batches.
var errStopped = errors.New("stopped by signal")

// asyncReader reads its source in a goroutine, so that a read waiting
// between batches can be given up when the stage must stop. It hands over
// chunks of up to 256 KiB: one channel operation per chunk, not per frame.
type asyncReader struct {
	chunks chan []byte
	free   chan []byte
	stopc  <-chan struct{}
	cur    []byte // unread part of the current chunk
	buf    []byte // the current chunk's buffer, to recycle
	err    error
	mayStp atomic.Bool
	srcErr error
}

const chunkSize = 256 << 10

func newAsyncReader(src io.Reader, stop <-chan struct{}) *asyncReader {
	a := &asyncReader{chunks: make(chan []byte, 2), free: make(chan []byte, 4), stopc: stop}
	for range 3 {
		a.free <- make([]byte, chunkSize)
	}
	go a.pump(src)
	return a
}

func (a *asyncReader) pump(src io.Reader) {
	for {
		buf := <-a.free
		n, err := src.Read(buf[:cap(buf)])
		if n > 0 {
			a.chunks <- buf[:n]
		} else {
			a.free <- buf
		}
		if err != nil {
			a.srcErr = err
			close(a.chunks)
			return
		}
	}
}

func (a *asyncReader) allowStop(ok bool) { a.mayStp.Store(ok) }

func (a *asyncReader) Read(p []byte) (int, error) {
	if len(a.cur) == 0 {
		if a.buf != nil {
			a.free <- a.buf
			a.buf = nil
		}
		if a.err != nil {
			return 0, a.err
		}
		var c []byte
		var ok bool
		if a.mayStp.Load() {
			select {
			case c, ok = <-a.chunks:
			case <-a.stopc:
				return 0, errStopped
			}
		} else {
			c, ok = <-a.chunks
		}
		if !ok {
			a.err = a.srcErr
			return 0, a.err
		}
		a.cur, a.buf = c, c
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

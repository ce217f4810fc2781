package stage

import (
	"github.com/dstream/dstream/internal/earlysig"

	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Stopper tracks SIGINT and SIGTERM. Ctrl-C reaches every process of a
// shell pipeline at once, and `systemctl stop` or `kill -- -PGID` the whole
// process group: the first signal asks for a graceful stop (Spark's
// stopGracefully). The source ends its batch in hand and the stream; every
// stage after it goes on until its upstream has ended the stream, however
// long the batches in flight take, so nothing accepted is lost.
//
// A second signal, or --stop-timeout after the first, forces the stop: the
// stage stops after the batch in hand. If by then it has passed on all it
// received, it ends its stream and exits 0; if a later batch had arrived,
// it exits 1 without ending its stream (see stopError), so that nothing is
// dropped silently. Why no default timeout: a stage cannot tell a slow
// upstream from a stuck one, and a timeout that drops data must be asked for.
type Stopper struct {
	requested chan struct{} // closed at the first signal
	now       chan struct{} // closed when the stop is forced
	reqOnce   sync.Once
	nowOnce   sync.Once
	timeout   time.Duration // --stop-timeout, 0 for none
	why       atomic.Value  // string: what forced the stop, set before now is closed
	sigc      chan os.Signal
	pipec     chan os.Signal
	done      chan struct{}
}

func newStopper(timeout time.Duration) *Stopper {
	s := &Stopper{
		requested: make(chan struct{}),
		now:       make(chan struct{}),
		timeout:   timeout,
		pipec:     make(chan os.Signal, 1),
		done:      make(chan struct{}),
	}
	if c, ok := earlysig.Take(); ok {
		s.sigc = c // with the signals that came before
	} else {
		s.sigc = make(chan os.Signal, 2)
		signal.Notify(s.sigc, syscall.SIGINT, syscall.SIGTERM)
	}
	// With SIGPIPE caught, a write to a closed pipe returns EPIPE, and the
	// stage stops quietly instead of being killed.
	signal.Notify(s.pipec, syscall.SIGPIPE)
	go s.watch()
	return s
}

func (s *Stopper) watch() {
	var timer <-chan time.Time
	for {
		select {
		case <-s.sigc:
			if s.Requested() {
				s.force("a second signal")
				continue
			}
			s.reqOnce.Do(func() { close(s.requested) })
			if s.timeout > 0 {
				timer = time.After(s.timeout)
			}
		case <-timer:
			s.force("--" + flagStopTimeout + " " + s.timeout.String())
		case <-s.done:
			return
		}
	}
}

// force makes the stop immediate; why says what did it, for the message.
func (s *Stopper) force(why string) {
	s.nowOnce.Do(func() {
		s.why.Store(why)
		close(s.now)
	})
}

// stop ends the watch. The signals stay caught (into a channel no one
// reads) until the process exits: a SIGINT or SIGTERM that comes while
// the stage finishes, after its stream has ended, must not kill it with
// Go's default action and turn a clean end into exit 143.
func (s *Stopper) stop() {
	close(s.done)
}

// RequestedC is closed when a signal asked the stage to stop. A nil
// Stopper (an Env made by a test) is never asked: its channel is nil.
func (s *Stopper) RequestedC() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.requested
}

// Requested reports whether a signal asked the stage to stop (never, for
// a nil Stopper).
func (s *Stopper) Requested() bool {
	if s == nil {
		return false
	}
	select {
	case <-s.RequestedC():
		return true
	default:
		return false
	}
}

// Now reports whether the stop is forced: the stage must stop at the next
// batch boundary even though its upstream goes on.
func (s *Stopper) Now() bool {
	select {
	case <-s.now:
		return true
	default:
		return false
	}
}

// stopError is how a stop on a signal ends a stage that leaves batches
// behind: a forced stop found a later batch arriving, or the reader of the
// stage's output was gone when the batch in hand was written (in a stop,
// a closed output is data lost, not the quiet end of a `| head`). It is an
// error (exit 1), and the stage does not end its stream, so that the next
// stage sees it cut short, not complete.
type stopError struct {
	why    string  // what forced the stop, "" for a graceful one
	passed *uint64 // the last batch passed on, nil for none
	cause  error   // the failed write, or nil
}

func (e *stopError) Error() string {
	what := "no batch passed on"
	if e.passed != nil {
		what = fmt.Sprintf("batches after batch %d not passed on", *e.passed)
	}
	// %v, not %w, for the cause: this broken pipe is no quiet end.
	switch {
	case e.why == "":
		return fmt.Sprintf("its output was closed during a graceful stop (SIGINT or SIGTERM): %s (%v)", what, e.cause)
	case e.cause != nil:
		return fmt.Sprintf("stopped by %s before the end of the stream: %s: its output was closed (%v)", e.why, what, e.cause)
	}
	return fmt.Sprintf("stopped by %s before the end of the stream: %s", e.why, what)
}

// StopLoss is the error of a stage stopping on a signal that leaves the
// batches after passed behind (nil: all of them); cause is the failed write
// that did it, if any.
func (s *Stopper) StopLoss(passed *uint64, cause error) error {
	why, _ := s.why.Load().(string)
	return Hint(&stopError{why: why, passed: passed, cause: cause},
		"with --checkpoint the batches not passed on are replayed on the next run; without, they are lost")
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
			// A chunk already there is taken even after the stop: it may
			// hold the end of the stream.
			select {
			case c, ok = <-a.chunks:
			default:
				select {
				case c, ok = <-a.chunks:
				case <-a.stopc:
					return 0, errStopped
				}
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

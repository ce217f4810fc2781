package stage

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stopReader is a stage's input as Loop reads it: a read waiting between
// batches gives errStopped once the stage must stop (Stopper.now).
type stopReader interface {
	io.Reader
	// allowStop tells whether a stop may cut a read now (between batches).
	allowStop(ok bool)
}

// newStopReader picks how the input can be interrupted. A pipe or socket on
// stdin is read directly, with a read deadline to interrupt it: a goroutine
// handing chunks over would cost a futex wake-up per chunk, measured at
// about a tenth of a pass-through stage's throughput. Anything else (a
// regular file, which never waits; a network endpoint; a reader in a test)
// goes through an asyncReader.
func newStopReader(src io.Reader, stop <-chan struct{}) (stopReader, io.Closer) {
	if f, ok := src.(*os.File); ok {
		if pf, restore := pollable(f); pf != nil {
			d := &deadlineReader{f: pf}
			go func() {
				<-stop
				d.stopped.Store(true)
				pf.SetReadDeadline(time.Now())
			}()
			return d, restore
		}
	}
	return newAsyncReader(src, stop), nil
}

// deadlineReader reads a pollable file; a deadline set when the stage must
// stop ends a read between batches, and is lifted inside a batch, which is
// then finished (Loop stops at its end).
type deadlineReader struct {
	f       *os.File
	mayStp  atomic.Bool
	stopped atomic.Bool // the stop is forced: reads between batches do not wait
}

func (d *deadlineReader) allowStop(ok bool) { d.mayStp.Store(ok) }

func (d *deadlineReader) Read(p []byte) (int, error) {
	for {
		if d.stopped.Load() && d.mayStp.Load() {
			return d.readReady(p)
		}
		n, err := d.f.Read(p)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if d.mayStp.Load() {
			if n > 0 {
				return n, nil
			}
			return d.readReady(p)
		}
		d.f.SetReadDeadline(time.Time{})
		if n > 0 {
			return n, nil
		}
	}
}

// readReady reads what has already arrived, without waiting for more: after
// a forced stop the stage still takes what is there (it may be the end of
// the stream), and errStopped when nothing is. The deadline set by the stop
// is lifted for it, since the poller refuses any read past a deadline.
func (d *deadlineReader) readReady(p []byte) (int, error) {
	rc, err := d.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	for {
		d.f.SetReadDeadline(time.Time{})
		err = rc.Read(func(fd uintptr) bool {
			n, rerr = readFD(fd, p)
			return true // one try: never wait
		})
		// The stop sets its deadline once, maybe just after it was lifted
		// here: lift it again.
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
		return 0, errStopped
	case rerr != nil:
		return 0, &os.PathError{Op: "read", Path: d.f.Name(), Err: rerr}
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// pollables keeps the pollable files made for stdin alive for the whole
// process: a second *os.File of a descriptor closes it when collected.
var (
	pollMu     sync.Mutex
	pollables  = map[uintptr]*os.File{}
	unpollable []*os.File
)

// pollable returns a *os.File for f's descriptor that the runtime's poller
// serves, so that it takes read deadlines, and a closer that puts the
// descriptor back into blocking mode (it is shared with other processes).
// It returns nil for a terminal, a regular file and anything else the
// poller does not take.
func pollable(f *os.File) (*os.File, io.Closer) {
	if isTerminal(f) {
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return nil, nil
	}
	// A file the poller already serves (a pipe from os.Pipe, a stdin that
	// was non-blocking from the start) takes deadlines as it is; a second
	// *os.File of its descriptor could not join the poller.
	if f.SetReadDeadline(time.Time{}) == nil {
		return f, nil
	}
	fd := f.Fd()
	pollMu.Lock()
	defer pollMu.Unlock()
	pf, ok := pollables[fd]
	if !ok {
		if setNonblock(fd, true) != nil {
			return nil, nil
		}
		pf = os.NewFile(fd, f.Name())
		if pf.SetReadDeadline(time.Time{}) != nil {
			setNonblock(fd, false)
			pollables[fd] = nil // unused
			// Kept from being collected, which would close fd.
			unpollable = append(unpollable, pf)
			return nil, nil
		}
		pollables[fd] = pf
	}
	if pf == nil {
		return nil, nil
	}
	return pf, closerFunc(func() error { return setNonblock(fd, false) })
}

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

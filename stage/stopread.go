package stage

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
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
	f      *os.File
	mayStp atomic.Bool
}

func (d *deadlineReader) allowStop(ok bool) { d.mayStp.Store(ok) }

func (d *deadlineReader) Read(p []byte) (int, error) {
	for {
		n, err := d.f.Read(p)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if d.mayStp.Load() {
			return n, errStopped
		}
		d.f.SetReadDeadline(time.Time{})
		if n > 0 {
			return n, nil
		}
	}
}

// pollables keeps the pollable files made for stdin alive for the whole
// process: a second *os.File of a descriptor closes it when collected.
var (
	pollMu    sync.Mutex
	pollables = map[uintptr]*os.File{}
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
			pollables[fd] = nil // keep it from being collected, and unused
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

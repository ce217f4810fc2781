package stage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/dstream/dstream/framing"
)

// The inputs of a stage over several streams (sunion's STREAM arguments,
// sjoin's --right) besides its own --in: files or FIFOs of frames (a
// process substitution <(...) is one), or endpoints.

// MainInput is the stage's own framed input (stdin or --in) as LoopInputs
// takes it, named "stdin" or by its endpoint.
func (e *Env) MainInput() Input {
	name := e.inName
	if name == "" {
		name = "stdin"
	}
	return Input{Name: name, R: e.In}
}

// OpenInput opens a framed input named on the command line: a socket
// endpoint (tcp-listen://, unix-listen://, which accept one connection;
// tcp://, unix://, which connect), or else a file or FIFO. It is opened at
// its first read, which LoopInputs makes at once in the input's own reading
// goroutine: so FIFOs fed by one upstream (tee) open in whatever order
// their writers come, and a usage error elsewhere on the command line is
// reported without waiting for a peer. A file that does not exist is an
// error at once. The input is closed when the stage ends.
func (e *Env) OpenInput(spec string) (Input, error) {
	var r io.ReadCloser
	if IsSocket(spec) {
		s, err := OpenSocket(spec)
		if err != nil {
			return Input{}, err
		}
		r = s
	} else {
		if _, err := os.Stat(spec); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is in the message already
			}
			return Input{}, Hint(fmt.Errorf("input %s: %w", spec, err),
				"an input is a file or FIFO of frames (<(sbatch ...) works), or an endpoint: %s", endpointHelp)
		}
		r = &lazyFile{path: spec}
	}
	e.closers = append(e.closers, r)
	return Input{Name: spec, R: framing.NewReader(r)}, nil
}

// lazyFile opens its file at the first Read: opening a FIFO waits for its
// writer.
type lazyFile struct {
	path string
	once sync.Once
	mu   sync.Mutex
	f    *os.File
	err  error
}

func (l *lazyFile) Read(p []byte) (int, error) {
	l.once.Do(func() {
		f, err := os.Open(l.path)
		if err == nil {
			growPipe(f)
		}
		l.mu.Lock()
		l.f, l.err = f, err
		l.mu.Unlock()
	})
	if l.err != nil {
		return 0, l.err
	}
	return l.f.Read(p)
}

func (l *lazyFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}

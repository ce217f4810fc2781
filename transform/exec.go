package transform

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// chunkSize is how much JSON a proc gathers before handing it to its
// writer goroutine.
const chunkSize = 64 << 10

// proc is one batch's run of an --exec command: `sh -c CMD`, as RDD.pipe
// runs its command once per partition. The records go to its stdin as JSON
// lines from a goroutine, and its stdout is read by another, so that a
// command that writes before it has read everything cannot deadlock with
// smap.
type proc struct {
	label  string
	cmd    *exec.Cmd
	chunks chan []byte // to the writer goroutine; closed at the end of the batch
	free   chan []byte // chunks written, for reuse
	buf    []byte      // the chunk being filled
	wrote  chan error  // the writer's result
	read   chan error  // the reader's result
	out    []byte      // stdout, once read has sent
}

// lockedWriter serialises the writes of several commands' stderr when
// smap's is not a file (a file is handed to them as it is).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// procStderr is what the commands get as their stderr.
func procStderr(stderr io.Writer) io.Writer {
	if _, ok := stderr.(*os.File); ok {
		return stderr
	}
	return &lockedWriter{w: stderr}
}

func startProc(o *op, b stage.Batch, stderr io.Writer) (*proc, error) {
	cmd := exec.Command("sh", "-c", o.cmd)
	cmd.Env = append(os.Environ(),
		"DSTREAM_BATCH_ID="+strconv.FormatUint(b.ID, 10),
		"DSTREAM_BATCH_TIME="+strconv.FormatInt(b.Time, 10))
	cmd.Stderr = stderr
	stage.OwnProcessGroup(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.label, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.label, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", o.label, err)
	}
	p := &proc{label: o.label, cmd: cmd, chunks: make(chan []byte, 4), free: make(chan []byte, 4),
		wrote: make(chan error, 1), read: make(chan error, 1)}
	go func() {
		var err error
		for c := range p.chunks {
			if err == nil {
				_, err = stdin.Write(c)
			}
			select {
			case p.free <- c[:0]:
			default:
			}
		}
		if cerr := stdin.Close(); err == nil {
			err = cerr
		}
		p.wrote <- err
	}()
	go func() {
		var err error
		p.out, err = io.ReadAll(stdout)
		p.read <- err
	}()
	return p, nil
}

// write adds one record, as a JSON line, to the command's input.
func (p *proc) write(rec []byte) error {
	n := len(p.buf)
	var err error
	if p.buf, _, err = record.AppendJSON(p.buf, rec); err != nil {
		p.buf = p.buf[:n]
		return err
	}
	p.buf = append(p.buf, '\n')
	if len(p.buf) >= chunkSize {
		p.chunks <- p.buf
		select {
		case p.buf = <-p.free:
		default:
			p.buf = make([]byte, 0, chunkSize+chunkSize/4)
		}
	}
	return nil
}

// finish ends the command's input, waits for it to exit and returns its
// output. A command that stops reading early (head -1) is no error; one
// that exits non-zero is.
func (p *proc) finish() ([]byte, error) {
	if len(p.buf) > 0 {
		p.chunks <- p.buf
		p.buf = nil
	}
	close(p.chunks)
	werr := <-p.wrote
	rerr := <-p.read
	err := p.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return nil, fmt.Errorf("%s: the command failed: %v", p.label, describeExit(ee))
	case err != nil:
		return nil, fmt.Errorf("%s: %w", p.label, err)
	case rerr != nil:
		return nil, fmt.Errorf("%s: reading its output: %w", p.label, rerr)
	case werr != nil && !errors.Is(werr, syscall.EPIPE):
		return nil, fmt.Errorf("%s: writing its input: %w", p.label, werr)
	}
	return p.out, nil
}

func describeExit(ee *exec.ExitError) string {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ee.ExitCode())
}

// kill stops a command left running by a failure.
func (p *proc) kill() {
	if p.chunks != nil {
		close(p.chunks)
		p.chunks = nil
	}
	stage.KillProcessGroup(p.cmd)
	<-p.wrote
	<-p.read
	p.cmd.Wait()
}

package dash

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// maxLine bounds a progress line; a longer one is no progress line.
const maxLine = 1 << 20

// Serve accepts the connections of the stages on l (each sends its
// --progress lines) and feeds their lines to d until ctx ends.
func (d *Dash) Serve(ctx context.Context, l net.Listener) error {
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accepting on %s: %w", l.Addr(), err)
		}
		go func() {
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			d.read(c)
		}()
	}
}

// read feeds the lines of r to d until its end.
func (d *Dash) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		if b := bytes.TrimSpace(sc.Bytes()); len(b) > 0 {
			d.Feed(b)
		}
	}
}

// ReadFile feeds the lines of a --progress file to d. With follow, it then
// waits for more lines (as tail -f), checking every poll, until ctx ends; a
// file not there yet is waited for.
func (d *Dash) ReadFile(ctx context.Context, path string, follow bool, poll time.Duration) error {
	var f *os.File
	for {
		var err error
		if f, err = os.Open(path); err == nil {
			break
		}
		if !follow || !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading progress: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var part []byte // a line still being written
	for {
		b, err := br.ReadSlice('\n')
		part = append(part, b...)
		if err == nil {
			if l := bytes.TrimSpace(part); len(l) > 0 {
				d.Feed(l)
			}
			part = part[:0]
			continue
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(part) > maxLine {
				d.Feed(nil) // counted as a bad line
				part = part[:0]
			}
			continue
		}
		if err != io.EOF {
			return fmt.Errorf("reading progress %s: %w", path, err)
		}
		if !follow {
			if l := bytes.TrimSpace(part); len(l) > 0 {
				d.Feed(l)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

package stage

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A progress collector (sdash --listen) hears the --progress lines of many
// stages over tcp:// or unix://. It is a bystander: the stage never waits
// for it nor fails because of it. Lines queue (up to progressQueue) while
// a line is being sent; when the queue is full, or the collector is down,
// lines are dropped. The connection is retried with a Backoff.
const (
	progressQueue = 256
	// progressWriteTimeout: a collector that stops reading for this long
	// is taken as gone (the connection is closed and dialled again).
	progressWriteTimeout = 2 * time.Second
	// progressDrain bounds how long the stage's end waits for the last
	// lines to go out to a connected collector.
	progressDrain = time.Second
)

// progressConn is an io.Writer of whole lines (one Write, one line, as
// JSONLines writes) to a collector. Write never blocks.
type progressConn struct {
	stage  string
	e      endpoint
	notes  io.Writer
	lines  chan []byte
	done   chan struct{}
	noted  bool
	mu     sync.Mutex
	closed bool
}

func newProgressConn(stage string, e endpoint, notes io.Writer) *progressConn {
	c := &progressConn{stage: stage, e: e, notes: notes, lines: make(chan []byte, progressQueue), done: make(chan struct{})}
	go c.send()
	return c
}

// Write queues one line, or drops it if the queue is full.
func (c *progressConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return len(p), nil
	}
	select {
	case c.lines <- append([]byte(nil), p...):
	default: // the collector is slow or down: drop
	}
	return len(p), nil
}

// Close lets the queued lines go out for at most progressDrain.
func (c *progressConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.lines)
	}
	c.mu.Unlock()
	select {
	case <-c.done:
	case <-time.After(progressDrain):
	}
	return nil
}

// note tells the first trouble with the collector, once.
func (c *progressConn) note(err error) {
	if c.noted {
		return
	}
	c.noted = true
	fmt.Fprintf(c.notes, "%s: note: --progress %s: %v: progress lines are dropped while the collector is away (the stage goes on)\n", c.stage, c.e, err)
}

func (c *progressConn) send() {
	defer close(c.done)
	var conn net.Conn
	var b Backoff
	var retryAt time.Time
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for line := range c.lines {
		if conn == nil {
			if time.Now().Before(retryAt) {
				continue // drop until the next attempt
			}
			var err error
			conn, err = net.DialTimeout(c.e.network, c.e.addr, progressWriteTimeout)
			if err != nil {
				c.note(err)
				retryAt = time.Now().Add(b.Next())
				continue
			}
			b.Reset()
		}
		conn.SetWriteDeadline(time.Now().Add(progressWriteTimeout))
		if _, err := conn.Write(line); err != nil {
			c.note(err)
			conn.Close()
			conn = nil
			retryAt = time.Now().Add(b.Next())
		}
	}
}

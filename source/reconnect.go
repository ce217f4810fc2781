package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/dstream/dstream/stage"
)

// holdMax bounds the bytes of an unended line that a connection holds back
// (see conn): a line longer than this is passed on before its end.
const holdMax = 1 << 20

// redialer is a socket read with --reconnect: a Source that yields one
// input per connection, and when one ends (closed or reset by the peer)
// connects again, with backoff, or accepts the next connection for a
// listening socket, until the stage must stop. While it waits, the batch
// clock goes on with empty batches. Each connection is a stream of its
// own for the decoder: with csv and tsv each starts with its header row.
// (A connection is cut at lines, see conn: sbatch refuses --reconnect with
// --format msgpack.)
type redialer struct {
	spec    string
	listen  bool
	timeout time.Duration // --reconnect-timeout, 0: never give up
	notes   io.Writer
	ctx     context.Context // done at a stop, or when the redialer is closed
	cancel  context.CancelFunc
	back    stage.Backoff
	l       net.Listener // a listening socket, once listened on
	cur     *conn        // the connection read last
	conns   int          // connections made so far
}

func newRedialer(spec string, o *Options, stop <-chan struct{}, notes io.Writer) (*redialer, error) {
	scheme, _, _ := strings.Cut(spec, "://")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return &redialer{
		spec: spec, listen: strings.HasSuffix(scheme, "-listen"), timeout: o.ReconnectTimeout,
		notes: notes, ctx: ctx, cancel: cancel,
	}, nil
}

// sleepCtx sleeps for d, or less if ctx is done first.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Next notes how the last connection ended and returns the next one, or
// false at a stop.
func (r *redialer) Next() (Input, bool, error) {
	if c := r.cur; c != nil {
		r.cur = nil
		again := "reconnecting"
		if r.listen {
			again = "accepting the next connection"
		}
		dropped := ""
		if c.dropped > 0 {
			dropped = fmt.Sprintf("; its unended last line (%d bytes) is dropped", c.dropped)
		}
		fmt.Fprintf(r.notes, "sbatch: note: %s: connection lost (%s), %s%s\n", r.spec, lostWhy(c.err), again, dropped)
	}
	var (
		c   net.Conn
		err error
	)
	if r.listen {
		c, err = r.accept()
	} else {
		c, err = r.dial()
	}
	if err != nil || c == nil {
		return Input{}, false, err
	}
	if u, ok := c.(*net.UnixConn); ok {
		u.CloseWrite() // nothing is sent back, as with OpenSocket
	}
	if r.conns > 0 {
		fmt.Fprintf(r.notes, "sbatch: note: %s: connected again\n", r.spec)
	}
	r.conns++
	r.cur = &conn{c: c, buf: make([]byte, 64<<10)}
	return Input{Name: r.spec, R: r.cur}, true, nil
}

// lostWhy says how a connection ended, for the note.
func lostWhy(err error) string {
	if err == nil || err == io.EOF {
		return "closed by the peer"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error() // "read: connection reset by peer", without the addresses
	}
	return err.Error()
}

// giveUp is the error of --reconnect-timeout.
func (r *redialer) giveUp(err error) error {
	return stage.Hint(fmt.Errorf("%s: no connection for %v (--reconnect-timeout): %w", r.spec, r.timeout, err),
		"check that the server at %s is up, or raise --reconnect-timeout (without it sbatch waits for ever)", r.spec)
}

// dial connects, trying again with backoff until it connects, the stage
// stops (nil, nil) or --reconnect-timeout passes.
func (r *redialer) dial() (net.Conn, error) {
	ctx, since := r.ctx, time.Now()
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, since.Add(r.timeout))
		defer cancel()
	}
	r.back.Reset()
	var last error // the last failure of the network's
	for {
		c, err := stage.DialSocket(ctx, r.spec)
		if err == nil {
			return c, nil
		}
		if op := (*net.OpError)(nil); !errors.As(err, &op) {
			return nil, err // not the network's: a bad endpoint
		}
		if r.ctx.Err() != nil {
			return nil, nil // a stop
		}
		if ctx.Err() != nil {
			if last == nil {
				last = err
			}
			return nil, r.giveUp(last)
		}
		last = err
		if r.conns == 0 && r.back.Fresh() {
			fmt.Fprintf(r.notes, "sbatch: note: %s: cannot connect (%s), trying again\n", r.spec, lostWhy(err))
		}
		sleepCtx(ctx, r.back.Next())
		if r.ctx.Err() != nil {
			return nil, nil
		}
	}
}

// accept accepts the next connection on the listening socket (listened on
// at the first call), until the stage stops (nil, nil) or
// --reconnect-timeout passes.
func (r *redialer) accept() (net.Conn, error) {
	if r.l == nil {
		l, err := stage.ListenSocket(r.spec)
		if err != nil {
			return nil, err
		}
		r.l = l
		// A stop closes the listener, which ends a waiting Accept.
		go func() {
			<-r.ctx.Done()
			l.Close()
		}()
	}
	if d, ok := r.l.(interface{ SetDeadline(time.Time) error }); ok && r.timeout > 0 {
		d.SetDeadline(time.Now().Add(r.timeout))
	}
	c, err := r.l.Accept()
	var ne net.Error
	switch {
	case err == nil:
		return c, nil
	case r.ctx.Err() != nil:
		return nil, nil
	case errors.As(err, &ne) && ne.Timeout():
		return nil, r.giveUp(err)
	}
	return nil, fmt.Errorf("accepting on %s: %w", r.spec, err)
}

// Close closes the connection and the listening socket.
func (r *redialer) Close() error {
	r.cancel()
	if r.cur != nil {
		r.cur.Close()
	}
	return nil
}

// conn is one connection of a redialer. A connection that breaks may end
// in the middle of a line, which a line protocol would rather lose than
// join to the first line of the next connection: so conn holds back the
// bytes after the last newline until their line ends. At a reset (any
// error but EOF) they are dropped and counted; at a close (EOF) they are
// the last line, as a file's unended last line is. Either way the reader
// sees EOF: the redialer goes on.
type conn struct {
	c       net.Conn
	buf     []byte
	r, e, w int   // buf[r:e] may be read; buf[e:w] is a line not ended yet
	err     error // how the connection ended: io.EOF when closed
	dropped int   // bytes of the unended line dropped at a reset
}

func (c *conn) Read(p []byte) (int, error) {
	for {
		if c.r < c.e {
			n := copy(p, c.buf[c.r:c.e])
			c.r += n
			return n, nil
		}
		if c.err != nil {
			if c.err == io.EOF && c.e < c.w {
				c.e = c.w
				continue
			}
			if c.err != io.EOF {
				c.dropped += c.w - c.e
				c.r, c.e, c.w = 0, 0, 0
			}
			return 0, io.EOF
		}
		if c.r > 0 {
			copy(c.buf, c.buf[c.r:c.w])
			c.e -= c.r
			c.w -= c.r
			c.r = 0
		}
		if c.w == len(c.buf) {
			if c.w >= holdMax {
				c.e = c.w // too long to hold: on to the decoder
				continue
			}
			c.buf = append(c.buf, make([]byte, len(c.buf))...)
		}
		n, err := c.c.Read(c.buf[c.w:])
		c.w += n
		if i := bytes.LastIndexByte(c.buf[c.e:c.w], '\n'); i >= 0 {
			c.e += i + 1
		}
		if err != nil {
			c.err = err
		}
	}
}

func (c *conn) Close() error { return c.c.Close() }

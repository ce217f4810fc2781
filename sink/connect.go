package sink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/dstream/dstream/stage"
)

// DefaultConnectTimeout is how long a broker destination tries to reach
// its server at start-up (--connect-timeout).
const DefaultConnectTimeout = 30 * time.Second

// dialTimeout bounds one attempt to connect (a server that does not
// answer at all).
const dialTimeout = 10 * time.Second

// Connect runs dial, which connects to server (named so in the note and
// the error, without a password) within its context, until it succeeds.
// While it fails because the server is not there (Unreachable: refused,
// unreachable, timed out), Connect tries again with backoff for
// o.ConnectTimeout (--connect-timeout; 0 tries once), with a note on
// o.Stderr at the first failure, so that a pipeline may start before its
// server; then it gives up, naming the server and the time. Any other
// error (bad credentials, a bad address) is returned at once. A stop asked
// for meanwhile (o.Stop) ends the wait with an error: nothing of the stream
// has been written.
func Connect(o *Options, server string, dial func(ctx context.Context) error) error {
	end := time.Now().Add(o.ConnectTimeout)
	var back stage.Backoff
	for first := true; ; first = false {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		if o.Stop != nil {
			go func() {
				select {
				case <-o.Stop:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		err := dial(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if !Unreachable(err) {
			return err
		}
		if stopped(o.Stop) {
			return fmt.Errorf("%s: stopped while waiting for the server: %w", server, err)
		}
		wait := back.Next()
		if time.Until(end) < wait {
			if o.ConnectTimeout == 0 {
				return stage.Hint(fmt.Errorf("%s: cannot connect: %w", server, err),
					"is the server running and listening at %s? --connect-timeout 0 tries once", server)
			}
			return stage.Hint(fmt.Errorf("%s: cannot connect for %v (--connect-timeout): %w", server, o.ConnectTimeout, err),
				"is the server running and listening at %s? To wait longer for it, raise --connect-timeout", server)
		}
		if first && o.Stderr != nil {
			fmt.Fprintf(o.Stderr, "ssink: note: %s: cannot connect (%s), trying again for %v (--connect-timeout)\n", server, Reason(err), o.ConnectTimeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-o.Stop: // nil: never
			t.Stop()
		}
	}
}

// stopped tells whether c, nil for never, is closed.
func stopped(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Unreachable tells whether err says that a server is not there (yet): a
// connection refused, a host or network unreachable, a dial that timed
// out or was cut at once. An answer of the server's (bad credentials, no
// such thing) is not.
func Unreachable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Reason is err, shorter when it is the network's: "connection refused",
// without the addresses the note names already.
func Reason(err error) string {
	var se syscall.Errno
	if errors.As(err, &se) {
		return se.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Endpoints besides stdin and stdout:
//
//	tcp://host:port          connect (retrying while the peer is not yet listening)
//	tcp-listen://host:port   listen and accept one connection
//	unix:///path             connect to a unix socket
//	unix-listen:///path      listen on a unix socket and accept one connection
const endpointHelp = "tcp://HOST:PORT, tcp-listen://HOST:PORT, unix:///PATH or unix-listen:///PATH"

// connectTimeout is how long a connecting endpoint retries while the
// listening side is not up yet, so the stages of a pipeline may start in any
// order.
var connectTimeout = 10 * time.Second

type endpoint struct {
	listen  bool
	network string // "tcp" or "unix"
	addr    string
}

func parseEndpoint(spec string) (endpoint, error) {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok || rest == "" {
		return endpoint{}, fmt.Errorf("bad endpoint %q: want %s", spec, endpointHelp)
	}
	var e endpoint
	switch scheme {
	case "tcp", "tcp-listen":
		e.network = "tcp"
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return e, fmt.Errorf("bad endpoint %q: %v", spec, err)
		}
	case "unix", "unix-listen":
		e.network = "unix"
	default:
		return e, fmt.Errorf("bad endpoint %q: unknown scheme %q, want %s", spec, scheme, endpointHelp)
	}
	e.listen, e.addr = strings.HasSuffix(scheme, "-listen"), rest
	return e, nil
}

// open connects or accepts one connection.
func (e endpoint) open() (net.Conn, error) {
	if e.listen {
		l, err := e.listenOn()
		if err != nil {
			return nil, err
		}
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			return nil, fmt.Errorf("accepting on %s://%s: %w", e.scheme(), e.addr, err)
		}
		return c, nil
	}
	deadline := time.Now().Add(connectTimeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		c, err := net.Dial(e.network, e.addr)
		if err == nil {
			return c, nil
		}
		refused := errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
		if !refused || time.Now().After(deadline) {
			return nil, Hint(fmt.Errorf("cannot connect to %s://%s: %w", e.scheme(), e.addr, err),
				"start the stage that listens (--in or --out %s-listen://%s) first, or check the address", e.scheme(), e.addr)
		}
		time.Sleep(wait)
	}
}

func (e endpoint) listenOn() (net.Listener, error) {
	if e.network == "unix" {
		// A socket file left by a killed run would make Listen fail.
		if fi, err := os.Stat(e.addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(e.addr)
		}
	}
	l, err := net.Listen(e.network, e.addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s://%s: %w", e.scheme(), e.addr, err)
	}
	return l, nil
}

// ListenSocket listens on the listening endpoint spec (tcp-listen://,
// unix-listen://) for a reader that accepts one connection after another
// (sbatch --reconnect); OpenSocket accepts one only.
func ListenSocket(spec string) (net.Listener, error) {
	e, err := parseEndpoint(spec)
	if err != nil {
		return nil, Usage(err)
	}
	if !e.listen {
		return nil, Usage(fmt.Errorf("%s is not a listening endpoint", spec))
	}
	return e.listenOn()
}

// DialSocket connects once to the endpoint spec (tcp://, unix://), without
// the retries of OpenSocket: for a reader that retries on its own terms
// (sbatch --reconnect, with its backoff).
func DialSocket(ctx context.Context, spec string) (net.Conn, error) {
	e, err := parseEndpoint(spec)
	if err != nil {
		return nil, Usage(err)
	}
	if e.listen {
		return nil, Usage(fmt.Errorf("%s is a listening endpoint", spec))
	}
	var d net.Dialer
	return d.DialContext(ctx, e.network, e.addr)
}

// String is the endpoint as given on the command line.
func (e endpoint) String() string { return e.scheme() + "://" + e.addr }

func (e endpoint) scheme() string {
	if e.listen {
		return e.network + "-listen"
	}
	return e.network
}

// openInput opens the stage's input: stdin, or an endpoint. An endpoint
// is connected (or listened on) at the first read, which the input's reading
// goroutine makes at once: so the stage checks the rest of its command line
// meanwhile, and a usage error is reported without waiting for a peer.
func openInput(spec string, stdin io.Reader) (io.Reader, io.Closer, error) {
	if spec == "" || spec == "-" {
		if f, ok := stdin.(*os.File); ok {
			growPipe(f)
		}
		return stdin, nil, nil
	}
	e, err := parseEndpoint(spec)
	if err != nil {
		return nil, nil, Usage(err)
	}
	l := &lazyInput{e: e}
	return l, l, nil
}

// IsSocket reports whether name is a socket endpoint (tcp://, tcp-listen://,
// unix://, unix-listen://) rather than a file name.
func IsSocket(name string) bool {
	scheme, _, ok := strings.Cut(name, "://")
	switch scheme {
	case "tcp", "tcp-listen", "unix", "unix-listen":
		return ok
	}
	return false
}

// OpenSocket returns a reader of the socket endpoint spec, which connects
// (or listens and accepts one connection) at its first Read, as --in does:
// how sbatch reads lines from a socket (Spark's socketTextStream).
func OpenSocket(spec string) (io.ReadCloser, error) {
	e, err := parseEndpoint(spec)
	if err != nil {
		return nil, Usage(err)
	}
	return &lazyInput{e: e}, nil
}

// lazyInput connects its endpoint at the first Read.
type lazyInput struct {
	e    endpoint
	once sync.Once
	mu   sync.Mutex
	c    net.Conn
	err  error
}

func (l *lazyInput) Read(p []byte) (int, error) {
	l.once.Do(func() {
		c, err := l.e.open()
		if u, ok := c.(*net.UnixConn); ok {
			u.CloseWrite()
		}
		l.mu.Lock()
		l.c, l.err = c, err
		l.mu.Unlock()
	})
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.c.Read(p)
	if err != nil && err != io.EOF {
		// A reset: what the peer sent after the last byte read is lost.
		// (The reader names the endpoint: Loop, or sbatch by its source.)
		err = Hint(err, "the sender on %s dropped the connection before the end of its stream: look at its error", l.e)
	}
	return n, err
}

func (l *lazyInput) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		return l.c.Close()
	}
	return nil
}

// openOutput opens the stage's framed output: stdout, or an endpoint.
// Frames are binary: a terminal is refused.
func openOutput(name, spec string, stdout io.Writer) (io.Writer, io.Closer, error) {
	if spec == "" || spec == "-" {
		if f, ok := stdout.(*os.File); ok {
			if isTerminal(f) {
				return nil, nil, Hint(errors.New("refusing to write binary frames to a terminal"),
					"pipe %s into ssink to see the records: %s ... | ssink", name, name)
			}
			growPipe(f)
		}
		return stdout, nil, nil
	}
	e, err := parseEndpoint(spec)
	if err != nil {
		return nil, nil, Usage(err)
	}
	c, err := e.open()
	if err != nil {
		return nil, nil, err
	}
	return endpointWriter{c, e}, c, nil
}

// endpointWriter is a connection a stage writes its frames to. A failed
// write names the endpoint: whether a broken pipe or a reset, the reader at
// the other end is gone before the end of the stream, which is an error,
// not the quiet end of a closed stdout.
type endpointWriter struct {
	c net.Conn
	e endpoint
}

func (w endpointWriter) Write(p []byte) (int, error) {
	n, err := w.c.Write(p)
	if err != nil {
		err = w.wrap(err)
	}
	return n, err
}

func (w endpointWriter) wrap(err error) error {
	return Hint(&writeError{fmt.Errorf("writing to %s: %w", w.e, err)},
		"the stage reading from %s stopped before the end of the stream: look at its error", w.e)
}

// writeError is a failed write to an --out endpoint, which does not know
// the batch it was writing: WithBatch adds it.
type writeError struct{ error }

func (e *writeError) Unwrap() error { return e.error }

// WithBatch names batch b in err if err is a failed write to the output
// endpoint (the writer underneath the framing does not know the batch).
func WithBatch(err error, b Batch) error {
	var we *writeError
	if errors.As(err, &we) {
		return fmt.Errorf("%v: %w", b, err)
	}
	return err
}

// IsTerminal reports whether w is a terminal: the live views (sdash's
// table, a progress bar) draw only there.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

package stage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/internal/frametest"
	"github.com/urfave/cli/v2"
)

// copyStage passes its input on unchanged, counting records.
func copyStage() *Command {
	return &Command{
		Name: "copy", Input: true, Output: true,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "fail"}},
		Action: func(e *Env) error {
			if e.Ctx.Bool("fail") {
				return Hint(errors.New("asked to fail"), "do not pass --fail")
			}
			return e.Loop(copier{Forward{e.Out}})
		},
	}
}

type copier struct{ Forward }

func (c copier) Block(_ Batch, recs framing.Records) error {
	b, n := recs.Rest()
	return c.Out.WriteRawBlock(b, n)
}

// stream builds a framed stream of batches with the given record counts.
func stream(t testing.TB, counts ...int) []byte {
	t.Helper()
	bs := make([]frametest.Batch, len(counts))
	for i, n := range counts {
		bs[i] = frametest.Batch{ID: uint64(i), Time: int64(1000 * (i + 1))}
		for j := 0; j < n; j++ {
			bs[i].Recs = append(bs[i].Recs, fmt.Sprintf(`{"v":"%c"}`, 'a'+j%26))
		}
	}
	return frametest.Stream(t, bs)
}

func runCmd(c *Command, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = c.Run(append([]string{c.Name}, args...), stdin, &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodesAndMessages(t *testing.T) {
	in := stream(t, 2, 0, 1)
	tests := []struct {
		name   string
		stdin  []byte
		args   []string
		code   int
		stderr string
	}{
		{"ok", in, nil, ExitOK, ""},
		{"usage", in, []string{"--nope"}, ExitUsage, "copy: error: unknown flag --nope\ncopy: hint: see 'copy --help'\n"},
		{"did you mean", in, []string{"--progres", "-"}, ExitUsage, "copy: error: unknown flag --progres\ncopy: hint: did you mean --progress?\n"},
		{"bad endpoint", in, []string{"--in", "http://x"}, ExitUsage, "copy: error: bad endpoint \"http://x\": unknown scheme \"http\", want tcp://HOST:PORT, tcp-listen://HOST:PORT, unix:///PATH or unix-listen:///PATH\ncopy: hint: see 'copy --help'\n"},
		{"bad compression", in, []string{"--compress", "lz4"}, ExitUsage, "copy: error: unknown compression \"lz4\" (want none, s2 or zstd)\ncopy: hint: see 'copy --help'\n"},
		{"runtime", in, []string{"--fail"}, ExitFailure, "copy: error: asked to fail\ncopy: hint: do not pass --fail\n"},
		{"not dstream", []byte("hello\n"), nil, ExitFailure, "copy: error: reading input: framing: input is not a dstream stream (it starts with \"hello\\n\")\ncopy: hint: dstream stages read the framed stream of another stage: put sbatch in front (sbatch --once < file | ...)\n"},
		{"empty", nil, nil, ExitFailure, "copy: error: reading input: framing: stream truncated: the input is empty\ncopy: hint: there was no input at all: a stage reads the framed stream of another, as in 'sbatch --once < FILE | STAGE'; if a stage before this one failed, look at its error\n"},
		{"truncated", in[:len(in)-framing.FrameHeaderLen], nil, ExitFailure, "copy: error: reading input: after batch 2: framing: stream truncated: the stream ended without its end-of-stream frame\ncopy: hint: the stage before this one stopped before ending its stream: look at its error\n"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCmd(copyStage(), bytes.NewReader(tt.stdin), tt.args...)
		if code != tt.code || stderr != tt.stderr {
			t.Errorf("%s: exit %d, stderr\n%s\nwant exit %d, stderr\n%s", tt.name, code, stderr, tt.code, tt.stderr)
		}
		if tt.code == ExitOK && stdout != string(in) {
			t.Errorf("%s: output differs from input", tt.name)
		}
		if tt.code == ExitUsage && stdout != "" {
			t.Errorf("%s: a usage error wrote to stdout: %q", tt.name, stdout)
		}
	}
}

func TestTruncatedOutputOnFailure(t *testing.T) {
	// A failing stage must not end its stream: the next stage has to see
	// that it is incomplete.
	c := &Command{Name: "half", Output: true, Action: func(e *Env) error {
		e.Out.BeginBatch(0, 1)
		e.Out.EndBatch()
		return errors.New("boom")
	}}
	code, stdout, _ := runCmd(c, nil)
	if code != ExitFailure {
		t.Fatalf("exit %d", code)
	}
	r := framing.NewReader(strings.NewReader(stdout))
	var err error
	for err == nil {
		_, err = r.ReadFrame()
	}
	if !errors.Is(err, framing.ErrTruncated) {
		t.Fatalf("got %v, want truncated", err)
	}
}

type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

func TestClosedDownstreamIsQuiet(t *testing.T) {
	var errb bytes.Buffer
	code := copyStage().Run([]string{"copy"}, bytes.NewReader(stream(t, 3)), brokenPipe{}, &errb)
	if code != ExitOK || errb.Len() != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestRefusesTerminal(t *testing.T) {
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no terminal to test with:", err)
	}
	defer tty.Close()
	var errb bytes.Buffer
	code := copyStage().Run([]string{"copy"}, bytes.NewReader(stream(t, 1)), tty, &errb)
	if code != ExitFailure || !strings.Contains(errb.String(), "refusing to write binary frames to a terminal") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// TestEndpoints sends a stream from one stage to another over each kind of
// socket, the listening side started second to exercise the connect retry.
func TestEndpoints(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	sock := filepath.Join(t.TempDir(), "s.sock")
	pairs := [][2]string{
		{fmt.Sprintf("tcp://127.0.0.1:%d", port), fmt.Sprintf("tcp-listen://127.0.0.1:%d", port)},
		{"unix://" + sock, "unix-listen://" + sock},
	}
	in := stream(t, 3, 0, 2)
	for _, p := range pairs {
		done := make(chan string)
		go func() {
			code, _, stderr := runCmd(copyStage(), bytes.NewReader(in), "--out", p[0])
			done <- fmt.Sprint(code, stderr)
		}()
		time.Sleep(50 * time.Millisecond)
		code, stdout, stderr := runCmd(copyStage(), nil, "--in", p[1])
		if code != 0 || stdout != string(in) {
			t.Errorf("%s -> %s: exit %d %s, output equal: %v", p[0], p[1], code, stderr, stdout == string(in))
		}
		if got := <-done; got != "0" {
			t.Errorf("sender: %s", got)
		}
	}
}

func TestConnectFails(t *testing.T) {
	old := connectTimeout
	connectTimeout = 50 * time.Millisecond
	defer func() { connectTimeout = old }()
	code, _, stderr := runCmd(copyStage(), bytes.NewReader(stream(t, 1)), "--out", "unix:///nonexistent/dstream.sock")
	if code != ExitFailure || !strings.Contains(stderr, "cannot connect to unix:///nonexistent/dstream.sock") || !strings.Contains(stderr, "copy: hint: start the stage that listens") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestSignalStopsBetweenBatches: with an upstream that stays open, a second
// SIGINT ends the stage after the batch in hand, with a complete stream.
func TestSignalStopsBetweenBatches(t *testing.T) {
	catchSIGINT(t)
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		pw.Write(stream(t, 2)[:len(stream(t, 2))-framing.FrameHeaderLen]) // all but End
		close(written)
	}()
	done := make(chan int)
	var out, errb bytes.Buffer
	stop := make(chan *Stopper, 1)
	go func() { done <- reportStopper(copyStage(), stop).Run([]string{"copy"}, pr, &out, &errb) }()
	s := <-stop
	<-written // an io.Pipe write returns once read: the stage is running
	time.Sleep(50 * time.Millisecond)
	sigint(t, s.Requested)
	sigint(t, s.Now)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stage did not stop")
	}
	if out.String() != string(stream(t, 2)) {
		t.Fatalf("output is not the batch in hand and End")
	}
}

func TestProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	code, _, stderr := runCmd(copyStage(), bytes.NewReader(stream(t, 2, 0)), "--progress", path)
	if code != 0 {
		t.Fatal(stderr)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"batchId":0,"batchTime":1000,`) || !strings.Contains(lines[0], `"numInputRows":2,"numOutputRows":2,`) || !strings.Contains(lines[1], `"batchId":1,`) {
		t.Fatalf("progress:\n%s", b)
	}
}

// TestListeningInputDoesNotDelayErrors: a stage listening for its input
// still reports a bad command line at once.
func TestListeningInputDoesNotDelayErrors(t *testing.T) {
	done := make(chan int)
	go func() {
		code, _, _ := runCmd(copyStage(), nil, "--in", "tcp-listen://127.0.0.1:0", "--fail")
		done <- code
	}()
	select {
	case code := <-done:
		if code != ExitFailure {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stage waited for a peer before failing")
	}
}

func TestIsClosedPipe(t *testing.T) {
	opErr := func(err error) error {
		return &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", err)}
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"stdout", &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}, true},
		{"bare", syscall.EPIPE, true},
		{"wrapped", fmt.Errorf("writing output: %w", syscall.EPIPE), true},
		{"reset", syscall.ECONNRESET, false},
		{"socket pipe", opErr(syscall.EPIPE), false},
		{"socket reset", opErr(syscall.ECONNRESET), false},
		{"endpoint", endpointWriter{e: endpoint{network: "tcp", addr: "h:1"}}.wrap(opErr(syscall.EPIPE)), false},
		{"other", io.ErrShortWrite, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		if got := IsClosedPipe(tt.err); got != tt.want {
			t.Errorf("%s: IsClosedPipe(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// catchSIGINT makes the test binary catch the SIGINTs it sends itself, so
// that one the stage has not yet asked for cannot kill it.
func catchSIGINT(t *testing.T) {
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, syscall.SIGINT)
	t.Cleanup(func() { signal.Stop(sigc) })
}

// sigint sends the test binary a SIGINT and waits until the stage's
// Stopper has taken it (cond): two signals sent before the runtime hands
// the first over are one.
func sigint(t *testing.T, cond func() bool) {
	t.Helper()
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stage did not take the signal")
		}
	}
}

// osPipe is a pipe whose read end is a stage's stdin, read through the
// runtime's poller (deadlineReader). The read end is never closed, nor
// collected (which would close it): the stage keeps a pollable file of its
// stdin's descriptor for the life of the process, as a real stage's stdin
// lives as long, and a later file must not get the same descriptor.
func osPipe(t *testing.T) (*os.File, *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	keepOpen = append(keepOpen, r)
	return r, w
}

var keepOpen []*os.File

// reportStopper makes c send its Stopper on stop when it starts.
func reportStopper(c *Command, stop chan<- *Stopper) *Command {
	action := c.Action
	c.Action = func(e *Env) error {
		stop <- e.Stop
		return action(e)
	}
	return c
}

// holder is a copier that holds batch 0 until the stop is forced, so that
// what comes after it is in its input by then.
type holder struct {
	copier
	stop    *Stopper
	reached chan struct{}
}

func (h holder) End(b Batch) error {
	if b.ID == 0 {
		close(h.reached)
		for deadline := time.Now().Add(5 * time.Second); !h.stop.Now() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	return h.copier.End(b)
}

// TestForcedStop: after a signal a stage drains its input until the
// upstream ends the stream; a second signal or --stop-timeout stops it
// after the batch in hand. If all that had arrived was passed on (here: the
// rest was the end of the stream), it exits 0 with a complete stream; if a
// later batch had arrived, it exits 1 naming the last batch passed on, and
// leaves its stream unended.
func TestForcedStop(t *testing.T) {
	catchSIGINT(t)
	full := stream(t, 1, 2, 1)
	noEnd := full[:len(full)-framing.FrameHeaderLen]
	tests := []struct {
		name    string
		input   []byte
		args    []string
		signals int
		code    int
		stderr  string
		out     []byte
	}{
		{"second signal, batches left", noEnd, nil, 2, ExitFailure,
			"copy: error: stopped by a second signal before the end of the stream: batches after batch 0 not passed on\n" +
				"copy: hint: with --checkpoint the batches not passed on are replayed on the next run; without, they are lost\n",
			stream(t, 1)[:len(stream(t, 1))-framing.FrameHeaderLen]},
		{"timeout, batches left", noEnd, []string{"--stop-timeout", "20ms"}, 1, ExitFailure,
			"copy: error: stopped by --stop-timeout 20ms before the end of the stream: batches after batch 0 not passed on\n" +
				"copy: hint: with --checkpoint the batches not passed on are replayed on the next run; without, they are lost\n",
			stream(t, 1)[:len(stream(t, 1))-framing.FrameHeaderLen]},
		{"second signal, the end was there", stream(t, 1), nil, 2, ExitOK, "", stream(t, 1)},
	}
	for _, tt := range tests {
		for _, pipe := range []string{"os", "io"} {
			t.Run(tt.name+", "+pipe+" pipe", func(t *testing.T) {
				var in io.Reader
				var w io.WriteCloser
				if pipe == "os" {
					in, w = osPipe(t)
				} else {
					in, w = io.Pipe()
				}
				defer w.Close() // the upstream stays open until the stage is done
				go w.Write(tt.input)
				reached := make(chan struct{})
				var stop *Stopper
				c := &Command{Name: "copy", Input: true, Output: true, Action: func(e *Env) error {
					stop = e.Stop
					return e.Loop(holder{copier{Forward{e.Out}}, e.Stop, reached})
				}}
				done := make(chan int)
				var out, errb bytes.Buffer
				go func() { done <- c.Run(append([]string{"copy"}, tt.args...), in, &out, &errb) }()
				select {
				case <-reached:
				case code := <-done:
					t.Fatalf("the stage ended before the end of batch 0: exit %d, stderr %q", code, errb.String())
				}
				sigint(t, func() bool { return stop.Requested() })
				if tt.signals == 2 {
					sigint(t, func() bool { return stop.Now() })
				}
				var code int
				select {
				case code = <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("the stage did not stop")
				}
				if code != tt.code || errb.String() != tt.stderr {
					t.Errorf("exit %d, stderr\n%s\nwant exit %d, stderr\n%s", code, errb.String(), tt.code, tt.stderr)
				}
				if !bytes.Equal(out.Bytes(), tt.out) {
					t.Errorf("output %q\nwant %q", out.Bytes(), tt.out)
				}
			})
		}
	}
}

// TestGracefulStopDrains: after one signal, a stage passes on every batch
// its upstream sends, however late, until the end of the stream.
func TestGracefulStopDrains(t *testing.T) {
	catchSIGINT(t)
	r, w := osPipe(t)
	full := stream(t, 1, 2, 3)
	first := len(stream(t, 1)) - framing.FrameHeaderLen // the header and batch 0
	w.Write(full[:first])
	done := make(chan int)
	var out, errb bytes.Buffer
	stop := make(chan *Stopper, 1)
	go func() { done <- reportStopper(copyStage(), stop).Run([]string{"copy"}, r, &out, &errb) }()
	s := <-stop
	sigint(t, s.Requested)
	// The stage must still be waiting for the rest, whenever it comes.
	select {
	case code := <-done:
		t.Fatalf("the stage stopped before the end of the stream: exit %d, %s", code, errb.String())
	case <-time.After(200 * time.Millisecond):
	}
	w.Write(full[first:])
	w.Close()
	if code := <-done; code != 0 || errb.Len() != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if !bytes.Equal(out.Bytes(), full) {
		t.Fatal("output differs from the input")
	}
}

// brokenAfter takes n writes, then fails with EPIPE, as a pipe whose reader
// has gone.
type brokenAfter struct {
	n    int
	sent func()
}

func (b *brokenAfter) Write(p []byte) (int, error) {
	if b.n == 0 {
		return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
	}
	b.n--
	if b.n == 0 && b.sent != nil {
		b.sent()
	}
	return len(p), nil
}

// TestOutputClosedDuringStop: a closed output is a quiet end (| head),
// but not while the stage stops on a signal: the reader then stopped (or
// was killed) before the stage passed its batches on.
func TestOutputClosedDuringStop(t *testing.T) {
	catchSIGINT(t)
	r, w := io.Pipe()
	defer w.Close()
	full := stream(t, 1, 1, 1)
	stop := make(chan *Stopper, 1)
	signalled := make(chan struct{})
	// The first write is the header and batch 0; the signal comes before
	// batch 1 is written.
	out := &brokenAfter{n: 1, sent: func() { sigint(t, (<-stop).Requested); close(signalled) }}
	go func() {
		w.Write(full[:len(stream(t, 1))-framing.FrameHeaderLen])
		<-signalled
		w.Write(full[len(stream(t, 1))-framing.FrameHeaderLen:])
	}()
	var errb bytes.Buffer
	code := reportStopper(copyStage(), stop).Run([]string{"copy"}, r, out, &errb)
	want := "copy: error: its output was closed during a graceful stop (SIGINT or SIGTERM): batches after batch 0 not passed on (write /dev/stdout: broken pipe)\n" +
		"copy: hint: with --checkpoint the batches not passed on are replayed on the next run; without, they are lost\n"
	if code != ExitFailure || errb.String() != want {
		t.Fatalf("exit %d, stderr\n%s\nwant\n%s", code, errb.String(), want)
	}
}

// resetAfter accepts one connection on l, reads n bytes and resets the
// connection (SO_LINGER 0, then Close), as a reader that crashed would.
func resetAfter(t *testing.T, l net.Listener, n int) {
	c, err := l.Accept()
	if err != nil {
		t.Error(err)
		return
	}
	io.ReadFull(c, make([]byte, n))
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

// TestOutputEndpointReset: the reader at the other end of --out resets the
// connection: an error naming the endpoint and the batch, not a quiet end.
func TestOutputEndpointReset(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go resetAfter(t, l, 1)
	// An upstream that sends batch 0 at once and the rest once the reset
	// has happened, so that the failing write is batch 1's.
	r, w := io.Pipe()
	full := stream(t, 1, 1, 1)
	go func() {
		w.Write(full[:len(stream(t, 1))-framing.FrameHeaderLen])
		time.Sleep(200 * time.Millisecond)
		w.Write(full[len(stream(t, 1))-framing.FrameHeaderLen:])
		w.Close()
	}()
	spec := "tcp://" + l.Addr().String()
	code, _, stderr := runCmd(copyStage(), r, "--out", spec)
	if code != ExitFailure || !strings.HasPrefix(stderr, "copy: error: batch 1: writing to "+spec+": ") ||
		!strings.Contains(stderr, "copy: hint: the stage reading from "+spec+" stopped before the end of the stream") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestInputEndpointDropped: an upstream that resets the connection, or
// closes it, in the middle of the stream: exit 1 naming the endpoint and
// the batch, after passing on the batches that arrived whole.
func TestInputEndpointDropped(t *testing.T) {
	full := stream(t, 1, 1, 1)
	cut := len(stream(t, 1, 1)) - framing.FrameHeaderLen + 5 // inside batch 2's BatchBegin
	for _, tt := range []struct {
		name  string
		reset bool
		want  []string
	}{
		{"reset", true, []string{": after batch 1: read tcp ", "connection reset by peer", "copy: hint: the sender on %s dropped the connection"}},
		{"closed", false, []string{": after batch 1: framing: stream truncated: the stream ended inside a frame header", "copy: hint: the stage before this one stopped"}},
	} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		spec := fmt.Sprintf("tcp-listen://127.0.0.1:%d", port)
		go func() {
			var c net.Conn
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
					break
				}
			}
			if c == nil {
				t.Error("cannot connect:", err)
				return
			}
			c.Write(full[:cut])
			if tt.reset {
				time.Sleep(50 * time.Millisecond)
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
		}()
		code, stdout, stderr := runCmd(copyStage(), nil, "--in", spec)
		ok := code == ExitFailure && strings.HasPrefix(stderr, "copy: error: reading input from "+spec+": ")
		for _, w := range tt.want {
			ok = ok && strings.Contains(stderr, strings.ReplaceAll(w, "%s", spec))
		}
		if !ok {
			t.Errorf("%s: exit %d, stderr %q", tt.name, code, stderr)
		}
		if want := full[:len(stream(t, 1, 1))-framing.FrameHeaderLen]; stdout != string(want) {
			t.Errorf("%s: output %q, want batches 0 and 1 without End", tt.name, stdout)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"filtre", "filter", 1}, {"intervall", "interval", 1}, {"nope", "compress", 5},
		{"", "in", 2}, {"out", "out", 0}, {"chekpoint", "checkpoint", 1},
	} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestVersion: --version prints the build's version on stdout, exit 0.
func TestVersion(t *testing.T) {
	code, stdout, stderr := runCmd(copyStage(), strings.NewReader(""), "--version")
	if code != ExitOK || stdout != "copy version "+Version()+"\n" || stderr != "" || Version() == "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

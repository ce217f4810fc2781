package sink

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
)

// Command runs a command for each batch, sh -c CMD, with the batch on its
// stdin (Spark's foreachBatch).
var Command = Destination{
	Flag:          "exec",
	Usage:         "run `CMD` (sh -c) for each batch with the batch on its stdin in --format (default json), DSTREAM_BATCH_ID and DSTREAM_BATCH_TIME in its environment (foreachBatch)",
	Category:      "Files and commands",
	Needs:         "a command",
	Encodes:       true,
	DefaultFormat: "json",
	Open: func(o *Options, f *codec.Format, _ *bufio.Writer) (Writer, error) {
		cmd, stdout, stderr := o.Target, o.Stdout, o.Stderr
		return newPerBatch(o, f, func(b stage.Batch) (target, error) { return startCommand(cmd, b, stdout, stderr) }), nil
	},
}

// commandTarget is a command run for a batch (foreachBatch): sh -c CMD with
// the batch on its stdin, its id and time in DSTREAM_BATCH_ID and
// DSTREAM_BATCH_TIME; its stdout and stderr are ssink's.
type commandTarget struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	quiet bool // the command closed its stdin: the rest is not for it
}

func startCommand(command string, b stage.Batch, stdout, stderr io.Writer) (target, error) {
	cmd := exec.Command("sh", "-c", command)
	cmd.Env = append(os.Environ(),
		"DSTREAM_BATCH_ID="+strconv.FormatUint(b.ID, 10),
		"DSTREAM_BATCH_TIME="+strconv.FormatInt(b.Time, 10))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	stage.OwnProcessGroup(cmd) // a stop on a signal lets it finish its batch
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--exec %q: %w", command, err)
	}
	return &commandTarget{cmd: cmd, in: in}, nil
}

func (t *commandTarget) Write(p []byte) (int, error) {
	if t.quiet {
		return len(p), nil
	}
	n, err := t.in.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		// A command that reads only part of its input (head, or none)
		// is its own business: its exit status says how it went.
		t.quiet = true
		return len(p), nil
	}
	return n, err
}

func (t *commandTarget) commit() error {
	t.in.Close()
	if err := t.cmd.Wait(); err != nil {
		return fmt.Errorf("--exec %q: the command failed: %w", t.cmd.Args[2], err)
	}
	return nil
}

func (t *commandTarget) abort() {
	t.in.Close()
	stage.KillProcessGroup(t.cmd)
	t.cmd.Wait()
}

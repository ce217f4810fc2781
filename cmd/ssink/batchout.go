package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

// Flags of the outputs that take a batch at a time.
const (
	flagFiles  = "files"
	flagSuffix = "suffix"
	flagExec   = "exec"
)

// suffixes are the file suffixes of the formats with --files.
var suffixes = map[string]string{"console": "txt", "json": "json", "csv": "csv", "tsv": "tsv", "lines": "txt", "msgpack": "msgpack"}

// newBatchOutput returns the format writing to stdout, or, with --files or
// --exec, one that writes each batch to a file or a command of its own in
// that format (a fresh one per batch, so a csv file has its header).
func newBatchOutput(ctx *cli.Context, name string, mk func(*bufio.Writer) format, out *bufio.Writer, stdout, stderr io.Writer) (format, error) {
	files, cmd := ctx.String(flagFiles), ctx.String(flagExec)
	switch {
	case ctx.IsSet(flagFiles) && ctx.IsSet(flagExec):
		return nil, stage.UsageError("--%s and --%s are two outputs: run two ssink stages (after tee) for both", flagFiles, flagExec)
	case ctx.IsSet(flagSuffix) && !ctx.IsSet(flagFiles):
		return nil, stage.UsageError("--%s applies to --%s", flagSuffix, flagFiles)
	case ctx.IsSet(flagFiles):
		if files == "" {
			return nil, stage.UsageError("--%s needs a PREFIX (a path, whose directory must exist)", flagFiles)
		}
		if !isDir(filepath.Dir(files)) {
			return nil, stage.Hint(fmt.Errorf("--%s %s: %s is not a directory", flagFiles, files, filepath.Dir(files)),
				"the files are PREFIX-TIME.SUFFIX: create the directory of PREFIX first")
		}
		suffix := suffixes[name]
		if ctx.IsSet(flagSuffix) {
			suffix = ctx.String(flagSuffix)
		}
		return &perBatch{mk: mk, open: func(b stage.Batch) (target, error) { return openFile(files, suffix, b) }}, nil
	case ctx.IsSet(flagExec):
		if cmd == "" {
			return nil, stage.UsageError("--%s needs a command", flagExec)
		}
		return &perBatch{mk: mk, open: func(b stage.Batch) (target, error) { return startCommand(cmd, b, stdout, stderr) }}, nil
	}
	return mk(out), nil
}

// target is where one batch goes: a file or a command.
type target interface {
	io.Writer
	// commit makes the batch's output final; abort throws it away.
	commit() error
	abort()
}

// perBatch is a format writing each batch to a target of its own.
type perBatch struct {
	mk   func(*bufio.Writer) format
	open func(stage.Batch) (target, error)
	t    target
	w    *bufio.Writer
	f    format
}

func (p *perBatch) begin(b stage.Batch) error {
	t, err := p.open(b)
	if err != nil {
		return fmt.Errorf("%v: %w", b, err)
	}
	p.t = t
	if p.w == nil {
		p.w = bufio.NewWriterSize(t, 64<<10)
	} else {
		p.w.Reset(t)
	}
	p.f = p.mk(p.w)
	return p.f.begin(b)
}

func (p *perBatch) record(rec []byte) error { return p.f.record(rec) }

func (p *perBatch) end(b stage.Batch, n uint64) error {
	err := p.f.end(b, n)
	if err == nil {
		err = p.f.flush()
	}
	if err == nil {
		if err = p.w.Flush(); err != nil {
			err = fmt.Errorf("writing output: %w", err)
		}
	}
	t := p.t
	p.t = nil
	if err != nil {
		t.abort()
		return err
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("%v: %w", b, err)
	}
	return nil
}

// flush, on the way out after an error, throws away the batch in hand: a
// batch's file or command gets the whole batch or nothing.
func (p *perBatch) flush() error {
	if p.t != nil {
		p.t.abort()
		p.t = nil
	}
	return nil
}

// fileTarget is the file of a batch, PREFIX-TIME.SUFFIX, written under a
// temporary name and renamed when complete (as saveAsTextFiles names its
// output; the rename makes it appear whole, and a batch written again, as
// after a restart, replaces it with the same).
type fileTarget struct {
	f    *os.File
	name string
}

func openFile(prefix, suffix string, b stage.Batch) (target, error) {
	name := prefix + "-" + strconv.FormatInt(b.Time, 10)
	if suffix != "" {
		name += "." + suffix
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &fileTarget{f: f, name: name}, nil
}

func (t *fileTarget) Write(p []byte) (int, error) { return t.f.Write(p) }

func (t *fileTarget) commit() error {
	err := t.f.Sync()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(t.f.Name(), t.name)
	}
	if err == nil {
		err = syncDir(filepath.Dir(t.name))
	}
	if err != nil {
		os.Remove(t.f.Name())
		return fmt.Errorf("writing %s: %w", t.name, err)
	}
	return nil
}

func (t *fileTarget) abort() {
	t.f.Close()
	os.Remove(t.f.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--%s %q: %w", flagExec, command, err)
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
		return fmt.Errorf("--%s %q: the command failed: %w", flagExec, t.cmd.Args[2], err)
	}
	return nil
}

func (t *commandTarget) abort() {
	t.in.Close()
	t.cmd.Process.Kill()
	t.cmd.Wait()
}

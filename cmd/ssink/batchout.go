package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
)

// Flags of the outputs that take a batch at a time.
const (
	flagFiles  = "files"
	flagSuffix = "suffix"
	flagExec   = "exec"
	flagPost   = "post"
)

// contentTypes are the Content-Type of the formats with --post.
var contentTypes = map[string]string{"console": "text/plain; charset=utf-8", "json": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
	"tsv": "text/tab-separated-values; charset=utf-8", "lines": "text/plain; charset=utf-8", "msgpack": "application/msgpack"}

// suffixes are the file suffixes of the formats with --files.
var suffixes = map[string]string{"console": "txt", "json": "json", "csv": "csv", "tsv": "tsv", "lines": "txt", "msgpack": "msgpack"}

// newBatchOutput returns the format writing to stdout, or, with --files or
// --exec, one that writes each batch to a file or a command of its own in
// that format (a fresh one per batch, so a csv file has its header).
func newBatchOutput(ctx *cli.Context, name string, mk func(*bufio.Writer) format, out *bufio.Writer, stdout, stderr io.Writer) (format, error) {
	files, cmd, url := ctx.String(flagFiles), ctx.String(flagExec), ctx.String(flagPost)
	var set []string
	for _, f := range []string{flagFiles, flagExec, flagPost} {
		if ctx.IsSet(f) {
			set = append(set, "--"+f)
		}
	}
	switch {
	case len(set) > 1:
		return nil, stage.UsageError("%s are two outputs: run two ssink stages (after tee) for both", strings.Join(set, " and "))
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
		o := &fileOutput{prefix: files, suffix: suffix}
		return &perBatch{mk: mk, open: o.open}, nil
	case ctx.IsSet(flagExec):
		if cmd == "" {
			return nil, stage.UsageError("--%s needs a command", flagExec)
		}
		return &perBatch{mk: mk, open: func(b stage.Batch) (target, error) { return startCommand(cmd, b, stdout, stderr) }}, nil
	case ctx.IsSet(flagPost):
		if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			return nil, stage.UsageError("--%s %q: want an http:// or https:// URL", flagPost, url)
		}
		client := &http.Client{Timeout: postTimeout}
		return &perBatch{mk: mk, open: func(b stage.Batch) (target, error) {
			return &postTarget{client: client, url: url, ctype: contentTypes[name], b: b}, nil
		}}, nil
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

// fileOutput makes the files of --files PREFIX.
type fileOutput struct {
	prefix, suffix string
	swept          bool
}

// open opens batch b's file. The first one first removes the temporary
// files a run killed in the middle of a batch left behind: no later run
// would ever rename them. Why at the first batch and not at the start:
// ssink has then checked its command line and taken its checkpoint, so a
// run refused at the start does not sweep away the files of the one it
// collided with.
func (o *fileOutput) open(b stage.Batch) (target, error) {
	if !o.swept {
		o.swept = true
		if err := removeLeftovers(o.prefix, o.suffix); err != nil {
			return nil, err
		}
	}
	return openFile(o.prefix, o.suffix, b)
}

// removeLeftovers removes the temporary files of openFile in the directory
// of prefix: .NAME.tmp-RANDOM, NAME a file name of this prefix and suffix
// (PREFIX-TIME.SUFFIX). Nothing else is touched.
func removeLeftovers(prefix, suffix string) error {
	dir, base := filepath.Split(prefix + "-")
	if dir == "" {
		dir = "."
	}
	pat := `^\.` + regexp.QuoteMeta(base) + `-?[0-9]+`
	if suffix != "" {
		pat += regexp.QuoteMeta("." + suffix)
	}
	re := regexp.MustCompile(pat + `\.tmp-[0-9]+$`)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("--%s %s: %w", flagFiles, prefix, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !re.MatchString(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--%s %s: removing a temporary file left by an earlier run: %w", flagFiles, prefix, err)
		}
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
		err = checkpoint.SyncDir(filepath.Dir(t.name))
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
	stage.KillProcessGroup(t.cmd)
	t.cmd.Wait()
}

// postTimeout bounds one POST of a batch, the answer included.
const postTimeout = 30 * time.Second

// postTarget POSTs a batch to a URL as one request body, with the batch's
// id and time in the headers X-Dstream-Batch-Id and X-Dstream-Batch-Time
// (a receiver can make the write idempotent by them). Any answer but 2xx
// is an error naming the batch; the body is gathered first, so that the
// request has a length and the batch goes whole or not at all.
type postTarget struct {
	client *http.Client
	url    string
	ctype  string
	b      stage.Batch
	body   bytes.Buffer
}

func (t *postTarget) Write(p []byte) (int, error) { return t.body.Write(p) }

func (t *postTarget) commit() error {
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(t.body.Bytes()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", t.ctype)
	req.Header.Set("X-Dstream-Batch-Id", strconv.FormatUint(t.b.ID, 10))
	req.Header.Set("X-Dstream-Batch-Time", strconv.FormatInt(t.b.Time, 10))
	resp, err := t.client.Do(req)
	if err != nil {
		return stage.Hint(fmt.Errorf("--%s: %w", flagPost, err), "check that the server at %s is up and the URL right", t.url)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("--%s %s: %s: %s", flagPost, t.url, resp.Status, strings.TrimSpace(string(msg)))
	}
	io.Copy(io.Discard, resp.Body) // so that the connection is kept
	return nil
}

func (t *postTarget) abort() {}

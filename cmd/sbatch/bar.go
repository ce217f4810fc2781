package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dstream/dstream/source"
	"github.com/dstream/dstream/stage"
	"github.com/schollz/progressbar/v3"
)

// barRefresh is how often the progress bar is redrawn.
const barRefresh = 200 * time.Millisecond

// inputSize returns the total size of the inputs when they are all regular
// files read to their end (stdin redirected from a file counts), and false
// otherwise: a socket, a broker, a watched directory, a pipe, --follow, or
// a checkpoint (which replays and resumes: the bytes read are not the
// files' sizes).
func inputSize(o source.Options, stdin io.Reader) (int64, bool) {
	if o.Follow || o.Reconnect || o.Checkpoint != "" {
		return 0, false
	}
	ins := o.Inputs
	if len(ins) == 0 {
		ins = []string{"-"}
	}
	var total int64
	for _, in := range ins {
		var fi os.FileInfo
		var err error
		switch {
		case in == "-":
			f, ok := stdin.(*os.File)
			if !ok {
				return 0, false
			}
			fi, err = f.Stat()
		case strings.Contains(in, "://"):
			return 0, false
		default:
			fi, err = os.Stat(in)
		}
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		total += fi.Size()
	}
	return total, true
}

// startBar shows a progress bar of o's inputs on stderr: bytes read of the
// total, records per second, the time left. Not when stderr is no
// terminal, with --quiet, or when the inputs have no known end (see
// inputSize). The returned function ends the bar, erasing it.
func startBar(e *stage.Env, o *source.Options) (stop func()) {
	total, ok := inputSize(*o, e.Stdin)
	if !ok || e.Ctx.Bool("quiet") || !stage.IsTerminal(e.Stderr) {
		return func() {}
	}
	m := new(source.Meter)
	o.Meter = m
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(e.Stderr),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(barRefresh),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetDescription("sbatch"),
	)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(barRefresh)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-done:
				bar.Finish()
				return
			case <-t.C:
				n := m.Records.Load()
				bar.Describe(fmt.Sprintf("sbatch %d records, %.0f records/s", n, float64(n)/time.Since(start).Seconds()))
				bar.Set64(m.Bytes.Load())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

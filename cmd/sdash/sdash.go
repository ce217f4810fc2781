package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream/dash"
	"github.com/dstream/dstream/stage"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

var command = &stage.Command{
	Name:      "sdash",
	Usage:     "show a running pipeline live: rates, batch durations, the bottleneck",
	ArgsUsage: "[PROGRESS-FILE...]",
	Description: `sdash is the live view of a pipeline (Spark's Streaming tab, in the
terminal as vector top does): it hears the --progress lines of the stages
and shows a row per stage (per process: NAME[PID]), redrawn in place every
--refresh:

  BATCH       the last batch the stage finished
  IN/S        records arriving per second, over the last 10s of batches
  PROC/S      records processed per second while busy (the stage's speed)
  BATCH       mean batch duration, over the last 10s
  BUSY        share of the time the stage spends in batches: the stage
              nearest 100% is the bottleneck (marked *, in reverse video):
              the others wait for it. Not of the source (-): its batch
              lasts while it waits for input
  DELAY       when the stage finished its last batch, after the batch's time
              (end of its interval): how far behind the clock it runs
  RECORDS IN, OUT, STATE (rows in a stateful stage's state), WATERMARK
  ERRORS      bad records skipped (--skip-bad)
  SEEN        how long ago the stage's last line came

--listen ADDR listens where the stages' --progress point: tcp://HOST:PORT
or unix:///PATH, for any number of stages and copies of them, connecting
and going away as they like. PROGRESS-FILEs are --progress files, followed
as tail -f does (--no-follow: read them, print the table once and exit).
--serve HOST:PORT serves the same as a web page (rate and duration charts,
the bottleneck's batch timeline, a row per stage), and the figures as JSON
at /api/snapshot. When stdout is not a terminal, the table is printed
every --refresh, one after the other, without escapes. sdash runs until
SIGINT or SIGTERM.

Examples:
  sdash --listen unix:///tmp/p.sock &
  sbatch -i 1s --progress unix:///tmp/p.sock < log | smap --progress unix:///tmp/p.sock ... | ssink
  sdash --listen tcp://127.0.0.1:7070 --serve 127.0.0.1:8080
  sdash --no-follow sbatch.progress smap.progress`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "listen", Usage: "hear the stages' --progress at `ADDR`: tcp://HOST:PORT or unix:///PATH"},
		&cli.StringFlag{Name: "serve", Usage: "serve the web view at http://`HOST:PORT`/"},
		&cli.DurationFlag{Name: "refresh", Value: time.Second, Usage: "redraw the table every `DUR`"},
		&cli.BoolFlag{Name: "no-follow", Usage: "read the PROGRESS-FILEs to their end, print the table once and exit"},
	},
	Action: run,
}

func run(e *stage.Env) error {
	c := e.Ctx
	files := c.Args().Slice()
	listen, serve, follow := c.String("listen"), c.String("serve"), !c.Bool("no-follow")
	refresh := c.Duration("refresh")
	switch {
	case listen == "" && len(files) == 0:
		return stage.UsageError("nothing to show: give --listen ADDR (where the stages' --progress point) or --progress files")
	case !follow && (listen != "" || serve != ""):
		return stage.UsageError("--no-follow reads files once: not with --listen or --serve")
	case refresh <= 0:
		return stage.UsageError("--refresh %v: want a positive duration", refresh)
	}
	var sources []string
	var l net.Listener
	if listen != "" {
		var err error
		if l, err = listenAt(listen); err != nil {
			return err
		}
		defer l.Close()
		sources = append(sources, "listening on "+listen)
	}
	if len(files) > 0 {
		sources = append(sources, strings.Join(files, " "))
	}
	d := dash.New(strings.Join(sources, ", "))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.Stop.RequestedC():
			cancel()
		case <-ctx.Done():
		}
	}()
	// The first failure of a source ends sdash.
	var wg sync.WaitGroup
	var first error
	var once sync.Once
	fail := func(err error) {
		if err != nil {
			once.Do(func() { first = err; cancel() })
		}
	}
	if l != nil {
		wg.Go(func() { fail(d.Serve(ctx, l)) })
	}
	for _, f := range files {
		wg.Go(func() { fail(d.ReadFile(ctx, f, follow, 200*time.Millisecond)) })
	}
	if !follow {
		wg.Wait()
		if first != nil {
			return first
		}
		dash.Table(e.Stdout, d.Snapshot(false), false, 0)
		return nil
	}
	if serve != "" {
		hl, err := net.Listen("tcp", strings.TrimPrefix(serve, "tcp://"))
		if err != nil {
			return fmt.Errorf("--serve: %w", err)
		}
		srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(hl)
		defer srv.Close()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if stage.IsTerminal(e.Stdout) {
			width := func() int {
				w, _, err := term.GetSize(int(e.Stdout.(*os.File).Fd()))
				if err != nil {
					return 0
				}
				return w
			}
			dash.Live(e.Stdout, d, width, refresh, ctx.Done())
			return
		}
		t := time.NewTicker(refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				dash.Table(e.Stdout, d.Snapshot(false), false, 0)
				fmt.Fprintln(e.Stdout)
			}
		}
	}()
	<-ctx.Done()
	<-done
	wg.Wait()
	return first
}

// listenAt listens at the address the stages' --progress connect to
// (tcp://HOST:PORT, unix:///PATH); the -listen forms are taken too.
func listenAt(addr string) (net.Listener, error) {
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok || (scheme != "tcp" && scheme != "unix" && scheme != "tcp-listen" && scheme != "unix-listen") {
		return nil, stage.UsageError("--listen %q: want tcp://HOST:PORT or unix:///PATH", addr)
	}
	l, err := stage.ListenSocket(strings.TrimSuffix(scheme, "-listen") + "-listen://" + rest)
	if err != nil && !errors.As(err, new(*stage.Error)) {
		err = stage.Hint(err, "is another sdash listening there? pick another address")
	}
	return l, err
}

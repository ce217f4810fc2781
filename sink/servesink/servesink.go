// Package servesink is ssink's dashboard destination (--serve ADDR): a web
// page that shows the stream as it flows, the latest batch as a table in
// Spark's console layout and the charts of --chart, with the same data as
// endpoints a script or another dashboard reads: /batches (JSON, the last
// --keep batches) and /events (Server-Sent Events, a batch per event).
//
// The sink never waits for a browser: each batch is kept (the last
// --keep) and queued for each reader of /events without blocking; a
// reader whose queue is full loses its updates (it is told, and the page
// reads /batches again), never the pipeline's data.
package servesink

import (
	"bufio"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
)

// Serve serves the stream on a web page at ADDR (--serve ADDR).
var Serve = sink.Destination{
	Flag:     "serve",
	Usage:    "serve the stream on a web page at `ADDR` (HOST:PORT, e.g. 127.0.0.1:8080): the latest batch as a table and the --chart charts, updated as batches come; /batches (JSON) and /events (Server-Sent Events) for scripts",
	Category: "Dashboard",
	Needs:    "an address: HOST:PORT, e.g. 127.0.0.1:8080",
	Hint:     "--serve shows the records as a table and charts; to write them in a format too, run two ssink stages (after tee)",
	Group:    "dashboards",
	Takes:    []string{"chart", "keep"},
	Open:     open,
}

// DefaultKeep is the batches kept for a page opened late without --keep.
const DefaultKeep = 100

// TableRows is the rows of a batch the table shows and /batches has, as
// Spark's console sink shows 20.
const TableRows = 20

// maxRowBytes bounds the JSON of a batch's rows: a batch of large records
// shows fewer rows, so that the history of --keep batches stays small.
const maxRowBytes = 256 << 10

//go:embed web
var web embed.FS

// writer is the sink.Writer of --serve.
type writer struct {
	addr   string
	keep   int
	charts []Chart
	notes  io.Writer

	hub *hub
	ln  net.Listener
	srv *http.Server

	// The batch in hand.
	rows  []byte // the JSON of its first TableRows records, comma-separated
	nrows int
	plots []plot
	n     uint64
}

// open checks --serve's address, --chart and --keep; Start listens.
func open(o *sink.Options, _ *codec.Format, _ *bufio.Writer) (sink.Writer, error) {
	w := &writer{addr: o.Target, keep: o.Keep, notes: o.Stderr}
	if w.notes == nil {
		w.notes = io.Discard
	}
	if _, port, err := net.SplitHostPort(w.addr); err != nil || port == "" {
		return nil, stage.Hint(stage.UsageError("--serve %q: want HOST:PORT", w.addr),
			"e.g. --serve 127.0.0.1:8080 (this machine only) or --serve :8080 (every interface); port 0 picks a free port")
	}
	switch {
	case w.keep == 0:
		w.keep = DefaultKeep
	case w.keep < 0:
		return nil, stage.UsageError("--keep %d: want 1 or more batches", w.keep)
	}
	for _, s := range joinCharts(o.Charts) {
		c, err := ParseChart(s)
		if err != nil {
			return nil, err
		}
		w.charts = append(w.charts, c)
	}
	w.plots = make([]plot, len(w.charts))
	for i := range w.plots {
		w.plots[i].c = &w.charts[i]
	}
	return w, nil
}

// joinCharts joins back the --chart values that the command line's list
// flag split at commas: a piece that does not begin with KIND: goes on
// the value before it.
func joinCharts(pieces []string) []string {
	var specs []string
	for _, p := range pieces {
		colon, eq := strings.IndexByte(p, ':'), strings.IndexByte(p, '=')
		if len(specs) > 0 && (colon < 0 || eq >= 0 && eq < colon) {
			specs[len(specs)-1] += "," + p
			continue
		}
		specs = append(specs, p)
	}
	return specs
}

// Start listens at the address and serves; it notes the page's URL on
// stderr.
func (w *writer) Start(string, string) error {
	ln, err := net.Listen("tcp", w.addr)
	if err != nil {
		return fmt.Errorf("--serve %s: %w", w.addr, err)
	}
	w.ln = ln
	w.hub = newHub(w.charts, w.keep)
	w.srv = &http.Server{Handler: w.hub.handler(), ReadHeaderTimeout: 10 * time.Second}
	go w.srv.Serve(ln)
	fmt.Fprintf(w.notes, "ssink: note: serving the stream at http://%s/\n", ln.Addr())
	return nil
}

// Addr is the address the page is served at (for tests, with port 0).
func (w *writer) Addr() net.Addr { return w.ln.Addr() }

// handler routes the page, its files and the endpoints.
func (h *hub) handler() http.Handler {
	files, err := fs.Sub(web, "web")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(files))
	mux.HandleFunc("GET /batches", h.batches)
	mux.HandleFunc("GET /events", h.events)
	return mux
}

func (w *writer) Begin(stage.Batch) error {
	w.rows, w.nrows, w.n = w.rows[:0], 0, 0
	for i := range w.plots {
		w.plots[i].reset()
	}
	return nil
}

func (w *writer) Record(rec []byte) error {
	w.n++
	if w.nrows < TableRows {
		n := len(w.rows)
		if w.nrows > 0 {
			w.rows = append(w.rows, ',')
		}
		var err error
		if w.rows, _, err = record.AppendJSON(w.rows, rec); err != nil {
			return err
		}
		w.nrows++
		if len(w.rows) > maxRowBytes { // this row and those after it stay out
			w.rows, w.nrows = w.rows[:n], TableRows
		}
	}
	for i := range w.plots {
		if err := w.plots[i].add(rec, w.n); err != nil {
			return err
		}
	}
	return nil
}

// End publishes the batch: {"id", "time" (unix ms), "records", "rows"
// (the first TableRows records), "charts" (a part per --chart)}.
func (w *writer) End(b stage.Batch, n uint64) error {
	buf := make([]byte, 0, len(w.rows)+128)
	buf = append(buf, `{"id":`...)
	buf = strconv.AppendUint(buf, b.ID, 10)
	buf = append(buf, `,"time":`...)
	buf = strconv.AppendInt(buf, b.Time, 10)
	buf = append(buf, `,"records":`...)
	buf = strconv.AppendUint(buf, n, 10)
	buf = append(buf, `,"rows":[`...)
	buf = append(buf, w.rows...)
	buf = append(buf, `],"charts":[`...)
	for i := range w.plots {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = w.plots[i].appendJSON(buf)
	}
	buf = append(buf, "]}"...)
	w.hub.publish(buf)
	return nil
}

// Flush has nothing to do: a batch is shown whole or not at all.
func (w *writer) Flush() error { return nil }

// Close ends the event streams (each gets an "end" event) and stops the
// server.
func (w *writer) Close() error {
	if w.srv == nil {
		return nil
	}
	w.hub.end()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("--serve %s: %w", w.addr, err)
	}
	w.srv.Close()
	return nil
}

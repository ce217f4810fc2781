package stage

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// flagMetrics serves the stage's Prometheus metrics.
const flagMetrics = "metrics"

// Metrics is a Reporter keeping the stage's progress as Prometheus metrics
// (--metrics): the totals of the --progress lines, labelled with the
// stage's name. Names follow Prometheus's conventions: dstream_ prefix,
// _total for counters, base units (seconds).
type Metrics struct {
	reg                         *prometheus.Registry
	f                           factory
	in, out, batches            prometheus.Counter
	skipped, late, dropped      prometheus.Counter
	duration                    prometheus.Histogram
	stateOnce, watermarkOnce    sync.Once
	stateRows, stateMemory      prometheus.Gauge
	watermark                   atomic.Int64 // unix ms
	lastBatchTime, lastBatchEnd prometheus.Gauge
}

// NewMetrics makes the metrics of the stage name in a registry of their
// own, with the Go runtime's and the process's.
func NewMetrics(name string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{reg, prometheus.Labels{"stage": name}}
	return &Metrics{
		reg:      reg,
		f:        f,
		in:       f.counter("dstream_records_in_total", "Records the stage read (numInputRows)."),
		out:      f.counter("dstream_records_out_total", "Records the stage wrote (numOutputRows)."),
		batches:  f.counter("dstream_batches_total", "Batches the stage finished."),
		skipped:  f.counter("dstream_errors_total", "Bad records skipped with --skip-bad (numSkippedRows): the errors the stage survived."),
		late:     f.counter("dstream_records_late_total", "Records later than their event-time batch (numLateRows)."),
		dropped:  f.counter("dstream_records_dropped_total", "Records a stage's own rule leaves out (numDroppedRows)."),
		duration: f.histogram("dstream_batch_duration_seconds", "Time from a batch's start to its end in the stage."),
		lastBatchTime: f.gauge("dstream_last_batch_time_seconds",
			"Batch time (end of its interval, unix seconds) of the last batch finished."),
		lastBatchEnd: f.gauge("dstream_last_batch_end_timestamp_seconds",
			"When the stage finished its last batch (unix seconds)."),
	}
}

type factory struct {
	reg    *prometheus.Registry
	labels prometheus.Labels
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: f.labels})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: f.labels})
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: f.labels,
		// From 1ms to about 16s: a micro-batch takes milliseconds, a slow
		// sink seconds.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)})
	f.reg.MustRegister(h)
	return h
}

// Report adds one finished batch.
func (m *Metrics) Report(_ string, s *Stats) {
	now := time.Now()
	m.in.Add(float64(s.InputRows))
	m.out.Add(float64(s.OutputRows))
	m.batches.Inc()
	m.skipped.Add(float64(s.Skipped))
	m.late.Add(float64(s.Late))
	m.dropped.Add(float64(s.Dropped))
	m.duration.Observe(now.Sub(s.Start).Seconds())
	m.lastBatchTime.Set(float64(s.Batch.Time) / 1000)
	m.lastBatchEnd.Set(float64(now.UnixNano()) / 1e9)
	if st := s.State; st != nil {
		m.stateOnce.Do(func() {
			m.stateRows = m.f.gauge("dstream_state_rows", "Rows in the stage's state after the last batch (numRowsTotal).")
			m.stateMemory = m.f.gauge("dstream_state_memory_bytes", "Memory the stage's state uses (memoryUsedBytes).")
		})
		m.stateRows.Set(float64(st.NumRowsTotal))
		m.stateMemory.Set(float64(st.MemoryUsedBytes))
	}
	if w := s.Watermark; w != nil {
		m.watermark.Store(*w)
		m.watermarkOnce.Do(func() {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dstream_watermark_lag_seconds",
				Help: "How far the event-time watermark is behind the clock, at the scrape.", ConstLabels: m.f.labels},
				func() float64 { return math.Max(0, time.Since(time.UnixMilli(m.watermark.Load())).Seconds()) }))
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dstream_watermark_timestamp_seconds",
				Help: "The event-time watermark (unix seconds).", ConstLabels: m.f.labels},
				func() float64 { return float64(m.watermark.Load()) / 1000 }))
		})
	}
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// serveMetrics listens on addr (HOST:PORT, or tcp://HOST:PORT) and serves
// m at /metrics until the returned Closer is closed.
func serveMetrics(m *Metrics, addr string) (io.Closer, error) {
	addr = strings.TrimPrefix(addr, "tcp://")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, UsageError("--%s %q: want HOST:PORT: %v", flagMetrics, addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, Hint(fmt.Errorf("--%s: %w", flagMetrics, err), "another process listens on %s: pick another port (port 0: any free one)", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagMetrics, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l) // returns when the stage's end closes srv
	return srv, nil
}

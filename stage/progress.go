package stage

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// Stats describe one batch as a stage saw it.
type Stats struct {
	Batch      Batch
	Start      time.Time // when the stage began the batch
	InputRows  uint64
	OutputRows uint64
	Skipped    uint64 // bad records skipped (--skip-bad)
	Late       uint64 // records later than their event-time batch
	Dropped    uint64 // records a stage's own rule leaves out (swindow: no session gap)
	State      *StateStats
	Watermark  *int64 // event-time watermark, unix ms
	// Source: the stage is the pipeline's source, whose batch lasts while
	// it waits for input (a whole interval with -i): no measure of work.
	Source bool
	// Partitions, of a scaled-out source (sbatch --scale-out), are the
	// partitions this copy owned when it cut the batch ("TOPIC/PARTITION").
	Partitions []string
}

// StateStats describe a stateful operator's state after a batch, as Spark's
// StateOperatorProgress.
type StateStats struct {
	NumRowsTotal    int64 `json:"numRowsTotal"`
	NumRowsUpdated  int64 `json:"numRowsUpdated"`
	NumRowsRemoved  int64 `json:"numRowsRemoved"`
	MemoryUsedBytes int64 `json:"memoryUsedBytes"`
	// NumRowsDroppedByWatermark: the records the operator dropped as later
	// than its watermark (omitted when none, and by operators that do not
	// drop any).
	NumRowsDroppedByWatermark int64 `json:"numRowsDroppedByWatermark,omitempty"`
	// CustomMetrics are the operator's own figures, by Spark's names
	// (sdedup: numDroppedDuplicateRows).
	CustomMetrics map[string]int64 `json:"customMetrics,omitempty"`
}

// Reporter receives the progress of each batch a stage finishes: the
// JSON-lines file of --progress is one; a metrics endpoint or a live view
// subscribes the same way, without touching the stages.
type Reporter interface {
	Report(stage string, s *Stats)
}

// An ErrorReporter also hears of the error that ends a failing stage.
type ErrorReporter interface {
	ReportError(stage string, err error)
}

// Progress hands each finished batch's Stats to the stage's reporters. A
// nil Progress, or one without reporters, does nothing.
type Progress struct {
	name      string
	reporters []Reporter
}

// Add subscribes r to the stage's progress.
func (p *Progress) Add(r Reporter) { p.reporters = append(p.reporters, r) }

// Report hands the Stats of one finished batch to every reporter.
func (p *Progress) Report(s *Stats) {
	if p == nil {
		return
	}
	for _, r := range p.reporters {
		r.Report(p.name, s)
	}
}

// ReportError hands the error that ends the stage to the reporters that
// take it.
func (p *Progress) ReportError(err error) {
	if p == nil {
		return
	}
	for _, r := range p.reporters {
		if er, ok := r.(ErrorReporter); ok {
			er.ReportError(p.name, err)
		}
	}
}

// JSONLines is a Reporter writing one JSON line per batch, with the fields
// of Spark's StreamingQueryProgress that apply to one stage (--progress),
// and a last line with the error if the stage fails.
type JSONLines struct {
	w         *bufio.Writer
	lastStart time.Time
}

// NewJSONLines writes progress lines to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: bufio.NewWriter(w)} }

type progressLine struct {
	Name                   string            `json:"name"`
	BatchID                uint64            `json:"batchId"`
	BatchTime              int64             `json:"batchTime"`
	Timestamp              string            `json:"timestamp"`
	NumInputRows           uint64            `json:"numInputRows"`
	NumOutputRows          uint64            `json:"numOutputRows"`
	NumSkippedRows         uint64            `json:"numSkippedRows"`
	NumLateRows            uint64            `json:"numLateRows,omitempty"`
	NumDroppedRows         uint64            `json:"numDroppedRows,omitempty"`
	InputRowsPerSecond     float64           `json:"inputRowsPerSecond"`
	ProcessedRowsPerSecond float64           `json:"processedRowsPerSecond"`
	DurationMs             map[string]int64  `json:"durationMs"`
	StateOperators         []StateStats      `json:"stateOperators,omitempty"`
	EventTime              map[string]string `json:"eventTime,omitempty"`
	// Pid tells apart the copies of a stage whose lines reach one
	// collector (sdash).
	Pid    int  `json:"pid"`
	Source bool `json:"source,omitempty"`
	// Partitions: see Stats.Partitions (left out while it owns none).
	Partitions []string `json:"partitions,omitempty"`
}

var pid = os.Getpid()

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// openProgress opens the --progress destination as a reporter of p: a
// file, - for stderr, or a collector at tcp://HOST:PORT or unix:///PATH.
func openProgress(p *Progress, path string, stderr io.Writer) (io.Closer, error) {
	if path == "-" {
		p.Add(NewJSONLines(stderr))
		return nopCloser{}, nil
	}
	if IsSocket(path) {
		e, err := parseEndpoint(path)
		if err != nil {
			return nil, UsageError("--progress: %v", err)
		}
		if e.listen {
			return nil, UsageError("--progress %s: a stage sends its progress to a collector: want tcp://HOST:PORT or unix:///PATH (where sdash --listen listens)", path)
		}
		c := newProgressConn(p.name, e, stderr)
		p.Add(NewJSONLines(c))
		return c, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--progress: %w", err)
	}
	p.Add(NewJSONLines(f))
	return f, nil
}

// ReportError writes the last line of a failing stage: its name, pid, the
// time and the error, so that a collector (sdash) shows how it ended.
func (p *JSONLines) ReportError(name string, err error) {
	b, _ := json.Marshal(struct {
		Name      string `json:"name"`
		Pid       int    `json:"pid"`
		Timestamp string `json:"timestamp"`
		Error     string `json:"error"`
	}{name, pid, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), err.Error()})
	p.w.Write(append(b, '\n'))
	p.w.Flush()
}

// Report writes the line for one finished batch of the stage name.
func (p *JSONLines) Report(name string, s *Stats) {
	now := time.Now()
	d := now.Sub(s.Start)
	l := progressLine{
		Name:           name,
		BatchID:        s.Batch.ID,
		BatchTime:      s.Batch.Time,
		Timestamp:      s.Start.UTC().Format("2006-01-02T15:04:05.000Z"),
		NumInputRows:   s.InputRows,
		NumOutputRows:  s.OutputRows,
		NumSkippedRows: s.Skipped,
		NumLateRows:    s.Late,
		NumDroppedRows: s.Dropped,
		DurationMs:     map[string]int64{"triggerExecution": d.Milliseconds()},
		Pid:            pid,
		Source:         s.Source,
		Partitions:     s.Partitions,
	}
	if d > 0 {
		l.ProcessedRowsPerSecond = float64(s.InputRows) / d.Seconds()
	}
	if !p.lastStart.IsZero() {
		if gap := s.Start.Sub(p.lastStart); gap > 0 {
			l.InputRowsPerSecond = float64(s.InputRows) / gap.Seconds()
		}
	}
	p.lastStart = s.Start
	if s.State != nil {
		l.StateOperators = []StateStats{*s.State}
	}
	if s.Watermark != nil {
		l.EventTime = map[string]string{"watermark": time.UnixMilli(*s.Watermark).UTC().Format("2006-01-02T15:04:05.000Z")}
	}
	b, _ := json.Marshal(l)
	p.w.Write(append(b, '\n'))
	p.w.Flush()
}

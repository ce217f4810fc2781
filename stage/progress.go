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
	State      *StateStats
	Watermark  *int64 // event-time watermark, unix ms
}

// StateStats describe a stateful operator's state after a batch, as Spark's
// StateOperatorProgress.
type StateStats struct {
	NumRowsTotal    int64 `json:"numRowsTotal"`
	NumRowsUpdated  int64 `json:"numRowsUpdated"`
	NumRowsRemoved  int64 `json:"numRowsRemoved"`
	MemoryUsedBytes int64 `json:"memoryUsedBytes"`
}

// Progress writes one JSON line per batch, with the fields of Spark's
// StreamingQueryProgress that apply to one stage.
type Progress struct {
	name      string
	w         *bufio.Writer
	lastStart time.Time
}

type progressLine struct {
	Name                   string            `json:"name"`
	BatchID                uint64            `json:"batchId"`
	BatchTime              int64             `json:"batchTime"`
	Timestamp              string            `json:"timestamp"`
	NumInputRows           uint64            `json:"numInputRows"`
	NumOutputRows          uint64            `json:"numOutputRows"`
	NumSkippedRows         uint64            `json:"numSkippedRows"`
	NumLateRows            uint64            `json:"numLateRows,omitempty"`
	InputRowsPerSecond     float64           `json:"inputRowsPerSecond"`
	ProcessedRowsPerSecond float64           `json:"processedRowsPerSecond"`
	DurationMs             map[string]int64  `json:"durationMs"`
	StateOperators         []StateStats      `json:"stateOperators,omitempty"`
	EventTime              map[string]string `json:"eventTime,omitempty"`
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func openProgress(name, path string, stderr io.Writer) (*Progress, io.Closer, error) {
	if path == "-" {
		return &Progress{name: name, w: bufio.NewWriter(stderr)}, nopCloser{}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("--progress: %w", err)
	}
	return &Progress{name: name, w: bufio.NewWriter(f)}, f, nil
}

// Report writes the line for one finished batch. A nil Progress does nothing.
func (p *Progress) Report(s *Stats) {
	if p == nil {
		return
	}
	now := time.Now()
	d := now.Sub(s.Start)
	l := progressLine{
		Name:           p.name,
		BatchID:        s.Batch.ID,
		BatchTime:      s.Batch.Time,
		Timestamp:      s.Start.UTC().Format("2006-01-02T15:04:05.000Z"),
		NumInputRows:   s.InputRows,
		NumOutputRows:  s.OutputRows,
		NumSkippedRows: s.Skipped,
		NumLateRows:    s.Late,
		DurationMs:     map[string]int64{"triggerExecution": d.Milliseconds()},
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

// Package dash is the engine of sdash, the live view of a running pipeline:
// it gathers the --progress lines of its stages (from a socket they all send
// to, or from their files) and keeps, per stage, the figures of Spark's
// Streaming tab: input and processing rates, batch duration, delay, state
// rows, watermark, errors, and which stage is the bottleneck. The views
// (a table in the terminal, a web page) read its Snapshot.
package dash

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Line is one --progress line, as stage.JSONLines writes it.
type Line struct {
	Name                   string           `json:"name"`
	Pid                    int              `json:"pid"`
	BatchID                uint64           `json:"batchId"`
	BatchTime              int64            `json:"batchTime"`
	Timestamp              time.Time        `json:"timestamp"`
	NumInputRows           uint64           `json:"numInputRows"`
	NumOutputRows          uint64           `json:"numOutputRows"`
	NumSkippedRows         uint64           `json:"numSkippedRows"`
	NumLateRows            uint64           `json:"numLateRows"`
	NumDroppedRows         uint64           `json:"numDroppedRows"`
	ProcessedRowsPerSecond float64          `json:"processedRowsPerSecond"`
	DurationMs             map[string]int64 `json:"durationMs"`
	StateOperators         []struct {
		NumRowsTotal int64 `json:"numRowsTotal"`
	} `json:"stateOperators"`
	EventTime map[string]time.Time `json:"eventTime"`
	Source    bool                 `json:"source"`
	Error     string               `json:"error"` // the last line of a stage that failed
}

// Window is the span of recent batches the rates and the busy share are
// taken over.
const Window = 10 * time.Second

// History is how many batches of each stage are kept for the charts.
const History = 300

// Point is one batch of a stage, for the charts.
type Point struct {
	End        int64   `json:"end"` // when the stage finished the batch, unix ms
	BatchID    uint64  `json:"batch"`
	BatchTime  int64   `json:"batchTime"`
	In         uint64  `json:"in"`
	DurationMs int64   `json:"durationMs"`
	InputRate  float64 `json:"inputRate"` // over Window, as the row's
}

// Row is what the views show of one stage (one process).
type Row struct {
	Key        string    `json:"key"` // name[pid]
	Name       string    `json:"name"`
	Pid        int       `json:"pid"`
	Batches    uint64    `json:"batches"`
	LastBatch  uint64    `json:"lastBatch"`
	RecordsIn  uint64    `json:"recordsIn"`
	RecordsOut uint64    `json:"recordsOut"`
	Errors     uint64    `json:"errors"` // bad records skipped (numSkippedRows)
	Late       uint64    `json:"late"`
	Dropped    uint64    `json:"dropped"`
	InputRate  float64   `json:"inputRate"`      // records/s arriving, over Window
	ProcRate   float64   `json:"processingRate"` // records/s while busy, over Window
	BatchMs    float64   `json:"batchMs"`        // mean batch duration over Window
	Busy       float64   `json:"busy"`           // share of the time spent in batches, over Window
	Source     bool      `json:"source"`         // sbatch: its batches last while it waits for input, so Busy says nothing
	DelayMs    int64     `json:"delayMs"`        // last batch: its end minus its batch time
	StateRows  *int64    `json:"stateRows,omitempty"`
	Watermark  time.Time `json:"watermark,omitzero"`
	LastSeen   time.Time `json:"lastSeen"`
	Failed     string    `json:"failed,omitempty"` // the error that ended the stage
	Bottleneck bool      `json:"bottleneck"`

	first  time.Time // start of its first batch: the order of the rows
	points []Point
}

// Dash gathers the progress lines of a pipeline. It is safe for concurrent
// use.
type Dash struct {
	mu     sync.Mutex
	rows   map[string]*Row
	bad    uint64 // lines that were no progress line
	source string // what it listens to or reads, for the title
}

// New makes an empty Dash; source names where its lines come from.
func New(source string) *Dash { return &Dash{rows: map[string]*Row{}, source: source} }

// Feed takes one progress line. A line that is not one is counted and
// otherwise ignored: a collector must not stop for a stranger's bytes.
func (d *Dash) Feed(b []byte) {
	var l Line
	if err := json.Unmarshal(b, &l); err != nil || l.Name == "" {
		d.mu.Lock()
		d.bad++
		d.mu.Unlock()
		return
	}
	d.Add(&l)
}

// Add takes one progress line, parsed.
func (d *Dash) Add(l *Line) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := l.Name
	if l.Pid != 0 {
		key = fmt.Sprintf("%s[%d]", l.Name, l.Pid)
	}
	r := d.rows[key]
	now := time.Now()
	if r == nil {
		r = &Row{Key: key, Name: l.Name, Pid: l.Pid, first: l.Timestamp}
		d.rows[key] = r
	}
	r.LastSeen = now
	if l.Error != "" {
		r.Failed = l.Error
		return
	}
	dur := l.DurationMs["triggerExecution"]
	end := l.Timestamp.Add(time.Duration(dur) * time.Millisecond)
	r.Batches++
	r.LastBatch = l.BatchID
	r.RecordsIn += l.NumInputRows
	r.RecordsOut += l.NumOutputRows
	r.Errors += l.NumSkippedRows
	r.Late += l.NumLateRows
	r.Dropped += l.NumDroppedRows
	r.DelayMs = max(0, end.UnixMilli()-l.BatchTime)
	r.Source = l.Source
	if len(l.StateOperators) > 0 {
		n := l.StateOperators[0].NumRowsTotal
		r.StateRows = &n
	}
	if w, ok := l.EventTime["watermark"]; ok {
		r.Watermark = w
	}
	p := Point{End: end.UnixMilli(), BatchID: l.BatchID, BatchTime: l.BatchTime, In: l.NumInputRows, DurationMs: dur}
	if len(r.points) == History {
		r.points = slices.Delete(r.points, 0, 1)
	}
	r.points = append(r.points, p)
	r.rates(l)
	r.points[len(r.points)-1].InputRate = r.InputRate
}

// rates works out the row's rates over the batches of the last Window
// (counted back from its last batch, so that a finished run read from
// files shows the rates it had).
func (r *Row) rates(l *Line) {
	last := r.points[len(r.points)-1]
	var in uint64
	var busy int64
	i := len(r.points) - 1
	for ; i > 0 && last.End-r.points[i-1].End <= Window.Milliseconds(); i-- {
	}
	first := r.points[i]
	n := 0
	for j, p := range r.points[i:] {
		busy += p.DurationMs
		n++
		if j > 0 { // the first batch arrived before the span began
			in += p.In
		}
	}
	r.BatchMs = float64(busy) / float64(n)
	span := last.End - first.End
	if span > 0 {
		r.InputRate = float64(in) / (float64(span) / 1000)
		r.Busy = min(1, float64(busy-first.DurationMs)/float64(span))
	} else {
		// One batch so far: no rate of arrival yet (its processing rate
		// would be a spike on the chart).
		r.InputRate = 0
		r.Busy = 0
		if last.DurationMs > 0 {
			r.Busy = 1
		}
	}
	if busy > 0 {
		var all uint64
		for _, p := range r.points[i:] {
			all += p.In
		}
		r.ProcRate = float64(all) / (float64(busy) / 1000)
	} else {
		r.ProcRate = l.ProcessedRowsPerSecond
	}
}

// Snapshot is the state of the pipeline as the views show it.
type Snapshot struct {
	Source     string    `json:"source"`
	Time       time.Time `json:"time"`
	Rows       []Row     `json:"rows"`
	Bottleneck string    `json:"bottleneck,omitempty"` // the Key of the busiest stage
	BadLines   uint64    `json:"badLines"`
	// Points of each row, by Key, oldest first: with history only.
	Points map[string][]Point `json:"points,omitempty"`
}

// Snapshot copies the rows, in the order the stages began their first
// batch (the pipeline's order, as a batch goes down it), marking the
// bottleneck: the stage busiest over the last Window, the one the others
// wait for. A source is none: its batch lasts while it waits for input,
// and with -i it is busy all the time. With history, each row's points too.
func (d *Dash) Snapshot(history bool) Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Snapshot{Source: d.source, Time: time.Now(), BadLines: d.bad}
	if history {
		s.Points = map[string][]Point{}
	}
	var rows []*Row
	for _, r := range d.rows {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b *Row) int {
		if c := a.first.Compare(b.first); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	busiest := -1
	for i, r := range rows {
		if r.Source || r.Failed != "" || r.Busy <= 0 {
			continue
		}
		// Ties (one batch each, as with sbatch --once): the slower.
		if b := rows[max(busiest, 0)]; busiest < 0 || r.Busy > b.Busy || r.Busy == b.Busy && r.BatchMs > b.BatchMs {
			busiest = i
		}
	}
	for i, r := range rows {
		c := *r
		c.Bottleneck = i == busiest && len(rows) > 1
		if c.Bottleneck {
			s.Bottleneck = c.Key
		}
		c.points = nil
		s.Rows = append(s.Rows, c)
		if history {
			s.Points[r.Key] = slices.Clone(r.points)
		}
	}
	return s
}

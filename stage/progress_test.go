package stage

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

type recorder struct{ got []string }

func (r *recorder) Report(stage string, s *Stats) {
	r.got = append(r.got, fmt.Sprintf("%s %d %d", stage, s.Batch.ID, s.InputRows))
}

// TestProgressReporters: every subscriber gets every batch; the JSON-lines
// file is one subscriber among others.
func TestProgressReporters(t *testing.T) {
	var none *Progress
	none.Report(&Stats{}) // without --progress: nothing, no panic

	var buf bytes.Buffer
	p := &Progress{name: "smap"}
	a, b := &recorder{}, &recorder{}
	p.Add(a)
	p.Add(NewJSONLines(&buf))
	p.Add(b)
	p.Report(&Stats{Batch: Batch{ID: 3, Time: 4000}, InputRows: 7, Start: time.Now()})
	p.Report(&Stats{Batch: Batch{ID: 4, Time: 5000}, InputRows: 0, Start: time.Now()})
	for _, r := range []*recorder{a, b} {
		if got := strings.Join(r.got, ", "); got != "smap 3 7, smap 4 0" {
			t.Errorf("reporter got %s", got)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"name":"smap","batchId":3,"batchTime":4000,`) {
		t.Errorf("JSON lines:\n%s", buf.String())
	}
}

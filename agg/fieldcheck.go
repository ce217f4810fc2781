package agg

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// FieldCheck finds the fields a stage reads (its keys and aggregated
// fields) that no record of a batch has: most often a typo (sreduce -k pth),
// which would otherwise give a null key and exit 0, where Spark fails the
// query ("cannot resolve 'pth'"). Once every field has been seen in a batch
// it costs one comparison a record.
type FieldCheck struct {
	names  []string
	spans  []record.Span
	seen   []bool
	left   int // names not seen yet in the batch
	n      int // records of the batch
	sample []string
	told   map[string]bool
}

// NewFieldCheck checks the fields the aggregation c reads.
func NewFieldCheck(c Config) *FieldCheck {
	var names []string
	for _, k := range c.Keys {
		names = append(names, k)
	}
	for _, a := range c.Aggs {
		if a.Field != "" && !slices.Contains(names, a.Field) {
			names = append(names, a.Field)
		}
	}
	return &FieldCheck{names: names, spans: make([]record.Span, len(names)), seen: make([]bool, len(names)), told: map[string]bool{}}
}

// Begin starts a batch.
func (c *FieldCheck) Begin() {
	clear(c.seen)
	c.left, c.n, c.sample = len(c.names), 0, c.sample[:0]
}

// Done tells that every field was seen in the batch: Observe has nothing
// left to find.
func (c *FieldCheck) Done() bool { return c.left == 0 }

// Observe looks at a record of the batch.
func (c *FieldCheck) Observe(rec []byte) {
	c.n++
	if c.left == 0 {
		return
	}
	if c.n == 1 {
		var f record.Fields
		for f.Reset(rec); f.Next(); {
			c.sample = append(c.sample, string(f.Key()))
		}
	}
	if record.Pick(rec, c.names, c.spans) != nil {
		return // a bad record is the table's to report
	}
	for i, s := range c.spans {
		if s.End != 0 && !c.seen[i] {
			c.seen[i] = true
			c.left--
		}
	}
}

// End returns the error that names the fields no record of the batch had,
// each once in a run (a second batch without it says nothing more), or
// nil: also for a batch without records.
func (c *FieldCheck) End(batch string) error {
	if c.left == 0 || c.n == 0 {
		return nil
	}
	var missing []string
	for i, name := range c.names {
		if !c.seen[i] && !c.told[name] {
			c.told[name] = true
			missing = append(missing, fmt.Sprintf("%q", name))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	what := "field " + missing[0]
	if len(missing) > 1 {
		what = "fields " + strings.Join(missing, ", ")
	}
	have := "none"
	if len(c.sample) > 0 {
		have = strings.Join(c.sample, ", ")
	}
	return fmt.Errorf("%s: no record has the %s (its first record has: %s)", batch, what, have)
}

// ReportMissing ends the batch b of check: the fields no record had are an
// error with strict, else a note on notes ("STAGE: note: ..."; nil: none).
func ReportMissing(check *FieldCheck, b stage.Batch, strict bool, notes io.Writer, name string) error {
	err := check.End(fmt.Sprint(b))
	switch {
	case err == nil:
		return nil
	case strict:
		return stage.Hint(err, "check the field names of -k and the aggregates against the records (without --strict this is a note)")
	case notes != nil:
		fmt.Fprintf(notes, "%s: note: %v\n", name, err)
	}
	return nil
}

package agg

import (
	"testing"

	"github.com/dstream/dstream/record"
)

// A field no record of a batch has is told once in a run, with the fields
// of the batch's first record; a batch without records tells nothing.
func TestFieldCheck(t *testing.T) {
	rec := func(js string) []byte {
		b, err := record.AppendJSONObject(nil, []byte(js))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	c := NewFieldCheck(Config{Keys: []string{"k"}, Aggs: []Spec{{Kind: Sum, Field: "v"}, {Kind: Count}}})
	batch := func(recs ...string) string {
		c.Begin()
		for _, r := range recs {
			c.Observe(rec(r))
		}
		if err := c.End("batch"); err != nil {
			return err.Error()
		}
		return ""
	}
	for i, tc := range []struct {
		recs []string
		want string
	}{
		{[]string{`{"k":1,"v":2}`}, ""},
		{nil, ""},
		{[]string{`{"x":1}`, `{"k":2}`}, `batch: no record has the field "v" (its first record has: x)`},
		{[]string{`{"x":1}`}, `batch: no record has the field "k" (its first record has: x)`},
		{[]string{`{"x":1}`}, ""}, // told already
	} {
		if got := batch(tc.recs...); got != tc.want {
			t.Errorf("batch %d: %q, want %q", i, got, tc.want)
		}
	}
}

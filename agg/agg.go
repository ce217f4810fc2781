// Package agg keeps grouped aggregation state: records are folded into
// groups by the values of key fields, and each group carries aggregates
// (count, sum, min, max, avg, first, last, distinct count, collect). sreduce
// uses it per batch and across batches; swindow keeps a Table per slice of
// time and combines them into windows (Merge, and Unmerge where the
// aggregates are invertible).
//
// A Table is built for speed and memory: a record is read in place (only
// its key and aggregated fields, with record.Fields), its group key is the
// raw msgpack of the key values concatenated, looked up in a hash table of
// its own without allocating, and the keys and the aggregates of all groups
// live in arenas and columns (slices indexed by group), so a group costs no
// heap object of its own.
package agg

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is an aggregate function.
type Kind uint8

// Aggregate functions.
const (
	Count    Kind = iota + 1 // records in the group
	Sum                      // sum of a numeric field
	Min                      // smallest value (in the order of CompareValues)
	Max                      // largest value
	Avg                      // mean of a numeric field, a float
	First                    // value of the first record (null included)
	Last                     // value of the last record (null included)
	Distinct                 // number of distinct non-null values
	Collect                  // list of the non-null values, in arrival order
)

var kindNames = [...]string{Count: "count", Sum: "sum", Min: "min", Max: "max", Avg: "avg",
	First: "first", Last: "last", Distinct: "distinct", Collect: "collect"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("agg.Kind(%d)", uint8(k))
}

// ParseKind reads a function name: count, sum, min, max, avg, first, last,
// distinct or collect.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n != "" && n == s {
			return Kind(k), true
		}
	}
	return 0, false
}

// Invertible reports whether records can be subtracted from the aggregate
// (count, sum, avg, distinct).
func (k Kind) Invertible() bool {
	switch k {
	case Count, Sum, Avg, Distinct:
		return true
	}
	return false
}

// Spec is one aggregate: a function, the field it reads (none for Count)
// and the name of its output field.
type Spec struct {
	Kind  Kind
	Field string
	Name  string
}

// DefaultName is the output field of an aggregate when the user names none:
// "count" for Count, else KIND_FIELD (sum_amount, distinct_user...).
func DefaultName(k Kind, field string) string {
	if k == Count {
		return "count"
	}
	return k.String() + "_" + field
}

// ParseSpec reads the value of an aggregation flag: FIELD or NAME=FIELD.
func ParseSpec(k Kind, s string) (Spec, error) {
	name, field, renamed := strings.Cut(s, "=")
	if !renamed {
		field, name = s, DefaultName(k, s)
	}
	switch {
	case field == "":
		return Spec{}, fmt.Errorf("--%v %q: no field to aggregate (want FIELD or NAME=FIELD)", k, s)
	case name == "":
		return Spec{}, fmt.Errorf("--%v %q: empty output name (want FIELD or NAME=FIELD)", k, s)
	}
	return Spec{Kind: k, Field: field, Name: name}, nil
}

// Config is what a Table computes: group key fields (none: one group) and
// aggregates, in output order.
type Config struct {
	Keys []string
	Aggs []Spec
}

// Validate checks that output field names are unique and non-empty.
func (c Config) Validate() error {
	seen := map[string]string{}
	for _, k := range c.Keys {
		if k == "" {
			return errors.New("empty key field name")
		}
		if _, dup := seen[k]; dup {
			return fmt.Errorf("key field %q given twice", k)
		}
		seen[k] = "key field"
	}
	for _, a := range c.Aggs {
		if a.Kind < Count || a.Kind > Collect {
			return fmt.Errorf("unknown aggregate %v", a.Kind)
		}
		if a.Kind != Count && a.Field == "" {
			return fmt.Errorf("--%v without a field", a.Kind)
		}
		if a.Name == "" {
			return fmt.Errorf("--%v %s: empty output name", a.Kind, a.Field)
		}
		if what, dup := seen[a.Name]; dup {
			return fmt.Errorf("two output fields named %q (--%v and a %s): rename the aggregate with NAME=FIELD, or --count-as NAME for a count", a.Name, a.Kind, what)
		}
		seen[a.Name] = "--" + a.Kind.String()
	}
	return nil
}

// Fingerprint identifies the state a Table keeps: its key fields and its
// aggregates' functions and fields, in order. Output names are not part of
// it: renaming an output keeps the state valid. A checkpoint of one
// fingerprint is refused by a Table of another.
func (c Config) Fingerprint() string {
	var b strings.Builder
	fmt.Fprintf(&b, "agg/%d keys=%s aggs=", stateVersion, quoteList(c.Keys))
	for i, a := range c.Aggs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.Kind.String())
		if a.Kind != Count {
			fmt.Fprintf(&b, "(%q)", a.Field)
		}
	}
	return b.String()
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// HasCount reports whether an aggregate of c is a count.
func (c Config) HasCount() bool {
	for _, a := range c.Aggs {
		if a.Kind == Count {
			return true
		}
	}
	return false
}

// Invertible reports whether every aggregate of c is invertible, so that
// Table.Subtract works.
func (c Config) Invertible() bool {
	for _, a := range c.Aggs {
		if !a.Kind.Invertible() {
			return false
		}
	}
	return true
}

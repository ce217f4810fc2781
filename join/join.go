// Package join is the engine of sjoin: each record of a stream joined with
// the rows of a static table (Structured Streaming's stream-static join),
// with the batch at the same batch time of another stream (DStream's join,
// leftOuterJoin, rightOuterJoin, fullOuterJoin and cogroup), or with the
// records of another stream over event time, kept across batches until a
// watermark says no match can come (Structured Streaming's stream-stream
// joins).
//
// The parts: key.go (when two keys are equal), table.go (rows indexed by
// key, compact), compose.go (the joined record), source.go (where a static
// table comes from, and whether it changed), static.go, batch.go and
// stream.go (the three kinds of join, each a stage handler).
package join

import (
	"fmt"

	"github.com/dstream/dstream/stage"
)

// How is the type of a join: which records without a match come out.
type How uint8

// Types of join, as Spark names them.
const (
	Inner How = iota // matches only
	Left             // and the left records without a match, with nulls for the right
	Right            // and the right records without a match, with nulls for the left
	Full             // both
)

var howNames = []string{"inner", "left", "right", "full"}

func (h How) String() string { return howNames[h] }

// ParseHow reads inner, left, right or full (and Spark's left_outer,
// right_outer, full_outer, outer).
func ParseHow(s string) (How, error) {
	switch s {
	case "inner":
		return Inner, nil
	case "left", "left_outer", "leftouter":
		return Left, nil
	case "right", "right_outer", "rightouter":
		return Right, nil
	case "full", "full_outer", "fullouter", "outer":
		return Full, nil
	}
	return 0, stage.UsageError("--how %q: want inner, left, right or full", s)
}

// keepsLeft and keepsRight say whether unmatched records of a side come out.
func (h How) keepsLeft() bool  { return h == Left || h == Full }
func (h How) keepsRight() bool { return h == Right || h == Full }

// DefaultPrefix is what a right field whose name the left record has too
// is renamed with (--right-prefix).
const DefaultPrefix = "right_"

// Options are what every join takes.
type Options struct {
	// On are the key fields, which both sides must have (--on).
	On []string
	// How is the type of join (--how).
	How How
	// Prefix renames a right field whose name the left record has too
	// (--right-prefix); it must not be empty.
	Prefix string
	// SkipBad skips a record that cannot be joined (not a map; with event
	// time, no time), counting it in stage.Stats.Skipped, instead of failing
	// (--skip-bad).
	SkipBad bool
}

// Validate checks the options every join shares.
func (o *Options) Validate() error {
	if len(o.On) == 0 {
		return stage.UsageError("no key: give --on F[,F...], the fields both sides join on")
	}
	for i, k := range o.On {
		for _, l := range o.On[:i] {
			if k == l {
				return stage.UsageError("--on names %q twice", k)
			}
		}
	}
	if o.Prefix == "" {
		return stage.UsageError("--right-prefix: want a prefix, not an empty one")
	}
	return nil
}

// where names record n of batch b in errors.
func where(b stage.Batch, n int) string { return fmt.Sprintf("%v, record %d", b, n) }

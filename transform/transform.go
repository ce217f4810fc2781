// Package transform is the engine of smap: per-record operations (DStream's
// map, filter and flatMap, Structured Streaming's select, field edits, and
// RDD.pipe through a command), fused so that each record goes through all
// of them in one pass, in the order given.
//
// Batch boundaries, empty batches and watermarks pass through untouched.
// Only the fields an expression reads are decoded; the others, and records
// that only passed filters, leave as the bytes they came in.
//
// Messages name operations by smap's flags (--filter 'EXPR'), which are the
// user's vocabulary: see Kind.
package transform

// Options is what the engine runs.
type Options struct {
	// Ops are the operations, applied to each record in this order.
	Ops []Op
	// SkipBad drops a record an operation fails on (and a bad output line
	// of an Exec command), counting it in stage.Stats.Skipped, instead of
	// failing with the batch, the record's number and the record
	// (--skip-bad).
	SkipBad bool
}

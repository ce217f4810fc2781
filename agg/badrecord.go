package agg

import "github.com/dstream/dstream/record"

// maxShown bounds the part of a bad record that a BadRecordError shows.
const maxShown = 200

// BadRecordError is a record that cannot be aggregated (a value that is not a
// number in a sum, an overflow) and where it was found.
type BadRecordError struct {
	// Where names the batch and the record's number ("batch 3, record 12"),
	// then shows the record as JSON (its start).
	Where string
	Err   error
}

// BadRecord is the error of rec, a record that cannot be aggregated, at
// where (the batch and the record's number). The record is shown as JSON
// now: it may live in a buffer that is reused.
func BadRecord(where string, rec []byte, err error) error {
	if js, _, jerr := record.AppendJSON(nil, rec); jerr == nil {
		if len(js) > maxShown {
			js = append(js[:maxShown], "..."...)
		}
		where += " " + string(js)
	}
	return &BadRecordError{Where: where, Err: err}
}

func (e *BadRecordError) Error() string { return e.Where + ": " + e.Err.Error() }
func (e *BadRecordError) Unwrap() error { return e.Err }

// Hint is the advice the stage runtime prints under the error: every stage
// that aggregates has --skip-bad.
func (e *BadRecordError) Hint() string {
	return "--skip-bad skips such records and counts them in --progress (numSkippedRows)"
}

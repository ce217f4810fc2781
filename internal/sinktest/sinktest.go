// Package sinktest opens sinks and writes batches through them, for the
// tests of ssink's destinations.
package sinktest

import (
	"bytes"
	"io"
	"testing"

	"github.com/dstream/dstream/internal/frametest"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
)

// Open opens a sink to target of destination d with the options of o that
// are set, closed when the test ends. Its stdout is discarded; its stderr
// is the buffer returned.
func Open(tb testing.TB, d *sink.Destination, target string, o sink.Options) (*sink.Sink, *bytes.Buffer) {
	tb.Helper()
	var stderr bytes.Buffer
	o.Dest, o.Target = d, target
	o.Stdout, o.Stderr = io.Discard, &stderr
	s, err := sink.New(o)
	if err != nil {
		tb.Fatalf("opening the sink: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, &stderr
}

// Write writes batch b of recs, JSON objects, through s.
func Write(tb testing.TB, s *sink.Sink, b stage.Batch, recs ...string) error {
	tb.Helper()
	if err := s.Begin(b); err != nil {
		return err
	}
	if err := s.Block(b, frametest.Frame(tb, recs...).Records()); err != nil {
		return err
	}
	return s.End(b)
}

package window

import (
	"strings"
	"testing"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// reduce is an agg.Config: keys, and aggregates as "count" or KIND:FIELD
// (sum:v, max:v).
func reduce(tb testing.TB, keys []string, aggs ...string) agg.Config {
	tb.Helper()
	c := agg.Config{Keys: keys}
	for _, a := range aggs {
		name, field, _ := strings.Cut(a, ":")
		k, ok := agg.ParseKind(name)
		if !ok {
			tb.Fatalf("aggregate %q", a)
		}
		if k == agg.Count {
			c.Aggs = append(c.Aggs, agg.Spec{Kind: k, Name: agg.DefaultName(k, "")})
			continue
		}
		s, err := agg.ParseSpec(k, field)
		if err != nil {
			tb.Fatal(err)
		}
		c.Aggs = append(c.Aggs, s)
	}
	return c
}

// sliding is Options of windows of length and slide (ms) with c.
func sliding(length, slide int64, c agg.Config) Options {
	return Options{Length: time.Duration(length) * time.Millisecond, Slide: time.Duration(slide) * time.Millisecond, Agg: c}
}

// events is o with windows of the event time in field t, in unit.
func events(o Options, unit codec.TimeUnit, ev EventOptions) Options {
	ev.Field, ev.Unit = "t", unit
	o.Event = &ev
	return o
}

// checked is o checked, as New checks it.
func checked(tb testing.TB, o Options) *options {
	tb.Helper()
	c, err := o.check()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// blockOf is recs (JSON objects) as a block of records.
func blockOf(tb testing.TB, recs ...string) []byte {
	tb.Helper()
	var blk []byte
	for _, r := range recs {
		m, err := record.AppendJSONObject(nil, []byte(r))
		if err != nil {
			tb.Fatal(err)
		}
		blk = framing.AppendRecord(blk, m)
	}
	return blk
}

// feed hands batch bt, the n records of blk, to h.
// (No tb.Helper: the benchmarks call it in their loop.)
func feed(tb testing.TB, h stage.Handler, bt stage.Batch, blk []byte, n int) {
	if err := h.Begin(bt); err != nil {
		tb.Fatal(err)
	}
	if err := h.Block(bt, framing.NewRecords(blk, n)); err != nil {
		tb.Fatal(err)
	}
	if err := h.End(bt); err != nil {
		tb.Fatal(err)
	}
}

// feedJSON hands h batch id, of time (id+1) s, holding recs (JSON).
func feedJSON(tb testing.TB, h stage.Handler, id uint64, recs ...string) {
	tb.Helper()
	feed(tb, h, stage.Batch{ID: id, Time: int64(id+1) * 1000}, blockOf(tb, recs...), len(recs))
}

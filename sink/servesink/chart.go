package servesink

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// Chart kinds (the KIND of --chart KIND:OPTIONS).
const (
	// Line is a running value over batch time: a point per batch, the
	// sum of field y over the batch's records.
	Line = "line"
	// Bar is the latest batch's top-N: the records with the greatest
	// field y, labelled by field key.
	Bar = "bar"
)

// maxKey bounds the label of a bar, in bytes: a longer key is cut.
const maxKey = 200

// defaultTop is the bars of a bar chart without top=N; maxTop bounds it.
const (
	defaultTop = 20
	maxTop     = 1000
)

// A Chart is one --chart: what the page draws and the sink computes of
// each batch. Its JSON is the chart's entry in the "charts" of /batches
// and of the events' config.
type Chart struct {
	Kind  string `json:"kind"`
	Title string `json:"title"`
	// X is the x axis of a line chart: "batch" (the batch time).
	X string `json:"x,omitempty"`
	// Y is the field whose value is plotted: summed over a batch (line),
	// or the height of each record's bar (bar).
	Y string `json:"y"`
	// Key is the field that labels the bars; Top is how many bars.
	Key string `json:"key,omitempty"`
	Top int    `json:"top,omitempty"`
}

// ParseChart parses a --chart value: KIND:NAME=VALUE,... with KIND line
// (x=batch, y=FIELD) or bar (key=FIELD, y=FIELD, top=N), and title=TEXT
// for either. Errors are stage.UsageError.
func ParseChart(s string) (Chart, error) {
	bad := func(format string, args ...any) (Chart, error) {
		return Chart{}, stage.Hint(stage.UsageError("--chart %q: %s", s, fmt.Sprintf(format, args...)),
			"want line:x=batch,y=FIELD or bar:key=FIELD,y=FIELD[,top=N], e.g. --chart bar:key=value,y=count,top=20")
	}
	kind, opts, _ := strings.Cut(s, ":")
	c := Chart{Kind: kind}
	switch kind {
	case Line:
		c.X = "batch"
	case Bar:
		c.Top = defaultTop
	default:
		return bad("unknown kind %q: want line or bar", kind)
	}
	for opt := range strings.SplitSeq(opts, ",") {
		if opt == "" {
			continue
		}
		name, val, ok := strings.Cut(opt, "=")
		if !ok || val == "" {
			return bad("%q: want NAME=VALUE", opt)
		}
		switch {
		case name == "y":
			c.Y = val
		case name == "title":
			c.Title = val
		case name == "x" && kind == Line:
			if val != "batch" {
				return bad("x=%s: a line chart's x is the batch time, x=batch", val)
			}
		case name == "key" && kind == Bar:
			c.Key = val
		case name == "top" && kind == Bar:
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > maxTop {
				return bad("top=%s: want a number from 1 to %d", val, maxTop)
			}
			c.Top = n
		default:
			return bad("a %s chart takes no %s=", kind, name)
		}
	}
	if c.Y == "" {
		return bad("no y=FIELD: the field to plot")
	}
	if kind == Bar && c.Key == "" {
		return bad("no key=FIELD: the field that labels the bars")
	}
	if c.Title == "" {
		if kind == Line {
			c.Title = c.Y + " by batch"
		} else {
			c.Title = fmt.Sprintf("top %d %s by %s", c.Top, c.Key, c.Y)
		}
	}
	return c, nil
}

// plot is what a chart gathers of the batch in hand.
type plot struct {
	c   *Chart
	sum float64 // Line: the sum of y
	n   uint64  // Line: the records that had a number y
	top bars    // Bar: the greatest bars so far, a min-heap
	txt []byte
}

// A bar is a record of a bar chart: its label and height. seq orders
// equal heights: the first record wins.
type bar struct {
	key string
	y   float64
	seq uint64
}

// bars is a min-heap of bars: the least (then the latest) on top.
type bars []bar

func (h bars) Len() int { return len(h) }
func (h bars) Less(i, j int) bool {
	if h[i].y != h[j].y {
		return h[i].y < h[j].y
	}
	return h[i].seq > h[j].seq
}
func (h bars) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *bars) Push(x any)   { *h = append(*h, x.(bar)) }
func (h *bars) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (p *plot) reset() {
	p.sum, p.n, p.top = 0, 0, p.top[:0]
}

// add takes one record: a record without a number in y (or, for a bar,
// without key) plots nothing. seq is the record's number in the batch.
func (p *plot) add(rec []byte, seq uint64) error {
	raw, ok, err := record.Get(rec, p.c.Y)
	if err != nil || !ok {
		return err
	}
	y, ok := record.Float(raw)
	if !ok || math.IsNaN(y) || math.IsInf(y, 0) {
		return nil
	}
	if p.c.Kind == Line {
		p.sum += y
		p.n++
		return nil
	}
	if len(p.top) == p.c.Top && !(y > p.top[0].y) {
		return nil // the common case: not a top bar, nothing allocated
	}
	kraw, ok, err := record.Get(rec, p.c.Key)
	if err != nil || !ok {
		return err
	}
	var key []byte
	if s, isStr := record.Str(kraw); isStr {
		key = s
	} else {
		p.txt = record.FormatText(p.txt[:0], kraw)
		key = p.txt
	}
	if len(key) > maxKey {
		n := maxKey
		for n > 0 && !utf8.RuneStart(key[n]) { // no rune cut in two
			n--
		}
		key = key[:n]
	}
	b := bar{key: string(key), y: y, seq: seq}
	if len(p.top) < p.c.Top {
		heap.Push(&p.top, b)
	} else {
		p.top[0] = b
		heap.Fix(&p.top, 0)
	}
	return nil
}

// plotJSON is a chart's part of a batch: Y (line, null when no record had
// a number y) or Bars (bar, greatest first).
type plotJSON struct {
	Y    *float64  `json:"y,omitempty"`
	Bars []barJSON `json:"bars,omitempty"`
}

type barJSON struct {
	Key string  `json:"key"`
	Y   float64 `json:"y"`
}

// appendJSON appends the chart's part of the batch.
func (p *plot) appendJSON(dst []byte) []byte {
	var v plotJSON
	if p.c.Kind == Line {
		if p.n > 0 && !math.IsInf(p.sum, 0) {
			v.Y = &p.sum
		}
	} else {
		v.Bars = make([]barJSON, len(p.top))
		for i := len(p.top) - 1; i >= 0; i-- {
			b := heap.Pop(&p.top).(bar)
			v.Bars[i] = barJSON{b.key, b.y}
		}
	}
	out, err := json.Marshal(v)
	if err != nil {
		panic(err) // add keeps NaN and infinities out
	}
	return append(dst, out...)
}

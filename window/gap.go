package window

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/expr"
	"github.com/dstream/dstream/transform"
)

// gapExpr is --session-gap-expr: each record's session gap, from an
// expression over its fields (Spark's session_window with a gap column).
type gapExpr struct {
	src   string
	label string // the option as messages show it
	prog  *expr.Program
}

func compileGap(src string) (*gapExpr, error) {
	label := "--session-gap-expr " + transform.Quote(src)
	p, err := transform.CompileExpr(label, src)
	if err != nil {
		return nil, err
	}
	return &gapExpr{src: src, label: label, prog: p}, nil
}

// errGapType is a gap that is no duration.
var errGapType = errors.New("want a duration: duration(\"30s\"), a string such as \"30s\", or a number of --time-unit")

// gap is rec's session gap in milliseconds, rounded up; ok is false when
// the record has none (null, or zero or less), and so is in no session.
func (g *gapExpr) gap(rec []byte, unit codec.TimeUnit) (ms int64, ok bool, err error) {
	if err := g.prog.BindRecord(rec); err != nil {
		return 0, false, err
	}
	v, err := g.prog.Run()
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", g.label, err)
	}
	var d time.Duration
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case time.Duration:
		d = x
	case string:
		if d, err = time.ParseDuration(x); err != nil {
			return 0, false, fmt.Errorf("%s: gap %q: %w", g.label, x, errGapType)
		}
	case int:
		return g.number(float64(x), unit)
	case int64:
		return g.number(float64(x), unit)
	case float64:
		return g.number(x, unit)
	default:
		return 0, false, fmt.Errorf("%s: gap %v (a %T): %w", g.label, v, v, errGapType)
	}
	if d <= 0 {
		return 0, false, nil
	}
	return (int64(d) + int64(time.Millisecond) - 1) / int64(time.Millisecond), true, nil
}

// number is a gap of x units.
func (g *gapExpr) number(x float64, unit codec.TimeUnit) (int64, bool, error) {
	ms := math.Ceil(x * float64(unit))
	switch {
	case math.IsNaN(x) || ms > math.MaxInt64/2:
		return 0, false, fmt.Errorf("%s: gap %v: out of range", g.label, x)
	case ms <= 0:
		return 0, false, nil
	}
	return int64(ms), true, nil
}

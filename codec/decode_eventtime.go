package codec

import (
	"fmt"
	"math"
	"time"

	"github.com/dstream/dstream/record"
)

// TimeUnit says what a number in an event-time field counts.
type TimeUnit int64

// Units of numeric event times, in milliseconds.
const (
	Seconds      TimeUnit = 1000
	Milliseconds TimeUnit = 1
)

// ParseTimeUnit reads "s" or "ms".
func ParseTimeUnit(s string) (TimeUnit, error) {
	switch s {
	case "s", "sec", "seconds":
		return Seconds, nil
	case "ms", "millis", "milliseconds":
		return Milliseconds, nil
	}
	return 0, fmt.Errorf("unknown time unit %q (want s or ms)", s)
}

// EventTime reads an event time in unix milliseconds from a raw field value:
// a number of units since the epoch (fractions allowed), an RFC 3339 string,
// or a msgpack timestamp.
func EventTime(raw []byte, unit TimeUnit) (int64, error) {
	switch record.KindOf(raw) {
	case record.KindInt:
		v, _ := record.Int(raw)
		if unit == Milliseconds {
			return v, nil
		}
		if v > math.MaxInt64/int64(unit) || v < math.MinInt64/int64(unit) {
			return 0, fmt.Errorf("time %d out of range", v)
		}
		return v * int64(unit), nil
	case record.KindFloat:
		v, _ := record.Float(raw)
		// Round to the microsecond first: 1795687200.102 s times 1000 is
		// 1795687200101.9998 in floating point, and must not fall into the
		// millisecond before.
		us := math.Round(v * float64(unit) * 1000)
		if math.IsNaN(us) || us > 9e18 || us < -9e18 {
			return 0, fmt.Errorf("time %v out of range", v)
		}
		return int64(math.Floor(us / 1000)), nil
	case record.KindString:
		s, _ := record.Str(raw)
		t, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			return 0, fmt.Errorf("time %q is neither a number nor RFC 3339", s)
		}
		return t.UnixMilli(), nil
	case record.KindTime:
		t, _ := record.Time(raw)
		return t.UnixMilli(), nil
	case record.KindNil:
		return 0, fmt.Errorf("time is null")
	}
	return 0, fmt.Errorf("time is a %v, not a number, an RFC 3339 string or a timestamp", record.KindOf(raw))
}

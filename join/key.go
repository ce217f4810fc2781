package join

import (
	"bytes"
	"math"
	"strconv"

	"github.com/dstream/dstream/record"
)

// Join keys. Two records join when the values of their key fields are equal
// as Spark SQL's = compares them after its implicit casts, for the cases a
// shell meets: numbers by value whatever their encoding (1 = 1.0), and an
// integer written as text in its canonical decimal form equals the integer
// ("42" = 42, as a CSV cell and a JSON number). Other strings compare as
// strings ("007" and 7 differ, and so do "007" and "7"), timestamps by
// time, booleans, binary, lists and maps by value. A null or missing key
// field never matches (SQL's null = null is not true).
//
// A key is the canonical forms of its fields' values, concatenated:
// msgpack values are self-delimiting, so the concatenation is unambiguous,
// and equal keys are equal bytes, which the hash index compares.
//
// Why not agg's keys, where 1, 1.0 and "1" are three groups: a group is a
// value kept as it came; a join is an equality between two sources that
// seldom agree on types (a CSV table holds strings, a JSON stream numbers).

// appendKey appends the canonical form of the value raw (nil: a missing
// field) to dst; ok is false for null, which matches nothing.
func appendKey(dst, raw []byte) (out []byte, ok bool) {
	if len(raw) == 0 {
		return dst, false
	}
	c := raw[0]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc2 || c == 0xc3:
		// fixint, booleans: already in their only form
		return append(dst, raw...), true
	case c&0xe0 == 0xa0 && (len(raw) == 1 || !maybeInt(raw[1])):
		// a short string that cannot be a number: the common key
		return append(dst, raw...), true
	case c == 0xc0:
		return dst, false
	}
	switch record.KindOf(raw) {
	case record.KindInt:
		v, _ := record.Int(raw)
		return record.AppendInt(dst, v), true
	case record.KindUint:
		return append(dst, raw...), true // 0xcf and 8 bytes: one form
	case record.KindFloat:
		v, _ := record.Float(raw)
		return appendFloatKey(dst, v), true
	case record.KindString:
		s, _ := record.Str(raw)
		if len(s) > 0 && maybeInt(s[0]) {
			if v, ok := canonicalInt(s); ok {
				return record.AppendInt(dst, v), true
			}
		}
		return record.AppendStringBytes(dst, s), true
	case record.KindBinary:
		s, _ := record.Str(raw)
		return record.AppendBinary(dst, s), true
	case record.KindTime:
		t, _ := record.Time(raw)
		return record.AppendTime(dst, t), true
	}
	return append(dst, raw...), true
}

// appendFloatKey: an integral float within int64's range is that integer;
// every NaN is one NaN (Spark's NaN = NaN is true).
func appendFloatKey(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return record.AppendFloat(dst, math.NaN())
	case v == math.Trunc(v) && v >= -(1<<63) && v < 1<<63:
		return record.AppendInt(dst, int64(v))
	}
	return record.AppendFloat(dst, v)
}

func maybeInt(c byte) bool { return c == '-' || '0' <= c && c <= '9' }

// canonicalInt parses s if it is an int64 in canonical decimal form: no
// sign but a minus, no leading zero, no "-0".
func canonicalInt(s []byte) (int64, bool) {
	if len(s) > 20 || (len(s) > 1 && s[0] == '0') || bytes.HasPrefix(s, []byte("-0")) {
		return 0, false
	}
	v, err := strconv.ParseInt(string(s), 10, 64) // no allocation: the conversion does not escape
	return v, err == nil
}

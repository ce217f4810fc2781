package agg

import (
	"bytes"
	"cmp"
	"math"

	"github.com/dstream/dstream/record"
)

// Values are compared as raw msgpack, in one total order used for group keys
// (output order), --min/--max and --top:
//
//	null < booleans (false < true) < numbers < strings < binary
//	     < timestamps < arrays < maps < other extensions
//
// Numbers compare numerically whatever their encoding (an integer and a
// float that are equal compare as equal here, the integer first when ties
// must be broken); NaN is above every other number, as in Spark. Strings and
// binary compare bytewise, timestamps by time, arrays, maps and extensions by
// their raw bytes.
//
// Group keys are the values in canonical form (appendCanonical): the same
// value always gives the same bytes, so keys compare as bytes in the hash
// table. Integers, floats and strings are re-encoded in their smallest form;
// an integer and a float are different keys even when equal (1 and 1.0),
// because values keep their types end to end.

// rank orders the kinds of values.
func rank(k record.Kind) int {
	switch k {
	case record.KindNil:
		return 0
	case record.KindBool:
		return 1
	case record.KindInt, record.KindUint, record.KindFloat:
		return 2
	case record.KindString:
		return 3
	case record.KindBinary:
		return 4
	case record.KindTime:
		return 5
	case record.KindArray:
		return 6
	case record.KindMap:
		return 7
	}
	return 8
}

// CompareValues compares two raw msgpack values in the order described
// above: -1, 0 or +1.
func CompareValues(a, b []byte) int {
	ka, kb := record.KindOf(a), record.KindOf(b)
	ra, rb := rank(ka), rank(kb)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch ra {
	case 0:
		return 0
	case 1:
		return cmp.Compare(a[0], b[0]) // false 0xc2 < true 0xc3
	case 2:
		return compareNumbers(a, ka, b, kb)
	case 3, 4:
		sa, _ := record.Str(a)
		sb, _ := record.Str(b)
		return bytes.Compare(sa, sb)
	case 5:
		ta, _ := record.Time(a)
		tb, _ := record.Time(b)
		return ta.Compare(tb)
	}
	return bytes.Compare(a, b)
}

func compareNumbers(a []byte, ka record.Kind, b []byte, kb record.Kind) int {
	switch {
	case ka == record.KindInt && kb == record.KindInt:
		x, _ := record.Int(a)
		y, _ := record.Int(b)
		return cmp.Compare(x, y)
	case ka == record.KindUint || kb == record.KindUint:
		if ka == kb {
			return bytes.Compare(a, b) // both 0xcf and 8 bytes big endian
		}
		if ka == record.KindInt { // any int64 < any uint above MaxInt64
			return -1
		}
		if kb == record.KindInt {
			return 1
		}
	}
	x, _ := record.Float(a)
	y, _ := record.Float(b)
	nx, ny := math.IsNaN(x), math.IsNaN(y)
	switch {
	case nx && ny:
		return 0
	case nx:
		return 1
	case ny:
		return -1
	}
	if c := cmp.Compare(x, y); c != 0 {
		return c
	}
	// Equal as floats: integers before floats, then exact integer order
	// (large integers may round to the same float).
	if ka != kb {
		if ka == record.KindFloat {
			return 1
		}
		if kb == record.KindFloat {
			return -1
		}
	}
	if ka == record.KindInt && kb == record.KindInt {
		i, _ := record.Int(a)
		j, _ := record.Int(b)
		return cmp.Compare(i, j)
	}
	return 0
}

// CompareKeys compares two group keys (concatenated canonical values) value
// by value.
func CompareKeys(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		var n, m int
		if a[0]&0xe0 == 0xa0 && b[0]&0xe0 == 0xa0 {
			// The common key, a short string: compare without Skip.
			n, m = 1+int(a[0]&0x1f), 1+int(b[0]&0x1f)
			if c := bytes.Compare(a[1:n], b[1:m]); c != 0 {
				return c
			}
		} else {
			var err, err2 error
			n, err = record.Skip(a)
			m, err2 = record.Skip(b)
			if err != nil || err2 != nil {
				return bytes.Compare(a, b) // cannot happen: keys are built here
			}
			if c := CompareValues(a[:n], b[:m]); c != 0 {
				return c
			}
		}
		a, b = a[n:], b[m:]
	}
	return cmp.Compare(len(a), len(b))
}

// appendCanonical appends raw (nil: a missing field, which is null) in the
// canonical form of keys.
func appendCanonical(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, 0xc0)
	}
	c := raw[0]
	if c <= 0x7f || c&0xe0 == 0xa0 || c == 0xc0 || c == 0xc2 || c == 0xc3 || c >= 0xe0 || c == 0xcb {
		// positive and negative fixint, fixstr, nil, bools, float64: already
		// in their only form.
		return append(dst, raw...)
	}
	switch record.KindOf(raw) {
	case record.KindInt:
		v, _ := record.Int(raw)
		return record.AppendInt(dst, v)
	case record.KindFloat:
		v, _ := record.Float(raw)
		return record.AppendFloat(dst, v)
	case record.KindString:
		s, _ := record.Str(raw)
		return record.AppendStringBytes(dst, s)
	case record.KindBinary:
		s, _ := record.Str(raw)
		return record.AppendBinary(dst, s)
	}
	return append(dst, raw...)
}

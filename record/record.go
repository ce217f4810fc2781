package record

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Fields walks the entries of one record without allocating. Key and value
// slices point into the record and are valid as long as it is.
//
//	var f record.Fields
//	f.Reset(rec)
//	for f.Next() { use(f.Key(), f.Value()) }
//	if err := f.Err(); err != nil { ... }
type Fields struct {
	b        []byte
	i, n     int
	key, val []byte
	err      error
}

// Reset starts walking rec.
func (f *Fields) Reset(rec []byte) {
	f.b, f.key, f.val = rec, nil, nil
	f.n, f.i, f.err = MapLen(rec)
}

// Len is the number of entries of the record.
func (f *Fields) Len() int { return f.n }

// Next moves to the next entry; false at the end or on an error. Short
// string keys and scalar or short string values, what most records hold,
// are read inline; anything else goes through skip.
func (f *Fields) Next() bool {
	if f.err != nil || f.n == 0 {
		return false
	}
	f.n--
	b, i := f.b, f.i
	if i >= len(b) {
		f.err = ErrTruncated
		return false
	}
	var kend int
	if c := b[i]; c&0xe0 == 0xa0 {
		kend = i + 1 + int(c&0x1f)
		if kend > len(b) {
			f.err = ErrTruncated
			return false
		}
		f.key = b[i+1 : kend]
	} else {
		k, ok := Str(b[i:])
		if !ok || KindOf(b[i:]) != KindString {
			f.err = fmt.Errorf("record: field key is not a string")
			return false
		}
		end, err := skip(b, i, 0)
		if err != nil {
			f.err = err
			return false
		}
		f.key, kend = k, end
	}
	if kend >= len(b) {
		f.err = ErrTruncated
		return false
	}
	var vend int
	switch c := b[kend]; {
	case c <= 0x7f || c >= 0xe0 || c == mNil || c == mFalse || c == mTrue:
		vend = kend + 1
	case c&0xe0 == 0xa0:
		vend = kend + 1 + int(c&0x1f)
		if vend > len(b) {
			f.err = ErrTruncated
			return false
		}
	case c == mStr8 && kend+1 < len(b):
		vend = kend + 2 + int(b[kend+1])
		if vend > len(b) {
			f.err = ErrTruncated
			return false
		}
	default:
		end, err := skip(b, kend, 0)
		if err != nil {
			f.err = err
			return false
		}
		vend = end
	}
	f.val, f.i = b[kend:vend], vend
	return true
}

// Key is the current entry's key.
func (f *Fields) Key() []byte { return f.key }

// End is the offset in the record just past the current entry's value, so
// the value stands at rec[End()-len(Value()):End()].
func (f *Fields) End() int { return f.i }

// Value is the current entry's raw msgpack value.
func (f *Fields) Value() []byte { return f.val }

// Err is the first error met, if any.
func (f *Fields) Err() error { return f.err }

// Get returns the raw value of field key in rec.
func Get(rec []byte, key string) (raw []byte, ok bool, err error) {
	var f Fields
	f.Reset(rec)
	for f.Next() {
		if string(f.key) == key {
			return f.val, true, nil
		}
	}
	return nil, false, f.err
}

// Decode turns one raw msgpack value into a Go value: maps become
// map[string]any, arrays []any, integers int64 (uint64 above MaxInt64),
// floats float64, timestamps time.Time.
func Decode(raw []byte) (any, error) {
	switch KindOf(raw) {
	case KindNil:
		return nil, nil
	case KindBool:
		return raw[0] == mTrue, nil
	case KindInt:
		if v, ok := Int(raw); ok {
			return v, nil
		}
	case KindFloat:
		if v, ok := Float(raw); ok {
			return v, nil
		}
	case KindString:
		if s, ok := Str(raw); ok {
			return string(s), nil
		}
	case KindTime:
		if t, ok := Time(raw); ok {
			return t, nil
		}
	}
	var v any
	if err := msgpack.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return normalize(v), nil
}

// normalize makes the library's integer widths int64 everywhere, so that
// expressions see one integer type.
func normalize(v any) any {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return x
	case float32:
		return float64(x)
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	}
	return v
}

// AppendValue appends a Go value as msgpack. Common types are written here
// directly; map[string]any is written with its keys sorted so that output is
// deterministic; anything else goes through vmihailenco/msgpack.
func AppendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return AppendNil(b), nil
	case string:
		return AppendString(b, x), nil
	case []byte:
		return AppendBinary(b, x), nil
	case bool:
		return AppendBool(b, x), nil
	case int:
		return AppendInt(b, int64(x)), nil
	case int8:
		return AppendInt(b, int64(x)), nil
	case int16:
		return AppendInt(b, int64(x)), nil
	case int32:
		return AppendInt(b, int64(x)), nil
	case int64:
		return AppendInt(b, x), nil
	case uint:
		return AppendUint(b, uint64(x)), nil
	case uint8:
		return AppendUint(b, uint64(x)), nil
	case uint16:
		return AppendUint(b, uint64(x)), nil
	case uint32:
		return AppendUint(b, uint64(x)), nil
	case uint64:
		return AppendUint(b, x), nil
	case float32:
		return AppendFloat(b, float64(x)), nil
	case float64:
		return AppendFloat(b, x), nil
	case time.Time:
		return AppendTime(b, x), nil
	case time.Duration:
		return AppendInt(b, int64(x)), nil
	case []any:
		b = AppendArrayHeader(b, len(x))
		var err error
		for _, e := range x {
			if b, err = AppendValue(b, e); err != nil {
				return b, err
			}
		}
		return b, nil
	case []string:
		b = AppendArrayHeader(b, len(x))
		for _, e := range x {
			b = AppendString(b, e)
		}
		return b, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = AppendMapHeader(b, len(x))
		var err error
		for _, k := range keys {
			b = AppendString(b, k)
			if b, err = AppendValue(b, x[k]); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	enc, err := msgpack.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("record: cannot encode %T: %w", v, err)
	}
	return append(b, enc...), nil
}

// Builder assembles one record field by field, reusing its buffers.
type Builder struct {
	body []byte
	out  []byte
	n    int
}

// Reset empties the builder.
func (r *Builder) Reset() { r.body, r.n = r.body[:0], 0 }

// Raw adds a field whose value is already msgpack.
func (r *Builder) Raw(key string, raw []byte) {
	r.body = append(AppendString(r.body, key), raw...)
	r.n++
}

// RawKey adds a field whose key and value are raw bytes (key as text).
func (r *Builder) RawKey(key, raw []byte) {
	r.body = append(AppendStringBytes(r.body, key), raw...)
	r.n++
}

// Value adds a field holding a Go value.
func (r *Builder) Value(key string, v any) error {
	b, err := AppendValue(AppendString(r.body, key), v)
	if err != nil {
		return err
	}
	r.body = b
	r.n++
	return nil
}

// Len is the number of fields added.
func (r *Builder) Len() int { return r.n }

// Bytes returns the record; valid until the next call on the builder.
func (r *Builder) Bytes() []byte {
	r.out = append(AppendMapHeader(r.out[:0], r.n), r.body...)
	return r.out
}

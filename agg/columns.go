package agg

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dstream/dstream/record"
)

// column holds one aggregate for every group. v is the raw value of the
// aggregated field in the record in hand, nil when the record lacks it (a
// missing field is null).
type column interface {
	grow(n int) // make room for groups [0, n)
	add(g int32, v []byte)
	sub(g int32, v []byte) // only for invertible kinds
	zero(g int32)          // the group is removed, or starts again
	zeroAll()
	reset() // no groups any more
	appendValue(dst []byte, g int32) []byte
	// appendState and loadState write and read the group's state for a
	// snapshot, as msgpack values; writeExtra and loadExtra one value for
	// state kept outside the per-group slices.
	appendState(dst []byte, g int32) []byte
	loadState(g int32, b []byte) ([]byte, error)
	writeExtra(sw *snapWriter, ordinal []int32)
	loadExtra(b []byte, groups []int32) ([]byte, error)
	memory() int64
}

// noExtra is embedded by columns without extra state.
type noExtra struct{}

func (noExtra) writeExtra(sw *snapWriter, _ []int32) { sw.buf = record.AppendNil(sw.buf) }

func (noExtra) loadExtra(b []byte, _ []int32) ([]byte, error) {
	v, rest, err := next(b)
	if err != nil {
		return nil, err
	}
	if record.KindOf(v) != record.KindNil {
		return nil, errCorrupt("extra state of a column that has none")
	}
	return rest, nil
}

// countCol is Count: the table's own row count.
type countCol struct {
	noExtra
	t *Table
}

func (countCol) grow(int)          {}
func (countCol) add(int32, []byte) {}
func (countCol) sub(int32, []byte) {}
func (countCol) zero(int32)        {}
func (countCol) zeroAll()          {}
func (countCol) reset()            {}
func (countCol) memory() int64     { return 0 }
func (c countCol) appendValue(dst []byte, g int32) []byte {
	return record.AppendInt(dst, c.t.rows[g])
}
func (countCol) appendState(dst []byte, _ int32) []byte      { return dst }
func (countCol) loadState(_ int32, b []byte) ([]byte, error) { return b, nil }

// sumCol is Sum and Avg. Integers and floats are summed apart: the integer
// part exactly in an int64 (an overflow is an error), the float part in a
// float64. The sum is an integer while every value summed is one, a float
// once a float arrives (and an integer again if swindow subtracts every
// float). Nulls and missing fields are left out; a group with no value has
// a null sum and average, as in Spark.
type sumCol struct {
	noExtra
	name string
	slot int
	avg  bool
	i    []int64
	f    []float64
	n    []int64 // values summed
	nf   []int64 // of which floats
}

func (c *sumCol) grow(n int) {
	for len(c.i) < n {
		c.i, c.f, c.n, c.nf = push(c.i, 0), push(c.f, 0), push(c.n, 0), push(c.nf, 0)
	}
}

// validate refuses a value that is not a number (or null).
func (c *sumCol) validate(v []byte) error {
	if v == nil {
		return nil
	}
	switch k := record.KindOf(v); k {
	case record.KindInt, record.KindFloat, record.KindNil:
		return nil
	case record.KindUint:
		return &RecordError{Name: c.name, Value: clone(v), Err: fmt.Errorf("%w: above the largest int64", ErrOverflow)}
	default:
		return &RecordError{Name: c.name, Value: clone(v), Err: fmt.Errorf("%w (a %v)", ErrNotNumber, k)}
	}
}

// check refuses an integer that would overflow the group's integer sum.
func (c *sumCol) check(g int32, v []byte) error {
	x, ok := record.Int(v)
	if !ok {
		return nil
	}
	if _, over := add64(c.i[g], x); over {
		return &RecordError{Name: c.name, Value: clone(v), Err: fmt.Errorf("%w: the sum so far is %d", ErrOverflow, c.i[g])}
	}
	return nil
}

func add64(a, b int64) (int64, bool) {
	s := a + b
	return s, (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0)
}

func (c *sumCol) add(g int32, v []byte) {
	if x, ok := record.Int(v); ok {
		c.i[g] += x
		c.n[g]++
	} else if f, ok := record.Float(v); ok {
		c.f[g] += f
		c.n[g]++
		c.nf[g]++
	}
}

// sub wraps around on overflow: the integer part is exact modulo 2^64, so it
// is right again once the values that remain fit.
func (c *sumCol) sub(g int32, v []byte) {
	if x, ok := record.Int(v); ok {
		c.i[g] -= x
		c.n[g]--
	} else if f, ok := record.Float(v); ok {
		c.f[g] -= f
		c.n[g]--
		if c.nf[g]--; c.nf[g] == 0 {
			c.f[g] = 0 // no rounding left over from floats that are gone
		}
	}
}

func (c *sumCol) zero(g int32) { c.i[g], c.f[g], c.n[g], c.nf[g] = 0, 0, 0, 0 }
func (c *sumCol) zeroAll()     { clear(c.i); clear(c.f); clear(c.n); clear(c.nf) }
func (c *sumCol) reset()       { c.i, c.f, c.n, c.nf = c.i[:0], c.f[:0], c.n[:0], c.nf[:0] }
func (c *sumCol) memory() int64 {
	return int64(cap(c.i)+cap(c.f)+cap(c.n)+cap(c.nf)) * 8
}

func (c *sumCol) appendValue(dst []byte, g int32) []byte {
	switch {
	case c.n[g] == 0:
		return record.AppendNil(dst)
	case c.avg:
		return record.AppendFloat(dst, (float64(c.i[g])+c.f[g])/float64(c.n[g]))
	case c.nf[g] == 0:
		return record.AppendInt(dst, c.i[g])
	}
	return record.AppendFloat(dst, float64(c.i[g])+c.f[g])
}

func (c *sumCol) appendState(dst []byte, g int32) []byte {
	dst = record.AppendInt(dst, c.i[g])
	dst = record.AppendFloat(dst, c.f[g])
	dst = record.AppendInt(dst, c.n[g])
	return record.AppendInt(dst, c.nf[g])
}

func (c *sumCol) loadState(g int32, b []byte) ([]byte, error) {
	var err error
	if c.i[g], b, err = nextInt(b); err != nil {
		return nil, err
	}
	if c.f[g], b, err = nextFloat(b); err != nil {
		return nil, err
	}
	if c.n[g], b, err = nextInt(b); err != nil {
		return nil, err
	}
	c.nf[g], b, err = nextInt(b)
	return b, err
}

// valueCol is Min, Max, First and Last: one value per group. Integers,
// floats, booleans and null are kept unboxed; other values as their raw
// msgpack in a string, allocated only when the value changes.
type valueCol struct {
	noExtra
	kind    Kind
	k       []record.Kind // KindInvalid: no value yet
	num     []uint64      // int64 or float64 bits, or 0/1 for a bool
	str     []string      // raw msgpack of other kinds
	scratch []byte
	bytes   int64 // in str
}

func (c *valueCol) grow(n int) {
	for len(c.k) < n {
		c.k, c.num, c.str = push(c.k, 0), push(c.num, 0), push(c.str, "")
	}
}

var rawNil = []byte{0xc0}

func (c *valueCol) add(g int32, v []byte) {
	if v == nil {
		v = rawNil
	}
	switch c.kind {
	case First:
		if c.k[g] == record.KindInvalid {
			c.set(g, v)
		}
	case Last:
		c.set(g, v)
	default:
		if v[0] == 0xc0 { // min and max leave nulls out, as in Spark
			return
		}
		if c.k[g] == record.KindInvalid {
			c.set(g, v)
			return
		}
		c.scratch = c.appendValue(c.scratch[:0], g)
		d := CompareValues(v, c.scratch)
		if (c.kind == Min && d < 0) || (c.kind == Max && d > 0) {
			c.set(g, v)
		}
	}
}

func (c *valueCol) set(g int32, v []byte) {
	k := record.KindOf(v)
	c.k[g] = k
	switch k {
	case record.KindInt:
		x, _ := record.Int(v)
		c.num[g] = uint64(x)
	case record.KindFloat:
		f, _ := record.Float(v)
		c.num[g] = math.Float64bits(f)
	case record.KindBool:
		c.num[g] = uint64(v[0] & 1) // 0xc2 false, 0xc3 true
	case record.KindNil:
	default:
		if c.str[g] != string(v) {
			c.bytes += int64(len(v) - len(c.str[g]))
			c.str[g] = string(v)
		}
		return
	}
	if c.str[g] != "" {
		c.bytes -= int64(len(c.str[g]))
		c.str[g] = ""
	}
}

func (c *valueCol) sub(int32, []byte) {}

func (c *valueCol) zero(g int32) {
	c.bytes -= int64(len(c.str[g]))
	c.k[g], c.num[g], c.str[g] = 0, 0, ""
}

func (c *valueCol) zeroAll() { clear(c.k); clear(c.num); clear(c.str); c.bytes = 0 }
func (c *valueCol) reset()   { c.k, c.num, c.str, c.bytes = c.k[:0], c.num[:0], c.str[:0], 0 }
func (c *valueCol) memory() int64 {
	return int64(cap(c.k))*(1+8+16) + c.bytes
}

func (c *valueCol) appendValue(dst []byte, g int32) []byte {
	switch c.k[g] {
	case record.KindInvalid, record.KindNil:
		return record.AppendNil(dst)
	case record.KindInt:
		return record.AppendInt(dst, int64(c.num[g]))
	case record.KindFloat:
		return record.AppendFloat(dst, math.Float64frombits(c.num[g]))
	case record.KindBool:
		return record.AppendBool(dst, c.num[g] == 1)
	}
	return append(dst, c.str[g]...)
}

// A group's state: an empty array (no value yet) or an array of the value.
func (c *valueCol) appendState(dst []byte, g int32) []byte {
	if c.k[g] == record.KindInvalid {
		return record.AppendArrayHeader(dst, 0)
	}
	return c.appendValue(record.AppendArrayHeader(dst, 1), g)
}

func (c *valueCol) loadState(g int32, b []byte) ([]byte, error) {
	n, h, err := record.ArrayLen(b)
	if err != nil || n > 1 {
		return nil, errCorrupt("value state")
	}
	b = b[h:]
	if n == 0 {
		return b, nil
	}
	v, rest, err := next(b)
	if err != nil {
		return nil, err
	}
	c.set(g, v)
	return rest, nil
}

// distinctCol is Distinct: the values seen per group, with how often, so
// that subtracting the last occurrence of a value takes it out. All groups
// share one map from (group, canonical value) to an occurrence counter, so
// a group costs no map of its own.
type distinctCol struct {
	m     map[string]int32 // 4-byte big-endian group + canonical value -> index in cnt
	cnt   []int64
	free  []int32 // unused indices of cnt
	n     []int64 // distinct values per group
	dead  []int32 // removed groups whose entries are still in m
	kb    []byte
	bytes int64 // in the keys of m
}

func newDistinctCol() *distinctCol { return &distinctCol{m: make(map[string]int32)} }

func (c *distinctCol) grow(n int) {
	for len(c.n) < n {
		c.n = push(c.n, 0)
	}
}

func (c *distinctCol) key(g int32, v []byte) []byte {
	c.kb = binary.BigEndian.AppendUint32(c.kb[:0], uint32(g))
	return appendCanonical(c.kb, v)
}

func (c *distinctCol) add(g int32, v []byte) {
	if v == nil || v[0] == 0xc0 { // nulls are not counted, as in Spark
		return
	}
	if len(c.dead) > 0 {
		c.sweep()
	}
	c.addKey(g, c.key(g, v), 1)
}

func (c *distinctCol) sub(g int32, v []byte) {
	if v == nil || v[0] == 0xc0 {
		return
	}
	if len(c.dead) > 0 {
		c.sweep()
	}
	c.subKey(g, c.key(g, v), 1)
}

// addKey counts the value of entry key k (group g's, from key) n more
// times, adding the entry if it is new.
func (c *distinctCol) addKey(g int32, k []byte, n int64) {
	if i, ok := c.m[string(k)]; ok {
		c.cnt[i] += n
		return
	}
	var i int32
	if f := len(c.free); f > 0 {
		i = c.free[f-1]
		c.free = c.free[:f-1]
		c.cnt[i] = n
	} else {
		i = int32(len(c.cnt))
		c.cnt = append(c.cnt, n)
	}
	c.m[string(k)] = i
	c.bytes += int64(len(k))
	c.n[g]++
}

// subKey counts the value of entry key k n times fewer, removing the entry
// when none is left.
func (c *distinctCol) subKey(g int32, k []byte, n int64) {
	i, ok := c.m[string(k)]
	if !ok {
		return
	}
	if c.cnt[i] -= n; c.cnt[i] <= 0 {
		delete(c.m, string(k))
		c.free = append(c.free, i)
		c.bytes -= int64(len(k))
		c.n[g]--
	}
}

// zero defers deleting the group's entries to one sweep of the map, so that
// expiring many groups at once costs one pass.
func (c *distinctCol) zero(g int32) {
	if c.n[g] > 0 {
		c.dead = append(c.dead, g)
	}
	c.n[g] = 0
}

func (c *distinctCol) sweep() {
	dead := make(map[uint32]bool, len(c.dead))
	for _, g := range c.dead {
		dead[uint32(g)] = true
	}
	for k, i := range c.m {
		if dead[binary.BigEndian.Uint32([]byte(k))] {
			delete(c.m, k)
			c.free = append(c.free, i)
			c.bytes -= int64(len(k))
		}
	}
	c.dead = c.dead[:0]
}

func (c *distinctCol) zeroAll() {
	clear(c.m)
	clear(c.n)
	c.cnt, c.free, c.dead, c.bytes = c.cnt[:0], c.free[:0], c.dead[:0], 0
}

func (c *distinctCol) reset() {
	c.zeroAll()
	c.n = c.n[:0]
}

func (c *distinctCol) memory() int64 {
	return c.bytes + int64(len(c.m))*40 + int64(cap(c.cnt))*8 + int64(cap(c.free))*4 + int64(cap(c.n))*8
}

func (c *distinctCol) appendValue(dst []byte, g int32) []byte {
	return record.AppendInt(dst, c.n[g])
}

func (c *distinctCol) appendState(dst []byte, _ int32) []byte      { return dst }
func (c *distinctCol) loadState(_ int32, b []byte) ([]byte, error) { return b, nil }

// The extra state is an array of (group ordinal, value, occurrences)
// triples.
func (c *distinctCol) writeExtra(sw *snapWriter, ordinal []int32) {
	if len(c.dead) > 0 {
		c.sweep()
	}
	sw.buf = record.AppendArrayHeader(sw.buf, 3*len(c.m))
	for k, i := range c.m {
		sw.buf = record.AppendInt(sw.buf, int64(ordinal[binary.BigEndian.Uint32([]byte(k))]))
		sw.buf = append(sw.buf, k[4:]...)
		sw.buf = record.AppendInt(sw.buf, c.cnt[i])
		sw.flush(false)
	}
}

func (c *distinctCol) loadExtra(b []byte, groups []int32) ([]byte, error) {
	n, h, err := record.ArrayLen(b)
	if err != nil || n%3 != 0 {
		return nil, errCorrupt("distinct state")
	}
	b = b[h:]
	for range n / 3 {
		var ord, cnt int64
		var v []byte
		if ord, b, err = nextInt(b); err != nil {
			return nil, err
		}
		if v, b, err = next(b); err != nil {
			return nil, err
		}
		if cnt, b, err = nextInt(b); err != nil {
			return nil, err
		}
		if ord < 0 || ord >= int64(len(groups)) || cnt <= 0 {
			return nil, errCorrupt("distinct entry")
		}
		g := groups[ord]
		k := c.key(g, v)
		if _, dup := c.m[string(k)]; dup {
			return nil, errCorrupt("duplicate distinct entry")
		}
		c.m[string(k)] = int32(len(c.cnt))
		c.cnt = append(c.cnt, cnt)
		c.bytes += int64(len(k))
		c.n[g]++
	}
	return b, nil
}

// collectCol is Collect: the group's non-null values in arrival order, as
// their raw msgpack one after the other.
type collectCol struct {
	noExtra
	buf   [][]byte
	n     []int32
	bytes int64
}

// maxKeep is the largest buffer zeroAll keeps for reuse.
const maxKeep = 64 << 10

func (c *collectCol) grow(n int) {
	for len(c.n) < n {
		c.buf, c.n = append(c.buf, nil), append(c.n, 0)
	}
}

func (c *collectCol) add(g int32, v []byte) {
	if v == nil || v[0] == 0xc0 { // nulls are left out, as by Spark's collect_list
		return
	}
	c.bytes -= int64(cap(c.buf[g]))
	c.buf[g] = append(c.buf[g], v...)
	c.bytes += int64(cap(c.buf[g]))
	c.n[g]++
}

func (c *collectCol) sub(int32, []byte) {}

func (c *collectCol) zero(g int32) {
	c.bytes -= int64(cap(c.buf[g]))
	c.buf[g], c.n[g] = nil, 0
}

func (c *collectCol) zeroAll() {
	for g, b := range c.buf {
		if cap(b) > maxKeep {
			c.bytes -= int64(cap(b))
			b = nil
		}
		c.buf[g] = b[:0]
	}
	clear(c.n)
}

func (c *collectCol) reset() {
	clear(c.buf)
	c.buf, c.n, c.bytes = c.buf[:0], c.n[:0], 0
}

func (c *collectCol) memory() int64 { return c.bytes + int64(cap(c.buf))*24 + int64(cap(c.n))*4 }

func (c *collectCol) appendValue(dst []byte, g int32) []byte {
	return append(record.AppendArrayHeader(dst, int(c.n[g])), c.buf[g]...)
}

func (c *collectCol) appendState(dst []byte, g int32) []byte { return c.appendValue(dst, g) }

func (c *collectCol) loadState(g int32, b []byte) ([]byte, error) {
	n, h, err := record.ArrayLen(b)
	if err != nil {
		return nil, errCorrupt("collect state")
	}
	rest := b[h:]
	start := rest
	for range n {
		if _, rest, err = next(rest); err != nil {
			return nil, err
		}
	}
	c.buf[g] = append(c.buf[g][:0], start[:len(start)-len(rest)]...)
	c.n[g] = int32(n)
	c.bytes += int64(cap(c.buf[g]))
	return rest, nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

package expr

import "unsafe"

// boxes makes the any values of the strings and numbers Bind decodes.
//
// Why: any(s) of a string allocates the two words s is, and any(n) of an
// int64 or float64 the word n is (below 256 an int needs none): an
// allocation per field per record, 13-22% of the time of BenchmarkFilterLen
// and BenchmarkIntCompare once the garbage collector's share is counted.
// boxes takes those words from arrays of boxChunk instead, one allocation
// for boxChunk values, and makes the any with pack.
//
// A word is written once and never reused, since a result may still hold
// the value (an earlier record's string in an output being built, say): a
// value reads the same for as long as it lives, as any(s) would. The price
// is that a value keeps its array alive, and with it up to boxChunk-1
// other values.
type boxes struct {
	strs   []string
	ints   []int64
	floats []float64
}

// boxChunk is small so that the values an array keeps alive are few: the
// last boxChunk strings of a field may be large.
const boxChunk = 32

func (b *boxes) string(s string) any {
	if s == "" {
		return s // no allocation
	}
	if len(b.strs) == 0 {
		b.strs = make([]string, boxChunk)
	}
	w := &b.strs[0]
	b.strs = b.strs[1:]
	*w = s
	return pack(stringType, unsafe.Pointer(w))
}

func (b *boxes) int(n int64) any {
	if uint64(n) < 256 {
		return n // no allocation: the runtime has these
	}
	if len(b.ints) == 0 {
		b.ints = make([]int64, boxChunk)
	}
	w := &b.ints[0]
	b.ints = b.ints[1:]
	*w = n
	return pack(int64Type, unsafe.Pointer(w))
}

func (b *boxes) float(f float64) any {
	if len(b.floats) == 0 {
		b.floats = make([]float64, boxChunk)
	}
	w := &b.floats[0]
	b.floats = b.floats[1:]
	*w = f
	return pack(float64Type, unsafe.Pointer(w))
}

// eface is the layout of an any, the runtime's eface (reflect relies on it
// too): its dynamic type, and a pointer to its value (for the types boxed
// here, which are not pointers themselves).
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

var (
	stringType  = typeOf("")
	int64Type   = typeOf(int64(0))
	float64Type = typeOf(float64(0))
)

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

// pack returns the any of type typ whose value is at data.
func pack(typ, data unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ = typ
	e.data = data
	return v
}

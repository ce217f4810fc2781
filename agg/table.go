package agg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
)

// ErrNotInvertible is returned by Subtract on a Table with an aggregate that
// cannot be undone (min, max, first, last, collect).
var ErrNotInvertible = errors.New("agg: aggregate is not invertible")

// RecordError reports a record that cannot be folded in: a value that is
// not a number where one is summed, an integer sum that would overflow, or
// a record that is not a well-formed msgpack map. Nothing of the record has
// been applied.
type RecordError struct {
	Name  string // output field of the aggregate, or "" for a malformed record
	Value []byte // the offending value (a copy), if any
	Err   error
}

func (e *RecordError) Error() string {
	if e.Name == "" {
		return e.Err.Error()
	}
	if e.Value == nil {
		return fmt.Sprintf("%s: %v", e.Name, e.Err)
	}
	v, _, err := record.AppendJSON(nil, e.Value)
	if err != nil {
		v = record.FormatText(nil, e.Value)
	}
	return fmt.Sprintf("%s: %s: %v", e.Name, v, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// Errors wrapped by RecordError.
var (
	ErrNotNumber = errors.New("not a number")
	ErrOverflow  = errors.New("integer overflow")
)

// group flags
const (
	fAlive   = 1 << iota
	fInOrder // in Table.order
	fPending // in Table.fresh
)

// Table is the state of a grouped aggregation. Groups are numbered by int32
// indices, reused after Remove; every per-group slice is indexed by them.
//
// A Table is not safe for concurrent use.
type Table struct {
	cfg    Config
	fields []string       // field names read from records: keys first, then aggregated fields
	picker *record.Picker // of fields
	// countKey is the key field as a msgpack key of up to 8 bytes (little
	// endian, and the mask of its bytes), when it is the only field read
	// and every aggregate a count: see AddBlock. 0 otherwise.
	countKey, countMask uint64
	countKeyLen         int
	keySlot             []int         // slot in vals of each key field
	rec                 []byte        // the record in hand
	vals                []record.Span // where each field is in rec
	cols                []column      // one per aggregate, in output order
	slots               []int         // slot in vals read by each column, -1 for none
	sums                []*sumCol
	kb                  []byte // key of the record in hand

	ks    keyStore // group keys: canonical values of the key fields, concatenated
	rows  []int64  // records added minus records subtracted
	last  []int64  // time of the last Add or Subtract (SetTime)
	stamp []uint32 // epoch in which the group was last touched
	flags []uint8
	free  []int32
	live  int

	now     int64
	epoch   uint32
	touched []int32

	order, fresh []int32 // see Sorted
	stale        bool    // order holds removed groups

	warm uint64 // what Warm read, so that it is read

	seedFields []string      // see Seed
	seedVals   []record.Span // where each of seedFields is in the record in hand

	added int32 // the group of the last Add, for AddArrival

	// After Split: the table takes the records whose key's orderPrefix
	// is above pivot if upper, else at or below it.
	split, upper bool
	pivot        uint64
}

// New returns an empty Table computing cfg.
func New(cfg Config) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Table{cfg: cfg, ks: newKeyStore(), epoch: 1}
	slot := func(name string) int {
		if i := slices.Index(t.fields, name); i >= 0 {
			return i
		}
		t.fields = append(t.fields, name)
		return len(t.fields) - 1
	}
	for _, k := range cfg.Keys {
		t.keySlot = append(t.keySlot, slot(k))
	}
	for _, a := range cfg.Aggs {
		var c column
		s := -1
		if a.Kind != Count {
			s = slot(a.Field)
		}
		switch a.Kind {
		case Count:
			c = countCol{t: t}
		case Sum, Avg:
			sc := &sumCol{name: a.Name, slot: s, avg: a.Kind == Avg}
			t.sums = append(t.sums, sc)
			c = sc
		case Min, Max, First, Last:
			c = &valueCol{kind: a.Kind}
		case Distinct:
			c = newDistinctCol()
		case Collect:
			c = &collectCol{}
		}
		t.cols = append(t.cols, c)
		t.slots = append(t.slots, s)
	}
	t.vals = make([]record.Span, len(t.fields))
	t.picker = record.NewPicker(t.fields)
	if len(t.fields) == 1 && len(cfg.Keys) == 1 && len(t.fields[0]) < 8 && !slices.ContainsFunc(t.slots, func(s int) bool { return s >= 0 }) {
		var b [8]byte
		b[0] = 0xa0 | byte(len(t.fields[0]))
		copy(b[1:], t.fields[0])
		t.countKeyLen = 1 + len(t.fields[0])
		t.countKey = binary.LittleEndian.Uint64(b[:])
		t.countMask = ^uint64(0) >> (64 - 8*uint(t.countKeyLen))
	}
	return t, nil
}

// Split moves about half of the groups of t, those of the larger keys,
// into a new table, which it returns. From then on t takes the records
// whose key sorts at or below a pivot and passes over the others, and
// the new table the other way round, so that every key of t sorts before
// every key of the new table. Given the same records, each of the two can
// then be filled by a goroutine of its own, and together they hold the
// groups t alone would, each in one of them: over many distinct keys,
// finding a record's group in a table larger than the caches is most of
// the cost, and it is shared out; written one after the other, each in
// key order, they are in key order.
//
// The pivot is the median of the groups' orderPrefix, so the split is as
// even as the keys t holds are a sample of those to come (not when they
// come in key order), and as the keys differ in the first 8 bytes of
// their first value (not when all start with the same 8 bytes, or are
// numbers: then all stay in t). A record that cannot be added (a
// malformed record, a key too long) is an error in both. Only a table
// whose every aggregate is a count can split, and only once. Group is
// not split: it creates the group of its key in the table it is called
// on.
func (t *Table) Split() (*Table, error) {
	for _, a := range t.cfg.Aggs {
		if a.Kind != Count {
			return nil, fmt.Errorf("agg: a table with a %v aggregate cannot split", a.Kind)
		}
	}
	if t.split {
		return nil, errors.New("agg: the table is split already")
	}
	u, err := New(t.cfg)
	if err != nil {
		return nil, err
	}
	ps := make([]uint64, 0, t.live)
	for g := range t.rows {
		if t.flags[g]&fAlive != 0 {
			ps = append(ps, orderPrefix(t.ks.key(int32(g))))
		}
	}
	var pivot uint64
	if len(ps) > 0 {
		slices.Sort(ps)
		pivot = ps[(len(ps)-1)/2]
	}
	t.split, t.pivot = true, pivot
	u.split, u.pivot, u.upper = true, pivot, true
	u.now, u.epoch = t.now, t.epoch
	for g := range t.rows {
		if t.flags[g]&fAlive == 0 {
			continue
		}
		key := t.ks.key(int32(g))
		if t.mine(key) {
			continue
		}
		h := u.ks.hash(key)
		_, slot := u.ks.find(key, h)
		ug := u.insert(key, h, slot)
		u.rows[ug], u.last[ug] = t.rows[g], t.last[g]
		if t.stamp[g] == t.epoch {
			u.stamp[ug] = u.epoch
			u.touched = push(u.touched, ug)
		}
		t.Remove(int32(g))
	}
	return u, nil
}

// mine reports whether the table takes the records of key (see Split).
func (t *Table) mine(key []byte) bool {
	return !t.split || (orderPrefix(key) > t.pivot) == t.upper
}

// orderPrefix is a number whose order never contradicts CompareKeys (two
// keys may have the same): 8 bytes of the first value if it is a string
// (big endian, zero-padded), 0 if it ranks below strings (null,
// booleans, numbers), the maximum if above.
func orderPrefix(key []byte) uint64 {
	if s, ok := leadString(key); ok {
		if len(s) >= 8 {
			return binary.BigEndian.Uint64(s)
		}
		var b [8]byte
		copy(b[:], s)
		return binary.BigEndian.Uint64(b[:])
	}
	if len(key) > 0 && rank(record.KindOf(key)) > rank(record.KindString) {
		return math.MaxUint64
	}
	return 0
}

// Config is what the table computes.
func (t *Table) Config() Config { return t.cfg }

// Len is the number of groups.
func (t *Table) Len() int { return t.live }

// SetTime sets the time (unix ms, the batch time) that Add and Subtract
// record as a group's last update, for Expire.
func (t *Table) SetTime(ms int64) { t.now = ms }

// val is the raw value of slot s in rec, nil when the field is missing.
func (t *Table) val(s int) []byte {
	v := t.vals[s]
	if v.End == 0 {
		return nil
	}
	return t.rec[v.Start:v.End]
}

// read finds the fields of rec that the table reads, checks the values it
// would sum, and returns its group key. Its errors are *RecordError, found
// before anything is changed.
func (t *Table) read(rec []byte) ([]byte, error) {
	if len(rec) > math.MaxInt32 {
		return nil, &RecordError{Err: errors.New("record larger than 2 GB")}
	}
	t.rec = rec
	if err := t.picker.Pick(rec, t.vals); err != nil {
		return nil, &RecordError{Err: err}
	}
	for _, s := range t.sums {
		if err := s.validate(t.val(s.slot)); err != nil {
			return nil, err
		}
	}
	if len(t.keySlot) == 1 {
		// One key field whose value is already canonical (a short string,
		// a small integer...): the key is the value itself, not a copy.
		if v := t.val(t.keySlot[0]); len(v) > 0 {
			if c := v[0]; c&0xe0 == 0xa0 || c <= 0x7f || c >= 0xe0 {
				return v, nil
			}
		}
	}
	t.kb = t.kb[:0]
	for _, s := range t.keySlot {
		t.kb = appendCanonical(t.kb, t.val(s))
	}
	if len(t.kb) > MaxKeyLen {
		return nil, &RecordError{Err: fmt.Errorf("group key of %d bytes, above the limit of %d", len(t.kb), MaxKeyLen)}
	}
	return t.kb, nil
}

// Add folds one record (a msgpack map) into its group, creating the group if
// needed, and marks the group touched. A *RecordError leaves the table as it
// was. A table that split passes over a record of the other part's key.
func (t *Table) Add(rec []byte) error {
	key, err := t.read(rec)
	if err != nil {
		return err
	}
	if !t.mine(key) {
		return nil // the other part's
	}
	g, h, slot := t.ks.lookup(key)
	if g < 0 {
		g = t.insert(key, h, slot)
	} else {
		// A new group starts at zero, so only an existing one can overflow.
		for _, s := range t.sums {
			if err := s.check(g, t.val(s.slot)); err != nil {
				return err
			}
		}
	}
	t.rows[g]++
	for i, c := range t.cols {
		if s := t.slots[i]; s >= 0 {
			c.add(g, t.val(s))
		}
	}
	t.touch(g)
	t.added = g
	return nil
}

// AddBlock adds the records of recs in turn, as Add does each. At a
// record that cannot be added it stops and returns the record and the
// error of Add (recs is then past it, and the other records of the block
// are as they were); else it returns nil, nil at the end of recs. It
// checks the block's layout as it goes, so recs may be Unchecked: a block
// that does not hold its records exactly stops it with an error wrapping
// framing.ErrCorrupt, and no record (recs is then empty).
//
// It is the word count's path (sreduce -k value --count): when every
// aggregate is a count of one key field, a record whose first field is
// the key field with a string of under 32 bytes or a small integer is
// counted without Pick or read: a compare of 8 bytes finds the field, its
// value is the key; a key of up to 7 bytes (a word of up to 6 letters) is
// read as one integer, hashed once and compared once (keyStore.findShort).
// Every other record takes Add.
func (t *Table) AddBlock(recs *framing.Records) ([]byte, error) {
	// The block in local variables, not walked with recs.Next: the loop
	// keeps them in registers.
	b, left := recs.Rest()
	defer func() { recs.SetRest(b, left) }()
	// Keys of 8 bytes or more wait in pend, hashed, until a run of them is
	// counted at once (see addPending); any other record counts them
	// first, so that the records count in their order.
	var pend [pendMax]pending
	np := 0
	defer func() { t.addPending(pend[:np]) }()
	// Each record's length is checked against the block as it is cut (the
	// checks Go would make anyway), so that the block needs no check of its
	// layout beforehand (framing.Reader.DeferCheck); a block that does not
	// hold its records exactly is an error wrapping framing.ErrCorrupt.
	for ; left > 0; left-- {
		var rec []byte
		if len(b) == 0 {
			break // overruns
		}
		if l := int(b[0]); l < 0x80 {
			if 1+l > len(b) {
				break
			}
			rec, b = b[1:1+l:1+l], b[1+l:]
		} else {
			u, k := binary.Uvarint(b)
			if k <= 0 || u > uint64(len(b)-k) {
				break
			}
			l := k + int(u)
			rec, b = b[k:l:l], b[l:]
		}
		if t.countKey != 0 && len(rec) >= 9 && rec[0]&0xf0 == 0x80 && rec[0] != 0x80 &&
			binary.LittleEndian.Uint64(rec[1:9])&t.countMask == t.countKey {
			i := 1 + t.countKeyLen
			n := 0
			switch c := rec[i]; {
			case c&0xe0 == 0xa0:
				n = 1 + int(c&0x1f)
			case c <= 0x7f || c >= 0xe0:
				n = 1
			}
			if n > maxShort && i+n <= len(rec) {
				// A longer string: hashed and compared as bytes, and a
				// new group made here, not by Add.
				key := rec[i : i+n]
				if !t.mine(key) {
					continue
				}
				pend[np] = pending{key, t.ks.hash(key)}
				if np++; np == pendMax {
					t.addPending(pend[:np])
					np = 0
				}
				continue
			}
			if np > 0 {
				t.addPending(pend[:np])
				np = 0
			}
			if n > 0 && n <= maxShort && i+n <= len(rec) {
				// The key's shortWord, read with one load: the value
				// ends the record (rec is 9 bytes or more), or 8 bytes
				// of it start at the value.
				var w uint64
				switch e := i + n; {
				case e == len(rec):
					w = binary.LittleEndian.Uint64(rec[e-8:]) >> (64 - 8*uint(n))
				case i+8 <= len(rec):
					w = binary.LittleEndian.Uint64(rec[i:]) & (^uint64(0) >> (64 - 8*uint(n)))
				default:
					w = shortWord(rec[i:e]) &^ (0xff << 56)
				}
				w |= uint64(n+1) << 56
				if t.split && !t.mine(rec[i:i+n]) {
					continue
				}
				h := mix(w^t.ks.seed64, m1)
				g, slot := t.ks.findShort(rec[i:i+n], w, h)
				if g < 0 {
					g = t.insert(rec[i:i+n], h, slot)
				}
				t.rows[g]++
				t.touch(g)
				continue
			}
		}
		if np > 0 {
			t.addPending(pend[:np])
			np = 0
		}
		if err := t.Add(rec); err != nil {
			left--
			return rec, err
		}
	}
	var err error
	switch {
	case left > 0:
		err = recs.Overrun(left)
	case len(b) != 0:
		err = framing.Trailing(len(b))
	default:
		return nil, nil
	}
	b, left = nil, 0
	return nil, err
}

// pendMax is how many keys AddBlock hashes ahead of counting them.
const pendMax = 32

// pending is a key of AddBlock's, hashed, not yet counted.
type pending struct {
	key []byte
	h   uint64
}

// addPending counts the keys of ps in turn, as AddBlock counts a key of
// 8 bytes or more, after loading the slot of each from memory.
//
// Why the loads first: over a million distinct keys the hash table's
// slots are far larger than the cache, and a key's lookup waits for its
// slot's line from memory. A loop that only loads the lines of a run of
// keys lets the processor wait for them together rather than one after
// the other, and the lookups then find them in the cache.
func (t *Table) addPending(ps []pending) {
	if len(ps) == 0 {
		return
	}
	if len(t.ks.slots) > 1<<15 { // else they are in the cache already
		var x uint64
		for _, p := range ps {
			x += t.ks.slots[uint64(uint32(p.h>>32))&t.ks.mask]
		}
		t.warm += x
	}
	for _, p := range ps {
		g, slot := t.ks.find(p.key, p.h)
		if g < 0 {
			g = t.insert(p.key, p.h, slot)
		}
		t.rows[g]++
		t.touch(g)
	}
}

// Subtract takes back one record that Add folded in before (swindow's
// inverse reduce). The group stays, possibly with no rows: the caller
// removes it (Rows, Remove) if it wants. Subtracting a record that was never
// added is an error when its group does not exist, and is undetected (and
// corrupts the aggregates) otherwise.
func (t *Table) Subtract(rec []byte) error {
	if !t.cfg.Invertible() {
		return ErrNotInvertible
	}
	key, err := t.read(rec)
	if err != nil {
		return err
	}
	g, _ := t.ks.find(key, t.ks.hash(key))
	if g < 0 || t.rows[g] == 0 {
		return errors.New("agg: subtracting a record from a group that has none")
	}
	t.rows[g]--
	for i, c := range t.cols {
		if s := t.slots[i]; s >= 0 {
			c.sub(g, t.val(s))
		}
	}
	t.touch(g)
	return nil
}

// reserve makes room for n more groups, as when loading a snapshot.
func (t *Table) reserve(n int) {
	t.ks.loc = slices.Grow(t.ks.loc, n)
	t.rows = slices.Grow(t.rows, n)
	t.last = slices.Grow(t.last, n)
	t.stamp = slices.Grow(t.stamp, n)
	t.flags = slices.Grow(t.flags, n)
	for (t.ks.n+n)*4 > len(t.ks.slots)*3 {
		t.ks.grow()
	}
}

// insert adds the group of key, whose hash is h and free slot in the key
// store slot.
func (t *Table) insert(key []byte, h, slot uint64) int32 {
	var g int32
	if n := len(t.free); n > 0 {
		g = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if len(t.rows) == math.MaxInt32 {
			panic("agg: more than 2^31 groups")
		}
		g = int32(len(t.rows))
		t.ks.loc = push(t.ks.loc, 0)
		t.rows = push(t.rows, 0)
		t.last = push(t.last, 0)
		t.stamp = push(t.stamp, 0)
		t.flags = push(t.flags, 0)
		for _, c := range t.cols {
			c.grow(len(t.rows))
		}
	}
	t.ks.add(g, key, h, slot)
	t.flags[g] |= fAlive
	if t.flags[g]&fPending == 0 {
		t.flags[g] |= fPending
		t.fresh = push(t.fresh, g)
	}
	t.live++
	return g
}

func (t *Table) touch(g int32) {
	t.last[g] = t.now
	t.Mark(g)
}

// Mark counts group g among the touched groups without updating its time
// (a restored group that a stage writes again).
func (t *Table) Mark(g int32) {
	if t.stamp[g] != t.epoch {
		t.stamp[g] = t.epoch
		t.touched = push(t.touched, g)
	}
}

// Touched returns the groups added to or subtracted from since the last
// ClearTouched, in no particular order. The slice is the table's own.
func (t *Table) Touched() []int32 {
	live := t.touched[:0]
	for _, g := range t.touched {
		if t.flags[g]&fAlive != 0 {
			live = append(live, g)
		}
	}
	t.touched = live
	return live
}

// NumTouched is how many groups were touched in the round so far, those
// removed since included: unlike Touched, it costs nothing, for a caller
// that looks at each record's group as it comes (TouchedAt).
func (t *Table) NumTouched() int { return len(t.touched) }

// TouchedAt is the i-th group touched in the round (i < NumTouched); it
// may have been removed since.
func (t *Table) TouchedAt(i int) int32 { return t.touched[i] }

// ClearTouched starts a new round of Touched, as at a batch boundary.
func (t *Table) ClearTouched() {
	t.touched = t.touched[:0]
	t.epoch++
	if t.epoch == 0 { // wrapped around after 2^32 batches
		clear(t.stamp)
		t.epoch = 1
	}
}

// Rows is the number of records in group g (added minus subtracted).
func (t *Table) Rows(g int32) int64 { return t.rows[g] }

// Key is the key of group g: the canonical msgpack values of the key fields,
// concatenated. It is valid until the next call that adds a group.
func (t *Table) Key(g int32) []byte { return t.ks.key(g) }

// Group returns the group of key (as Key returns it), creating an empty one
// (no rows, zero aggregates) if there is none. A keyless table has one
// group, of key "".
func (t *Table) Group(key []byte) int32 {
	h := t.ks.hash(key)
	g, slot := t.ks.find(key, h)
	if g < 0 {
		g = t.insert(key, h, slot)
	}
	return g
}

// Remove forgets group g. Its index may be reused by a later group.
func (t *Table) Remove(g int32) {
	if t.flags[g]&fAlive == 0 {
		return
	}
	t.ks.remove(g)
	t.rows[g] = 0
	if t.flags[g]&fInOrder != 0 {
		t.stale = true
	}
	t.flags[g] &^= fAlive | fInOrder
	for _, c := range t.cols {
		c.zero(g)
	}
	t.free = append(t.free, g)
	t.live--
}

// Expire removes the groups last updated at or before cutoff (unix ms) and
// returns how many it removed: mapWithState's timeout, with cutoff the batch
// time minus the timeout.
func (t *Table) Expire(cutoff int64) int {
	n := 0
	for g := range t.rows {
		if t.flags[g]&fAlive != 0 && t.last[g] <= cutoff {
			t.Remove(int32(g))
			n++
		}
	}
	return n
}

// Idle appends to dst the groups that Expire(cutoff) would remove, in no
// particular order, for a caller that writes them out before it removes
// them.
func (t *Table) Idle(cutoff int64, dst []int32) []int32 {
	for g := range t.rows {
		if t.flags[g]&fAlive != 0 && t.last[g] <= cutoff {
			dst = append(dst, int32(g))
		}
	}
	return dst
}

// Zero resets the aggregates of every group to those of no record but keeps
// the groups and their keys, so that a per-batch reduce does not store its
// keys again at every batch. It leaves Touched as it is.
func (t *Table) Zero() {
	clear(t.rows)
	for _, c := range t.cols {
		c.zeroAll()
	}
}

// Reset empties the table, keeping its allocated memory for reuse.
func (t *Table) Reset() {
	t.ks.reset()
	t.rows, t.last, t.stamp, t.flags = t.rows[:0], t.last[:0], t.stamp[:0], t.flags[:0]
	t.free, t.touched, t.order, t.fresh = t.free[:0], t.touched[:0], t.order[:0], t.fresh[:0]
	t.stale = false
	t.live = 0
	for _, c := range t.cols {
		c.reset()
	}
}

// SortByKey sorts groups by key: the key fields' values in turn, in the
// order of CompareValues (null first, numbers numerically, strings
// bytewise).
//
// Large sets are sorted by an 8-byte prefix of each key first (see
// sortPrefixes), with a radix sort, and only the keys of equal prefixes
// are then compared: with a million string keys, most of which differ in
// their first bytes after the part all share (key0 ... key999999), the
// comparisons all but vanish and the sort is a few passes over an array.
// BenchmarkSortByKey: 1M keys in 0.40 s with a comparison sort on a
// 7-byte prefix, about 0.05 s this way.
func (t *Table) SortByKey(gs []int32) {
	if len(gs) < 256 {
		slices.SortFunc(gs, func(a, b int32) int { return CompareKeys(t.ks.key(a), t.ks.key(b)) })
		return
	}
	// Made to measure and not kept: with a million keys it is 20 MB that
	// the state should not hold between batches.
	ps := t.sortPrefixes(gs, make([]uint64, len(gs)))
	radixSort(ps, gs, make([]uint64, len(gs)), make([]int32, len(gs)))
	// Equal prefixes: the keys decide.
	for i := 0; i < len(ps); {
		j := i + 1
		for j < len(ps) && ps[j] == ps[i] {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(gs[i:j], func(a, b int32) int { return CompareKeys(t.ks.key(a), t.ks.key(b)) })
		}
		i = j
	}
}

// sortPrefixes fills ps with the prefixes of the keys of the groups gs: an
// integer per key whose order never contradicts CompareKeys, equal
// prefixes told apart by CompareKeys. Keys whose first value ranks below
// strings (null, booleans, numbers) map to 0, above strings (binary,
// timestamps, lists, maps) to the maximum, and a string to bytes of it:
// past the bytes every string of gs starts with (their common prefix, as
// key in key0 ... key999999), 8 of them zero-padded if every key starts
// with a string, else 1<<56 plus 7.
func (t *Table) sortPrefixes(gs []int32, ps []uint64) []uint64 {
	// The longest common prefix of the strings, and whether all keys
	// start with one.
	var first []byte
	lcp, all := -1, true
	for _, g := range gs {
		s, ok := leadString(t.ks.key(g))
		if !ok {
			all = false
			continue
		}
		if lcp < 0 {
			first, lcp = s, len(s)
			continue
		}
		n := min(lcp, len(s))
		i := 0
		for i < n && s[i] == first[i] {
			i++
		}
		lcp = i
	}
	lcp = max(lcp, 0)
	for i, g := range gs {
		k := t.ks.key(g)
		var p uint64
		if s, ok := leadString(k); ok {
			var b [8]byte
			if all {
				copy(b[:], s[lcp:])
			} else {
				b[0] = 1
				copy(b[1:], s[lcp:])
			}
			p = binary.BigEndian.Uint64(b[:])
		} else if len(k) > 0 && rank(record.KindOf(k)) > rank(record.KindString) {
			p = math.MaxUint64
		}
		ps[i] = p
	}
	return ps
}

// leadString returns the bytes of the key's first value if it is a
// string.
func leadString(key []byte) ([]byte, bool) {
	if len(key) > 0 && key[0]&0xe0 == 0xa0 { // fixstr, the usual key
		n := 1 + int(key[0]&0x1f)
		return key[1:n], true
	}
	s, ok := record.Str(key)
	if !ok || record.KindOf(key) != record.KindString {
		return nil, false
	}
	return s, true
}

// radixSort sorts the prefixes ps and the groups gs with them, stably, a
// byte at a time from the least significant, skipping the bytes that are
// the same in every prefix; tp and tg are scratch of the same length.
func radixSort(ps []uint64, gs []int32, tp []uint64, tg []int32) {
	var counts [8][256]int
	for _, p := range ps {
		for d := range 8 {
			counts[d][byte(p>>(8*d))]++
		}
	}
	sp, sg := ps, gs // the sorted so far: ps and gs, or tp and tg
	for d := range 8 {
		c := &counts[d]
		if c[byte(ps[0]>>(8*d))] == len(ps) {
			continue // one value in this byte: nothing to move
		}
		sum := 0
		for v := range c {
			c[v], sum = sum, sum+c[v]
		}
		shift := 8 * d
		for i, p := range sp {
			v := byte(p >> shift)
			tp[c[v]], tg[c[v]] = p, sg[i]
			c[v]++
		}
		sp, sg, tp, tg = tp, tg, sp, sg
	}
	if &sg[0] != &gs[0] {
		copy(ps, sp)
		copy(gs, sg)
	}
}

// Sorted returns every group in key order. It keeps the order between calls
// and sorts only the groups created since, so that emitting a large state
// at every batch costs a merge, not a sort. The slice is the table's own,
// valid until the next call that changes the table.
func (t *Table) Sorted() []int32 {
	if len(t.fresh) == 0 && !t.stale {
		return t.order
	}
	t.stale = false
	fresh := t.fresh[:0]
	for _, g := range t.fresh {
		t.flags[g] &^= fPending
		if t.flags[g]&(fAlive|fInOrder) == fAlive {
			fresh = append(fresh, g)
		}
	}
	t.fresh = t.fresh[:0]
	t.SortByKey(fresh)
	// Drop the groups removed since (Remove cleared their fInOrder; their
	// index may be in fresh now), then merge fresh in from the back, in
	// place.
	order := t.order[:0]
	for _, g := range t.order {
		if t.flags[g]&fInOrder != 0 {
			order = append(order, g)
		}
	}
	i, j := len(order)-1, len(fresh)-1
	order = slices.Grow(order, len(fresh))[:len(order)+len(fresh)]
	for w := len(order) - 1; j >= 0; w-- {
		if i >= 0 && CompareKeys(t.ks.key(order[i]), t.ks.key(fresh[j])) > 0 {
			order[w] = order[i]
			i--
		} else {
			order[w] = fresh[j]
			j--
		}
	}
	for _, g := range fresh {
		t.flags[g] |= fInOrder
	}
	t.order = order
	return order
}

// All appends every group to dst, in the order of their indices (the
// order of their creation, but for indices reused after Remove).
func (t *Table) All(dst []int32) []int32 {
	for g := range t.rows {
		if t.flags[g]&fAlive != 0 {
			dst = append(dst, int32(g))
		}
	}
	return dst
}

// SortedTouched returns the groups of Touched in key order, appended to
// dst. It sorts them, or picks them out of Sorted when they are many (as
// when the same keys come back at every batch), which costs a pass over
// all groups instead of a sort.
func (t *Table) SortedTouched(dst []int32) []int32 {
	touched := t.Touched()
	k := len(touched)
	if k*bits.Len(uint(k)) < t.live { // k log k < n
		start := len(dst)
		dst = append(dst, touched...)
		t.SortByKey(dst[start:])
		return dst
	}
	for _, g := range t.Sorted() {
		if t.stamp[g] == t.epoch {
			dst = append(dst, g)
		}
	}
	return dst
}

// Warm reads what AppendRecord of each group of gs will read (its key's
// place, the key, its row count) in a tight loop, so that the memory loads
// of many groups are under way at once. Writing a large state in key order
// visits the groups in an order that has nothing to do with their place
// in memory: each record waited for its cache misses one after the other,
// a third of sreduce's time with 5 M keys. Warm a few hundred groups,
// then append their records: the records find them in the cache.
func (t *Table) Warm(gs []int32) {
	var x uint64
	for _, g := range gs {
		if k := t.ks.key(g); len(k) > 0 {
			x += uint64(k[0])
		}
		x += uint64(t.rows[g])
	}
	t.warm += x
}

// AppendRecord appends the output record of group g: a msgpack map of the
// key fields, then one field per aggregate, in the order of the Config.
func (t *Table) AppendRecord(dst []byte, g int32) []byte { return t.AppendRecordWith(dst, g, 0) }

// AppendRecordWith is AppendRecord with room for extra more fields in the
// map, which the caller appends after it (sreduce's expired).
func (t *Table) AppendRecordWith(dst []byte, g int32, extra int) []byte {
	dst = record.AppendMapHeader(dst, len(t.cfg.Keys)+len(t.cfg.Aggs)+extra)
	k := t.ks.key(g)
	if len(t.cfg.Keys) == 1 {
		// The key is the one value: no need to find where it ends.
		dst = append(record.AppendString(dst, t.cfg.Keys[0]), k...)
	} else {
		for _, name := range t.cfg.Keys {
			n, err := record.Skip(k)
			if err != nil {
				panic("agg: corrupt group key")
			}
			dst = record.AppendString(dst, name)
			dst = append(dst, k[:n]...)
			k = k[n:]
		}
	}
	for i, a := range t.cfg.Aggs {
		dst = record.AppendString(dst, a.Name)
		dst = t.cols[i].appendValue(dst, g)
	}
	return dst
}

// AppendValue appends the value of aggregate i (in Config.Aggs) of group g.
func (t *Table) AppendValue(dst []byte, g int32, i int) []byte {
	return t.cols[i].appendValue(dst, g)
}

// Top returns the n groups of gs with the largest value of aggregate i,
// largest first, ties in key order (values compare as in CompareValues, so
// null is the smallest). gs is reordered; the result is a prefix of it.
func (t *Table) Top(gs []int32, n, i int) []int32 {
	type cand struct {
		g   int32
		off int
	}
	var buf []byte
	cs := make([]cand, len(gs))
	offs := make([]int, len(gs)+1)
	for j, g := range gs {
		offs[j] = len(buf)
		buf = t.cols[i].appendValue(buf, g)
		cs[j] = cand{g, j}
	}
	offs[len(gs)] = len(buf)
	val := func(c cand) []byte { return buf[offs[c.off]:offs[c.off+1]] }
	slices.SortFunc(cs, func(a, b cand) int {
		if c := CompareValues(val(b), val(a)); c != 0 {
			return c
		}
		return CompareKeys(t.ks.key(a.g), t.ks.key(b.g))
	})
	for j := range cs {
		gs[j] = cs[j].g
	}
	return gs[:min(n, len(gs))]
}

// MemoryUsed estimates the bytes the table holds: keys, the index, the
// per-group slices and the aggregates' own storage.
func (t *Table) MemoryUsed() int64 {
	m := t.ks.memory()
	m += int64(cap(t.rows)) * (8 + 8 + 4 + 1) // rows, last, stamp, flags
	m += int64(cap(t.free)+cap(t.touched)+cap(t.order)+cap(t.fresh)) * 4
	for _, c := range t.cols {
		m += c.memory()
	}
	return m
}

package agg

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

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
	cfg     Config
	fields  []string      // field names read from records: keys first, then aggregated fields
	keySlot []int         // slot in vals of each key field
	rec     []byte        // the record in hand
	vals    []record.Span // where each field is in rec
	cols    []column      // one per aggregate, in output order
	slots   []int         // slot in vals read by each column, -1 for none
	sums    []*sumCol
	kb      []byte // key of the record in hand

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

	seedFields []string      // see Seed
	seedVals   []record.Span // where each of seedFields is in the record in hand

	added int32 // the group of the last Add, for AddArrival
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
	return t, nil
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
	if err := record.Pick(rec, t.fields, t.vals); err != nil {
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
// was.
func (t *Table) Add(rec []byte) error {
	key, err := t.read(rec)
	if err != nil {
		return err
	}
	h := t.ks.hash(key)
	g, slot := t.ks.find(key, h)
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
		t.ks.loc = append(t.ks.loc, 0)
		t.rows = append(t.rows, 0)
		t.last = append(t.last, 0)
		t.stamp = append(t.stamp, 0)
		t.flags = append(t.flags, 0)
		for _, c := range t.cols {
			c.grow(len(t.rows))
		}
	}
	t.ks.add(g, key, h, slot)
	t.flags[g] |= fAlive
	if t.flags[g]&fPending == 0 {
		t.flags[g] |= fPending
		t.fresh = append(t.fresh, g)
	}
	t.live++
	return g
}

func (t *Table) touch(g int32) {
	t.last[g] = t.now
	if t.stamp[g] != t.epoch {
		t.stamp[g] = t.epoch
		t.touched = append(t.touched, g)
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
// sortPrefix), so that most comparisons are of two integers in one array
// rather than of two keys scattered in memory: with a million keys this
// halves the time of the sort.
func (t *Table) SortByKey(gs []int32) {
	if len(gs) < 256 {
		slices.SortFunc(gs, func(a, b int32) int { return CompareKeys(t.ks.key(a), t.ks.key(b)) })
		return
	}
	// Made to measure and not kept: with a million keys it is 16 MB that
	// the state should not hold between batches.
	ps := make([]prefixed, len(gs))
	for i, g := range gs {
		ps[i] = prefixed{sortPrefix(t.ks.key(g)), g}
	}
	slices.SortFunc(ps, func(a, b prefixed) int {
		if a.p != b.p {
			return cmp.Compare(a.p, b.p)
		}
		return CompareKeys(t.ks.key(a.g), t.ks.key(b.g))
	})
	for i := range ps {
		gs[i] = ps[i].g
	}
}

// prefixed is a group with the sort prefix of its key.
type prefixed struct {
	p uint64
	g int32
}

// sortPrefix maps a key to an integer whose order never contradicts
// CompareKeys: keys whose first value ranks below strings (null, booleans,
// numbers) map to 0, above strings (binary, timestamps, lists, maps) to the
// maximum, and a string to 1<<56 plus its first 7 bytes, zero-padded. Equal
// prefixes are told apart by CompareKeys.
func sortPrefix(key []byte) uint64 {
	if len(key) == 0 {
		return 0
	}
	s, ok := record.Str(key)
	switch k := record.KindOf(key); {
	case k == record.KindString && ok:
		var p [8]byte
		p[0] = 1
		copy(p[1:], s)
		return binary.BigEndian.Uint64(p[:])
	case rank(k) < rank(record.KindString):
		return 0
	}
	return math.MaxUint64
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

// AppendRecord appends the output record of group g: a msgpack map of the
// key fields, then one field per aggregate, in the order of the Config.
func (t *Table) AppendRecord(dst []byte, g int32) []byte { return t.AppendRecordWith(dst, g, 0) }

// AppendRecordWith is AppendRecord with room for extra more fields in the
// map, which the caller appends after it (sreduce's expired).
func (t *Table) AppendRecordWith(dst []byte, g int32, extra int) []byte {
	dst = record.AppendMapHeader(dst, len(t.cfg.Keys)+len(t.cfg.Aggs)+extra)
	k := t.ks.key(g)
	for _, name := range t.cfg.Keys {
		n, err := record.Skip(k)
		if err != nil {
			panic("agg: corrupt group key")
		}
		dst = record.AppendString(dst, name)
		dst = append(dst, k[:n]...)
		k = k[n:]
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

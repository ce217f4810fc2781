package join

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/dstream/dstream/record"
)

// A joined record is the key fields (in the order of --on), then the left
// record's other fields in their order, then the right row's other fields
// in theirs. A right field whose name the left record also has is renamed
// with the prefix (--right-prefix, "right_" by default), again until the
// name is free: Spark keeps both columns under one name, which a record,
// a map, cannot.

// probe is one left record taken apart: the values of its key fields and
// the entries of its other fields.
type probe struct {
	rec    []byte
	spans  []record.Span // per key field: its value, End 0 when missing
	ranges []pairRange   // the other fields' entries, as runs of rec
	n      int           // the other fields
	clash  bool          // one of their names may be a non-key column of the right
	f      record.Fields

	// With wantShape, parse puts the record's field names in shape, each
	// after its length (a uvarint): records alike in shape have the same fields.
	wantShape bool
	shape     []byte
}

// pairRange is a run of entries (name, value) of a record: rec[start:end].
type pairRange struct{ start, end int32 }

// parse takes rec apart. right, if not nil, is the non-key columns of the
// side the record will be joined with, which its fields may clash with.
func (p *probe) parse(rec []byte, on []string, right *colset) error {
	if len(rec) > 1<<31-1 {
		return fmt.Errorf("record of %d bytes, above 2 GiB", len(rec))
	}
	p.rec, p.ranges, p.n, p.clash = rec, p.ranges[:0], 0, false
	for j := range p.spans {
		p.spans[j] = record.Span{}
	}
	_, prev, err := record.MapLen(rec)
	if err != nil {
		return err
	}
	p.f.Reset(rec)
	for p.f.Next() {
		name, end := p.f.Key(), p.f.End()
		if p.wantShape {
			p.shape = append(binary.AppendUvarint(p.shape, uint64(len(name))), name...)
		}
		key := false
		for j, k := range on {
			if p.spans[j].End == 0 && string(name) == k {
				p.spans[j] = record.Span{Start: int32(end - len(p.f.Value())), End: int32(end)}
				key = true
				break
			}
		}
		if !key {
			if k := len(p.ranges) - 1; k >= 0 && p.ranges[k].end == int32(prev) {
				p.ranges[k].end = int32(end)
			} else {
				p.ranges = append(p.ranges, pairRange{int32(prev), int32(end)})
			}
			p.n++
			if right != nil && !p.clash {
				p.clash = right.has(name)
			}
		}
		prev = end
	}
	return p.f.Err()
}

// key appends the record's join key to dst; ok is false when a key field
// is null or missing.
func (p *probe) key(dst []byte) (key []byte, ok bool) {
	for _, s := range p.spans {
		var raw []byte
		if s.End > 0 {
			raw = p.rec[s.Start:s.End]
		}
		if dst, ok = appendKey(dst, raw); !ok {
			return dst, false
		}
	}
	return dst, true
}

// composer writes joined records.
type composer struct {
	on     []string
	onEnc  [][]byte // the key fields' names, as msgpack strings
	prefix string

	names []string // the left record's field names, when one clashes
	f     record.Fields
}

func newComposer(on []string, prefix string) *composer {
	c := &composer{on: on, prefix: prefix}
	for _, k := range on {
		c.onEnc = append(c.onEnc, record.AppendString(nil, k))
	}
	return c
}

// appendJoined appends to dst the record joining the left record p with a
// right record whose body (a msgpack map of its non-key fields) is body;
// right is the right side's non-key columns, which p was parsed with.
func (c *composer) appendJoined(dst []byte, p *probe, right *colset, body []byte) []byte {
	nr, hdr, err := record.MapLen(body)
	if err != nil {
		panic("join: corrupt row body") // built by Table
	}
	dst = record.AppendMapHeader(dst, len(c.on)+p.n+nr)
	for j, s := range p.spans {
		dst = append(dst, c.onEnc[j]...)
		if s.End > 0 {
			dst = append(dst, p.rec[s.Start:s.End]...)
		} else {
			dst = record.AppendNil(dst)
		}
	}
	for _, r := range p.ranges {
		dst = append(dst, p.rec[r.start:r.end]...)
	}
	if !p.clash {
		return append(dst, body[hdr:]...)
	}
	return c.appendRenamed(dst, p, right, body)
}

// appendRenamed appends the entries of body, a right row, renaming those
// whose name the left record p has too.
func (c *composer) appendRenamed(dst []byte, p *probe, right *colset, body []byte) []byte {
	// The names of the left's fields: a slow path, taken only when one of
	// them is a column of the right's.
	c.names = c.names[:0]
	c.f.Reset(p.rec)
	for c.f.Next() {
		c.names = append(c.names, string(c.f.Key()))
	}
	c.f.Reset(body)
	_, prev, _ := record.MapLen(body)
	for c.f.Next() {
		name, end := c.f.Key(), c.f.End()
		if !slices.Contains(c.names, string(name)) {
			dst = append(dst, body[prev:end]...)
			prev = end
			c.names = append(c.names, string(name))
			continue
		}
		// Renamed to a name neither side has, nor a field renamed before.
		out := c.prefix + string(name)
		for slices.Contains(c.names, out) || right.has([]byte(out)) || slices.Contains(c.on, out) {
			out = c.prefix + out
		}
		c.names = append(c.names, out)
		dst = record.AppendString(dst, out)
		dst = append(dst, c.f.Value()...)
		prev = end
	}
	return dst
}

// colset is the non-key field names of one side, in order of first
// appearance: what a field of the other side may clash with, and the
// fields of an absent record of the side (nulls).
type colset struct {
	names []string
	idx   map[string]int
	// filter has a bit set for every name's filterHash, so that a field of
	// the other side that is not one costs no map lookup.
	filter   [4]uint64
	nullBody []byte // every name, null; nil when a name came since
}

// add adds name if it is new.
func (c *colset) add(name []byte) {
	if _, ok := c.idx[string(name)]; ok {
		return
	}
	if c.idx == nil {
		c.idx = map[string]int{}
	}
	c.idx[string(name)] = len(c.names)
	c.names = append(c.names, string(name))
	h := filterHash(name)
	c.filter[h>>6] |= 1 << (h & 63)
	c.nullBody = nil
}

// has reports whether name is one of the names.
func (c *colset) has(name []byte) bool {
	h := filterHash(name)
	if c.filter[h>>6]&(1<<(h&63)) == 0 {
		return false
	}
	_, ok := c.idx[string(name)]
	return ok
}

// null is the body of an absent record: a map of every name, null.
func (c *colset) null() []byte {
	if c.nullBody == nil {
		c.nullBody = record.AppendMapHeader(make([]byte, 0, 16*len(c.names)+5), len(c.names))
		for _, n := range c.names {
			c.nullBody = record.AppendNil(record.AppendString(c.nullBody, n))
		}
	}
	return c.nullBody
}

// reset forgets every name.
func (c *colset) reset() {
	c.names, c.filter, c.nullBody = c.names[:0], [4]uint64{}, nil
	clear(c.idx)
}

// filterHash spreads a field name over the 256 bits of colset.filter.
func filterHash(name []byte) uint8 {
	if len(name) == 0 {
		return 0
	}
	return uint8(len(name)*31) ^ name[0]*7 ^ name[len(name)-1]
}

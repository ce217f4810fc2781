package agg

import (
	"errors"
	"fmt"

	"github.com/dstream/dstream/record"
)

// An initial state (sreduce --running --initial, as the initial RDD of
// updateStateByKey and mapWithState) is a set of output records, as
// AppendRecord writes them: the key fields and the aggregates' output
// fields. A group is seeded from such a record when each of its aggregates
// can be rebuilt from what the record shows:
//
//	count             the number of records, an integer 0 or more
//	sum               the sum (null: no value yet); it counts as one value
//	min, max          the value (null: no value yet)
//	first, last       the value (null is a value, as when the first
//	                  record had none)
//	collect           the list of values (nulls in it are left out)
//	avg               not read: rebuilt from the sum of the same field
//	                  over the count, both of which the config must have
//	distinct          cannot be seeded: the output is how many values,
//	                  and the state is which
//
// Records added later fold into a seeded group as into any other.

// CheckSeed reports whether every aggregate of c can be seeded from an
// output record (see Seed), and if not why, naming the flag.
func (c Config) CheckSeed() error {
	count := false
	for _, a := range c.Aggs {
		count = count || a.Kind == Count
	}
	for _, a := range c.Aggs {
		switch a.Kind {
		case Distinct:
			return fmt.Errorf("--distinct %s cannot start from an initial state: its output is how many distinct values there were, and going on needs which", a.Field)
		case Avg:
			if !count || c.sumOf(a.Field) < 0 {
				return fmt.Errorf("--avg %s starts from an initial state only beside --sum %s and --count, whose values give its sum and the number of values averaged", a.Field, a.Field)
			}
		}
	}
	return nil
}

// sumOf is the index in Aggs of a sum of field, or -1.
func (c Config) sumOf(field string) int {
	for i, a := range c.Aggs {
		if a.Kind == Sum && a.Field == field {
			return i
		}
	}
	return -1
}

// SeedError is an initial record that cannot seed a group; nothing of it
// has been applied.
type SeedError struct {
	Name string // the field at fault
	Err  error
}

func (e *SeedError) Error() string {
	if e.Name == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("field %q: %v", e.Name, e.Err)
}
func (e *SeedError) Unwrap() error { return e.Err }

// ErrDuplicateKey is wrapped by the SeedError of a record whose key an
// earlier one has.
var ErrDuplicateKey = errors.New("a key given twice")

// Seed adds the group that rec, an output record, describes (see
// CheckSeed, which must have passed). Every key field and every aggregate's
// output field but avg's must be in rec; other fields are ignored. The
// group is not marked touched, and its last update is the table's time
// (SetTime). Errors are *SeedError, wrapping ErrDuplicateKey when the
// table has the group already.
func (t *Table) Seed(rec []byte) error {
	names := t.seedNames()
	if err := record.Pick(rec, names, t.seedVals); err != nil {
		return &SeedError{Err: err}
	}
	val := func(i int) []byte {
		v := t.seedVals[i]
		if v.End == 0 {
			return nil
		}
		return rec[v.Start:v.End]
	}
	nk := len(t.cfg.Keys)
	t.kb = t.kb[:0]
	for i := range t.cfg.Keys {
		v := val(i)
		if v == nil {
			return &SeedError{Name: names[i], Err: errors.New("missing: an initial record gives every key field")}
		}
		t.kb = appendCanonical(t.kb, v)
	}
	if len(t.kb) > MaxKeyLen {
		return &SeedError{Name: names[0], Err: fmt.Errorf("group key of %d bytes, above the limit of %d", len(t.kb), MaxKeyLen)}
	}
	// Check every value before the group is made.
	rows := int64(0)
	for i, a := range t.cfg.Aggs {
		v := val(nk + i)
		if a.Kind == Avg {
			continue
		}
		if v == nil {
			return &SeedError{Name: a.Name, Err: fmt.Errorf("missing: an initial record gives the output of every aggregate (--%v)", a.Kind)}
		}
		var err error
		switch a.Kind {
		case Count:
			var ok bool
			if rows, ok = record.Int(v); !ok || rows < 0 {
				err = errors.New("a count is an integer, 0 or more")
			}
		case Sum:
			if k := record.KindOf(v); k != record.KindInt && k != record.KindFloat && k != record.KindNil {
				err = fmt.Errorf("%w (a %v)", ErrNotNumber, k)
			}
		case Collect:
			if record.KindOf(v) != record.KindArray {
				err = fmt.Errorf("a collect is a list, not a %v", record.KindOf(v))
			} else if _, err = record.Skip(v); err != nil {
				err = fmt.Errorf("a damaged list: %w", err)
			}
		}
		if err != nil {
			return &SeedError{Name: a.Name, Err: err}
		}
	}
	for i, a := range t.cfg.Aggs {
		if a.Kind != Avg {
			continue
		}
		if s := val(nk + t.cfg.sumOf(a.Field)); record.KindOf(s) != record.KindNil && rows == 0 {
			return &SeedError{Name: t.cfg.Aggs[i].Name, Err: fmt.Errorf("the sum of %s is not null but the count is 0: an average needs values", a.Field)}
		}
	}
	h := t.ks.hash(t.kb)
	g, slot := t.ks.find(t.kb, h)
	if g >= 0 {
		return &SeedError{Err: fmt.Errorf("%w: %s", ErrDuplicateKey, t.keyJSON(t.kb))}
	}
	g = t.insert(t.kb, h, slot)
	t.rows[g] = rows
	t.last[g] = t.now
	for i, a := range t.cfg.Aggs {
		switch c := t.cols[i].(type) {
		case *sumCol:
			if a.Kind == Avg {
				c.seed(g, val(nk+t.cfg.sumOf(a.Field)), rows)
			} else {
				c.seed(g, val(nk+i), 1)
			}
		case *valueCol:
			c.seed(g, val(nk+i))
		case *collectCol:
			c.seed(g, val(nk+i))
		}
	}
	return nil
}

// keyJSON shows a group key as the JSON object of its key fields.
func (t *Table) keyJSON(key []byte) string {
	m := record.AppendMapHeader(nil, len(t.cfg.Keys))
	for _, name := range t.cfg.Keys {
		n, err := record.Skip(key)
		if err != nil {
			break
		}
		m = append(record.AppendString(m, name), key[:n]...)
		key = key[n:]
	}
	js, _, err := record.AppendJSON(nil, m)
	if err != nil {
		return string(record.FormatText(nil, m))
	}
	return string(js)
}

// seedNames are the fields Seed reads: the key fields, then the output
// names of the aggregates.
func (t *Table) seedNames() []string {
	if t.seedFields == nil {
		t.seedFields = append(append([]string(nil), t.cfg.Keys...), make([]string, len(t.cfg.Aggs))...)
		for i, a := range t.cfg.Aggs {
			t.seedFields[len(t.cfg.Keys)+i] = a.Name
		}
		t.seedVals = make([]record.Span, len(t.seedFields))
	}
	return t.seedFields
}

// seed sets the sum to v (a number, or null for none) over n values.
func (c *sumCol) seed(g int32, v []byte, n int64) {
	if x, ok := record.Int(v); ok {
		c.i[g], c.n[g] = x, n
	} else if f, ok := record.Float(v); ok {
		c.f[g], c.n[g], c.nf[g] = f, n, 1
	}
}

// seed sets the value; a null is no value for min and max, and the value
// null for first and last.
func (c *valueCol) seed(g int32, v []byte) {
	if v[0] == 0xc0 && (c.kind == Min || c.kind == Max) {
		return
	}
	c.set(g, v)
}

// seed sets the list to the non-null values of v, an array.
func (c *collectCol) seed(g int32, v []byte) {
	n, h, _ := record.ArrayLen(v)
	v = v[h:]
	for range n {
		l, err := record.Skip(v)
		if err != nil {
			return
		}
		c.add(g, v[:l])
		v = v[l:]
	}
}

// TouchAll marks every group touched, updated at the table's time
// (SetTime): as the groups of an initial state are at the first batch.
func (t *Table) TouchAll() {
	for g := range t.rows {
		if t.flags[g]&fAlive != 0 {
			t.touch(int32(g))
		}
	}
}

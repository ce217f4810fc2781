package dedup

import (
	"fmt"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/record"
)

// keyer makes a record's key: the canonical values of the key fields,
// concatenated, as sreduce groups by them (a missing field is null; 1, 1.0
// and "1" are three values); or, without key fields, the whole record: its
// field count, then each field's name and canonical value in the order of
// the names, so that the order of a record's fields does not matter.
type keyer struct {
	fields []string
	spans  []record.Span
	buf    []byte
	all    []field // the record's fields, without key fields
}

type field struct{ name, val []byte }

func newKeyer(fields []string) keyer {
	return keyer{fields: fields, spans: make([]record.Span, len(fields))}
}

// key returns rec's key, valid until the next call.
func (k *keyer) key(rec []byte) ([]byte, error) {
	if len(k.fields) == 0 {
		return k.whole(rec)
	}
	if err := record.Pick(rec, k.fields, k.spans); err != nil {
		return nil, err
	}
	if len(k.fields) == 1 {
		// One key field whose value is already canonical (a short string,
		// a small integer): the key is the value itself.
		if s := k.spans[0]; s.End != 0 {
			if c := rec[s.Start]; c&0xe0 == 0xa0 || c <= 0x7f || c >= 0xe0 {
				return rec[s.Start:s.End], nil
			}
		}
	}
	k.buf = k.buf[:0]
	for _, s := range k.spans {
		var v []byte
		if s.End != 0 {
			v = rec[s.Start:s.End]
		}
		k.buf = agg.AppendCanonical(k.buf, v)
	}
	return k.check(k.buf)
}

// whole is the key of the whole record.
func (k *keyer) whole(rec []byte) ([]byte, error) {
	var f record.Fields
	f.Reset(rec)
	k.all = k.all[:0]
	sorted := true
	for f.Next() {
		fl := field{f.Key(), f.Value()}
		if n := len(k.all); n > 0 && string(k.all[n-1].name) > string(fl.name) {
			sorted = false
		}
		k.all = append(k.all, fl)
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if !sorted {
		// Insertion sort: a record has a few fields, and this allocates
		// nothing.
		for i := 1; i < len(k.all); i++ {
			for j := i; j > 0 && string(k.all[j-1].name) > string(k.all[j].name); j-- {
				k.all[j-1], k.all[j] = k.all[j], k.all[j-1]
			}
		}
	}
	k.buf = record.AppendMapHeader(k.buf[:0], len(k.all))
	for _, fl := range k.all {
		k.buf = record.AppendStringBytes(k.buf, fl.name)
		k.buf = agg.AppendCanonical(k.buf, fl.val)
	}
	return k.check(k.buf)
}

func (k *keyer) check(key []byte) ([]byte, error) {
	if len(key) > agg.MaxKeyLen {
		return nil, fmt.Errorf("key of %d bytes, above the limit of %d", len(key), agg.MaxKeyLen)
	}
	return key, nil
}

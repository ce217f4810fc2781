package record

import (
	"encoding/binary"
	"errors"
)

// Span locates a value in a record: rec[Start:End]; End is 0 when the field
// is missing. Offsets rather than slices, so that clearing and setting them
// costs no write barrier.
type Span struct{ Start, End int32 }

// Pick finds the fields named in names in one walk over rec and sets
// spans[j] to where the value of names[j] stands (the first occurrence
// counts; a missing field leaves a zero Span). It stops as soon as every
// name is found. rec must be shorter than 2 GiB.
//
// Pick is the hot path of stages that read a few fields of every record (a
// group key, the aggregated fields): short string keys and scalar or short
// string values, what most records hold, are read inline, without Skip.
func Pick(rec []byte, names []string, spans []Span) error {
	return pick(rec, names, nil, spans)
}

// Picker is Pick for names fixed in advance: a name of up to 8 bytes is
// compared with a key as one integer, not as a string, which takes a
// third off the word count's Pick (BenchmarkPicker).
//
// A record whose first field is the first name, when that field's key
// takes at most 8 bytes with its header and its value is a scalar or a
// short string (the word count's {"value": word}), is read without the
// loop: when the Picker has that one name, Pick is a few comparisons.
type Picker struct {
	names []string
	short []uint64 // per name: its bytes little endian, zero-padded; 0 past 8 bytes
	// The first name as a msgpack key (header and bytes) of at most 8
	// bytes, little endian, and the mask of its bytes; first is 0 if the
	// key is longer.
	first, firstMask uint64
	firstLen         int
}

// NewPicker returns a Picker of the fields named in names; it keeps names.
func NewPicker(names []string) *Picker {
	p := &Picker{names: names, short: make([]uint64, len(names))}
	for j, name := range names {
		if len(name) <= 8 {
			var b [8]byte
			copy(b[:], name)
			p.short[j] = binary.LittleEndian.Uint64(b[:])
		}
	}
	if len(names) > 0 && len(names[0]) < 8 {
		var b [8]byte
		b[0] = 0xa0 | byte(len(names[0]))
		copy(b[1:], names[0])
		p.firstLen = 1 + len(names[0])
		p.first = binary.LittleEndian.Uint64(b[:])
		p.firstMask = ^uint64(0) >> (64 - 8*uint(p.firstLen))
	}
	return p
}

// Pick is Pick(rec, names, spans) for the Picker's names.
func (p *Picker) Pick(rec []byte, spans []Span) error {
	if p.first != 0 && len(p.names) == 1 && len(rec) >= 9 && rec[0]&0xf0 == 0x80 && rec[0] != 0x80 &&
		binary.LittleEndian.Uint64(rec[1:9])&p.firstMask == p.first {
		// The first field is the one name: its value ends the search.
		i := 1 + p.firstLen
		end := 0
		switch c := rec[i]; {
		case c <= 0x7f || c >= 0xe0 || c == mNil || c == mFalse || c == mTrue:
			end = i + 1
		case c&0xe0 == 0xa0:
			end = i + 1 + int(c&0x1f)
		case c == mStr8 && i+1 < len(rec):
			end = i + 2 + int(rec[i+1])
		}
		if end > 0 && end <= len(rec) {
			spans[0] = Span{int32(i), int32(end)}
			return nil
		}
	}
	return pick(rec, p.names, p.short, spans)
}

// pick is Pick; with short (the Picker's), a key of up to 8 bytes that has
// 8 bytes of the record from its start is compared as an integer.
func pick(rec []byte, names []string, short []uint64, spans []Span) error {
	for j := range spans {
		spans[j] = Span{}
	}
	var n, i int
	if len(rec) > 0 && rec[0]&0xf0 == 0x80 {
		n, i = int(rec[0]&0x0f), 1
	} else {
		var err error
		if n, i, err = MapLen(rec); err != nil {
			return err
		}
	}
	want := len(names)
	for ; n > 0 && want > 0; n-- {
		if i >= len(rec) {
			return ErrTruncated
		}
		var k []byte
		fast, w := false, uint64(0)
		if c := rec[i]; c&0xe0 == 0xa0 {
			l := int(c & 0x1f)
			if l > len(rec)-i-1 {
				return ErrTruncated
			}
			if short != nil && l <= 8 && i+9 <= len(rec) {
				fast = true
				w = binary.LittleEndian.Uint64(rec[i+1:]) & (^uint64(0) >> (64 - 8*uint(l)))
			}
			k, i = rec[i+1:i+1+l], i+1+l
		} else {
			l, err := Skip(rec[i:])
			if err != nil {
				return err
			}
			s, ok := Str(rec[i : i+l])
			if !ok || KindOf(rec[i:]) != KindString {
				return errors.New("record: field key is not a string")
			}
			k, i = s, i+l
		}
		if i >= len(rec) {
			return ErrTruncated
		}
		start := i
		switch c := rec[i]; {
		case c <= 0x7f || c >= 0xe0 || c == mNil || c == mFalse || c == mTrue:
			i++
		case c&0xe0 == 0xa0:
			i += 1 + int(c&0x1f)
			if i > len(rec) {
				return ErrTruncated
			}
		case c == mStr8 && i+1 < len(rec): // lines of 32-255 bytes
			i += 2 + int(rec[i+1])
			if i > len(rec) {
				return ErrTruncated
			}
		default:
			l, err := Skip(rec[i:])
			if err != nil {
				return err
			}
			i += l
		}
		for j, name := range names {
			// A name longer than 8 bytes cannot match a fast key.
			if (fast && len(name) == len(k) && short[j] == w) || (!fast && string(k) == name) {
				if spans[j].End == 0 {
					spans[j] = Span{int32(start), int32(i)}
					want--
				}
				break
			}
		}
	}
	return nil
}

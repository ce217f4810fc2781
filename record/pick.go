package record

import "errors"

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
		if c := rec[i]; c&0xe0 == 0xa0 {
			l := int(c & 0x1f)
			if l > len(rec)-i-1 {
				return ErrTruncated
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
			if string(k) == name {
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

package expr

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// Split is an expression that splits one string field: split(FIELD, "SEP")
// (strings.Split) or fields(FIELD) (strings.Fields). Program.Split
// recognises the shape on the syntax tree, not on the text.
//
// Why: `smap --flat 'split(value, " ")'` is the word count's first step and
// runs once per word. Run through the VM it decodes the string, builds a
// []string and encodes every part again; Iter cuts the raw bytes in place
// and allocates nothing. Its parts are exactly the elements of
// strings.Split or strings.Fields (see the tests), so a stage may use it in
// place of running the program whenever the field is a string.
type Split struct {
	Field  string // the field split
	Sep    string // split's separator; "" splits into UTF-8 sequences
	Fields bool   // fields(): split around runs of Unicode white space

	sep []byte // Sep, converted once
}

// Iter returns an iterator over the parts of s.
func (sp *Split) Iter(s []byte) SplitIter {
	if string(sp.sep) != sp.Sep {
		sp.sep = []byte(sp.Sep)
	}
	return SplitIter{sp: sp, rest: s, done: len(s) == 0 && (sp.Fields || sp.Sep == "")}
}

// SplitIter walks the parts of one string; see Split.
type SplitIter struct {
	sp   *Split
	rest []byte
	done bool
}

// asciiSpace is strings.Fields's table of ASCII white space.
var asciiSpace = [256]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// Next returns the next part, a subslice of the string, or false at the end.
func (it *SplitIter) Next() ([]byte, bool) {
	if it.done {
		return nil, false
	}
	switch {
	case it.sp.Fields:
		return it.nextField()
	case it.sp.Sep == "":
		// strings.Split(s, "") gives each UTF-8 sequence, an invalid byte
		// on its own.
		_, n := utf8.DecodeRune(it.rest)
		part := it.rest[:n]
		it.rest = it.rest[n:]
		it.done = len(it.rest) == 0
		return part, true
	}
	var i int
	if sep := it.sp.sep; len(sep) == 1 {
		i = bytes.IndexByte(it.rest, sep[0])
	} else {
		i = bytes.Index(it.rest, sep)
	}
	if i < 0 {
		it.done = true
		return it.rest, true
	}
	part := it.rest[:i]
	it.rest = it.rest[i+len(it.sp.sep):]
	return part, true
}

// nextField skips white space, then returns the run up to the next.
func (it *SplitIter) nextField() ([]byte, bool) {
	s := it.rest
	i := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if !asciiSpace[c] {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	if i == len(s) {
		it.done = true
		return nil, false
	}
	start := i
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if asciiSpace[c] {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if unicode.IsSpace(r) {
			break
		}
		i += n
	}
	it.rest = s[i:]
	return s[start:i], true
}

package agg

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
)

// randomRecord is a record of the shapes a key field can come in: first or
// not, short or long, string or number or null, missing, under a name
// that differs from the key's in its last byte or its length, and now and
// then cut short (a bad record).
func randomRecord(rng *rand.Rand) []byte {
	names := []string{"value", "valuf", "valu", "values", "n"}
	values := []func() []byte{
		func() []byte { return record.AppendString(nil, "ab"[:rng.IntN(3)]) },
		func() []byte { return record.AppendString(nil, "abcdef"[:rng.IntN(7)]) },
		func() []byte { return record.AppendString(nil, "abcdefghijklmnopqrstuvwxyz0123456789"[:rng.IntN(37)]) },
		func() []byte { return record.AppendInt(nil, rng.Int64N(400)-200) },
		func() []byte { return record.AppendFloat(nil, float64(rng.IntN(3))) },
		func() []byte { return record.AppendNil(nil) },
		func() []byte { return record.AppendBool(nil, rng.IntN(2) == 0) },
	}
	n := rng.IntN(4)
	b := record.AppendMapHeader(nil, n)
	for range n {
		b = record.AppendString(b, names[rng.IntN(len(names))])
		b = append(b, values[rng.IntN(len(values))]()...)
	}
	if rng.IntN(50) == 0 && len(b) > 1 {
		b = b[:1+rng.IntN(len(b)-1)] // truncated
	}
	return b
}

// TestAddBlockAgreesWithAdd: AddBlock (with its fast path for counts of
// one key) leaves a table as Add of each record does, and stops at the
// same bad records with the same errors, for tables that take the fast
// path and tables that do not.
func TestAddBlockAgreesWithAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		name string
		keys []string
		aggs []Spec
	}{
		{"count", []string{"value"}, []Spec{spec(Count, "")}},
		{"two counts", []string{"value"}, []Spec{spec(Count, ""), {Kind: Count, Name: "n2"}}},
		{"count and sum", []string{"value"}, []Spec{spec(Count, ""), spec(Sum, "n")}},
		{"count of the key", []string{"value"}, []Spec{spec(Count, ""), spec(Max, "value")}},
		{"two keys", []string{"value", "n"}, []Spec{spec(Count, "")}},
		{"short name", []string{"n"}, []Spec{spec(Count, "")}},
	} {
		a, b := mustNew(t, c.keys, c.aggs...), mustNew(t, c.keys, c.aggs...)
		for range 200 {
			var recs [][]byte
			var payload []byte
			for range 1 + rng.IntN(100) {
				rec := randomRecord(rng)
				recs = append(recs, rec)
				payload = framing.AppendRecord(payload, rec)
			}
			var want []error
			for _, rec := range recs {
				if err := a.Add(rec); err != nil {
					want = append(want, err)
				}
			}
			var got []error
			rs := framing.NewRecords(payload, len(recs))
			for {
				rec, err := b.AddBlock(&rs)
				if err == nil {
					break
				}
				if len(rec) == 0 {
					t.Fatalf("%s: an error without its record: %v", c.name, err)
				}
				got = append(got, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d errors, Add gave %d (%v)", c.name, len(got), len(want), want)
			}
			for i := range got {
				if got[i].Error() != want[i].Error() {
					t.Fatalf("%s: error %v, Add gave %v", c.name, got[i], want[i])
				}
			}
		}
		if da, db := dump(t, a), dump(t, b); da != db {
			t.Fatalf("%s: AddBlock gave\n%s\nAdd gave\n%s", c.name, db, da)
		}
		// And the groups were made in the same order (--order none).
		ga, gb := a.All(nil), b.All(nil)
		for i := range min(len(ga), len(gb)) {
			if ka, kb := string(a.ks.key(ga[i])), string(b.ks.key(gb[i])); ka != kb {
				t.Fatalf("%s: group %d is %q, Add made %q", c.name, i, kb, ka)
			}
		}
		if a.Len() < 10 {
			t.Fatalf("%s: only %d groups: the test tests little", c.name, a.Len())
		}
	}
}

// FuzzAddBlockLayout: AddBlock, given a block whose layout the reader left
// unchecked (framing.Reader.DeferCheck), finds the block that does not hold
// its records exactly, with the reader's own message, and takes the block
// the reader takes: its records count as Add counts them.
func FuzzAddBlockLayout(f *testing.F) {
	word := func(s string) []byte {
		return framing.AppendRecord(nil, record.AppendString(record.AppendString(record.AppendMapHeader(nil, 1), "value"), s))
	}
	f.Add(append(word("ab"), word("cd")...), 2)
	f.Add(append(word("ab"), word("cd")...), 3)
	f.Add(append(word("ab"), word("cd")[:5]...), 2)
	f.Add(append(word("ab"), 0xc0), 1)
	f.Add(append(append(word("ab"), 0x81, 0x01), word("a longer key than seven")...), 3)
	f.Add([]byte{0x80}, 1)
	f.Fuzz(func(t *testing.T, block []byte, n int) {
		n %= 1 << 12
		if n <= 0 {
			return
		}
		var stream bytes.Buffer
		w := framing.NewWriter(&stream)
		w.BeginBatch(0, 0)
		if err := w.WriteRawBlock(block, n); err != nil {
			return
		}
		w.EndBatch()
		w.Close()
		read := func(deferCheck bool) (*framing.Records, error) {
			r := framing.NewReader(bytes.NewReader(stream.Bytes()))
			r.DeferCheck = deferCheck
			var fr framing.Frame
			for {
				if err := r.Read(&fr); err != nil {
					return nil, err
				}
				if fr.Kind == framing.KindRecords {
					recs := fr.Records()
					return &recs, nil
				}
			}
		}
		checked, want := read(false)
		recs, err := read(true)
		if err != nil { // a frame the reader refuses either way (its count)
			if want == nil || want.Error() != err.Error() {
				t.Fatalf("deferring the check: %v; checking: %v", err, want)
			}
			return
		}
		tab, ref := mustNew(t, []string{"value"}, spec(Count, "")), mustNew(t, []string{"value"}, spec(Count, ""))
		for {
			_, err = tab.AddBlock(recs)
			if err == nil || errors.Is(err, framing.ErrCorrupt) {
				break
			}
		}
		switch {
		case want == nil && err != nil:
			t.Fatalf("AddBlock: %v; the reader took the block", err)
		case want != nil && err == nil:
			t.Fatalf("AddBlock took the block; the reader: %v", want)
		case want != nil && !strings.HasSuffix(want.Error(), err.Error()):
			t.Fatalf("AddBlock: %v; the reader: %v", err, want)
		case want == nil:
			for rec, ok := checked.Next(); ok; rec, ok = checked.Next() {
				ref.Add(rec)
			}
			if tab.Len() != ref.Len() {
				t.Fatalf("AddBlock made %d groups, Add %d", tab.Len(), ref.Len())
			}
		}
	})
}

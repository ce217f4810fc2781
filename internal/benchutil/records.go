package benchutil

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/dstream/dstream/internal/gen"
	"github.com/dstream/dstream/record"
)

// ZipfWords returns n {"value": word} records over a vocabulary of vocab
// words of 2 to 9 letters, drawn with a Zipf distribution as words in text
// (the word count's records).
func ZipfWords(n, vocab int) [][]byte {
	r := rand.New(rand.NewPCG(7, 8))
	words := make([]string, vocab)
	for i := range words {
		var sb strings.Builder
		for range 2 + r.IntN(8) {
			sb.WriteByte(byte('a' + r.IntN(26)))
		}
		words[i] = sb.String() + strconv.Itoa(i) // unique
	}
	z := rand.NewZipf(r, 1.1, 1, uint64(vocab-1))
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = valueRecord(words[z.Uint64()])
	}
	return recs
}

// GenWords returns the first n words of bench.sh's word count input
// (scripts/gen words: Zipf over 10k pronounceable words of 2 to 6
// letters) as {"value": word} records.
func GenWords(n int) [][]byte {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := gen.Words(w, n/10+1, 10, 10_000); err != nil {
		panic(err)
	}
	w.Flush()
	recs := make([][]byte, n)
	for i, word := range strings.Fields(buf.String())[:n] {
		recs[i] = valueRecord(word)
	}
	return recs
}

// Keys returns n {"value": "keyN"} records, N from 0 to n-1 in a random
// order (bench.sh's distinct keys).
func Keys(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	recs := make([][]byte, n)
	for i, k := range r.Perm(n) {
		recs[i] = valueRecord(fmt.Sprintf("key%d", k))
	}
	return recs
}

func valueRecord(v string) []byte {
	b := record.AppendMapHeader(nil, 1)
	b = record.AppendString(b, "value")
	return record.AppendString(b, v)
}

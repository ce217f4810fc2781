package gen

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestWord(t *testing.T) {
	// Rank 0 is the first syllable, the last one-syllable word is rank 94
	// (19 consonants x 5 vowels), and two-syllable words follow.
	for _, c := range []struct {
		k    int
		want string
	}{{0, "ba"}, {1, "be"}, {5, "da"}, {94, "zu"}, {95, "baba"}, {96, "babe"}} {
		if got := word(c.k); got != c.want {
			t.Errorf("word(%d) = %q, want %q", c.k, got, c.want)
		}
	}
}

func fill(t *testing.T, f func(w *bufio.Writer) error) string {
	t.Helper()
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := f(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The benchmarks trust that every run reads the same bytes.
func TestWordsFixed(t *testing.T) {
	words := func(w *bufio.Writer) error { return Words(w, 50, 4, 100) }
	a, b := fill(t, words), fill(t, words)
	if a != b {
		t.Fatal("two runs of Words differ")
	}
	lines := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines, want 50", len(lines))
	}
	for _, l := range lines {
		if n := len(strings.Fields(l)); n != 4 {
			t.Fatalf("line %q has %d words, want 4", l, n)
		}
	}
	if err := Words(bufio.NewWriter(&bytes.Buffer{}), 1, 0, 10); err == nil {
		t.Error("Words with per 0: no error")
	}
}

func TestKeysPermutation(t *testing.T) {
	got := strings.Fields(fill(t, func(w *bufio.Writer) error { return Keys(w, 5) }))
	want := []string{"key0", "key1", "key2", "key3", "key4"}
	if slices.Equal(got, want) {
		t.Errorf("keys not shuffled: %v", got)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("keys = %v, want a permutation of %v", got, want)
	}
}

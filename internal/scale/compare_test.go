package scale

import (
	"slices"
	"testing"
)

func TestDiff(t *testing.T) {
	want := map[string]int64{"u001": 3, "u002": 5, "u003": 1}
	tests := []struct {
		name    string
		got     map[string]int64
		diff    []string
		summary string
	}{
		{"equal", map[string]int64{"u001": 3, "u002": 5, "u003": 1}, nil, "equal"},
		{"lost and doubled", map[string]int64{"u001": 2, "u002": 10, "u003": 1},
			[]string{"u001: want 3, got 2", "u002: want 5, got 10"},
			"2 of 3 users differ (1 short, 1 over): 1 events missing, 5 too many"},
		{"missing user", map[string]int64{"u001": 3, "u002": 5},
			[]string{"u003: want 1, got -"},
			"1 of 3 users differ (1 short, 0 over): 1 events missing, 0 too many"},
		{"unexpected user", map[string]int64{"u001": 3, "u002": 5, "u003": 1, "u000": 4},
			[]string{"u000: want -, got 4"},
			"1 of 3 users differ (0 short, 1 over): 0 events missing, 4 too many"},
		{"empty table", map[string]int64{},
			[]string{"u001: want 3, got -", "u002: want 5, got -", "u003: want 1, got -"},
			"3 of 3 users differ (3 short, 0 over): 9 events missing, 0 too many"},
		// A user whose row says 0 is not a user without a row.
		{"zero row", map[string]int64{"u001": 3, "u002": 5, "u003": 1, "u009": 0},
			[]string{"u009: want -, got 0"},
			"1 of 3 users differ (0 short, 1 over): 0 events missing, 0 too many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := diff(want, tt.got); !slices.Equal(d, tt.diff) {
				t.Errorf("diff = %q, want %q", d, tt.diff)
			}
			if s := summary(want, tt.got); s != tt.summary {
				t.Errorf("summary = %q, want %q", s, tt.summary)
			}
		})
	}
}

func TestInputCounts(t *testing.T) {
	in := newInput(7, 5000, 100)
	if len(in.events) != 5000 {
		t.Fatalf("%d events, want 5000", len(in.events))
	}
	var total int64
	for _, n := range in.counts {
		total += n
	}
	if total != 5000 || len(in.counts) > 100 {
		t.Errorf("counts sum to %d over %d users, want 5000 over at most 100", total, len(in.counts))
	}
	again := newInput(7, 5000, 100)
	if !slices.EqualFunc(in.events, again.events, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Error("the same seed gave other events")
	}
}

package scale

import (
	"testing"
	"time"
)

// TestPlan checks the kills that seeds draw: one copy of each tier, one of
// the three, while the events still flow, and the new copy a second to six
// later; the same seed, the same plan.
func TestPlan(t *testing.T) {
	for seed := range uint64(200) {
		p := newPlan(seed)
		if again := newPlan(seed); again.String() != p.String() {
			t.Fatalf("seed %d: two plans: %s and %s", seed, p, again)
		}
		for tier, k := range p.kills {
			if k == nil {
				t.Fatalf("seed %d: no kill in tier %d", seed, tier+1)
			}
			if k.copy < 0 || k.copy >= p.copies || k.at < 500*time.Millisecond || k.at > spread ||
				k.join < k.at+time.Second || k.join > k.at+6*time.Second {
				t.Errorf("seed %d, tier %d: %s", seed, tier+1, p)
			}
		}
	}
}

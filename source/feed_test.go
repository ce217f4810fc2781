package source

import (
	"fmt"
	"testing"

	"github.com/dstream/dstream/internal/kafkatest"
)

// --max-rate waits between messages without losing any: the wait hands the
// chunk in hand over, and the next record goes into a new one (it went
// into the chunk handed over, and was lost).
func TestFeedMaxRate(t *testing.T) {
	c, seeds := kafkatest.Cluster(t, 1, 1, "slow")
	produce(t, seeds, "slow", 0, 30)
	got, err := runKafka(t, Options{Inputs: []string{kafkatest.URL(c, "slow")}, Format: "lines", Once: true, Interval: 1000, Start: "earliest", MaxRate: 100})
	if err != nil {
		t.Fatal(err)
	}
	vs := values(got)
	for i := range 30 {
		if !contains(vs, fmt.Sprintf("v%d", i)) {
			t.Errorf("v%d is missing: %v", i, vs)
		}
	}
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

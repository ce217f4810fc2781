package scale

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// input is a trial's events, JSON objects {"user":"u042","n":17}, and the
// count of each user's events: what the table must hold at the end.
type input struct {
	events [][]byte
	counts map[string]int64
}

// newInput draws n events over users users from seed. The users are
// skewed (user i about twice as likely as user users/2): a few hot keys
// make some partitions busier than others, as real keys do.
func newInput(seed uint64, n, users int) *input {
	rng := rand.New(rand.NewPCG(seed, 0x5ca1e))
	in := &input{counts: map[string]int64{}}
	for i := range n {
		r := rng.Float64()
		user := fmt.Sprintf("u%03d", int(float64(users)*r*r))
		in.events = append(in.events, fmt.Appendf(nil, `{"user":%q,"n":%d}`, user, i))
		in.counts[user]++
	}
	return in
}

// produce writes the events into topic, without keys, partition by
// partition in turn (so that a user's events are on every partition, and
// the first tier has a shuffle to do), in chunks spread evenly over
// spread: a stream still flowing when the copies are killed.
func (in *input) produce(ctx context.Context, seeds []string, topic string, partitions int32, spread time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	const chunks = 50
	size := (len(in.events) + chunks - 1) / chunks
	start := time.Now()
	for c := 0; c*size < len(in.events); c++ {
		if d := time.Until(start.Add(spread * time.Duration(c) / chunks)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var recs []*kgo.Record
		for i := c * size; i < min((c+1)*size, len(in.events)); i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: in.events[i]})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("producing into %s: %w", topic, err)
		}
	}
	return nil
}

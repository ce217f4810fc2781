package crash

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaInput is the input of a Kafka variant: a kfake cluster of its own per
// trial (3 brokers, a topic of 4 partitions), in this process, loaded with
// the events of in.jsonl, each keyed by its k (so partitioned by the key's
// hash), and an empty topic out of 4 partitions for a Kafka sink. $KAFKA is
// its brokers' addresses. Across partitions the records
// come in another order each run, so the variant's output must not depend
// on the order: the totals by key do not.
type kafkaInput struct {
	clusters map[string]*kfake.Cluster // by trial name
}

func (k *kafkaInput) setup(t *trial) error {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, "events", "out"))
	if err != nil {
		return fmt.Errorf("starting kfake: %w", err)
	}
	if k.clusters == nil {
		k.clusters = map[string]*kfake.Cluster{}
	}
	k.clusters[t.name] = c
	t.vars["KAFKA"] = kafkatest.Seeds(c)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	var recs []*kgo.Record
	sc := bufio.NewScanner(bytes.NewReader(input()))
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, `"k":"`)
		key := line[i+5 : i+5+3]
		recs = append(recs, &kgo.Record{Topic: "events", Key: []byte(key), Value: []byte(line)})
	}
	return cl.ProduceSync(context.Background(), recs...).FirstErr()
}

func (k *kafkaInput) teardown(t *trial) {
	if c := k.clusters[t.name]; c != nil {
		c.Close()
		delete(k.clusters, t.name)
	}
}

// kafkaTopic is the topic out of the trial's cluster, written by ssink
// --kafka --checkpoint: what a read_committed consumer sees of it, a line
// per message (partition, key, value), compared as a multiset, so that a
// message written twice, or lost, shows. Not its batch: which records of
// the 4 partitions make a batch of 50 differs from run to run.
type kafkaTopic struct {
	base
}

func (kafkaTopic) read(t *trial) (content, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := kafkatest.Read(ctx, t.vars["KAFKA"], "out")
	if err != nil {
		return content{}, fmt.Errorf("reading topic out: %w", err)
	}
	var c content
	for _, r := range recs {
		c.lines = append(c.lines, fmt.Sprintf("out: %d|%s|%s", r.Partition, r.Key, r.Value))
	}
	return c, nil
}

package kafkasink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A stateful stage behind a scaled-out source (sreduce --running, see
// reduce/scale.go) whose sink is this one leaves each batch's changelog
// records in DIR/changes/N (checkpoint.Changes) instead of committing them
// itself: the sink writes them in the batch's transaction, with the batch's
// messages and the group's offsets, so that the state, the position and
// the output commit together (Kafka Streams' exactly-once). They go to the
// changelog partition the stage chose (that of the source partition), not
// by the key's hash: see partitioner.

// partitioner is the sink's partitioner, which places the records of the
// topics named manual by their own Partition (a changelog's).
type partitioner struct {
	kgo.Partitioner
	manual sync.Map // topic → true
}

func (p *partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if _, ok := p.manual.Load(topic); ok {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.Partitioner.ForTopic(topic)
}

// sendChanges sends the changelog records of batch b left by a stage
// upstream, if any, in the batch's transaction.
func (p *producer) sendChanges(b stage.Batch) error {
	path := p.changesPath(b.ID)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var c checkpoint.Changes
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		return fmt.Errorf("--checkpoint: %v: the changelog records a stage left: %w", b, err)
	}
	p.parts.manual.Store(c.Topic, true)
	for _, ch := range c.Changes {
		r := &kgo.Record{Topic: c.Topic, Partition: ch.Partition, Key: ch.Key, Value: ch.Value}
		p.sent.Add(1)
		p.cl.Produce(p.ctx, r, p.fn)
	}
	return nil
}

// changesPath is the file of batch id's changelog records.
func (p *producer) changesPath(id uint64) string {
	return filepath.Join(p.dir, checkpoint.ChangesDir, strconv.FormatUint(id, 10))
}

// changesDone removes batch id's changelog records once committed.
func (p *producer) changesDone(id uint64) {
	if p.dir != "" {
		os.Remove(p.changesPath(id))
	}
}

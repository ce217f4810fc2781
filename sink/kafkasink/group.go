package kafkasink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/internal/kafkatxn"
	"github.com/dstream/dstream/stage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// A scaled-out source's offsets (sbatch kafka://... --group G --scale-out,
// docs/scale-out.md): when offsets/N of the batch in hand names the
// consumer group it was read in (checkpoint.Group), the sink commits the
// group's offsets after the batch in the batch's transaction, so that the
// messages and the offsets commit or abort together (Kafka's exactly-once
// v2), unless a stage upstream keeps a transaction of its own and claimed
// them (DIR/group-offsets, checkpoint.OffsetsClaim, naming that stage).
// The sink claims them before its first commit: sbatch, seeing the claim,
// leaves them alone.

// claimName is what the sink writes in DIR/group-offsets.
const claimName = "ssink"

// groupOffsets are the offsets of a scaled-out source's group that the
// batch in hand commits.
type groupOffsets struct {
	checkpoint.Group
	ends map[string]map[int32]int64 // topic → partition → next offset to read
}

// batchGroup reads offsets/N of batch id and returns the group offsets it
// commits: nil if it names no group, or if another stage claimed them.
// The first batch that names a group claims them for the sink, or finds
// the claim of a stage upstream (made at its own first batch, before the
// batch reached the sink).
func (p *producer) batchGroup(id uint64) (*groupOffsets, error) {
	var o checkpoint.Offsets
	err := checkpoint.ReadLog(p.dir, checkpoint.OffsetsDir).Read(id, &o)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil // not a checkpoint sbatch writes in
	case err != nil:
		return nil, err
	case o.Group == nil:
		return nil, nil
	}
	if !p.claimKnown {
		if p.claimed, err = p.claim(); err != nil {
			return nil, err
		}
		p.claimKnown = true
	}
	if !p.claimed {
		return nil, nil
	}
	g := &groupOffsets{Group: *o.Group, ends: map[string]map[int32]int64{}}
	for _, r := range o.Sources {
		if r.End <= r.Start || !slices.Contains(o.Group.Owned, r.Path) {
			continue
		}
		topic, part, ok := checkpoint.SplitPartition(r.Path)
		if !ok {
			return nil, fmt.Errorf("%s: source %q: not a Kafka partition TOPIC/PARTITION", checkpoint.ReadLog(p.dir, checkpoint.OffsetsDir).Path(id), r.Path)
		}
		if g.ends[topic] == nil {
			g.ends[topic] = map[int32]int64{}
		}
		g.ends[topic][part] = r.End
	}
	return g, nil
}

// claim reads DIR/group-offsets, or writes it naming the sink if there is
// none, and reports whether the sink commits the group's offsets.
func (p *producer) claim() (bool, error) {
	path := filepath.Join(p.dir, checkpoint.OffsetsClaim)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		return string(bytes.TrimSpace(b)) == claimName, nil
	case !errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("--checkpoint: %w", err)
	}
	if err := checkpoint.WriteFile(path, []byte(claimName+"\n"), 0o644); err != nil {
		return false, fmt.Errorf("--checkpoint: claiming the group's offsets: %w", err)
	}
	return true, nil
}

// commitGroup commits the group offsets of the batch in hand: in its
// transaction if it wrote messages, else outside any (see
// kafkatxn.CommitOffsetsOutside: a transaction kgo can end needs a record
// of its own, and the only topic the sink writes is the user's, where a
// marker would be a message every consumer reads). inTxn tells which.
func (p *producer) commitGroup(ctx context.Context, b stage.Batch, inTxn bool) error {
	g := p.grp
	if g == nil || len(g.ends) == 0 {
		return nil
	}
	var err error
	if inTxn {
		err = kafkatxn.CommitOffsets(ctx, p.cl, p.txnID, g.ID, g.Generation, g.Member, g.ends, nil)
	} else {
		err = kafkatxn.CommitOffsetsOutside(ctx, p.cl, g.ID, g.Generation, g.Member, g.ends, nil)
	}
	if err == nil {
		return nil
	}
	err = p.batchError(b, fmt.Sprintf("committing the offsets of group %s (generation %d, member %s) for", g.ID, g.Generation, g.Member), err)
	if errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.FencedInstanceID) {
		return stage.Hint(err, "the group has moved this copy's partitions to another: the batch is not committed, and its records are read again by their new owner")
	}
	return err
}

package reduce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/agg"
	"github.com/dstream/dstream/changelog"
	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/framing"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/stage"
)

// A running state behind a scaled-out Kafka source (sbatch --scale-out,
// docs/scale-out.md) is kept per source partition, so that a partition's
// state moves with it from copy to copy, across machines: Kafka Streams'
// changelog topics. Each batch's offsets/N names the group and the
// partitions this copy owns; then
//
//   - each group of the table belongs to the partition its records came from
//     (the field Group.PartitionField of each record: sbatch --meta-field);
//     a key seen in two partitions is an error, since the tier upstream
//     must partition by it (ssink --kafka --key): checked at each group's
//     first record in a batch, which costs no second lookup;
//   - at the end of each batch, one Kafka transaction writes the groups the
//     batch changed (agg.AppendGroupSnapshot, keyed by the group's key, to
//     the changelog partition of the same number; a tombstone for a group
//     --ttl forgot) and commits the source partitions' offsets to the group,
//     before the batch leaves: so the changelog and the group's offsets
//     always agree, whoever reads them next;
//   - a partition this copy did not own in the batch before is restored
//     from the changelog (it waits for a dead owner's open transaction to
//     end), and its groups are written again in the batch, so that an
//     idempotent sink (--mode update into a table keyed by the key) holds
//     them even if the last owner died between its transaction and its
//     sink; a partition no longer owned is let go.
//
// The copy's checkpoint keeps no snapshot then: the changelog is the state.
type scale struct {
	group      *checkpoint.Group // as the last batch's offsets/N says
	topic      string
	log        *checkpoint.Log // DIR/offsets
	store      *changelog.Store
	field      string
	generation int32 // of the assignment read last
	// handoff: the sink is ssink --kafka, whose transaction writes the
	// batch's changelog records (DIR/changes/N) with its messages and the
	// group's offsets; the stage commits nothing itself.
	handoff     bool
	restoreWait time.Duration // bounds a partition's restore

	part    []int32         // by group: its source partition, -1 for none yet
	owned   map[int32]bool  // the partitions owned in the batch before
	ends    map[int32]int64 // the batch's ranges that moved: partition → end
	changes []changelog.Change
	vals    []byte
	tombs   []changelog.Change // the groups the TTL removes in the batch
}

// scaleTimeout bounds each wait of the changelog on the brokers.
const scaleTimeout = 30 * time.Second

// scaleBegin, at the first batch, finds whether the source is scaled out
// (checkpoint.ScaleOutFile); then at each batch reads which partitions
// this copy owns (checkpoint.AssignmentFile), restoring and letting go as
// they change. After a change of more than one generation every partition
// is restored: one may have been away and back in between.
func (r *Engine) scaleBegin(b stage.Batch) error {
	if !r.scaleChecked {
		r.scaleChecked = true
		data, err := os.ReadFile(filepath.Join(r.o.Checkpoint, checkpoint.ScaleOutFile))
		if errors.Is(err, fs.ErrNotExist) {
			return nil // not behind a scaled-out source
		}
		if err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
		var g checkpoint.Group
		if err := json.Unmarshal(data, &g); err != nil {
			return fmt.Errorf("--checkpoint: %s: %w", checkpoint.ScaleOutFile, err)
		}
		if err := r.startScale(&g); err != nil {
			return err
		}
	}
	s := r.scale
	if s == nil {
		return nil
	}
	path := filepath.Join(r.o.Checkpoint, checkpoint.AssignmentFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing assigned yet: the batch has no records
	}
	var a checkpoint.Assignment
	if err == nil {
		err = json.Unmarshal(data, &a)
	}
	if err != nil {
		return fmt.Errorf("--checkpoint: %s, at the beginning of %v: %w", path, b, err)
	}
	owned := map[int32]bool{}
	for _, name := range a.Owned {
		p, ok := partitionOf(name, s.topic)
		if !ok {
			return fmt.Errorf("%s: partition %q is not of topic %s", path, name, s.topic)
		}
		owned[p] = true
	}
	if a.Generation == s.generation && maps.Equal(owned, s.owned) {
		return nil
	}
	if a.Generation != s.generation && a.Generation != s.generation+1 {
		clear(s.owned) // all restored: see above
		r.t.Reset()
		s.part = s.part[:0]
	}
	for p := range s.owned {
		if !owned[p] {
			r.letGo(p)
		}
	}
	for p := range owned {
		if !s.owned[p] {
			if err := r.restore(p); err != nil {
				return err
			}
		}
	}
	s.owned, s.generation = owned, a.Generation
	return nil
}

// scaleEnd reads the batch's offsets/N: the ends of the partitions it read,
// to commit to the group, and the generation and member that read them.
func (r *Engine) scaleEnd(b stage.Batch) error {
	s := r.scale
	var e checkpoint.Offsets
	if err := s.log.Read(b.ID, &e); err != nil {
		return fmt.Errorf("--checkpoint: the offsets of %v: %w", b, err)
	}
	if e.Group == nil {
		return fmt.Errorf("%s: %v is not of a scaled-out source", s.log.Path(b.ID), b)
	}
	s.group = e.Group
	clear(s.ends)
	owned := map[string]bool{}
	for _, name := range e.Group.Owned {
		owned[name] = true
	}
	for _, rg := range e.Sources {
		if p, ok := partitionOf(rg.Path, s.topic); ok && owned[rg.Path] && rg.End > rg.Start {
			s.ends[p] = rg.End
		}
	}
	return nil
}

// partitionOf is the partition of "TOPIC/P" of topic.
func partitionOf(name, topic string) (int32, bool) {
	t, p, ok := checkpoint.SplitPartition(name)
	return p, ok && t == topic
}

// startScale opens the changelog of a scaled-out source (g, as sbatch
// announced it) and claims the group's offsets (checkpoint.OffsetsClaim).
func (r *Engine) startScale(g *checkpoint.Group) error {
	switch {
	case len(g.Topics) != 1:
		return stage.UsageError("--running behind sbatch --scale-out reads one topic, not %d (%s): the state of a partition is that of one topic's", len(g.Topics), strings.Join(g.Topics, ","))
	case g.PartitionField == "":
		return stage.Hint(stage.UsageError("--running behind sbatch --scale-out keeps its state per partition, and the records do not say theirs"),
			"give sbatch --meta-field PREFIX (--meta-field _ adds _partition), and keep that field through any smap before sreduce")
	case r.o.Initial != "":
		return stage.UsageError("--initial is not for a state kept per partition (sbatch --scale-out): the changelog is where it starts")
	}
	if err := r.o.Agg.GroupSnapshots(); err != nil {
		return stage.Usage(fmt.Errorf("--running behind sbatch --scale-out: %w", err))
	}
	id, err := checkpoint.ID(r.o.Checkpoint)
	if err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout)
	defer cancel()
	handoff := sinkKind(r.o.Checkpoint) == "kafka"
	restoreWait := scaleTimeout
	if handoff {
		// The sink's transactions write the changelog: one open in a
		// copy that died holds a restore up to the sink's --txn-timeout,
		// at most Kafka's transaction.max.timeout.ms (15 min by default).
		restoreWait = 16 * time.Minute
	}
	store, err := changelog.Open(ctx, changelog.Config{
		Seeds:      g.Seeds,
		Topic:      ChangelogTopic(g.ID, r.o.Name),
		Partitions: g.Partitions[0],
		// One copy's producer: a restart of the copy fences the open
		// transaction of the run it replaces.
		TxnID: "dstream-state-" + id + "-" + r.o.Name,
		// Kafka Streams' under exactly-once: a copy that dies in a
		// transaction holds the partitions' next owners this long.
		TxnTimeout:     10 * time.Second,
		Timeout:        scaleTimeout,
		RestoreTimeout: restoreWait,
	})
	if err != nil {
		return fmt.Errorf("--running behind sbatch --scale-out: the changelog: %w", err)
	}
	r.scale = &scale{store: store, group: g, topic: g.Topics[0], field: g.PartitionField, generation: -1,
		log: checkpoint.ReadLog(r.o.Checkpoint, checkpoint.OffsetsDir), owned: map[int32]bool{}, ends: map[int32]int64{}}
	r.scale.restoreWait = restoreWait
	if r.scale.handoff = handoff; handoff {
		return nil // the sink claims the group's offsets
	}
	claim := filepath.Join(r.o.Checkpoint, checkpoint.OffsetsClaim)
	if err := checkpoint.WriteAtomic(claim, 0o644, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "sreduce %s\n", r.o.Name)
		return err
	}); err != nil {
		store.Close()
		return fmt.Errorf("--checkpoint: %w", err)
	}
	r.state = nil // the changelog is the state
	return nil
}

// sinkWait bounds the wait for the sink to say what it is
// (checkpoint.SinkFile), which it does as it starts.
var sinkWait = 10 * time.Second

// sinkKind is the destination of the pipeline's sink, once it has started:
// "kafka", "postgres"...; "" if none said so within sinkWait (a pipeline
// whose end is not ssink --checkpoint), which is then treated as any sink
// but Kafka's.
func sinkKind(dir string) string {
	path := filepath.Join(dir, checkpoint.SinkFile)
	for end := time.Now().Add(sinkWait); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(end) {
			return ""
		}
	}
}

// ChangelogTopic is the changelog topic of the state name of group.
func ChangelogTopic(group, name string) string { return "dstream-" + group + "-" + name + "-changelog" }

// restore reads partition p's groups from the changelog into the table,
// marked to be written in the batch.
func (r *Engine) restore(p int32) error {
	s := r.scale
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.restoreWait)
	defer cancel()
	gs := r.gs[:0]
	n, err := s.store.Restore(ctx, p, func(_, value []byte) error {
		var err error
		from := len(gs)
		if gs, err = r.t.AddSnapshot(gs, value); err != nil {
			return err
		}
		for _, g := range gs[from:] {
			s.setPart(g, p)
			if !s.handoff {
				r.t.Mark(g) // see scale: not with a Kafka sink, which commits with the state
			}
		}
		return nil
	})
	r.gs = gs
	if err != nil {
		return fmt.Errorf("restoring the state of partition %s/%d: %w", s.topic, p, err)
	}
	fmt.Fprintf(r.notes(), "sreduce: note: took over partition %s/%d: restored %d keys in %v\n", s.topic, p, n, time.Since(start).Round(time.Millisecond))
	return nil
}

func (r *Engine) notes() io.Writer {
	if r.o.Notes == nil {
		return os.Stderr
	}
	return r.o.Notes
}

// letGo removes the groups of partition p, which another copy owns now.
func (r *Engine) letGo(p int32) {
	s := r.scale
	for g, q := range s.part {
		if q == p {
			r.t.Remove(int32(g))
			s.part[g] = -1
		}
	}
}

// setPart records that group g belongs to partition p.
func (s *scale) setPart(g, p int32) {
	for int(g) >= len(s.part) {
		s.part = append(s.part, -1)
	}
	s.part[g] = p
}

// scaleAdd adds rec to its group, noting the group's source partition
// (and refusing a key already seen from another partition).
func (r *Engine) scaleAdd(b stage.Batch, rec []byte) error {
	s := r.scale
	raw, ok, err := record.Get(rec, s.field)
	p, isInt := record.Int(raw)
	if err != nil || !ok || !isInt {
		return stage.Hint(fmt.Errorf("%v, record %d: no integer field %q, the record's source partition", b, r.nrec, s.field),
			"keep the field sbatch --meta-field adds through any smap before sreduce")
	}
	if !s.owned[int32(p)] {
		return fmt.Errorf("%v, record %d: of partition %d, which this copy does not own in the batch (offsets/%d)", b, r.nrec, p, b.ID)
	}
	n := r.t.NumTouched()
	if err := r.t.Add(rec); err != nil {
		return err
	}
	if r.t.NumTouched() > n {
		g := r.t.TouchedAt(n)
		if int(g) < len(s.part) && s.part[g] >= 0 && s.part[g] != int32(p) {
			return stage.Hint(fmt.Errorf("%v, record %d: its key came from partition %d before, now from %d", b, r.nrec, s.part[g], p),
				"the stage upstream must partition the topic by sreduce's key (ssink --kafka --key FIELD)")
		}
		s.setPart(g, int32(p))
	}
	return nil
}

// scaleCommit writes the batch's changes to the changelog and the source's
// offsets to the group, in one transaction, before the batch leaves.
func (r *Engine) scaleCommit(b stage.Batch) error {
	s := r.scale
	r.scaleChanges()
	if s.handoff {
		return r.handOff(b) // the sink commits the offsets, from offsets/N
	}
	if err := r.scaleEnd(b); err != nil {
		return err
	}
	if len(s.changes) == 0 && len(s.ends) == 0 {
		return nil
	}
	o := changelog.Offsets{Group: s.group.ID, Generation: s.group.Generation, Member: s.group.Member}
	if len(s.ends) > 0 {
		o.Ends = map[string]map[int32]int64{s.topic: s.ends}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout)
	defer cancel()
	if err := s.store.Commit(ctx, s.changes, o); err != nil {
		return fmt.Errorf("%v: the changelog and the group's offsets: %w", b, err)
	}
	return nil
}

// scaleChanges makes the batch's changelog records: a snapshot of each
// group it touched, and the tombstones of those the TTL removed.
func (r *Engine) scaleChanges() {
	s := r.scale
	s.changes, s.vals = s.changes[:0], s.vals[:0]
	touched := r.t.Touched()
	for _, g := range touched {
		from := len(s.vals)
		s.vals = r.t.AppendGroupSnapshot(s.vals, g)
		// For now only Value's length counts: s.vals may move as it
		// grows, so the slices are cut once it is whole.
		s.changes = append(s.changes, changelog.Change{Partition: s.part[g], Key: r.t.Key(g), Value: s.vals[from:len(s.vals):len(s.vals)]})
	}
	from := 0
	for i := range touched {
		end := from + len(s.changes[i].Value)
		s.changes[i].Value = s.vals[from:end:end]
		from = end
	}
	s.changes = append(s.changes, s.tombs...)
	s.tombs = s.tombs[:0]
}

// handOff writes the batch's changelog records to DIR/changes/N for the
// sink's transaction (see scale.handoff), before the batch leaves.
func (r *Engine) handOff(b stage.Batch) error {
	s := r.scale
	if len(s.changes) == 0 {
		return nil
	}
	data, err := json.Marshal(checkpoint.Changes{Topic: s.store.Topic(), Changes: s.changes})
	if err == nil {
		dir := filepath.Join(r.o.Checkpoint, checkpoint.ChangesDir)
		if err = os.MkdirAll(dir, 0o755); err == nil {
			err = checkpoint.WriteFile(filepath.Join(dir, strconv.FormatUint(b.ID, 10)), data, 0o644)
		}
	}
	if err != nil {
		return fmt.Errorf("--checkpoint: %v: the changelog records for the sink: %w", b, err)
	}
	return nil
}

// scaleExpire notes the groups the TTL is about to remove (idle since
// cutoff), for their tombstones.
func (r *Engine) scaleExpire(cutoff int64) {
	s := r.scale
	for _, g := range r.t.Idle(cutoff, nil) {
		s.tombs = append(s.tombs, changelog.Change{Partition: s.part[g], Key: append([]byte(nil), r.t.Key(g)...)})
		s.part[g] = -1
	}
}

// close lets the changelog go.
func (s *scale) close() error {
	if s == nil {
		return nil
	}
	return s.store.Close()
}

// scaleBlock adds the records one by one, each to its partition's group.
func (r *Engine) scaleBlock(b stage.Batch, recs framing.Records) error {
	for rec, ok := recs.Next(); ok; rec, ok = recs.Next() {
		r.nrec++
		if !r.check.Done() {
			r.check.Observe(rec)
		}
		if err := r.scaleAdd(b, rec); err != nil {
			var re *agg.RecordError
			if !errors.As(err, &re) {
				return err
			}
			if err := r.bad(b, rec, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close lets the changelog go, if any.
func (r *Engine) Close() error { return r.scale.close() }

package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kafka: kafka://HOST:PORT[,HOST:PORT...]/TOPIC[,TOPIC...] (Spark's Kafka
// source). Each partition is a stream of the tracker, named TOPIC/PARTITION,
// its offset the next record's. It is always read through its tracker
// (brokertrack.go): with a checkpoint, the offsets of each batch are in
// DIR/offsets and a restart replays them; the group's offsets in Kafka
// follow the sink's commits. Without a checkpoint, with --group, the copies
// of sbatch in one group share the partitions (Kafka's group protocol), and
// a batch's offsets are committed to the group once it has left: at least
// once, since the records of a batch in hand when a partition moves are
// read again by its new owner.
func init() {
	Register(&Kind{
		Scheme:  "kafka",
		Tracked: true,
		Broker:  true,
		NoFollow: func(string) error {
			return stage.UsageError("--follow reads a file as it grows: a Kafka topic is read on anyway")
		},
		Track: openKafka,
	})
}

// kafkaMeta are the metadata fields of a Kafka record, Spark's names.
var kafkaMeta = Meta{Key: "key", Topic: "topic", Partition: "partition", Offset: "offset", Time: "timestamp", Headers: "headers"}

// kafkaURL is a parsed kafka:// URL.
type kafkaURL struct {
	seeds  []string
	topics []string
}

func parseKafkaURL(spec string) (kafkaURL, error) {
	rest, _ := strings.CutPrefix(spec, "kafka://")
	hosts, topics, ok := strings.Cut(rest, "/")
	var u kafkaURL
	if ok {
		for _, t := range strings.Split(topics, ",") {
			if t != "" {
				u.topics = append(u.topics, t)
			}
		}
	}
	for _, h := range strings.Split(hosts, ",") {
		if h != "" {
			u.seeds = append(u.seeds, h)
		}
	}
	if len(u.seeds) == 0 || len(u.topics) == 0 {
		return u, stage.Hint(stage.UsageError("%s: want kafka://HOST:PORT[,HOST:PORT...]/TOPIC[,TOPIC...]", spec),
			"for example: sbatch -i 1s kafka://127.0.0.1:9092/clicks --group wc")
	}
	return u, nil
}

// kafka is the Broker of a kafka:// input.
type kafka struct {
	spec    string
	u       kafkaURL
	o       *Options
	streams *Streams
	notes   io.Writer
	admin   *kadm.Client
	base    *kgo.Client // for the admin requests and the group's commits
	member  *kgo.Client // the live feed's client when it is a group member
	ctx     context.Context
	cancel  context.CancelFunc
	health  *kafkaHealth
	widths  []int32 // the partition count of each topic
	scale   *scaleOut
}

// kafkaTimeout bounds the requests of the start-up (metadata, offsets) when
// --server-timeout is not given.
const kafkaTimeout = 30 * time.Second

func openKafka(op Opening) (Tracker, error) {
	o := *op.Options
	spec := o.Inputs[0]
	u, err := parseKafkaURL(spec)
	if err != nil {
		return nil, err
	}
	if err := checkFeedFormat(o.Format, spec); err != nil {
		return nil, err
	}
	k := &kafka{spec: spec, u: u, o: &o, streams: &Streams{}, notes: op.Env.Stderr, health: newKafkaHealth(spec, op.Env.Stderr)}
	if o.ScaleOut {
		k.scale = newScaleOut(k)
	}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	if k.base, err = kgo.NewClient(k.clientOpts()...); err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	k.admin = kadm.NewClient(k.base)
	if err := k.checkTopics(); err != nil {
		k.Close()
		return nil, err
	}
	if k.scale != nil {
		if err := k.scale.announce(); err != nil {
			k.Close()
			return nil, err
		}
	}
	t, err := openBrokerTracker(o, spec, k, k.streams, op.Env.Stderr)
	if err != nil {
		k.Close()
		return nil, err
	}
	return t, nil
}

func (k *kafka) clientOpts(more ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(k.u.seeds...),
		kgo.ClientID("dstream-sbatch"),
		kgo.RetryTimeout(k.serverTimeout()),
		kgo.FetchMaxWait(500 * time.Millisecond),
		// Records that the broker no longer has are an error, never a
		// silent jump (Spark's failOnDataLoss).
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// The records of committed transactions only: those of a
		// transactional producer (ssink --kafka --checkpoint) that aborted
		// are not the pipeline's.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The transaction markers too, each at an offset of its own, so
		// that a feed reading up to an end (--once, a replay) sees the
		// offset before the end even when a marker holds it; Fetch drops
		// them.
		kgo.KeepControlRecords(),
		// Bounds what is fetched ahead of the batcher: a stopped sink
		// stops the fetching.
		kgo.MaxConcurrentFetches(2),
		kgo.FetchMaxBytes(16 << 20),
		kgo.WithHooks(k.health),
	}, more...)
}

// serverTimeout is how long a broker may stay unreachable.
func (k *kafka) serverTimeout() time.Duration {
	if k.o.ServerTimeout <= 0 {
		return kafkaTimeout
	}
	return k.o.ServerTimeout
}

// timeout is the context of a start-up request.
func (k *kafka) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(k.ctx, k.serverTimeout())
}

// checkTopics makes sure every topic exists, naming a missing one and the
// servers that are unreachable.
func (k *kafka) checkTopics() error {
	ctx, cancel := k.timeout()
	defer cancel()
	td, err := k.admin.ListTopics(ctx, k.u.topics...)
	if err != nil {
		return k.unreachable(err)
	}
	for _, t := range k.u.topics {
		d, ok := td[t]
		k.widths = append(k.widths, int32(len(d.Partitions)))
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return stage.Hint(fmt.Errorf("%s: topic %q does not exist", k.spec, t),
				"create it first (kafka-topics.sh --create --topic %s), or check the name", t)
		}
		if d.Err != nil {
			return fmt.Errorf("%s: topic %q: %w", k.spec, t, d.Err)
		}
	}
	return nil
}

func (k *kafka) unreachable(err error) error {
	return stage.Hint(fmt.Errorf("%s: no answer from the brokers %s: %w", k.spec, strings.Join(k.u.seeds, ","), err),
		"check that Kafka is up at that address (--server-timeout sets how long sbatch waits)")
}

func (k *kafka) Meta() *Meta { return &kafkaMeta }

func partitionName(topic string, p int32) string { return topic + "/" + strconv.Itoa(int(p)) }

// offsets lists the start or end offset of every partition of the topics.
func (k *kafka) offsets(end bool) (kadm.ListedOffsets, error) {
	ctx, cancel := k.timeout()
	defer cancel()
	var lo kadm.ListedOffsets
	var err error
	if end {
		// The last stable offsets: what read_committed can read now.
		lo, err = k.admin.ListCommittedOffsets(ctx, k.u.topics...)
	} else {
		lo, err = k.admin.ListStartOffsets(ctx, k.u.topics...)
	}
	if err != nil {
		return nil, k.unreachable(err)
	}
	if err := lo.Error(); err != nil {
		return nil, fmt.Errorf("%s: listing offsets: %w", k.spec, err)
	}
	return lo, nil
}

// Live starts the feed of new records. With a checkpoint or without a
// group, it reads every partition of the topics itself, from the
// checkpoint's offset of each, else the group's, else --start; without a
// checkpoint and with a group it joins the group, which assigns it
// partitions.
func (k *kafka) Live(from map[string]int64) (Feed, error) {
	var ends kadm.ListedOffsets
	if k.o.Once {
		var err error
		if ends, err = k.offsets(true); err != nil {
			return nil, err
		}
	}
	if k.scale != nil || k.o.Checkpoint == "" && k.o.Group != "" {
		return k.groupFeed(ends)
	}
	starts, err := k.startOffsets(from)
	if err != nil {
		return nil, err
	}
	parts := map[string]map[int32]kgo.Offset{}
	f := &kafkaFeed{k: k, index: map[tp]int{}, left: map[tp]int64{}}
	for t, ps := range starts {
		parts[t] = map[int32]kgo.Offset{}
		for p, off := range ps {
			parts[t][p] = kgo.NewOffset().At(off)
			f.index[tp{t, p}] = k.streams.Index(partitionName(t, p), off)
			if ends != nil {
				if e, ok := ends.Lookup(t, p); ok && e.Offset > off {
					f.left[tp{t, p}] = e.Offset
				}
			}
		}
	}
	f.once = ends != nil
	if f.once && len(f.left) == 0 {
		return f, nil // nothing to read: the feed ends at once
	}
	if f.cl, err = kgo.NewClient(k.clientOpts(kgo.ConsumePartitions(parts))...); err != nil {
		return nil, fmt.Errorf("%s: %w", k.spec, err)
	}
	return f, nil
}

// startOffsets is where each partition of the topics begins: from, the
// group's committed offset, or --start.
func (k *kafka) startOffsets(from map[string]int64) (map[string]map[int32]int64, error) {
	first, err := k.offsets(false)
	if err != nil {
		return nil, err
	}
	last := first
	if k.o.Start == "latest" {
		if last, err = k.offsets(true); err != nil {
			return nil, err
		}
	}
	var committed kadm.OffsetResponses
	if k.o.Group != "" {
		ctx, cancel := k.timeout()
		committed, err = k.admin.FetchOffsets(ctx, k.o.Group)
		cancel()
		if errors.Is(err, kerr.GroupIDNotFound) {
			err = nil // a new group: no offsets yet
		}
		if err != nil {
			return nil, fmt.Errorf("%s: fetching the offsets of group %q: %w", k.spec, k.o.Group, err)
		}
	}
	starts := map[string]map[int32]int64{}
	var lost []string
	for _, t := range k.u.topics {
		starts[t] = map[int32]int64{}
		first.Each(func(lo kadm.ListedOffset) {
			if lo.Topic != t {
				return
			}
			name := partitionName(t, lo.Partition)
			off, ok := from[name]
			if !ok && committed != nil {
				if c, found := committed.Lookup(t, lo.Partition); found && c.Err == nil && c.At >= 0 {
					off, ok = c.At, true
				}
			}
			if !ok {
				l, _ := last.Lookup(t, lo.Partition)
				off = l.Offset
			}
			if off < lo.Offset {
				lost = append(lost, fmt.Sprintf("%s offsets %d to %d", name, off, lo.Offset-1))
			}
			starts[t][lo.Partition] = off
		})
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		return nil, stage.Hint(fmt.Errorf("%s: records to read are gone from Kafka (retention or deletion): %s", k.spec, strings.Join(lost, ", ")),
			"those records cannot be read: to go on from the oldest records Kafka has, start over with a new --checkpoint directory (or reset the group's offsets)")
	}
	return starts, nil
}

// Replay reads the records of a batch again.
func (k *kafka) Replay(batch uint64, ranges []checkpoint.Range) Feed {
	f := &kafkaFeed{k: k, index: map[tp]int{}, left: map[tp]int64{}, once: true, replay: batch + 1}
	parts := map[string]map[int32]kgo.Offset{}
	for _, r := range ranges {
		t, p, ok := checkpoint.SplitPartition(r.Path)
		if !ok {
			f.err = fmt.Errorf("batch %d: %q is not a partition (TOPIC/PARTITION)", batch, r.Path)
			return f
		}
		if parts[t] == nil {
			parts[t] = map[int32]kgo.Offset{}
		}
		parts[t][p] = kgo.NewOffset().At(r.Start)
		f.index[tp{t, p}] = k.streams.Index(r.Path, r.Start)
		f.left[tp{t, p}] = r.End
		f.starts = append(f.starts, r)
	}
	if len(f.left) > 0 {
		f.cl, f.err = kgo.NewClient(k.clientOpts(kgo.ConsumePartitions(parts))...)
	}
	return f
}

// Commit commits the offsets ends to the group, if there is one. Scaled
// out, see scaleOut.commit.
func (k *kafka) Commit(ends map[string]int64) error {
	if k.o.Group == "" {
		return nil
	}
	if k.scale != nil {
		if ends = k.scale.commit(ends); len(ends) == 0 {
			return nil
		}
	}
	offs := map[string]map[int32]kgo.EpochOffset{}
	for name, off := range ends {
		t, p, ok := checkpoint.SplitPartition(name)
		if !ok {
			continue
		}
		if offs[t] == nil {
			offs[t] = map[int32]kgo.EpochOffset{}
		}
		offs[t][p] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	if k.member != nil {
		var cerr error
		k.member.CommitOffsetsSync(k.ctx, offs, func(_ *kgo.Client, _ *kmsgOffsetCommitRequest, resp *kmsgOffsetCommitResponse, err error) {
			cerr = err
			if err == nil {
				cerr = commitErr(resp)
			}
		})
		return cerr
	}
	ctx, cancel := k.timeout()
	defer cancel()
	var ko kadm.Offsets
	for t, ps := range offs {
		for p, eo := range ps {
			ko.Add(kadm.Offset{Topic: t, Partition: p, At: eo.Offset, LeaderEpoch: -1})
		}
	}
	resp, err := k.admin.CommitOffsets(ctx, k.o.Group, ko)
	if err == nil {
		err = resp.Error()
	}
	return err
}

func (k *kafka) Close() error {
	k.cancel()
	if k.member != nil {
		if k.scale != nil {
			// Leaving the group revokes the partitions, which waits for
			// the rebalances the feed blocks: every batch has ended, and
			// a poll still in flight must not block it again.
			done := make(chan struct{})
			defer close(done)
			go func() {
				for {
					k.member.AllowRebalance()
					select {
					case <-done:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}()
		}
		k.member.Close()
	}
	k.base.Close()
	return nil
}

// tp is a topic's partition.
type tp struct {
	topic string
	p     int32
}

// kafkaFeed is a client reading partitions: the live records, or those of
// a batch to replay (replay = its id + 1).
type kafkaFeed struct {
	k      *kafka
	cl     *kgo.Client
	err    error
	index  map[tp]int   // the stream number of each partition
	once   bool         // ends when left is empty
	left   map[tp]int64 // with once: the partitions not read up to this end
	replay uint64
	starts []checkpoint.Range
	idle   int // polls in a row that brought nothing, with once
	group  bool
	owned  *owned       // the group's partitions, when group
	hdrs   []Header     // the headers of the messages of the last Fetch
	held   kgo.Fetches  // scaled out: records polled, held back (see scaleOut.assigned)
	ends   map[tp]int64 // scaled out: the fetch's offset after its last record handed over, by partition
}

// pollWait is how long one poll waits for records before it looks at a
// stop; with once, a partition whose end is not reached after idleEnd
// empty polls in a row ends where it is (another copy in the group reads
// it).
const (
	pollWait = 200 * time.Millisecond
	idleEnd  = 5
)

func (f *kafkaFeed) Fetch(stop <-chan struct{}, dst []Message) ([]Message, error) {
	if f.err != nil {
		return dst, f.err
	}
	if f.once && len(f.left) == 0 {
		return dst, io.EOF
	}
	select {
	case <-stop:
		if f.replay == 0 {
			return dst, io.EOF
		}
	default:
	}
	if err := f.k.health.failed(f.k.serverTimeout()); err != nil {
		return dst, err
	}
	s := f.k.scale
	if s != nil {
		if wait, err := s.gate(f.cl, f.held != nil); wait || err != nil {
			sleepStop(stop, pollWait/4)
			return dst, err
		}
	}
	var fs kgo.Fetches
	if f.held != nil {
		fs, f.held = f.held, nil
	} else {
		var assigns uint64
		if s != nil {
			assigns = s.assigns.Load()
		}
		ctx, cancel := context.WithTimeout(f.k.ctx, pollWait)
		fs = f.cl.PollRecords(ctx, 4096)
		cancel()
		if s != nil && s.assigns.Load() != assigns {
			// The assignment changed in the poll: its records wait for
			// the next cut (scaleOut.assigned).
			f.held = fs
			return dst, nil
		}
	}
	var ferr error
	fs.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		if ferr == nil {
			ferr = f.fetchErr(t, p, err)
		}
	})
	if ferr != nil {
		return dst, ferr
	}
	n := len(dst)
	f.hdrs = f.hdrs[:0]
	if s != nil && f.ends == nil {
		f.ends = map[tp]int64{}
	}
	fs.EachRecord(func(r *kgo.Record) {
		key := tp{r.Topic, r.Partition}
		if f.once {
			end, ok := f.left[key]
			if !ok || r.Offset >= end {
				return // past the end: not this feed's
			}
			if r.Offset >= end-1 {
				delete(f.left, key)
			}
		}
		if r.Attrs.IsControl() {
			return // a transaction's marker, no record
		}
		if f.ends != nil {
			f.ends[key] = r.Offset + 1
		}
		i, ok := f.index[key]
		if !ok {
			i = f.k.streams.Index(partitionName(r.Topic, r.Partition), r.Offset)
			f.index[key] = i
		}
		m := Message{Key: r.Key, Value: r.Value, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp, Pos: Position{i, r.Offset + 1}}
		if len(r.Headers) > 0 {
			// One buffer for the headers of the fetch's messages, not a
			// slice each (a message is valid until the next Fetch).
			from := len(f.hdrs)
			for _, h := range r.Headers {
				f.hdrs = append(f.hdrs, Header{h.Key, h.Value})
			}
			m.Headers = f.hdrs[from:len(f.hdrs):len(f.hdrs)]
		}
		dst = append(dst, m)
	})
	if len(f.ends) > 0 {
		s.handed(f.ends)
		clear(f.ends)
	}
	if f.once && len(dst) == n {
		if f.idle++; f.idle >= idleEnd && f.replay == 0 {
			clear(f.left)
		}
	} else {
		f.idle = 0
	}
	if f.replay > 0 && f.idle >= idleEnd*5 {
		return dst, f.missing()
	}
	return dst, nil
}

// missing is the error of a replay that waited in vain for the rest of its
// records.
func (f *kafkaFeed) missing() error {
	var names []string
	for key, end := range f.left {
		names = append(names, fmt.Sprintf("%s up to offset %d", partitionName(key.topic, key.p), end-1))
	}
	slices.Sort(names)
	return stage.Hint(fmt.Errorf("batch %d: Kafka did not give the records of %s to replay the batch", f.replay-1, strings.Join(names, ", ")),
		"they may have been deleted (retention, compaction): the batch cannot be replayed as it was")
}

func (f *kafkaFeed) fetchErr(topic string, p int32, err error) error {
	name := partitionName(topic, p)
	if errors.Is(err, kerr.OffsetOutOfRange) {
		what := "the records to read"
		if f.replay > 0 {
			what = fmt.Sprintf("the records of batch %d to replay", f.replay-1)
		}
		return stage.Hint(fmt.Errorf("%s: %s are gone from Kafka (retention or deletion): %w", name, what, err),
			"they cannot be read: start over with a new --checkpoint directory (or reset the group's offsets)")
	}
	return fmt.Errorf("%s: %w", name, err)
}

func (f *kafkaFeed) Close() error {
	if f.cl != nil && !f.group {
		f.cl.Close()
	}
	return nil
}

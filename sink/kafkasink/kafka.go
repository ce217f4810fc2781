// Package kafkasink is ssink's Kafka destination (--kafka URL): each record
// becomes a message of a topic, its value the record in a format of package
// codec, its key the text of a field (--key), placed on a partition by the
// key's murmur2 hash as the Java client places it, so that Kafka Streams,
// Spark and every other Java-compatible consumer agree on where a key lives.
//
// Every batch is flushed at its end: End returns once every message of the
// batch is acknowledged by all in-sync replicas (acks=all, through franz-go's
// idempotent producer), and a message that fails fails the batch, naming it.
// With a checkpoint each batch is one Kafka transaction, which also commits
// the batch's id as an offset of a consumer group of the sink's own; a
// restarted sink reads it back and skips the batches the topic has already,
// so that read_committed consumers see each record once (see producer).
package kafkasink

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/internal/kafkatxn"
	"github.com/dstream/dstream/record"
	"github.com/dstream/dstream/sink"
	"github.com/dstream/dstream/stage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kafka sends each record as a message to a Kafka topic (--kafka URL).
var Kafka = sink.Destination{
	Flag:          "kafka",
	Usage:         "send each record as a message to a Kafka topic, `URL` kafka://HOST:PORT[,HOST:PORT...]/TOPIC (the topic must exist), in --format (default json), keyed by --key; every batch acknowledged by all replicas at its end, and one transaction with --checkpoint",
	Category:      "Brokers",
	Needs:         "a URL: kafka://HOST:PORT[,HOST:PORT...]/TOPIC",
	Encodes:       true,
	DefaultFormat: "json",
	Takes:         []string{"key", "connect-timeout", "txn-timeout"},
	Open:          open,
}

// Headers every message carries: the id and the time (unix ms) of its
// batch, as decimal text, by which a consumer can tell the batches apart
// (and drop a batch it saw twice, without a checkpoint).
const (
	HeaderBatchID   = "dstream-batch-id"
	HeaderBatchTime = "dstream-batch-time"
)

// messageFormats are the formats a message's value may have, each with
// whether it ends a record with a newline, which the message leaves out.
// Why not csv, tsv or console: their header row or table spans records,
// and a message holds one.
var messageFormats = map[string]bool{"json": true, "lines": true, "msgpack": false}

// startTimeout bounds the start-up: --connect-timeout, or a second for
// --connect-timeout 0 (a try, not a wait).
func (p *producer) startTimeout() time.Duration {
	if p.connect <= 0 {
		return time.Second
	}
	return p.connect
}

// timeout bounds each wait on the brokers: a batch's messages without any
// acknowledgement, a transaction's end; at the start-up (metadata, the
// producer id, the committed batch) --connect-timeout does. The brokers are retried with
// backoff meanwhile. A variable for the tests.
var timeout = 30 * time.Second

// DefaultTxnTimeout is the transaction timeout asked for without
// --txn-timeout: a batch with --checkpoint must be written within it, or
// the broker aborts it; and a run that dies in a transaction holds back
// the read_committed consumers of its partitions for up to that long (or
// until the next run starts). The Java producer's transaction.timeout.ms.
const DefaultTxnTimeout = time.Minute

// chunkSize is the size of the chunks that hold the values and keys of a
// batch's messages.
const chunkSize = 64 << 10

// producer, the sink.Writer of --kafka, sends each record of a batch as a
// message and waits at the batch end until all are acknowledged.
//
// With a checkpoint it is transactional: its transactional id is
// "dstream-sink-CKPT-TOPIC" (CKPT the checkpoint's id), which fences off an
// earlier run's producer and ends its open transaction; each batch is a
// transaction that also commits, through the transaction, the offset
// BATCHID of partition 0 of the topic in the consumer group
// "dstream-sink-CKPT", with the batch's id and time as the offset's
// metadata. So the batch's messages and the record that they are written
// commit together, and a restart reads that record (a stable offset
// fetch) and skips the batches up to it, as the SQL sink does with its
// dstream_commits table. Empty batches write nothing and record nothing:
// replayed, they write nothing again.
type producer struct {
	connect time.Duration // --connect-timeout (0: try once, for a second)
	txnTime time.Duration // --txn-timeout
	url     string        // --kafka, as given, for messages
	seeds   []string
	topic   string
	key     string // --key: the field whose text is the message key; "" for none
	format  *codec.Format
	trimNL  bool // the format ends a record with a newline

	cl    *kgo.Client
	adm   *kadm.Client
	txnID string // with a checkpoint: the transactional id, and
	group string // the group whose offset records the last batch
	dir   string // the checkpoint directory
	parts *partitioner

	// A scaled-out source's group offsets (group.go): whether the sink
	// commits them (claimed), once known, and those of the batch in hand.
	claimKnown, claimed bool
	grp                 *groupOffsets

	// The last batch the topic has (with a checkpoint).
	last     uint64
	lastTime int64
	haveLast bool

	// Encoding: the codec's encoder writes each record to bw, which writes
	// to vals.
	enc  codec.Encoder
	bw   *bufio.Writer
	vals chunks
	recs records
	fn   func(*kgo.Record, error) // promise, made once

	// The batch in hand.
	inBatch  bool
	skip     bool // the topic has it: nothing is sent
	inTxn    bool
	ctx      context.Context // the messages' context, cancelled by watch
	cancel   context.CancelCauseFunc
	watching sync.WaitGroup
	hdrs     []kgo.RecordHeader
	sent     atomic.Uint64 // messages handed to the client
	acked    atomic.Uint64 // messages whose outcome is known
	mu       sync.Mutex
	failed   uint64 // messages that failed, and the first error
	err      error
	written  uint64 // messages of the last batch ended
}

// open checks the options of --kafka; it connects to nothing (Start does).
func open(o *sink.Options, f *codec.Format, _ *bufio.Writer) (sink.Writer, error) {
	trim, ok := messageFormats[f.Name]
	if !ok {
		return nil, stage.Hint(stage.UsageError("--format %s does not go with --kafka: a message holds one record", f.Name),
			"give --format json (the default), lines or msgpack")
	}
	seeds, topic, err := parseURL(o.Target)
	if err != nil {
		return nil, stage.Hint(stage.UsageError("--kafka %q: %v", o.Target, err), "give --kafka kafka://HOST:PORT[,HOST:PORT...]/TOPIC")
	}
	p := &producer{url: o.Target, seeds: seeds, topic: topic, format: f, trimNL: trim, connect: o.ConnectTimeout, txnTime: o.TxnTimeout}
	if p.txnTime == 0 {
		p.txnTime = DefaultTxnTimeout
	}
	if len(o.Keys) > 0 {
		keys := stage.ParseList(o.Keys...)
		switch len(keys) {
		case 0:
			return nil, stage.UsageError("--key needs a field name")
		case 1:
			p.key = keys[0]
		default:
			return nil, stage.Hint(stage.UsageError("--key %s: --kafka takes one field, whose value is the message key", strings.Join(keys, ",")),
				"make one field of them first: smap --set 'key=string(a) + \"/\" + string(b)'")
		}
	}
	p.bw = bufio.NewWriterSize(&p.vals, chunkSize)
	p.enc = f.New(p.bw, o.Codec)
	p.fn = p.promise
	return p, nil
}

// parseURL splits kafka://HOST:PORT[,HOST:PORT...]/TOPIC. A HOST without
// a port is at Kafka's 9092.
func parseURL(u string) (seeds []string, topic string, err error) {
	rest, ok := strings.CutPrefix(u, "kafka://")
	if !ok {
		return nil, "", errors.New("want a kafka:// URL")
	}
	hosts, topic, ok := strings.Cut(rest, "/")
	if !ok || topic == "" {
		return nil, "", errors.New("no topic: want kafka://HOST:PORT/TOPIC")
	}
	if err := checkTopic(topic); err != nil {
		return nil, "", err
	}
	for _, h := range strings.Split(hosts, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			if h == "" || strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
				return nil, "", fmt.Errorf("bad broker address %q: want HOST:PORT", h)
			}
			h = net.JoinHostPort(strings.Trim(h, "[]"), "9092")
		}
		seeds = append(seeds, h)
	}
	return seeds, topic, nil
}

// checkTopic checks a topic name as Kafka does: 1 to 249 of the
// characters a-z, A-Z, 0-9, '.', '_' and '-', and not "." or "..".
func checkTopic(t string) error {
	if len(t) > 249 {
		return fmt.Errorf("topic %q: longer than Kafka's 249 characters", t)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("topic %q: not a name Kafka allows", t)
	}
	for _, c := range []byte(t) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic %q: Kafka allows only letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}

// Start connects to the brokers and checks that the topic exists. With
// ckpt, the id of the checkpoint directory, it sets up the transactional
// producer (fencing off an earlier run's) and reads the last batch the
// topic has.
func (p *producer) Start(ckpt, dir string) error {
	p.parts = &partitioner{Partitioner: kgo.UniformBytesPartitioner(64<<10, true, true, nil)}
	opts := []kgo.Opt{
		kgo.SeedBrokers(p.seeds...),
		kgo.DefaultProduceTopic(p.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotent, as kgo is by default
		// Keyed messages by murmur2 of the key, as Java's producer:
		// toPositive(murmur2(key)) % partitions, over all partitions.
		// Messages without a key stick to a partition for 64 KiB, as
		// Java's since Kafka 3.3 (KIP-794). (kgo's default; said here.)
		kgo.RecordPartitioner(p.parts),
		kgo.RecordDeliveryTimeout(timeout),
		kgo.RetryTimeout(timeout),
	}
	if ckpt != "" {
		p.txnID = "dstream-sink-" + ckpt + "-" + p.topic
		p.group = "dstream-sink-" + ckpt
		p.dir = dir
		opts = append(opts, kgo.TransactionalID(p.txnID), kgo.TransactionTimeout(p.txnTime))
	}
	var err error
	if p.cl, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("--kafka %s: %w", p.url, err)
	}
	p.adm = kadm.NewClient(p.cl)
	ctx, cancel := context.WithTimeout(context.Background(), p.startTimeout())
	defer cancel()
	if err := p.checkTopic(ctx); err != nil {
		p.Close()
		return err
	}
	if ckpt == "" {
		return nil
	}
	// The producer id first: it ends the transaction an earlier run left
	// open, so that the offset read next is the last one committed.
	if _, _, err := p.cl.ProducerID(ctx); err != nil {
		p.Close()
		return p.brokerError("starting the transactional producer "+p.txnID, err)
	}
	if err := p.readLast(ctx, dir); err != nil {
		p.Close()
		return err
	}
	return nil
}

// checkTopic looks the topic up.
func (p *producer) checkTopic(ctx context.Context) error {
	topics, err := p.adm.ListTopics(ctx, p.topic)
	if err != nil {
		return p.brokerError("reading the metadata", err)
	}
	t, ok := topics[p.topic]
	switch {
	case !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition):
		return stage.Hint(fmt.Errorf("--kafka %s: topic %s does not exist", p.url, p.topic),
			"create it first, e.g. kafka-topics.sh --bootstrap-server %s --create --topic %s --partitions N: ssink does not create topics", p.seeds[0], p.topic)
	case t.Err != nil:
		return fmt.Errorf("--kafka %s: topic %s: %w", p.url, p.topic, t.Err)
	}
	return nil
}

// brokerError is the error of a request at start-up that failed: the
// brokers named, and a hint when none could be reached in time.
func (p *producer) brokerError(what string, err error) error {
	seeds := strings.Join(p.seeds, ",")
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) {
		return stage.Hint(fmt.Errorf("--kafka %s: %s: no broker of %s could be reached (retried for up to %v): %w", p.url, what, seeds, p.startTimeout(), err),
			"check that Kafka is up at %s and that the URL is right", seeds)
	}
	return fmt.Errorf("--kafka %s: %s: %w", p.url, what, err)
}

// readLast reads the last batch the topic has: the offset of the sink's
// group, committed in the batch's transaction.
func (p *producer) readLast(ctx context.Context, dir string) error {
	offs, err := p.adm.FetchOffsets(kadm.RequireStable(ctx), p.group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return p.brokerError("reading the batches written, the offsets of group "+p.group, err)
	}
	o, ok := offs.Lookup(p.topic, 0)
	if !ok || o.At < 0 {
		return nil
	}
	if o.Err != nil {
		return p.brokerError("reading the batches written, the offsets of group "+p.group, o.Err)
	}
	var c checkpoint.Commit
	if err := json.Unmarshal([]byte(o.Metadata), &c); err != nil || c.BatchID != uint64(o.At) {
		return stage.Hint(fmt.Errorf("--kafka %s: group %s has an offset of topic %s that ssink did not commit (offset %d, metadata %q)", p.url, p.group, p.topic, o.At, o.Metadata),
			"the group records the batches that ssink --checkpoint %s wrote: give ssink a new --checkpoint directory, or delete the group", dir)
	}
	p.last, p.lastTime, p.haveLast = c.BatchID, c.BatchTime, true
	return nil
}

func (p *producer) Begin(b stage.Batch) error {
	p.skip, p.written = false, 0
	if p.haveLast && b.ID <= p.last {
		// The topic has the batch, and the checkpoint's commit of it is
		// lost (a crash in between): the source replays it. The batch of
		// the last id must have its time; anything else is another
		// source's batch.
		if b.ID == p.last && b.Time != p.lastTime {
			return stage.Hint(fmt.Errorf("--kafka %s: batch %d (time %d) arrived, but topic %s holds the batches up to %d (time %d), as group %s records",
				p.url, b.ID, b.Time, p.topic, p.last, p.lastTime, p.group),
				"give ssink the --checkpoint directory that wrote the topic; or a new one")
		}
		p.skip = true
		return nil
	}
	if p.txnID != "" {
		var err error
		if p.grp, err = p.batchGroup(b.ID); err != nil {
			return fmt.Errorf("--kafka %s: %v: %w", p.url, b, err)
		}
		if err := p.cl.BeginTransaction(); err != nil {
			return p.batchError(b, "beginning the transaction of", err)
		}
		p.inTxn = true
	}
	p.inBatch = true
	p.sent.Store(0)
	p.acked.Store(0)
	p.failed, p.err = 0, nil
	p.ctx, p.cancel = context.WithCancelCause(context.Background())
	p.watching.Add(1)
	go p.watch(p.ctx, p.cancel)
	p.hdrs = []kgo.RecordHeader{
		{Key: HeaderBatchID, Value: strconv.AppendUint(nil, b.ID, 10)},
		{Key: HeaderBatchTime, Value: strconv.AppendInt(nil, b.Time, 10)},
	}
	return p.enc.Begin(b)
}

func (p *producer) Record(rec []byte) error {
	if p.skip {
		return nil
	}
	var key []byte
	if p.key != "" {
		v, ok, err := record.Get(rec, p.key)
		if err != nil {
			return err
		}
		if ok && record.KindOf(v) != record.KindNil {
			key = p.vals.appendKey(v)
		}
	}
	if err := p.enc.Record(rec); err != nil {
		return err
	}
	if err := p.enc.Flush(); err != nil {
		return err
	}
	if err := p.bw.Flush(); err != nil {
		return err
	}
	val := p.vals.take()
	if p.trimNL && len(val) > 0 && val[len(val)-1] == '\n' {
		val = val[:len(val)-1]
	}
	r := p.recs.next()
	r.Key, r.Value, r.Headers = key, val, p.hdrs
	p.sent.Add(1)
	p.cl.Produce(p.ctx, r, p.fn)
	return nil
}

// promise counts a message whose outcome is known, and keeps the first
// error.
func (p *producer) promise(_ *kgo.Record, err error) {
	p.mu.Lock()
	if err != nil {
		if p.failed++; p.err == nil {
			p.err = err
		}
	}
	p.acked.Add(1)
	p.mu.Unlock()
}

// watch cancels the batch's messages once some are waiting and none has
// been acknowledged for timeout: the brokers are gone. (kgo retries
// without end a message it cannot know the fate of.)
func (p *producer) watch(ctx context.Context, cancel context.CancelCauseFunc) {
	defer p.watching.Done()
	tick := time.NewTicker(timeout / 10)
	defer tick.Stop()
	last, since := p.acked.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			acked := p.acked.Load()
			if acked != last || acked == p.sent.Load() {
				last, since = acked, now
				continue
			}
			if now.Sub(since) >= timeout {
				cancel(fmt.Errorf("no broker of %s acknowledged a message for %v", strings.Join(p.seeds, ","), timeout))
				return
			}
		}
	}
}

func (p *producer) End(b stage.Batch, n uint64) error {
	if p.skip {
		return nil
	}
	if err := p.enc.End(b, n); err != nil {
		return err
	}
	if p.inTxn {
		if err := p.sendChanges(b); err != nil {
			return err
		}
	}
	err := p.cl.Flush(p.ctx)
	p.cancel(nil)
	p.watching.Wait()
	if cause := context.Cause(p.ctx); err != nil && cause != nil && cause != context.Canceled {
		err = cause
	}
	sent := p.sent.Load()
	p.mu.Lock() // promises may still come, after a cancelled Flush
	acked, failed, ferr := p.acked.Load(), p.failed, p.err
	p.mu.Unlock()
	if err == nil && failed > 0 {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("--kafka %s: %v: %d of %d messages not acknowledged: %w", p.url, b, sent-(acked-failed), sent, err)
	}
	if p.inTxn {
		if err := p.commit(b, sent); err != nil {
			return err
		}
	}
	p.inBatch = false
	p.written = n
	// Every message is acknowledged: the client holds none of the
	// values, keys and records any more.
	p.vals.reset()
	p.recs.reset()
	return nil
}

// commit ends the batch's transaction: it commits the batch's id as the
// group's offset, and a scaled-out source's group offsets, then the
// transaction. A batch without messages has no transaction to commit (kgo
// ends only one its client wrote to): its source's group offsets are
// committed after, on their own (see commitGroup).
func (p *producer) commit(b stage.Batch, sent uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if sent > 0 { // an empty batch needs no record: see producer
		if err := p.commitOffset(ctx, b); err != nil {
			return p.batchError(b, "committing the offset of group "+p.group+" for", err)
		}
		if err := p.commitGroup(ctx, b, true); err != nil {
			return err
		}
	}
	err := p.cl.EndTransaction(ctx, kgo.TryCommit)
	if err != nil {
		return p.batchError(b, "committing the transaction of", err)
	}
	p.inTxn = false
	if sent == 0 {
		if err := p.commitGroup(ctx, b, false); err != nil {
			return err
		}
	}
	p.last, p.lastTime, p.haveLast = b.ID, b.Time, true
	p.changesDone(b.ID)
	return nil
}

// commitOffset adds the group to the transaction and commits in it the
// offset b.ID of partition 0, with b's id and time as its metadata. The
// group is the sink's own: no generation to check.
func (p *producer) commitOffset(ctx context.Context, b stage.Batch) error {
	if b.ID > 1<<63-1 {
		return fmt.Errorf("batch id %d: more than an offset holds", b.ID)
	}
	meta, _ := json.Marshal(checkpoint.Commit{BatchID: b.ID, BatchTime: b.Time})
	ms := string(meta)
	return kafkatxn.CommitOffsets(ctx, p.cl, p.txnID, p.group, -1, "", map[string]map[int32]int64{p.topic: {0: int64(b.ID)}}, &ms)
}

func (p *producer) batchError(b stage.Batch, what string, err error) error {
	return fmt.Errorf("--kafka %s: %s %v: %w", p.url, what, b, err)
}

// Flush, on the way out after an error, throws away the batch in hand:
// what the client still holds of it is not sent, and its transaction, with
// a checkpoint, is aborted. (Without one, the messages sent before stay.)
func (p *producer) Flush() error {
	if !p.inBatch {
		return nil
	}
	p.inBatch = false
	p.cancel(errors.New("the batch failed"))
	p.watching.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p.cl.AbortBufferedRecords(ctx)
	if p.inTxn {
		p.inTxn = false
		// The error that ended the batch is the one to report; an
		// abort that fails leaves the transaction to the next run,
		// whose producer aborts it, or to the transaction timeout.
		p.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	return nil
}

// Written is the number of messages the last batch sent: none when the
// topic had it.
func (p *producer) Written() uint64 { return p.written }

// Close closes the client.
func (p *producer) Close() error {
	if p.cl != nil {
		p.Flush()
		p.cl.Close()
		p.cl = nil
	}
	return nil
}

// chunks holds the values and keys of a batch's messages back to back, in
// chunks that never move: a value that does not fit in the chunk in hand
// goes to a new one, and the full one stays with its messages. So each
// value stays put until the batch is acknowledged, and nothing is
// allocated per message; reset reuses the chunks for the next batch.
type chunks struct {
	all   [][]byte
	cur   int    // the chunk being filled, in all
	start int    // where the value in hand starts in it
	text  []byte // a key's text
}

// Write appends p to the value in hand.
func (c *chunks) Write(p []byte) (int, error) {
	c.grow(len(p))
	c.all[c.cur] = append(c.all[c.cur], p...)
	return len(p), nil
}

// grow makes room for n more bytes of the value in hand in the chunk in
// hand, moving the value to the next chunk if need be.
func (c *chunks) grow(n int) {
	if c.all == nil {
		c.all = [][]byte{make([]byte, 0, max(chunkSize, n))}
	}
	b := c.all[c.cur]
	if len(b)+n <= cap(b) {
		return
	}
	part := b[c.start:]
	c.cur++
	if c.cur == len(c.all) {
		c.all = append(c.all, nil)
	}
	if need := len(part) + n; cap(c.all[c.cur]) < need {
		c.all[c.cur] = make([]byte, 0, max(chunkSize, need))
	}
	c.all[c.cur] = append(c.all[c.cur][:0], part...)
	c.start = 0
}

// take returns the value in hand, and starts the next.
func (c *chunks) take() []byte {
	if c.all == nil {
		return nil
	}
	b := c.all[c.cur]
	v := b[c.start:len(b):len(b)]
	c.start = len(b)
	return v
}

// appendKey makes the message key of the field value v and returns it:
// a string or binary as its bytes, anything else as its text (a number as
// in JSON, a time in RFC 3339, a map or list as JSON).
func (c *chunks) appendKey(v []byte) []byte {
	s, ok := record.Str(v)
	if !ok {
		c.text = record.FormatText(c.text[:0], v)
		s = c.text
	}
	c.Write(s)
	return c.take()
}

// reset makes the chunks free for the next batch.
func (c *chunks) reset() {
	for i := range c.all {
		c.all[i] = c.all[i][:0]
	}
	c.cur, c.start = 0, 0
}

// records hands out the kgo.Records of a batch's messages from slabs,
// reused once the batch is acknowledged.
type records struct {
	slabs [][]kgo.Record
	n     int // records handed out
}

const slabSize = 1024

func (r *records) next() *kgo.Record {
	i, j := r.n/slabSize, r.n%slabSize
	if i == len(r.slabs) {
		r.slabs = append(r.slabs, make([]kgo.Record, slabSize))
	}
	r.n++
	rec := &r.slabs[i][j]
	*rec = kgo.Record{}
	return rec
}

func (r *records) reset() { r.n = 0 }

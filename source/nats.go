package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/stage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS JetStream: nats://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/STREAM.
// The stream is one stream of the tracker (brokertrack.go), named after
// it; a message's offset is its stream sequence, so a batch's range is
// [first sequence, last sequence + 1), and with --subject (a filter) the
// sequences of other subjects are gaps in it.
//
// With a checkpoint the checkpoint is the truth: the live feed is an
// ordered consumer (ephemeral, without acks, started again by nats.go
// where a message went missing) from the sequence after the last batch,
// and a replayed batch is read again by one from its first sequence. A
// durable (--durable, an alias of --group) is then only told of the
// progress: once the sink commits a batch, the durable's messages before
// its end are acked. Without a checkpoint, with a durable, the live feed
// is the durable itself, a pull consumer, and each message is acked once
// its batch has left: at least once. Without either, the feed starts at
// --start every time.
func init() {
	Register(&Kind{
		Scheme:  "nats",
		Tracked: true,
		Broker:  true,
		Flags:   []string{"subject"},
		NoFollow: func(string) error {
			return stage.UsageError("--follow reads a file as it grows: a JetStream stream is read on anyway")
		},
		Track: openNATS,
	})
}

// natsMeta are the metadata fields of a JetStream message: it has no key
// and no partition.
var natsMeta = Meta{Topic: "subject", Offset: "sequence", Time: "timestamp", Headers: "headers"}

// natsURL is a parsed nats:// URL.
type natsURL struct {
	servers []string // for nats.Connect, with the user info
	hosts   string   // HOST:PORT,... for messages
	stream  string
	name    string // the URL without its password, for messages and the checkpoint
}

func parseNATSURL(spec string) (natsURL, error) {
	var u natsURL
	rest, _ := strings.CutPrefix(spec, "nats://")
	hosts, stream, _ := strings.Cut(rest, "/")
	user := ""
	if i := strings.LastIndexByte(hosts, '@'); i >= 0 {
		user, hosts = hosts[:i+1], hosts[i+1:]
	}
	for _, h := range strings.Split(hosts, ",") {
		if h != "" {
			u.servers = append(u.servers, "nats://"+user+h)
		}
	}
	if len(u.servers) == 0 || stream == "" || strings.ContainsAny(stream, "/.*> ") {
		return u, stage.Hint(stage.UsageError("%s: want nats://HOST:PORT[,HOST:PORT...]/STREAM", spec),
			"for example: sbatch -i 1s nats://127.0.0.1:4222/ORDERS --durable wc")
	}
	u.hosts, u.stream = hosts, stream
	// Never a password or a token in a message or a file.
	shown := user
	if name, _, ok := strings.Cut(user, ":"); ok {
		shown = name + ":xxxxx@"
	} else if user != "" {
		shown = "xxxxx@"
	}
	u.name = "nats://" + shown + hosts + "/" + stream
	return u, nil
}

// natsTimeout is how long the server may be unreachable, and a JetStream
// request may take, when --server-timeout is not given.
const natsTimeout = 30 * time.Second

// natsFetch bounds the messages a Fetch returns and those the client
// fetches ahead of the batcher: a stopped sink stops the fetching once
// about twice as many wait.
const natsFetch = 1024

// natsPoll is how often a feed waiting for messages looks whether the
// server has been away for too long.
const natsPoll = 200 * time.Millisecond

// natsSource is the Broker of a nats:// input.
type natsSource struct {
	u       natsURL
	o       *Options
	streams *Streams
	notes   io.Writer
	stop    <-chan struct{}
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	state   jetstream.StreamState // at the start: --once reads up to its LastSeq
	durable jetstream.Consumer    // --durable, or nil
	downAt  atomic.Int64          // unix ns when the connection was lost; 0: connected

	mu sync.Mutex // over what follows: the feed takes, Commit acks
	// held are messages of the durable not acked yet: without a
	// checkpoint, those the feed took, by their place in the order of
	// delivery; with one, those Commit fetched past the end it acked, by
	// sequence.
	held []heldMsg
	// delivered: with a checkpoint, the highest sequence the durable gave
	// Commit so far.
	delivered uint64
}

// heldMsg is a message of the durable waiting for its ack: at pos, acked
// by a message to reply.
type heldMsg struct {
	pos   int64
	reply string
}

func openNATS(op Opening) (Tracker, error) {
	o := *op.Options
	u, err := parseNATSURL(o.Inputs[0])
	if err != nil {
		return nil, err
	}
	if err := checkFeedFormat(o.Format, u.name); err != nil {
		return nil, err
	}
	n := &natsSource{u: u, o: &o, streams: &Streams{}, notes: op.Env.Stderr, stop: op.Env.Stop.RequestedC()}
	if err := n.connect(); err != nil {
		return nil, n.named(err)
	}
	err = n.openStream()
	if err == nil && o.Group != "" {
		err = n.openDurable()
	}
	if err != nil {
		n.Close()
		return nil, n.named(err)
	}
	t, err := openBrokerTracker(o, u.name, n, n.streams, op.Env.Stderr)
	if err != nil {
		n.Close()
		return nil, err
	}
	return t, nil
}

func (n *natsSource) timeout() time.Duration {
	if n.o.ServerTimeout > 0 {
		return n.o.ServerTimeout
	}
	return natsTimeout
}

// request is the context of a JetStream request.
func (n *natsSource) request() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), n.timeout())
}

// connect connects to the servers, trying again with backoff while none
// answers, up to the server timeout. Bad credentials are an error at once.
func (n *natsSource) connect() error {
	deadline := time.Now().Add(n.timeout())
	var wait stage.Backoff
	for noted := false; ; noted = true {
		nc, err := nats.Connect(strings.Join(n.u.servers, ","),
			nats.Name("dstream-sbatch"),
			nats.Timeout(min(5*time.Second, n.timeout())),
			nats.MaxReconnects(-1),
			nats.CustomReconnectDelay(redialDelay),
			nats.DisconnectErrHandler(n.lost),
			nats.ReconnectHandler(n.regained),
			nats.NoCallbacksAfterClientClose(),
		)
		if err == nil {
			n.nc = nc
			if n.js, err = jetstream.New(nc); err != nil {
				return err
			}
			if noted {
				fmt.Fprintf(n.notes, "sbatch: note: %s: connected to %s\n", n.u.name, nc.ConnectedUrlRedacted())
			}
			return nil
		}
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			return stage.Hint(fmt.Errorf("the server %s refused the credentials: %w", n.u.hosts, err),
				"give a user and password the server knows in the URL: nats://USER:PASSWORD@HOST:PORT/STREAM (or a token: nats://TOKEN@HOST:PORT/STREAM)")
		}
		if time.Now().After(deadline) {
			return n.unreachable(err)
		}
		if !noted {
			fmt.Fprintf(n.notes, "sbatch: note: %s: no answer from the server %s (%v), trying again for up to %v\n", n.u.name, n.u.hosts, err, n.timeout())
		}
		select {
		case <-time.After(wait.Next()):
		case <-n.stop:
			return n.unreachable(err)
		}
	}
}

// redialDelay is the wait before attempt attempts+1 to connect again, as
// stage.Backoff's: from BackoffMin, doubling up to BackoffMax, with jitter.
func redialDelay(attempts int) time.Duration {
	bound := min(stage.BackoffMin<<min(attempts, 16), stage.BackoffMax)
	return bound/2 + time.Duration(rand.Int64N(int64(bound/2)+1))
}

func (n *natsSource) unreachable(err error) error {
	return stage.Hint(fmt.Errorf("no answer from the server %s: %w", n.u.hosts, err),
		"check that nats-server is up at that address, with JetStream (nats-server -js); --server-timeout sets how long sbatch waits")
}

// lost is told that the connection is lost; nats.go connects again.
func (n *natsSource) lost(_ *nats.Conn, err error) {
	if n.downAt.CompareAndSwap(0, time.Now().UnixNano()) {
		why := ""
		if err != nil {
			why = fmt.Sprintf(" (%v)", err)
		}
		fmt.Fprintf(n.notes, "sbatch: note: %s: connection to the server lost%s, reconnecting\n", n.u.name, why)
	}
}

// regained is told that the connection is back.
func (n *natsSource) regained(nc *nats.Conn) {
	n.downAt.Store(0)
	fmt.Fprintf(n.notes, "sbatch: note: %s: connected again to %s\n", n.u.name, nc.ConnectedUrlRedacted())
}

// down returns the error of a server away for longer than the timeout.
func (n *natsSource) down() error {
	at := n.downAt.Load()
	if at == 0 {
		return nil
	}
	if away := time.Since(time.Unix(0, at)); away > n.timeout() {
		return stage.Hint(fmt.Errorf("no answer from the server %s for %v", n.u.hosts, away.Round(time.Second)),
			"check that nats-server is up; --server-timeout sets how long sbatch waits")
	}
	return nil
}

// jsErr names the server in the error of a JetStream request.
func (n *natsSource) jsErr(what string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders):
		return stage.Hint(fmt.Errorf("%s: JetStream is not enabled on the server %s: %w", what, n.u.hosts, err),
			"start the server with JetStream (nats-server -js), or enable it for the account")
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return n.unreachable(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// openStream finds the stream, and notes its state at the start.
func (n *natsSource) openStream() error {
	ctx, cancel := n.request()
	defer cancel()
	s, err := n.js.Stream(ctx, n.u.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return stage.Hint(fmt.Errorf("stream %q does not exist on the server %s", n.u.stream, n.u.hosts),
			"create it first (nats stream add %s --subjects 'SUBJECT.>'), or check the name (stream names are case-sensitive)", n.u.stream)
	}
	if err != nil {
		return n.jsErr(fmt.Sprintf("looking up stream %q", n.u.stream), err)
	}
	n.stream, n.state = s, s.CachedInfo().State
	return nil
}

// first is the first sequence the stream holds (the next one to come when
// it is empty).
func (n *natsSource) first() uint64 {
	return max(n.state.FirstSeq, 1)
}

// startSeq is where --start says a new reader starts.
func (n *natsSource) startSeq() uint64 {
	if n.o.Start == "earliest" {
		return n.first()
	}
	return n.state.LastSeq + 1 // "latest", the default
}

// openDurable finds the durable --durable, or creates it (a pull consumer
// with explicit acks, from --start), and checks that sbatch can use it.
func (n *natsSource) openDurable() error {
	name := n.o.Group
	ctx, cancel := n.request()
	defer cancel()
	c, err := n.stream.Consumer(ctx, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c, err = n.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       name,
			Description:   "dstream sbatch",
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   n.startSeq(),
			// Explicit, not all: a message delivered again (its ack
			// wait over) comes after later ones, and acking a later one
			// must not ack it before it is read.
			AckPolicy:     jetstream.AckExplicitPolicy,
			FilterSubject: n.o.Subject,
			// Acks come a batch late: a limit could hold back the
			// messages a batch waits for (-n N).
			MaxAckPending: -1,
		})
	}
	if err != nil {
		return n.jsErr(fmt.Sprintf("durable %q of stream %q", name, n.u.stream), err)
	}
	cfg := c.CachedInfo().Config
	other := "give another --durable name (sbatch creates it)"
	switch {
	case cfg.DeliverSubject != "":
		return stage.Hint(fmt.Errorf("durable %q is a push consumer (it delivers to %s): sbatch pulls", name, cfg.DeliverSubject), "%s", other)
	case cfg.AckPolicy == jetstream.AckNonePolicy:
		return stage.Hint(fmt.Errorf("durable %q takes no acks (AckPolicy none): it cannot record what the batches took", name), "%s", other)
	case cfg.AckPolicy == jetstream.AckAllPolicy && n.o.Checkpoint == "":
		return stage.Hint(fmt.Errorf("durable %q acks all the messages before the one acked (AckPolicy all): a message delivered again after later ones would be acked before it is read", name),
			"give --checkpoint DIR (the durable then only follows the sink's commits), or %s", other)
	case n.o.Subject != "" && cfg.FilterSubject != n.o.Subject:
		filter := "every subject"
		if cfg.FilterSubject != "" {
			filter = fmt.Sprintf("subject %q", cfg.FilterSubject)
		}
		return stage.Hint(stage.UsageError("--subject %s: durable %q reads %s", n.o.Subject, name, filter),
			"leave --subject out to read what the durable reads, or %s", other)
	}
	n.durable = c
	return nil
}

func (n *natsSource) Meta() *Meta { return &natsMeta }

// named is err of the input, naming it.
func (n *natsSource) named(err error) error { return fmt.Errorf("%s: %w", n.u.name, err) }

// Live starts the feed of new messages: without a checkpoint and with a
// durable, the durable's; else an ordered consumer from the checkpoint's
// sequence, or for a new checkpoint from the durable's ack floor, or
// --start.
func (n *natsSource) Live(from map[string]int64) (Feed, error) {
	f, err := n.live(from)
	if err != nil {
		return nil, n.named(err)
	}
	return f, nil
}

func (n *natsSource) live(from map[string]int64) (Feed, error) {
	if n.o.Checkpoint == "" && n.durable != nil {
		return n.durableFeed()
	}
	var start uint64
	exact := true // start is known, not a guess: messages gone before it are lost
	if off, ok := from[n.u.stream]; ok {
		start = uint64(off)
		if last := n.state.LastSeq; start > last+1 {
			return nil, stage.Hint(fmt.Errorf("the checkpoint goes on at sequence %d, but stream %q ends at %d: was it made again?", start, n.u.stream, last),
				"a checkpoint belongs to one stream: start over with a new --checkpoint directory")
		}
	} else if n.durable != nil {
		var err error
		if start, exact, err = n.durableStart(); err != nil {
			return nil, err
		}
	} else {
		start = n.startSeq()
	}
	if first := n.first(); start < first {
		if exact {
			return nil, stage.Hint(fmt.Errorf("messages to read are gone from stream %q (limits or deletion): sequences %d to %d", n.u.stream, start, first-1),
				"they cannot be read: to go on from the oldest messages the stream has, start over with a new --checkpoint directory")
		}
		start = first
	}
	f := &natsFeed{n: n, stream: n.streams.Index(n.u.stream, int64(start)), done: make(chan struct{})}
	if n.o.Once {
		f.bounded, f.last = true, n.state.LastSeq
		if start > f.last {
			f.ended = true // nothing to read
			return f, nil
		}
	}
	// A consumer made and dropped at once checks --subject with a clear
	// error (the ordered consumer would try again for a while) and counts
	// what there is to read.
	pending, err := n.probe(start)
	if err != nil {
		return nil, err
	}
	if f.bounded && pending == 0 {
		f.ended = true
		return f, nil
	}
	if err := f.ordered(start); err != nil {
		return nil, err
	}
	return f, nil
}

// durableStart is where a new checkpoint starts with a durable: after its
// ack floor, or, when nothing was acked yet, after what it delivered
// (where it was created to start); exact is false when the durable
// delivered messages that none acked, whose sequences it does not say:
// then from the first message of the stream.
func (n *natsSource) durableStart() (start uint64, exact bool, err error) {
	ctx, cancel := n.request()
	defer cancel()
	ci, err := n.durable.Info(ctx)
	if err != nil {
		return 0, false, n.jsErr(fmt.Sprintf("durable %q", n.o.Group), err)
	}
	switch {
	case ci.AckFloor.Consumer > 0:
		return ci.AckFloor.Stream + 1, true, nil
	case ci.Delivered.Consumer == 0:
		return ci.Delivered.Stream + 1, true, nil
	}
	return 1, false, nil
}

// probe makes a consumer of --subject from sequence start and drops it:
// it returns how many messages there are to read.
func (n *natsSource) probe(start uint64) (uint64, error) {
	ctx, cancel := n.request()
	defer cancel()
	c, err := n.stream.CreateConsumer(ctx, n.orderedConfig(start))
	if err != nil {
		what := fmt.Sprintf("reading stream %q", n.u.stream)
		if n.o.Subject != "" {
			what += fmt.Sprintf(" with --subject %s", n.o.Subject)
		}
		return 0, n.jsErr(what, err)
	}
	ci := c.CachedInfo()
	n.stream.DeleteConsumer(ctx, ci.Name)
	return ci.NumPending, nil
}

// orderedConfig is the config of the probe: that of an ordered consumer.
func (n *natsSource) orderedConfig(start uint64) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     n.o.Subject,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	}
}

// durableFeed is the feed of the durable, without a checkpoint.
func (n *natsSource) durableFeed() (Feed, error) {
	f := &natsFeed{n: n, stream: n.streams.Index(n.u.stream, 0), done: make(chan struct{}), acked: true}
	if n.o.Once {
		f.bounded, f.last = true, n.state.LastSeq
		ctx, cancel := n.request()
		ci, err := n.durable.Info(ctx)
		cancel()
		if err != nil {
			return nil, n.jsErr(fmt.Sprintf("durable %q", n.o.Group), err)
		}
		if ci.NumPending == 0 {
			f.caught, f.lastAt = true, time.Now()
			if ci.NumAckPending == 0 {
				f.ended = true
				return f, nil
			}
		}
	}
	f.msgs = make(chan jetstream.Msg, natsFetch)
	f.errc = make(chan error, 1)
	f.exited = make(chan struct{})
	go f.pull(n.durable)
	return f, nil
}

// Replay reads the messages of a batch again: those at sequences [Start,
// End) (of --subject), by an ordered consumer from Start. The last one,
// End-1, was taken by the batch; a sequence below the first the stream
// holds is gone: either is an error naming the batch.
func (n *natsSource) Replay(batch uint64, ranges []checkpoint.Range) Feed {
	f := &natsFeed{n: n, replay: batch + 1, bounded: true, done: make(chan struct{})}
	if len(ranges) == 0 {
		f.ended = true
		return f
	}
	r := ranges[0]
	if len(ranges) > 1 || r.Path != n.u.stream {
		f.err = fmt.Errorf("batch %d: the checkpoint names %q: not stream %q", batch, r.Path, n.u.stream)
		return f
	}
	f.stream = n.streams.Index(r.Path, r.Start)
	f.from, f.last = uint64(r.Start), uint64(r.End-1)
	f.lazy = true
	return f
}

// openReplay checks that the batch's messages are there and starts its
// ordered consumer.
func (f *natsFeed) openReplay() error {
	n := f.n
	ctx, cancel := n.request()
	defer cancel()
	info, err := n.stream.Info(ctx)
	if err != nil {
		return n.jsErr(fmt.Sprintf("batch %d: stream %q", f.replay-1, n.u.stream), err)
	}
	if first := info.State.FirstSeq; f.from < first {
		return f.gone(fmt.Sprintf("its messages from sequence %d are gone from stream %q (the stream begins at %d)", f.from, n.u.stream, first))
	}
	if _, err := n.stream.GetMsg(ctx, f.last); errors.Is(err, jetstream.ErrMsgNotFound) {
		return f.gone(fmt.Sprintf("its last message, sequence %d, is gone from stream %q", f.last, n.u.stream))
	} else if err != nil {
		return n.jsErr(fmt.Sprintf("batch %d: stream %q", f.replay-1, n.u.stream), err)
	}
	return f.ordered(f.from)
}

// gone is the error of a batch that cannot be replayed.
func (f *natsFeed) gone(what string) error {
	return stage.Hint(fmt.Errorf("batch %d cannot be replayed: %s (limits or deletion)", f.replay-1, what),
		"the batch cannot be read again as it was: start over with a new --checkpoint directory")
}

// Commit acks the durable's messages before ends: without a checkpoint
// those the feed took (ends are then positions in the order of delivery);
// with one, the durable's messages below the sequence the sink committed.
func (n *natsSource) Commit(ends map[string]int64) error {
	end, ok := ends[n.u.stream]
	if n.durable == nil || !ok {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.o.Checkpoint == "" {
		return n.ackHeld(end)
	}
	return n.ackDurable(uint64(end))
}

// ackHeld acks the held messages before pos.
func (n *natsSource) ackHeld(pos int64) error {
	i := 0
	var err error
	for ; i < len(n.held) && n.held[i].pos < pos; i++ {
		if e := n.nc.Publish(n.held[i].reply, ackBody); e != nil && err == nil {
			err = e
		}
	}
	n.held = slices.Delete(n.held, 0, i)
	return err
}

var (
	ackBody = []byte("+ACK")
	nakBody = []byte("-NAK")
)

// ackDurable acks the durable's messages below sequence end, with a
// checkpoint: the durable is read only here, a few at a time, and those
// at end or after wait for a later commit.
func (n *natsSource) ackDurable(end uint64) error {
	var err error
	hold := func(seq uint64, reply string) {
		if seq < end {
			if e := n.nc.Publish(reply, ackBody); e != nil && err == nil {
				err = e
			}
		} else {
			n.held = append(n.held, heldMsg{int64(seq), reply})
		}
	}
	held := n.held
	n.held = nil
	for _, h := range held {
		hold(uint64(h.pos), h.reply)
	}
	for err == nil && n.delivered+1 < end {
		// As many as the sequences up to end, if none is missing: a
		// fetch goes past end only over gaps.
		want := int(min(end-1-n.delivered, natsFetch))
		b, ferr := n.durable.FetchNoWait(want)
		if ferr != nil {
			return ferr
		}
		got := 0
		for m := range b.Messages() {
			md, merr := m.Metadata()
			if merr != nil {
				return merr
			}
			got++
			n.delivered = max(n.delivered, md.Sequence.Stream)
			hold(md.Sequence.Stream, m.Reply())
		}
		if berr := b.Error(); berr != nil && !errors.Is(berr, nats.ErrTimeout) {
			return berr
		}
		if got < want {
			break // the rest is not there (yet)
		}
	}
	return err
}

func (n *natsSource) Close() error {
	if n.nc != nil {
		n.nc.FlushTimeout(2 * time.Second) // the last acks
		n.nc.Close()
	}
	return nil
}

// natsFeed is a consumer's messages: the live ones, or those of a batch to
// replay (replay = its id + 1). A goroutine takes them from the nats.go
// iterator, which may wait long (for the server, for a new consumer), so
// that Fetch can look at a stop and at the server's absence meanwhile.
type natsFeed struct {
	n      *natsSource
	stream int // the tracker's number of the stream
	it     jetstream.MessagesContext
	oc     jetstream.Consumer // the ordered consumer, to delete at the end
	msgs   chan jetstream.Msg
	errc   chan error
	done   chan struct{} // closed by Close
	exited chan struct{} // closed by the goroutine
	err    error
	ended  bool
	lazy   bool // a replay: the consumer is made at the first Fetch
	closed bool

	bounded bool   // --once or a replay: the feed ends at last
	last    uint64 // the last sequence to read
	from    uint64 // a replay: its first sequence
	replay  uint64
	// acked: the durable's feed, without a checkpoint: a message's
	// position is its place in the order of delivery (messages delivered
	// again come after later ones), and the feed holds it for the ack.
	// With --once it ends once caught up to the end (the messages given
	// back by the last run come first) and idle for natsPoll: messages
	// that a crash left waiting for their ack wait come in a later run.
	acked  bool
	pos    int64
	caught bool
	lastAt time.Time
}

// ordered starts an ordered consumer from sequence start.
func (f *natsFeed) ordered(start uint64) error {
	n := f.n
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
		// Past these attempts to make the consumer again (after a
		// missing message, a lost heartbeat, a reconnection), about the
		// server timeout, the feed fails.
		MaxResetAttempts: resetAttempts(n.timeout()),
	}
	if n.o.Subject != "" {
		cfg.FilterSubjects = []string{n.o.Subject}
	}
	ctx, cancel := n.request()
	defer cancel()
	oc, err := n.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return n.jsErr(fmt.Sprintf("reading stream %q", n.u.stream), err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(natsFetch))
	if err != nil {
		return n.jsErr(fmt.Sprintf("reading stream %q", n.u.stream), err)
	}
	f.oc = oc
	f.start(it)
	return nil
}

// resetAttempts is how many times, waiting 1s, 2s, 4s, 8s then 10s
// between them (nats.go's ordered consumer), make about d.
func resetAttempts(d time.Duration) int {
	n, wait, sum := 1, time.Second, time.Duration(0)
	for sum < d {
		sum += wait
		wait = min(2*wait, 10*time.Second)
		n++
	}
	return n
}

// start starts the goroutine that takes the messages of it.
func (f *natsFeed) start(it jetstream.MessagesContext) {
	f.it = it
	f.msgs = make(chan jetstream.Msg, natsFetch)
	f.errc = make(chan error, 1)
	f.exited = make(chan struct{})
	go f.pump()
}

func (f *natsFeed) pump() {
	defer close(f.exited)
	for {
		m, err := f.it.Next()
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			continue // the iterator pulls again
		}
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				f.errc <- err
			}
			return
		}
		select {
		case f.msgs <- m:
		case <-f.done:
			return
		}
	}
}

// pull takes the messages of the durable c, a bounded fetch at a time.
// Why not nats.go's iterator, as for the ordered consumer: its pull
// requests outlive it at the server for 30 s, and a message given back
// (nak) at the end of a run can go to one of them, to be delivered again
// only after its ack wait; a fetch's request expires after natsPoll, and
// the feed gives messages back only once it has.
func (f *natsFeed) pull(c jetstream.Consumer) {
	defer close(f.exited)
	for {
		select {
		case <-f.done:
			return
		default:
		}
		if f.n.nc.Status() != nats.CONNECTED {
			// A request made now would wait in the client, and reach
			// the server only with those after it.
			select {
			case <-time.After(natsPoll):
			case <-f.done:
			}
			continue
		}
		b, err := c.Fetch(natsFetch, jetstream.FetchMaxWait(natsPoll))
		if err == nil {
			for m := range b.Messages() {
				select {
				case f.msgs <- m:
				case <-f.done:
					f.nak(m)
				}
			}
			err = b.Error()
		}
		switch {
		case err == nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrConnectionReconnecting):
		case errors.Is(err, nats.ErrConnectionClosed):
			return
		default:
			f.errc <- err
			return
		}
	}
}

// nak gives a durable's message back at once, rather than after its ack
// wait: one fetched ahead and not taken.
func (f *natsFeed) nak(m jetstream.Msg) {
	if f.acked {
		f.n.nc.Publish(m.Reply(), nakBody)
	}
}

func (f *natsFeed) Fetch(stop <-chan struct{}, dst []Message) ([]Message, error) {
	if f.err != nil {
		return dst, f.err
	}
	if f.ended {
		return dst, io.EOF
	}
	if f.lazy {
		f.lazy = false
		if f.err = f.openReplay(); f.err != nil {
			return dst, f.err
		}
	}
	if f.replay > 0 {
		stop = nil // a replayed batch is read whole
	}
	tick := time.NewTicker(natsPoll)
	defer tick.Stop()
	for {
		select {
		case m := <-f.msgs:
			return f.more(f.take(dst, m)), f.err
		case err := <-f.errc:
			f.err = fmt.Errorf("reading stream %q: %w", f.n.u.stream, err)
			return dst, f.err
		case <-stop:
			return dst, io.EOF
		case <-tick.C:
			if f.err = f.n.down(); f.err != nil {
				return dst, f.err
			}
			if f.caught && time.Since(f.lastAt) >= natsPoll {
				f.ended = true
				return dst, io.EOF
			}
		}
	}
}

// more appends the messages that wait, up to natsFetch in all.
func (f *natsFeed) more(dst []Message) []Message {
	for len(dst) < natsFetch && !f.ended && f.err == nil {
		select {
		case m := <-f.msgs:
			dst = f.take(dst, m)
		default:
			return dst
		}
	}
	return dst
}

// take appends message m to dst, unless it is past the end.
func (f *natsFeed) take(dst []Message, m jetstream.Msg) []Message {
	md, err := m.Metadata()
	if err != nil {
		f.err = fmt.Errorf("stream %q: %w", f.n.u.stream, err)
		return dst
	}
	seq := md.Sequence.Stream
	caught := f.bounded && (seq >= f.last || md.NumPending == 0)
	if f.bounded && seq > f.last {
		f.nak(m)
		switch {
		case f.acked:
			f.caught = true // messages delivered again may still come
		case f.replay > 0:
			f.err = f.gone(fmt.Sprintf("its last message, sequence %d, did not come", f.last))
		default:
			f.ended = true
		}
		return dst
	}
	msg := Message{Value: m.Data(), Topic: m.Subject(), Offset: int64(seq), Time: md.Timestamp, Headers: natsHeaders(m.Headers())}
	msg.Pos = Position{f.stream, int64(seq) + 1}
	if f.acked {
		f.n.mu.Lock()
		f.n.held = append(f.n.held, heldMsg{f.pos, m.Reply()})
		f.n.mu.Unlock()
		f.pos++
		msg.Pos.Off = f.pos
		f.caught = f.caught || caught
		f.lastAt = time.Now()
	} else if caught {
		f.ended = true
		if f.replay > 0 && seq != f.last {
			f.err = f.gone(fmt.Sprintf("its last message, sequence %d, did not come after %d", f.last, seq))
		}
	}
	return append(dst, msg)
}

// natsHeaders are the headers of a message, by name; the values of a name
// given more than once are joined with commas (as HTTP's).
func natsHeaders(h nats.Header) []Header {
	if len(h) == 0 {
		return nil
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a record's bytes are the same at every read
	hs := make([]Header, len(keys))
	for i, k := range keys {
		hs[i] = Header{k, []byte(strings.Join(h[k], ","))}
	}
	return hs
}

func (f *natsFeed) Close() error {
	if f.exited == nil || f.closed {
		return nil
	}
	f.closed = true
	close(f.done)
	if f.it != nil {
		f.it.Stop()
	}
	select {
	case <-f.exited:
	case <-time.After(5 * time.Second):
	}
	for len(f.msgs) > 0 {
		f.nak(<-f.msgs)
	}
	if f.oc != nil {
		if ci := f.oc.CachedInfo(); ci != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			f.n.stream.DeleteConsumer(ctx, ci.Name)
			cancel()
		}
	}
	return nil
}

package crash

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dstream/dstream/checkpoint"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The variant "nats" reads the events from a JetStream stream of the
// trial's own (each line of the input a message) rather than from
// in.jsonl: sbatch --checkpoint replays by stream sequence. A stream has
// no end, so a run ends as the followed file's does, with SIGTERM to
// sbatch once it has taken every message (stopNATS); -n 50 cuts the 4000
// events into the same 80 batches whatever the moments of the crashes.
// The batch times (-n: the moment of the cut) are left out of the
// comparison.
func init() { variants = append(variants, natsVariant) }

var natsVariant = &variant{
	name: "nats",
	stages: []string{"sbatch --checkpoint ck --format json -n 50 --start earliest nats://$NATS/$STREAM",
		"smap --filter v%7!=0",
		runningCount,
		"ssink --checkpoint ck --sqlite out.db --table t --mode update --key k"},
	sink:    &natsSink{sqliteSink: sqliteSink{file: "out.db", table: "t", noTimes: true}},
	stopper: stopNATS,
}

// natsServer is the server of the variant: DSTREAM_NATS_URL's HOST:PORT,
// or the machine's.
func natsServer() string {
	u := os.Getenv("DSTREAM_NATS_URL")
	if u == "" {
		return "127.0.0.1:4222"
	}
	return strings.TrimSuffix(strings.TrimPrefix(u, "nats://"), "/")
}

// natsSink is a SQLite table written from a JetStream stream, which it
// makes for each trial (and deletes after it).
type natsSink struct {
	sqliteSink
}

// reachable reports why the server with JetStream cannot be used, or nil.
func (s *natsSink) reachable() error {
	js, nc, err := natsConnect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

func natsConnect() (jetstream.JetStream, *nats.Conn, error) {
	nc, err := nats.Connect("nats://"+natsServer(), nats.Timeout(3*time.Second))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc, nil
}

// setup makes the trial's stream, with the events as messages, and sets
// $NATS and $STREAM.
func (s *natsSink) setup(t *trial) error {
	js, nc, err := natsConnect()
	if err != nil {
		return fmt.Errorf("NATS at %s: %w", natsServer(), err)
	}
	defer nc.Close()
	var b [4]byte
	rand.Read(b[:])
	stream := "CRASH_" + strings.NewReplacer("-", "_", ".", "_").Replace(t.name) + "_" + hex.EncodeToString(b[:])
	subject := strings.ToLower(stream) + ".ev"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}}); err != nil {
		return fmt.Errorf("NATS at %s: making stream %s: %w", natsServer(), stream, err)
	}
	t.vars["NATS"], t.vars["STREAM"] = natsServer(), stream
	lines := strings.SplitAfter(string(input()), "\n")
	var acks []jetstream.PubAckFuture
	for _, l := range lines {
		if l = strings.TrimSuffix(l, "\n"); l == "" {
			continue
		}
		a, err := js.PublishAsync(subject, []byte(l))
		if err != nil {
			return fmt.Errorf("publishing to %s: %w", stream, err)
		}
		acks = append(acks, a)
	}
	for _, a := range acks {
		select {
		case <-a.Ok():
		case err := <-a.Err():
			return fmt.Errorf("publishing to %s: %w", stream, err)
		case <-ctx.Done():
			return fmt.Errorf("publishing to %s: %w", stream, ctx.Err())
		}
	}
	return os.WriteFile(t.dir+"/nats-stream", []byte(stream+"\n"), 0o644)
}

func (s *natsSink) teardown(t *trial, keep bool) {
	if keep || t.vars["STREAM"] == "" {
		return
	}
	if js, nc, err := natsConnect(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		js.DeleteStream(ctx, t.vars["STREAM"])
		cancel()
		nc.Close()
	}
}

// stopNATS ends a run with SIGTERM to sbatch once its last entry in
// ck/offsets reaches the stream's end (every event taken) and, in a trial
// (last >= 0), the sink has committed batch last or nothing for
// followIdle, as stopFollowed does for the same reasons. It gives up when
// the run is over.
func stopNATS(p *pipeline, t *trial, last int) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	committed, since := -1, time.Now()
	for {
		select {
		case <-p.exited:
			return
		case <-tick.C:
		}
		if c := lastEntry(t.dir, "commits"); c != committed {
			committed, since = c, time.Now()
		}
		if !tookAll(t.dir) {
			continue
		}
		if last < 0 || committed >= last || time.Since(since) >= followIdle {
			p.terminate(0)
			return
		}
	}
}

// tookAll reports whether sbatch's last batch in the checkpoint of the
// trial in dir ends after the last event.
func tookAll(dir string) bool {
	id := lastEntry(dir, "offsets")
	if id < 0 {
		return false
	}
	var e checkpoint.Offsets
	if err := checkpoint.ReadLog(dir+"/ck", checkpoint.OffsetsDir).Read(uint64(id), &e); err != nil {
		return false
	}
	return len(e.Sources) == 1 && e.Sources[0].End == inputEvents+1
}

package crash

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The variant "nats" reads the events from a JetStream stream of the
// trial's own (each line of the input a message) rather than from
// in.jsonl: sbatch --checkpoint replays by stream sequence. --once -n 50
// reads what the stream has (AvailableNow) in the same 80 batches of 50,
// whatever the moments of the crashes.
// The batch times (-n: the moment of the cut) are left out of the
// comparison.
func init() { variants = append(variants, natsVariant) }

var natsVariant = &variant{
	name: "nats",
	stages: []string{"sbatch --checkpoint ck --format json --once -n 50 --start earliest nats://$NATS/$STREAM",
		"smap --filter v%7!=0",
		runningCount,
		"ssink --checkpoint ck --postgres $PG --table t --mode update --key k"},
	sink:   &postgresSink{table: "t", noTimes: true},
	broker: natsInput{},
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

// natsInput is a JetStream stream of the trial's own, loaded with the
// events (and deleted after the trial).
type natsInput struct{}

// reachable reports why the server with JetStream cannot be used, or nil.
func (natsInput) reachable() error {
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
func (natsInput) setup(t *trial) error {
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

func (natsInput) teardown(t *trial) {
	if t.vars["STREAM"] == "" {
		return
	}
	if js, nc, err := natsConnect(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		js.DeleteStream(ctx, t.vars["STREAM"])
		cancel()
		nc.Close()
	}
}

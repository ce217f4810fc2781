// Package kafkatest gives the Kafka tests a cluster of their own: franz-go's
// kfake, an in-process cluster that speaks the real protocol on loopback
// ports, so that the source and sink talk to it as to any Kafka. The kfake
// command beside it serves one to the script tests, which run the real
// binaries in other processes.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster starts a cluster of brokers brokers with the topics, each of
// partitions partitions, and closes it at the end of the test. It returns the
// cluster and its seed addresses, comma-separated (HOST:PORT,HOST:PORT), as
// a kafka:// URL takes them.
func Cluster(t testing.TB, brokers int, partitions int32, topics ...string) (*kfake.Cluster, string) {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(brokers)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, Seeds(c)
}

// Seeds are the addresses of c's brokers, comma-separated.
func Seeds(c *kfake.Cluster) string { return strings.Join(c.ListenAddrs(), ",") }

// URL is the kafka:// URL of topic on c.
func URL(c *kfake.Cluster, topic string) string {
	return fmt.Sprintf("kafka://%s/%s", Seeds(c), topic)
}

// Joined polls consumer, a member of a consumer group, until it has joined
// the group, and returns its member id and generation (at most 15 s).
func Joined(t testing.TB, consumer *kgo.Client) (string, int32) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		consumer.PollFetches(ctx)
		cancel()
		if member, gen := consumer.GroupMetadata(); gen > 0 && member != "" {
			return member, gen
		}
	}
	t.Fatal("the consumer did not join its group in 15s")
	return "", 0
}

// Committed returns the offsets that group has committed on the cluster of
// seeds, stable ones only (those of a transaction still open are waited
// for); none for a group that does not exist (at most 10 s).
func Committed(t testing.TB, seeds, group string) kadm.OffsetResponses {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(seeds, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(kadm.RequireStable(ctx), group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("fetching the offsets of %s: %v", group, err)
	}
	return offs
}

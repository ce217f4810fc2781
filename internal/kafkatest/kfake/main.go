// Command kfake serves an in-process Kafka cluster (franz-go's kfake) on
// loopback until SIGINT or SIGTERM, for the script tests, which run the real
// binaries against it:
//
//	kfake [-brokers N] [-partitions P] [-topic T]... [-load T=FILE]... [-ports P1,P2] [-data DIR] [-ready FILE] [-timeout DUR]
//
// -load produces the lines of FILE into topic T before it is ready: a line
// KEY<TAB>VALUE is keyed (partitioned by the key's murmur2 hash, as the
// Java client does), a line without a tab has no key. Once it listens (and
// has loaded) it writes its seed addresses (HOST:PORT,...) to FILE (or
// stdout). With -data it keeps its topics in DIR and loads them again at
// the next start (a broker that goes away and comes back, on the same
// -ports). It exits by itself after -timeout (default 2m), so that a
// failed script leaves no server behind.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() { os.Exit(run()) }

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func run() int {
	brokers := flag.Int("brokers", 1, "number of brokers")
	partitions := flag.Int("partitions", 4, "partitions of each -topic")
	ports := flag.String("ports", "", "comma-separated ports of the brokers (default: any free ones)")
	data := flag.String("data", "", "keep the cluster's state in this directory")
	ready := flag.String("ready", "", "write the seed addresses to this file once listening (default: stdout)")
	timeout := flag.Duration("timeout", 2*time.Minute, "exit after this long")
	var topics, loads list
	flag.Var(&topics, "topic", "a topic to create (repeatable)")
	flag.Var(&loads, "load", "`TOPIC=FILE`: produce the lines of FILE (KEY<TAB>VALUE or VALUE) into TOPIC (repeatable)")
	flag.Parse()

	opts := []kfake.Opt{kfake.NumBrokers(*brokers), kfake.AllowAutoTopicCreation()}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), topics...))
	}
	if *ports != "" {
		var ps []int
		for _, p := range strings.Split(*ports, ",") {
			n, err := strconv.Atoi(p)
			if err != nil {
				fmt.Fprintf(os.Stderr, "kfake: bad port %q\n", p)
				return 2
			}
			ps = append(ps, n)
		}
		opts = append(opts, kfake.Ports(ps...))
	}
	if *data != "" {
		opts = append(opts, kfake.DataDir(*data))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfake: %v\n", err)
		return 1
	}
	defer c.Close()
	for _, l := range loads {
		topic, file, _ := strings.Cut(l, "=")
		if err := load(c, topic, file); err != nil {
			fmt.Fprintf(os.Stderr, "kfake: -load %s: %v\n", l, err)
			return 1
		}
	}
	seeds := kafkatest.Seeds(c) + "\n"
	if *ready == "" {
		fmt.Print(seeds)
	} else if err := os.WriteFile(*ready+".tmp", []byte(seeds), 0o644); err != nil || os.Rename(*ready+".tmp", *ready) != nil {
		fmt.Fprintf(os.Stderr, "kfake: writing %s: %v\n", *ready, err)
		return 1
	}
	select {
	case <-sig:
	case <-time.After(*timeout):
		fmt.Fprintf(os.Stderr, "kfake: exiting after -timeout %v\n", *timeout)
	}
	return 0
}

// load produces the lines of file into topic.
func load(c *kfake.Cluster, topic, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		r := &kgo.Record{Topic: topic, Value: []byte(line)}
		if k, v, ok := strings.Cut(line, "\t"); ok {
			r.Key, r.Value = []byte(k), []byte(v)
		}
		recs = append(recs, r)
	}
	return cl.ProduceSync(context.Background(), recs...).FirstErr()
}

// Command kfake serves an in-process Kafka cluster (franz-go's kfake) on
// loopback until SIGINT or SIGTERM, for the script tests, which run the real
// binaries against it:
//
//	kfake [-brokers N] [-partitions P] [-topic T]... [-ports P1,P2] [-data DIR] [-ready FILE]
//
// Once it listens it writes its seed addresses (HOST:PORT,...) to FILE (or
// stdout). With -data it keeps its topics in DIR and loads them again at the
// next start (a broker that goes away and comes back, on the same -ports).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/dstream/dstream/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kfake"
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
	var topics list
	flag.Var(&topics, "topic", "a topic to create (repeatable)")
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
	seeds := kafkatest.Seeds(c) + "\n"
	if *ready == "" {
		fmt.Print(seeds)
	} else if err := os.WriteFile(*ready+".tmp", []byte(seeds), 0o644); err != nil || os.Rename(*ready+".tmp", *ready) != nil {
		fmt.Fprintf(os.Stderr, "kfake: writing %s: %v\n", *ready, err)
		return 1
	}
	<-sig
	return 0
}

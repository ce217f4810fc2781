// Command kread prints the messages of a Kafka topic that a read_committed
// consumer sees, for the script tests (there is no Kafka source to read
// them back with yet):
//
//	kread SEEDS TOPIC
//
// SEEDS are HOST:PORT,... as the kfake command writes them. One line per
// message, by partition and offset: the partition, the key (<null> for
// none), the headers as [NAME=VALUE ...], and the value; a value or key
// that is empty or not printable UTF-8 is quoted as Go does.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dstream/dstream/internal/kafkatest"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kread SEEDS TOPIC")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := kafkatest.Read(ctx, os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kread: %v\n", err)
		return 1
	}
	w := bufio.NewWriter(os.Stdout)
	for _, r := range recs {
		key := "<null>"
		if r.Key != nil {
			key = text(r.Key)
		}
		fmt.Fprintf(w, "%d %s [", r.Partition, key)
		for i, h := range r.Headers {
			if i > 0 {
				w.WriteByte(' ')
			}
			fmt.Fprintf(w, "%s=%s", h.Key, text(h.Value))
		}
		fmt.Fprintf(w, "] %s\n", text(r.Value))
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "kread: %v\n", err)
		return 1
	}
	return 0
}

// text is b as it is if it is printable UTF-8, else quoted (an empty one
// too).
func text(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) || s == "" {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

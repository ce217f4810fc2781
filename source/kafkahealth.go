package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dstream/dstream/stage"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaHealth watches the connections of a Kafka source's clients (a kgo
// hook): a broker that cannot be reached gets a note on stderr while kgo
// retries it with backoff, and another when it is back; one that stays
// unreachable for longer than --server-timeout fails the source, naming it.
type kafkaHealth struct {
	spec  string
	notes io.Writer
	mu    sync.Mutex
	down  map[string]time.Time // by broker address: failing since
}

func newKafkaHealth(spec string, notes io.Writer) *kafkaHealth {
	return &kafkaHealth{spec: spec, notes: notes, down: map[string]time.Time{}}
}

func (h *kafkaHealth) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if errors.Is(err, context.Canceled) {
		return // a dial the client gave up itself (closing, or no longer needed)
	}
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	h.mu.Lock()
	defer h.mu.Unlock()
	since, wasDown := h.down[addr]
	switch {
	case err != nil && !wasDown:
		h.down[addr] = time.Now()
		fmt.Fprintf(h.notes, "sbatch: note: %s: broker %s unreachable (%v), retrying\n", h.spec, addr, err)
	case err == nil && wasDown:
		delete(h.down, addr)
		fmt.Fprintf(h.notes, "sbatch: note: %s: broker %s connected again after %v\n", h.spec, addr, time.Since(since).Round(time.Second))
	}
}

// failed returns the error of brokers unreachable for longer than timeout,
// or nil.
func (h *kafkaHealth) failed(timeout time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var gone []string
	for addr, since := range h.down {
		if time.Since(since) > timeout {
			gone = append(gone, addr)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	slices.Sort(gone)
	return stage.Hint(fmt.Errorf("broker %s unreachable for more than %v", strings.Join(gone, ", "), timeout),
		"check that Kafka is up at that address; --server-timeout sets how long sbatch waits for a broker")
}

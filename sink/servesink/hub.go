package servesink

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// writeTimeout bounds one write to a client of /events: a client that
// takes no data for that long is dropped.
const writeTimeout = 30 * time.Second

// An event is one batch as sent: its sequence number in this run (the
// event id's second part) and its JSON.
type event struct {
	seq  uint64
	data []byte
}

// A hub keeps the last batches and sends each new one to the clients of
// /events. Its methods are safe for concurrent use: publish is called by
// the sink, the handlers by the HTTP server.
//
// The history is each client's queue, bounded by keep: publish only wakes
// the clients, and each sends on its own goroutine the kept batches after
// the last it sent. A client that stops reading holds up no one; when it
// reads again it gets the kept batches, and a "lost" event for those that
// left the history meanwhile. (Why not a channel per client: a client
// would then lose the newest batches, not the oldest, and with no batch
// after them it would never see the last one.)
type hub struct {
	run    string // drawn per run: event ids are RUN-SEQ
	keep   int
	config []byte // the "config" event's JSON

	mu      sync.Mutex
	seq     uint64
	history []event // the last keep batches, oldest first
	clients map[*client]struct{}
	done    chan struct{} // closed at the end of the input
	ended   bool
}

// A client is one reader of /events: publish wakes it.
type client struct {
	wake chan struct{}
}

// newHub returns the hub of a run with these charts, keeping keep batches.
func newHub(charts []Chart, keep int) *hub {
	var id [6]byte
	rand.Read(id[:])
	h := &hub{run: hex.EncodeToString(id[:]), keep: keep, clients: map[*client]struct{}{}, done: make(chan struct{})}
	if charts == nil {
		charts = []Chart{}
	}
	h.config, _ = json.Marshal(struct {
		Run    string  `json:"run"`
		Keep   int     `json:"keep"`
		Charts []Chart `json:"charts"`
	}{h.run, keep, charts})
	return h
}

// publish keeps a batch's JSON and wakes every client, without ever
// waiting for one.
func (h *hub) publish(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev := event{h.seq, data}
	if len(h.history) == h.keep {
		copy(h.history, h.history[1:])
		h.history = h.history[:h.keep-1]
	}
	h.history = append(h.history, ev)
	for c := range h.clients {
		select {
		case c.wake <- struct{}{}:
		default: // woken already
		}
	}
}

// end tells the clients that the input ended.
func (h *hub) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ended {
		h.ended = true
		close(h.done)
	}
}

// since returns the kept batches after sequence number last, and the
// newest n of them if n > 0.
func (h *hub) since(last uint64, n int) []event {
	h.mu.Lock()
	defer h.mu.Unlock()
	evs := h.history
	i := 0
	for i < len(evs) && evs[i].seq <= last {
		i++
	}
	evs = evs[i:]
	if n > 0 && len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	return slices.Clone(evs)
}

// lastSeq is the sequence number of an event id of this run (from
// Last-Event-ID), or 0 for "" or an id of another run.
func (h *hub) lastSeq(id string) uint64 {
	if run, seq, ok := strings.Cut(id, "-"); ok && run == h.run {
		if s, err := strconv.ParseUint(seq, 10, 64); err == nil {
			return s
		}
	}
	return 0
}

// batches serves /batches: {"config": ..., "batches": [...]}, the kept
// batches oldest first, or the last N of them with ?last=N.
func (h *hub) batches(w http.ResponseWriter, r *http.Request) {
	n := 0
	if s := r.URL.Query().Get("last"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			http.Error(w, fmt.Sprintf("last=%s: want a number of batches, 1 or more", s), http.StatusBadRequest)
			return
		}
	}
	evs := h.since(0, n)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	buf := append([]byte(`{"config":`), h.config...)
	buf = append(buf, `,"batches":[`...)
	for i, ev := range evs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, ev.data...)
	}
	buf = append(buf, "]}\n"...)
	w.Write(buf)
}

// events serves /events, the Server-Sent Events stream: a "config" event,
// the kept batches (those after Last-Event-ID when it names this run),
// then each batch as it comes; "lost" (data: how many) before a batch
// when batches this client should have had left the history before it
// read them; "end" at the end of the input.
func (h *hub) events(w http.ResponseWriter, r *http.Request) {
	c := &client{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	buf := append([]byte("retry: 2000\n"), appendEvent(nil, "", "config", h.config)...)
	last := h.lastSeq(r.Header.Get("Last-Event-ID"))
	resumed := last > 0 // a page opened late misses nothing it had
	for {
		// Ended is read before the batches: the batches published before
		// the end are all sent before "end".
		h.mu.Lock()
		ended := h.ended
		h.mu.Unlock()
		evs := h.since(last, 0)
		if len(evs) > 0 {
			if gap := evs[0].seq - last - 1; gap > 0 && resumed {
				buf = appendEvent(buf, "", "lost", strconv.AppendUint(nil, gap, 10))
			}
			for _, ev := range evs {
				buf = h.appendBatch(buf, ev)
			}
			last = evs[len(evs)-1].seq
		}
		resumed = true
		if ended {
			buf = appendEvent(buf, "", "end", nil)
		}
		if len(buf) > 0 {
			rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			_, err := w.Write(buf)
			if err == nil {
				err = rc.Flush()
			}
			if err != nil || ended {
				return
			}
			buf = buf[:0]
		}
		select {
		case <-c.wake:
		case <-h.done:
		case <-r.Context().Done():
			return
		}
	}
}

// appendBatch appends the "batch" event of ev.
func (h *hub) appendBatch(dst []byte, ev event) []byte {
	id := make([]byte, 0, 32)
	id = append(id, h.run...)
	id = append(id, '-')
	id = strconv.AppendUint(id, ev.seq, 10)
	return appendEvent(dst, string(id), "batch", ev.data)
}

// appendEvent appends one Server-Sent Event; data has no newline (it is
// compact JSON or a number, or empty).
func appendEvent(dst []byte, id, name string, data []byte) []byte {
	if id != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, id...)
		dst = append(dst, '\n')
	}
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	dst = append(dst, "\ndata:"...)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, "\n\n"...)
}

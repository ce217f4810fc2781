package changelog

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lsoPoll is the pause between looks at a partition's last stable offset
// while an open transaction holds it.
const lsoPoll = 20 * time.Millisecond

// fetchBytes is the most a fetch of a restore asks for: a restore reads a
// whole partition, so fewer, larger fetches (kgo's default is 1 MiB per
// partition).
const fetchBytes = 32 << 20

// Restore reads partition p of the changelog, the state of source
// partition p, and calls fn once for each key it holds, with the key's
// last value, in the order the keys first appear. A tombstone drops a key;
// changes of aborted transactions are not seen (read_committed). It returns
// the number of keys.
//
// It reads to the end of the transactions that were open when it started:
// their producer may be the dead copy that owned p before, whose last
// transaction the broker aborts only at its transaction timeout, and its
// outcome decides the state. It waits for them up to the Config's
// Timeout, and then fails, naming the partition.
//
// key and value are valid only during the call to fn.
func (s *Store) Restore(ctx context.Context, p int32, fn func(key, value []byte) error) (keys int, err error) {
	if p < 0 || p >= s.parts {
		return 0, fmt.Errorf("changelog %s: no partition %d (of %d)", s.cfg.Topic, p, s.parts)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RestoreTimeout)
	defer cancel()
	start, end, err := s.bounds(ctx, p)
	if err != nil || end <= start {
		return 0, err
	}
	st, err := s.read(ctx, p, start, end)
	if err != nil {
		return 0, err
	}
	for _, e := range st.entries {
		if e.value == nil {
			continue
		}
		keys++
		if err := fn(e.key, e.value); err != nil {
			return keys, err
		}
	}
	return keys, nil
}

// bounds returns where partition p starts and where its restore ends: at
// the last stable offset once it has passed the high watermark seen first.
func (s *Store) bounds(ctx context.Context, p int32) (start, end int64, err error) {
	topic := s.cfg.Topic
	offset := func(what string, l kadm.ListedOffsets, err error) (int64, error) {
		if err == nil {
			err = l.Error()
		}
		o, ok := l.Lookup(topic, p)
		if err == nil && !ok {
			err = fmt.Errorf("not listed")
		}
		if err != nil {
			return 0, fmt.Errorf("changelog %s: partition %d: listing its %s: %w", topic, p, what, err)
		}
		return o.Offset, nil
	}
	l, err := s.adm.ListStartOffsets(ctx, topic)
	if start, err = offset("start", l, err); err != nil {
		return 0, 0, err
	}
	l, err = s.adm.ListEndOffsets(ctx, topic)
	hw, err := offset("high watermark", l, err)
	if err != nil {
		return 0, 0, err
	}
	held := start // the last stable offset last seen
	for {
		l, err := s.adm.ListCommittedOffsets(ctx, topic)
		lso, err := offset("last stable offset", l, err)
		if err == nil {
			held = lso
		}
		switch {
		case ctx.Err() != nil:
			return 0, 0, fmt.Errorf("changelog %s: partition %d: a transaction open at offset %d or later did not end within %v, and the state depends on it (a dead producer's ends at its transaction timeout, %v for this store's)",
				topic, p, held, s.cfg.RestoreTimeout, s.cfg.TxnTimeout)
		case err != nil:
			return 0, 0, err
		case lso >= hw:
			return start, lso, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(lsoPoll):
		}
	}
}

// state is a partition's keys and their last values, in the order the
// keys first appear. A dropped key's entry stays, with a nil value; a key
// that comes back gets a new entry.
type state struct {
	entries []entry
	index   map[string]int // of the live keys in entries
}

type entry struct{ key, value []byte }

func (st *state) set(key, value []byte) {
	i, ok := st.index[string(key)] // no allocation: see field-notes
	switch {
	case ok && value != nil:
		st.entries[i].value = value
	case ok:
		st.entries[i].value = nil
		delete(st.index, string(key))
	case value != nil:
		st.index[string(key)] = len(st.entries)
		st.entries = append(st.entries, entry{key, value})
	}
}

// read reads partition p from start to end, read_committed.
//
// Why it ends exactly without waiting for quiet: it keeps the control
// records (transaction markers), so that the record before end, a commit
// or abort marker or a change outside any transaction, is always handed
// to it (as kafkatest.Read). Compaction never takes that record away: it
// is in the active segment, which the cleaner leaves alone (a segment
// rolls only when a record is appended, and the new record goes to the new
// segment).
func (s *Store) read(ctx context.Context, p int32, start, end int64) (*state, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.cfg.Seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.Topic: {p: kgo.NewOffset().At(start)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(fetchBytes),
		kgo.FetchMaxPartitionBytes(fetchBytes),
	)
	if err != nil {
		return nil, fmt.Errorf("changelog %s: partition %d: %w", s.cfg.Topic, p, err)
	}
	defer cl.Close()
	st := &state{index: make(map[string]int)}
	for at := start; at < end; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("changelog %s: partition %d: read to offset %d of %d within %v: %w", s.cfg.Topic, p, at, end, s.cfg.RestoreTimeout, err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return nil, fmt.Errorf("changelog %s: partition %d: %w", s.cfg.Topic, p, errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end {
				return // a later transaction's, committed meanwhile
			}
			at = r.Offset + 1
			if r.Attrs.IsControl() || bytes.Equal(r.Key, offsetsMarker) {
				return
			}
			st.set(r.Key, r.Value)
		})
	}
	return st, nil
}

package checkpoint

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, s := range []string{"one", "two, longer", "3"} {
		if err := WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != s {
			t.Fatalf("read %q, %v; want %q", b, err, s)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func TestStore(t *testing.T) {
	root := t.TempDir()
	s, err := OpenStore(root, "sreduce")
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir() != filepath.Join(root, "state", "sreduce") {
		t.Errorf("Dir %s", s.Dir())
	}
	list := func() []uint64 {
		ids, err := s.List()
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	save := func(id uint64) {
		err := s.Save(Header{Batch: id, Time: int64(id) * 1000, Fingerprint: "fp"}, func(w io.Writer) error {
			_, err := w.Write([]byte{byte(id)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if ids := list(); len(ids) != 0 {
		t.Errorf("new store has %v", ids)
	}
	for id := range uint64(12) {
		save(id)
	}
	if ids := list(); !slices.Equal(ids, []uint64{10, 11}) {
		t.Errorf("after 12 saves: %v, want [10 11]", ids)
	}
	snap, err := s.Load(11, "fp")
	if err != nil || snap.Batch != 11 || snap.Time != 11000 || !bytes.Equal(snap.Data, []byte{11}) {
		t.Errorf("Load: %+v, %v", snap, err)
	}
	// Saving an older batch again (a replay) drops the newer history.
	save(5)
	if ids := list(); !slices.Equal(ids, []uint64{5}) {
		t.Errorf("after a replay of batch 5: %v, want [5]", ids)
	}
	save(6)
	save(7)
	if ids := list(); !slices.Equal(ids, []uint64{6, 7}) {
		t.Errorf("%v, want [6 7]", ids)
	}
	// Other files and leftovers.
	os.WriteFile(filepath.Join(s.Dir(), "notes.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(s.Dir(), "007.snapshot"), nil, 0o644)
	os.WriteFile(filepath.Join(s.Dir(), tmpPrefix+"8.snapshot-123"), nil, 0o644)
	if ids := list(); !slices.Equal(ids, []uint64{6, 7}) {
		t.Errorf("with other files: %v", ids)
	}
	if _, err := OpenStore(root, "sreduce"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), tmpPrefix+"8.snapshot-123")); !errors.Is(err, os.ErrNotExist) {
		t.Error("OpenStore left a temporary file")
	}
}

func TestMismatch(t *testing.T) {
	s, _ := OpenStore(t.TempDir(), "x")
	s.Save(Header{Batch: 3, Fingerprint: "keys=a"}, nop)
	var m *MismatchError
	if _, err := s.Load(3, "keys=b"); !errors.As(err, &m) || m.Have != "keys=a" || m.Want != "keys=b" {
		t.Errorf("Load: %v", err)
	}
	if err := s.Check(3, "keys=b"); !errors.As(err, &m) {
		t.Errorf("Check: %v", err)
	}
	if err := s.Check(3, "keys=a"); err != nil {
		t.Errorf("Check: %v", err)
	}
	want := "checkpoint " + s.Dir() + " was written by a different configuration (keys=a), not this one (keys=b)"
	if m.Error() != want {
		t.Errorf("%s\nwant\n%s", m.Error(), want)
	}
}

func nop(io.Writer) error { return nil }

func TestSaveFails(t *testing.T) {
	s, _ := OpenStore(t.TempDir(), "x")
	s.Save(Header{Batch: 1, Fingerprint: "fp"}, nop)
	boom := errors.New("boom")
	if err := s.Save(Header{Batch: 2, Fingerprint: "fp"}, func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Save: %v", err)
	}
	if ids, _ := s.List(); !slices.Equal(ids, []uint64{1}) {
		t.Errorf("a failed save left %v", ids)
	}
	if ents, _ := os.ReadDir(s.Dir()); len(ents) != 2 { // the snapshot and the lock
		t.Errorf("a failed save left files: %v", ents)
	}
}

func TestCorrupt(t *testing.T) {
	s, _ := OpenStore(t.TempDir(), "x")
	s.Save(Header{Batch: 3, Time: 7, Fingerprint: "fp"}, func(w io.Writer) error {
		_, err := io.WriteString(w, "state")
		return err
	})
	good, _ := os.ReadFile(s.Path(3))
	if want := Encode(nil, &Snapshot{Header{3, 7, "fp"}, []byte("state")}); !bytes.Equal(good, want) {
		t.Errorf("Save wrote %q, Encode %q", good, want)
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x20
		if _, err := Decode(b); err == nil {
			t.Errorf("flipping byte %d went unnoticed", i)
		}
	}
	for i := range good {
		if _, err := Decode(good[:i]); err == nil {
			t.Errorf("cut at %d went unnoticed", i)
		}
	}
	b := bytes.Clone(good)
	b[len(Magic)] = 2
	if _, err := Decode(b); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2: %v", err)
	}
	// A snapshot file renamed to another batch is refused.
	os.Rename(s.Path(3), s.Path(4))
	if _, err := s.Load(4, "fp"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("renamed: %v", err)
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"sreduce", "counts-2", "a.b_c"} {
		if err := ValidName(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", ".x", "a/b", `a\b`, "a b"} {
		if ValidName(n) == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(nil, &Snapshot{Header{Batch: 1 << 63, Time: -1, Fingerprint: "fp"}, []byte{1, 2, 3}}))
	f.Add([]byte(Magic + "\x01\x80"))
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, err := Decode(b)
		if err != nil {
			return
		}
		if again, err := Decode(Encode(nil, snap)); err != nil || again.Batch != snap.Batch || again.Fingerprint != snap.Fingerprint || !bytes.Equal(again.Data, snap.Data) {
			t.Errorf("round trip: %+v, %v", again, err)
		}
	})
}

// TestReplayingKeeps: in a pipeline whose source replays, while the sink
// has not made DIR/commits yet, every snapshot stays (the sink's first
// commit may be of any of them); once it commits, those from its last
// commit on.
func TestReplayingKeeps(t *testing.T) {
	root := t.TempDir()
	s, err := OpenStore(root, "x")
	if err != nil {
		t.Fatal(err)
	}
	s.Replaying = true
	save := func(id uint64) {
		if err := s.Save(Header{Batch: id, Fingerprint: "fp"}, nop); err != nil {
			t.Fatal(err)
		}
	}
	for id := range uint64(6) {
		save(id)
	}
	if ids, _ := s.List(); !slices.Equal(ids, []uint64{0, 1, 2, 3, 4, 5}) {
		t.Errorf("before the sink began: %v, want all", ids)
	}
	c, err := OpenCommitter(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(3, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(4, 0); err != nil {
		t.Fatal(err)
	}
	save(7)
	save(8)
	if ids, _ := s.List(); !slices.Equal(ids, []uint64{3, 4, 5, 7, 8}) {
		t.Errorf("after commits of 3 and 4: %v, want [3 4 5 7 8]", ids)
	}
}

// TestRestore: the state restored is exactly that of the last commit; a
// restart from 0 or before any commit starts empty; a lost snapshot is an
// error, never an older state.
func TestRestore(t *testing.T) {
	tests := []struct {
		name    string
		snaps   []uint64
		commits []uint64 // nil: no DIR/commits
		first   uint64
		want    int64 // the snapshot restored, -1 none
		err     string
	}{
		{"first batch 0", []uint64{3, 4}, []uint64{4}, 0, -1, ""},
		{"no commit yet", []uint64{3, 4}, nil, 2, -1, ""},
		{"last commit", []uint64{3, 4, 5}, []uint64{2, 4}, 5, 4, ""},
		{"after a gap in ids (a stage after swindow)", []uint64{1, 3, 5}, []uint64{3}, 5, 3, ""},
		{"lost", []uint64{3, 5}, []uint64{4}, 5, -1, "the sink committed up to batch 4, and the state after it"},
		{"not replaying", []uint64{3, 4}, []uint64{4}, 3, -1, "batch 3 arrived first, but the sink"},
	}
	for _, tt := range tests {
		root := t.TempDir()
		if tt.commits != nil {
			c, err := OpenCommitter(root)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range tt.commits {
				c.Commit(id, 0)
			}
		}
		s, err := OpenStore(root, "x")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range tt.snaps {
			s.Keep = 100
			if err := s.Save(Header{Batch: id, Fingerprint: "fp"}, nop); err != nil {
				t.Fatal(err)
			}
		}
		snap, err := s.Restore(tt.first, "fp")
		got := int64(-1)
		if snap != nil {
			got = int64(snap.Batch)
		}
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && (!strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrNoState)) {
			t.Errorf("%s: restored %d, %v; want %d, %q", tt.name, got, err, tt.want, tt.err)
		}
	}
}

// TestStateHints: a state of another configuration, and of another layout
// version (which no option reads), get hints that say which.
func TestStateHints(t *testing.T) {
	root := t.TempDir()
	s, err := OpenStore(root, "w")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(Header{Batch: 0, Fingerprint: "w/1 a"}, nop); err != nil {
		t.Fatal(err)
	}
	for fp, want := range map[string]string{
		"w/1 b": "the thing keeps its own state: give this stage the --name or the options it had",
		"w/2 a": "the thing keeps its own state, and this one is of another layout (w/1; this dstream reads w/2)",
	} {
		st := &State{store: s, fp: fp, what: "the thing"}
		err := st.Begin(1, true, func([]byte) error { return nil })
		var h interface{ Hint() string }
		if !errors.As(err, &h) || !strings.HasPrefix(h.Hint(), want) {
			t.Errorf("%s: %v", fp, err)
		}
	}
}

package checkpoint

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLog(t *testing.T) {
	root := t.TempDir()
	// A temporary file a crash left behind goes at the next open.
	if err := os.MkdirAll(filepath.Join(root, OffsetsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(root, OffsetsDir, tmpPrefix+"3-123")
	if err := os.WriteFile(stray, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLog(root, OffsetsDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file kept: %v", err)
	}
	if _, ok, err := l.Latest(); ok || err != nil {
		t.Errorf("Latest of an empty log: %v, %v", ok, err)
	}
	for _, id := range []uint64{0, 1, 2, 10, 9} {
		e := Offsets{BatchID: id, BatchTime: int64(id) * 1000, Sources: []Range{{Path: "/in", Start: int64(id), End: int64(id) + 1}}, Format: "lines", Config: "c"}
		if err := l.Write(id, e); err != nil {
			t.Fatal(err)
		}
	}
	// Names that are not canonical ids are no entries.
	for _, name := range []string{"007", "x", "-1"} {
		os.WriteFile(filepath.Join(l.Dir(), name), nil, 0o644)
	}
	if ids, err := l.List(); err != nil || !slices.Equal(ids, []uint64{0, 1, 2, 9, 10}) {
		t.Errorf("List: %v, %v", ids, err)
	}
	if id, ok, err := l.Latest(); id != 10 || !ok || err != nil {
		t.Errorf("Latest: %d, %v, %v", id, ok, err)
	}
	var e Offsets
	if err := l.Read(9, &e); err != nil || e.BatchTime != 9000 || e.Sources[0] != (Range{"/in", 9, 10}) {
		t.Errorf("Read: %+v, %v", e, err)
	}
	b, _ := os.ReadFile(l.Path(9))
	if want := `{"batchId":9,"batchTime":9000,"sources":[{"path":"/in","start":9,"end":10}],"format":"lines","config":"c"}` + "\n"; string(b) != want {
		t.Errorf("file:\n%s\nwant\n%s", b, want)
	}
	if err := l.Read(5, &e); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read of a missing entry: %v", err)
	}
	if err := l.Purge(9); err != nil {
		t.Fatal(err)
	}
	if ids, _ := l.List(); !slices.Equal(ids, []uint64{9, 10}) {
		t.Errorf("after Purge(9): %v", ids)
	}
	os.WriteFile(l.Path(11), []byte("{not json"), 0o644)
	if err := l.Read(11, &e); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), l.Path(11)) {
		t.Errorf("Read of a damaged entry: %v", err)
	}
	if ents, _ := os.ReadDir(l.Dir()); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), tmpPrefix) }) {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestReadLogMissing(t *testing.T) {
	root := t.TempDir()
	l := ReadLog(root, CommitsDir)
	if l.Exists() {
		t.Error("a missing log exists")
	}
	if ids, err := l.List(); ids != nil || err != nil {
		t.Errorf("List: %v, %v", ids, err)
	}
	if _, ok, err := LastCommit(root); ok || err != nil {
		t.Errorf("LastCommit: %v, %v", ok, err)
	}
	if _, err := os.Stat(filepath.Join(root, CommitsDir)); !errors.Is(err, os.ErrNotExist) {
		t.Error("ReadLog created the directory")
	}
	c, err := OpenLog(root, CommitsDir)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(4, Commit{BatchID: 4, BatchTime: 1})
	if id, ok, err := LastCommit(root); id != 4 || !ok || err != nil {
		t.Errorf("LastCommit: %d, %v, %v", id, ok, err)
	}
}

// TestStoreKeepsUncommitted: with a sink committing into the directory, a
// stage's snapshots from the last committed batch on stay, however far
// ahead of the sink the stage is, and that of the commit before as a
// margin; without one, the Keep newest.
func TestStoreKeepsUncommitted(t *testing.T) {
	tests := []struct {
		name    string
		commits []uint64 // nil: no DIR/commits
		want    []uint64
	}{
		{"no sink", nil, []uint64{8, 9}},
		{"sink before its first commit", []uint64{}, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"sink behind", []uint64{2, 3}, []uint64{2, 3, 4, 5, 6, 7, 8, 9}},
		{"sink caught up", []uint64{7, 9}, []uint64{7, 8, 9}},
		{"one commit", []uint64{9}, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
	}
	for _, tt := range tests {
		root := t.TempDir()
		if tt.commits != nil {
			c, err := OpenLog(root, CommitsDir)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range tt.commits {
				c.Write(id, Commit{BatchID: id})
			}
		}
		s, err := OpenStore(root, "sreduce")
		if err != nil {
			t.Fatal(err)
		}
		for id := range uint64(10) {
			if err := s.Save(Header{Batch: id, Fingerprint: "fp"}, func(io.Writer) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if ids, _ := s.List(); !slices.Equal(ids, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, ids, tt.want)
		}
	}
}

func TestCommitter(t *testing.T) {
	t.Run("synced", func(t *testing.T) { testCommitter(t, false) })
	// A copy of a destination's own record is the same files, unsynced.
	t.Run("copy", func(t *testing.T) { testCommitter(t, true) })
}

func testCommitter(t *testing.T, copy bool) {
	root := t.TempDir()
	c, err := OpenCommitter(root)
	if err != nil {
		t.Fatal(err)
	}
	c.Copy = copy
	if !ReadLog(root, CommitsDir).Exists() {
		t.Fatal("OpenCommitter made no commits directory")
	}
	if done, err := c.Done(0, 1000); done || err != nil {
		t.Errorf("Done before any commit: %v, %v", done, err)
	}
	for id := range uint64(130) {
		if err := c.Commit(id, int64(id)*1000); err != nil {
			t.Fatal(err)
		}
	}
	// Purged every 16 batches: at 128, those below 28 went.
	if ids, _ := ReadLog(root, CommitsDir).List(); ids[0] != 28 || len(ids) != 102 {
		t.Errorf("after 130 commits: %d from %d", len(ids), ids[0])
	}
	if b, err := os.ReadFile(filepath.Join(root, CommitsDir, "129")); string(b) != `{"batchId":129,"batchTime":129000}`+"\n" {
		t.Errorf("commits/129: %q, %v", b, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(root, CommitsDir, tmpPrefix+"*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	c, err = OpenCommitter(root)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := c.Last(); id != 129 || !ok {
		t.Errorf("Last: %d, %v", id, ok)
	}
	tests := []struct {
		id   uint64
		time int64
		done bool
		err  string
	}{
		{129, 129000, true, ""},
		{50, 50000, true, ""},
		{130, 1, false, ""},
		{50, 7, false, "batch 50 (time 7) arrived, but the batch 50 committed in " + c.Dir() + " had time 50000"},
		{3, 3000, false, "batch 3 arrived after batch 129 was committed in " + c.Dir() + ", and it was not"},
	}
	for _, tt := range tests {
		done, err := c.Done(tt.id, tt.time)
		if done != tt.done || (err == nil) != (tt.err == "") || err != nil && (!errors.Is(err, ErrNotCommitted) || !strings.HasSuffix(err.Error(), tt.err)) {
			t.Errorf("Done(%d, %d): %v, %v; want %v, %q", tt.id, tt.time, done, err, tt.done, tt.err)
		}
	}
}

package source

import (
	"reflect"
	"testing"

	"github.com/dstream/dstream/checkpoint"
)

// TestTrackerRanges: a batch covers the input from where the batch before
// it ended to its cut, across files; an empty batch says where it stands.
func TestTrackerRanges(t *testing.T) {
	dir := t.TempDir()
	log, err := checkpoint.OpenLog(dir, checkpoint.OffsetsDir)
	if err != nil {
		t.Fatal(err)
	}
	tr := &cursor{t: &fileTracker{lastRun: lastRun{dir: dir}, log: log, files: []string{"/a", "/b", "/c"}, sizes: make([]int64, 3), format: "lines", fp: "fp"}}
	write := func(id uint64, want ...checkpoint.Range) {
		t.Helper()
		if err := tr.write(id, int64(id)); err != nil {
			t.Fatal(err)
		}
		var e checkpoint.Offsets
		if err := log.Read(id, &e); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(e.Sources, want) {
			t.Errorf("batch %d: %v, want %v", id, e.Sources, want)
		}
	}
	write(0, rg("/a", 0, 0)) // nothing read yet
	tr.taken(&chunk{stream: 0, n: 2, ends: []int64{2, 4}})
	write(1, rg("/a", 0, 4))
	write(2, rg("/a", 4, 4)) // an empty batch
	// The rest of /a (and 2 bytes after its last record), all of /b (no
	// record), and the first record of /c, cut there.
	tr.taken(&chunk{stream: 0, n: 1, ends: []int64{6}, done: true, size: 8})
	tr.taken(&chunk{stream: 1, done: true, size: 0})
	c := &chunk{stream: 2, n: 2, ends: []int64{3, 5}}
	tr.record(c, 0)
	write(3, rg("/a", 4, 8), rg("/c", 0, 3))
	tr.taken(c)
	tr.taken(&chunk{stream: 2, done: true, size: 5})
	write(4, rg("/c", 3, 5))
	// Replayed chunks do not move the position.
	tr.taken(&chunk{stream: 0, n: 1, ends: []int64{2}, replay: true})
	write(5, rg("/c", 5, 5))
}

func rg(path string, start, end int64) checkpoint.Range {
	return checkpoint.Range{Path: path, Start: start, End: end}
}

func TestFingerprint(t *testing.T) {
	files := []string{"/in"}
	tests := []struct {
		o    Options
		want string
	}{
		{Options{Format: "lines", Count: 2, Interval: 1000}, `sbatch/1 format=lines count=2 files=["/in"]`},
		{Options{Format: "lines", Count: 2, Interval: 500, IntervalSet: true}, `sbatch/1 format=lines count=2 interval=500ms files=["/in"]`},
		{Options{Format: "csv", Interval: 1000}, `sbatch/1 format=csv interval=1000ms files=["/in"]`},
		{Options{Format: "json", Once: true, Interval: 1000}, `sbatch/1 format=json once files=["/in"]`},
		{Options{Format: "json", TimeField: "ts", Unit: 1000, Interval: 60000}, `sbatch/1 format=json time-field="ts" unit=1000ms interval=60000ms files=["/in"]`},
	}
	for _, tt := range tests {
		if got := fingerprint(&tt.o, files); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

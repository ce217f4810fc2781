package sink

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
)

// Files writes each batch to a file of its own, PREFIX-TIME.SUFFIX (TIME
// the batch time in unix ms, as Spark's saveAsTextFiles names its output),
// written under a temporary name, synced and renamed: a file appears whole
// or not at all.
var Files = Destination{
	Flag:          "files",
	Usage:         "write each batch to a file of its own, `PREFIX`-TIME.SUFFIX (TIME the batch time in unix ms), in --format (default json), atomically",
	Category:      "Files and commands",
	Needs:         "a PREFIX (a path, whose directory must exist)",
	Encodes:       true,
	DefaultFormat: "json", // records for a program or a file, not a table for eyes
	Takes:         []string{"suffix"},
	Open:          openFiles,
}

func openFiles(o *Options, f *codec.Format, _ *bufio.Writer) (Writer, error) {
	if dir := filepath.Dir(o.Target); !isDir(dir) {
		return nil, stage.Hint(fmt.Errorf("--files %s: %s is not a directory", o.Target, dir),
			"the files are PREFIX-TIME.SUFFIX: create the directory of PREFIX first")
	}
	out := &fileOutput{prefix: o.Target, suffix: o.Suffix}
	return newPerBatch(o, f, out.open), nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// fileOutput makes the files of --files PREFIX.
type fileOutput struct {
	prefix, suffix string
	swept          bool
}

// open opens batch b's file. The first one first removes the temporary
// files a run killed in the middle of a batch left behind: no later run
// would ever rename them. Why at the first batch and not at the start:
// ssink has then checked its command line and taken its checkpoint, so a
// run refused at the start does not sweep away the files of the one it
// collided with.
func (o *fileOutput) open(b stage.Batch) (target, error) {
	if !o.swept {
		o.swept = true
		if err := removeLeftovers(o.prefix, o.suffix); err != nil {
			return nil, err
		}
	}
	return openFile(o.prefix, o.suffix, b)
}

// removeLeftovers removes the temporary files of openFile in the directory
// of prefix: .NAME.tmp-RANDOM, NAME a file name of this prefix and suffix
// (PREFIX-TIME.SUFFIX). Nothing else is touched.
func removeLeftovers(prefix, suffix string) error {
	dir, base := filepath.Split(prefix + "-")
	if dir == "" {
		dir = "."
	}
	pat := `^\.` + regexp.QuoteMeta(base) + `-?[0-9]+`
	if suffix != "" {
		pat += regexp.QuoteMeta("." + suffix)
	}
	re := regexp.MustCompile(pat + `\.tmp-[0-9]+$`)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("--files %s: %w", prefix, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !re.MatchString(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--files %s: removing a temporary file left by an earlier run: %w", prefix, err)
		}
	}
	return nil
}

// fileTarget is the file of a batch, PREFIX-TIME.SUFFIX, written under a
// temporary name and renamed when complete (as saveAsTextFiles names its
// output; the rename makes it appear whole, and a batch written again, as
// after a restart, replaces it with the same).
type fileTarget struct {
	f    *os.File
	name string
}

func openFile(prefix, suffix string, b stage.Batch) (target, error) {
	name := prefix + "-" + strconv.FormatInt(b.Time, 10)
	if suffix != "" {
		name += "." + suffix
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &fileTarget{f: f, name: name}, nil
}

func (t *fileTarget) Write(p []byte) (int, error) { return t.f.Write(p) }

func (t *fileTarget) commit() error {
	err := t.f.Sync()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(t.f.Name(), t.name)
	}
	if err == nil {
		err = checkpoint.SyncDir(filepath.Dir(t.name))
	}
	if err != nil {
		os.Remove(t.f.Name())
		return fmt.Errorf("writing %s: %w", t.name, err)
	}
	return nil
}

func (t *fileTarget) abort() {
	t.f.Close()
	os.Remove(t.f.Name())
}

package sink

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/codec"
	"github.com/dstream/dstream/stage"
)

// Files writes each batch to a file of its own, PREFIX-TIME.SUFFIX (TIME
// the batch time in unix ms, as Spark's saveAsTextFiles names its output),
// written under a temporary name, synced and renamed: a file appears whole
// or not at all. With Options.Roll N, a file holds N batches and TIME is
// its first batch's, and with Options.RollSize a file ends at the batch
// that brings it to about that size; with Options.CompressFiles it is
// compressed.
var Files = Destination{
	Flag:          "files",
	Usage:         "write each batch to a file of its own, `PREFIX`-TIME.SUFFIX (TIME the batch time in unix ms), in --format (default json), atomically",
	Category:      "Files and commands",
	Needs:         "a PREFIX (a path, whose directory must exist)",
	Encodes:       true,
	DefaultFormat: "json", // records for a program or a file, not a table for eyes
	Takes:         []string{"suffix", "roll", "roll-size", "compress-files"},
	Open:          openFiles,
}

// compressions are the values of --compress-files: the suffix each adds.
var compressions = map[string]string{"gzip": "gz", "zstd": "zst"}

func openFiles(o *Options, f *codec.Format, _ *bufio.Writer) (Writer, error) {
	if o.Roll < 0 {
		return nil, stage.UsageError("--roll %d: want 1 or more batches per file", o.Roll)
	}
	if o.RollSize < 0 {
		return nil, stage.UsageError("--roll-size %d: want a size in bytes, 1 or more", o.RollSize)
	}
	suffix := o.Suffix
	compress := o.CompressFiles
	if compress != "" {
		z, ok := compressions[compress]
		if !ok {
			return nil, stage.UsageError("unknown --compress-files %q: want gzip or zstd", o.CompressFiles)
		}
		if f.Whole {
			// A Parquet file compresses its pages: a gzip around it
			// would make it unreadable as Parquet.
			o.Codec.Compression, compress = compress, ""
		} else {
			if suffix != "" {
				suffix += "."
			}
			suffix += z
		}
	}
	if dir := filepath.Dir(o.Target); !isDir(dir) {
		return nil, stage.Hint(fmt.Errorf("--files %s: %s is not a directory", o.Target, dir),
			"the files are PREFIX-TIME.SUFFIX: create the directory of PREFIX first")
	}
	out := &fileOutput{prefix: o.Target, suffix: suffix, compress: compress}
	return newPerBatch(o, f, out.open), nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// fileOutput makes the files of --files PREFIX.
type fileOutput struct {
	prefix, suffix string
	compress       string // Options.CompressFiles
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
	return openFile(o.prefix, o.suffix, o.compress, b)
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
	z    io.WriteCloser // the compressor writing to c, or nil
	c    countWriter    // f, counting
	name string
}

// countWriter counts the bytes written to w.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// openFile opens the file of batch b (the first of the file with --roll),
// compressed by compress ("gzip", "zstd" or "").
func openFile(prefix, suffix, compress string, b stage.Batch) (target, error) {
	name := prefix + "-" + strconv.FormatInt(b.Time, 10)
	if suffix != "" {
		name += "." + suffix
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return nil, err
	}
	t := &fileTarget{f: f, c: countWriter{w: f}, name: name}
	switch compress {
	case "gzip":
		t.z = gzip.NewWriter(&t.c)
	case "zstd":
		if t.z, err = zstd.NewWriter(&t.c); err != nil {
			t.abort()
			return nil, err
		}
	}
	return t, nil
}

func (t *fileTarget) Write(p []byte) (int, error) {
	if t.z != nil {
		return t.z.Write(p)
	}
	return t.c.Write(p)
}

// size is the bytes written to the file so far: with compression, what
// the compressor has put out, which lags behind what it was given.
func (t *fileTarget) size() int64 { return t.c.n }

func (t *fileTarget) commit() error {
	var err error
	if t.z != nil {
		err = t.z.Close() // the compressed stream's end
	}
	if err == nil {
		err = t.f.Sync()
	}
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
	if t.z != nil {
		t.z.Close() // frees a zstd encoder's goroutines
	}
	t.f.Close()
	os.Remove(t.f.Name())
}

package framing

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dstream/dstream/record"
)

var update = flag.Bool("update", false, "rewrite the test vectors under testdata/framing")

const vectorDir = "../testdata/framing"

// A vector is a test stream under testdata/framing: a good one reads to its
// end, a bad one fails with err.
type vector struct {
	name    string
	gen     func() []byte
	frames  []string // what a Reader reads before the end or the error
	err     error    // nil for a good stream
	msg     string   // part of the error message: the batch it names
	encoder bool     // the bytes depend on the compressor's version
}

// Building blocks of the vectors, assembled by hand from the layout in
// SPEC.md. TestWriterLayout checks that the Writer assembles the same bytes.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func u64(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// frame returns a frame with a right length and checksum.
func frame(k Kind, flags byte, payload []byte) []byte {
	return rawFrame(uint32(len(payload)), k, flags, crc32.Checksum(payload, castagnoli), payload)
}

func rawFrame(length uint32, k Kind, flags byte, crc uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	b = append(b, byte(k), flags)
	b = binary.BigEndian.AppendUint32(b, crc)
	return append(b, payload...)
}

// block returns the payload of a Records frame holding recs.
func block(recs ...[]byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(recs))), rawBlock(recs...)...)
}

var (
	hdr    = []byte(Magic + "\x01")
	bb7    = frame(KindBatchBegin, 0, u64(7, uint64(t0)))
	recs7  = frame(KindRecords, 0, block(rec("hello"), rec("world")))
	be7    = frame(KindBatchEnd, 0, u64(7, 2))
	bb8    = frame(KindBatchBegin, 0, u64(8, uint64(t0+1000)))
	recs8  = frame(KindRecords, 0, block(rec("again")))
	be8    = frame(KindBatchEnd, 0, u64(8, 1))
	end    = frame(KindEnd, 0, nil)
	twoBat = cat(hdr, bb7, recs7, be7, bb8, recs8, be8, end)
)

// Expected frames, as describe prints them.

func lBegin(id uint64, t int64) string { return fmt.Sprintf("begin %d %d", id, t) }
func lEnd(id, n uint64) string         { return fmt.Sprintf("end %d %d", id, n) }
func lMark(t int64) string             { return fmt.Sprintf("watermark %d", t) }

func lRecs(id uint64, vals ...string) []string {
	out := []string{fmt.Sprintf("records %d %d", id, len(vals))}
	for _, v := range vals {
		out = append(out, "rec "+recString(rec(v)))
	}
	return out
}

func lines(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			out = append(out, p)
		case []string:
			out = append(out, p...)
		default:
			panic(p)
		}
	}
	return out
}

// write runs f on a Writer and returns the stream.
func write(c Compression, blockSize int, f func(w *Writer) error) func() []byte {
	return func() []byte {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.BlockSize = blockSize
		err := w.SetCompression(c)
		if err == nil {
			err = f(w)
		}
		if err == nil {
			err = w.Close()
		}
		if err != nil {
			panic(err)
		}
		return buf.Bytes()
	}
}

func writeRecs(w *Writer, vals ...string) error {
	for _, v := range vals {
		if err := w.WriteRecord(rec(v)); err != nil {
			return err
		}
	}
	return nil
}

func bytesOf(b []byte) func() []byte { return func() []byte { return b } }

var twoBatchFrames = lines(
	lBegin(7, t0), lRecs(7, "hello", "world"), lEnd(7, 2),
	lBegin(8, t0+1000), lRecs(8, "again"), lEnd(8, 1), "eos")

var threeRecs = []string{"hello hello hello", "hello hello world", "world world world"}

var vectors = []vector{
	// Good streams.
	{name: "empty-stream.dstream", gen: write(None, BlockSize, func(w *Writer) error { return nil }),
		frames: lines("eos")},
	{name: "empty-batch.dstream", gen: write(None, BlockSize, func(w *Writer) error {
		if err := w.BeginBatch(7, t0); err != nil {
			return err
		}
		return w.EndBatch()
	}), frames: lines(lBegin(7, t0), lEnd(7, 0), "eos")},
	{name: "two-batches.dstream", gen: write(None, BlockSize, func(w *Writer) error {
		w.BeginBatch(7, t0)
		writeRecs(w, "hello", "world")
		w.EndBatch()
		w.BeginBatch(8, t0+1000)
		writeRecs(w, "again")
		return w.EndBatch()
	}), frames: twoBatchFrames},
	{name: "two-blocks.dstream", gen: write(None, 1, func(w *Writer) error {
		w.BeginBatch(7, t0)
		writeRecs(w, "hello", "world")
		return w.EndBatch()
	}), frames: lines(lBegin(7, t0), lRecs(7, "hello"), lRecs(7, "world"), lEnd(7, 2), "eos")},
	{name: "watermark.dstream", gen: write(None, BlockSize, func(w *Writer) error {
		w.Watermark(t0 - 5000)
		w.BeginBatch(7, t0)
		writeRecs(w, "hello")
		w.EndBatch()
		return w.Watermark(t0 - 4000)
	}), frames: lines(lMark(t0-5000), lBegin(7, t0), lRecs(7, "hello"), lEnd(7, 1), lMark(t0-4000), "eos")},
	{name: "skippable-frame.dstream", gen: write(None, BlockSize, func(w *Writer) error {
		w.WriteSkippable(SkipFirst, []byte("note"))
		w.BeginBatch(7, t0)
		w.WriteSkippable(SkipLast, nil)
		writeRecs(w, "hello")
		return w.EndBatch()
	}), frames: lines(lBegin(7, t0), lRecs(7, "hello"), lEnd(7, 1), "eos")},
	{name: "checkpoint.dstream", gen: write(None, BlockSize, func(w *Writer) error {
		w.Checkpoint("5f3a", "/var/lib/app/ck")
		w.BeginBatch(7, t0)
		writeRecs(w, "hello")
		return w.EndBatch()
	}), frames: lines("checkpoint 5f3a /var/lib/app/ck", lBegin(7, t0), lRecs(7, "hello"), lEnd(7, 1), "eos")},
	{name: "checkpoint-inside-batch.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindCheckpoint, 0, []byte("\x01a/ck")), recs7, be7, end)),
		frames: lines(lBegin(7, t0)), err: ErrSequence, msg: "batch 7: framing: frame out of sequence: Checkpoint frame inside a batch"},
	{name: "checkpoint-bad-id.dstream", gen: bytesOf(cat(hdr, frame(KindCheckpoint, 0, []byte("\x09a/ck")), end)),
		err: ErrCorrupt, msg: "before the first batch: framing: corrupt frame: Checkpoint frame with a bad id length"},
	{name: "s2.dstream", encoder: true, gen: write(S2, BlockSize, func(w *Writer) error {
		w.BeginBatch(7, t0)
		writeRecs(w, threeRecs...)
		return w.EndBatch()
	}), frames: lines(lBegin(7, t0), lRecs(7, threeRecs...), lEnd(7, 3), "eos")},
	{name: "zstd.dstream", encoder: true, gen: write(Zstd, BlockSize, func(w *Writer) error {
		w.BeginBatch(7, t0)
		writeRecs(w, threeRecs...)
		return w.EndBatch()
	}), frames: lines(lBegin(7, t0), lRecs(7, threeRecs...), lEnd(7, 3), "eos")},
	// A Reader stops at End and does not read what follows.
	{name: "bytes-after-end.dstream", gen: bytesOf(cat(hdr, end, []byte("more"))), frames: lines("eos")},

	// Bad streams.
	{name: "not-dstream.txt", gen: bytesOf([]byte("time,value\n1,2\n")),
		err: ErrNotDstream, msg: `it starts with "time,value\n1,2\n"`},
	{name: "empty.dstream", gen: bytesOf(nil), err: ErrTruncated, msg: "the input is empty"},
	{name: "truncated-header.dstream", gen: bytesOf([]byte("DSTRE")), err: ErrTruncated, msg: "stream header"},
	{name: "bad-version.dstream", gen: bytesOf(cat([]byte(Magic+"\x02"), end)), err: ErrVersion, msg: "version 2"},
	{name: "truncated-frame-header.dstream", gen: bytesOf(cat(hdr, bb7, recs7[:4])),
		frames: lines(lBegin(7, t0)), err: ErrTruncated, msg: "batch 7: framing: stream truncated: the stream ended inside a frame header"},
	{name: "truncated-frame.dstream", gen: bytesOf(cat(hdr, bb7, recs7[:15])),
		frames: lines(lBegin(7, t0)), err: ErrTruncated, msg: "batch 7: framing: stream truncated: the stream ended inside a Records frame of 29 bytes"},
	{name: "truncated-huge-frame.dstream", gen: bytesOf(cat(hdr, rawFrame(60<<20, KindRecords, 0, 0, []byte{1, 2, 3}))),
		err: ErrTruncated, msg: "before the first batch: framing: stream truncated: the stream ended inside a Records frame of 62914560 bytes"},
	{name: "missing-end.dstream", gen: bytesOf(twoBat[:len(twoBat)-len(end)]),
		frames: twoBatchFrames[:len(twoBatchFrames)-1], err: ErrTruncated, msg: "after batch 8: framing: stream truncated: the stream ended without its end-of-stream frame"},
	{name: "unfinished-batch.dstream", gen: bytesOf(cat(hdr, bb7, recs7)),
		frames: lines(lBegin(7, t0), lRecs(7, "hello", "world")), err: ErrTruncated, msg: "batch 7: "},
	{name: "bad-checksum.dstream", gen: func() []byte {
		b := cat(hdr, bb7, recs7, be7, end)
		i := bytes.Index(b, []byte("world"))
		b[i] ^= 0x20
		return b
	}, frames: lines(lBegin(7, t0)), err: ErrChecksum, msg: "batch 7: framing: checksum mismatch: Records frame of 29 bytes"},
	{name: "bad-count.dstream", gen: bytesOf(cat(hdr, bb7, recs7, frame(KindBatchEnd, 0, u64(7, 3)), end)),
		frames: lines(lBegin(7, t0), lRecs(7, "hello", "world")), err: ErrCorrupt, msg: "batch 7: framing: corrupt frame: the batch ends with 3 records but carried 2"},
	{name: "bad-batch-id.dstream", gen: bytesOf(cat(hdr, bb7, recs7, frame(KindBatchEnd, 0, u64(8, 2)), end)),
		frames: lines(lBegin(7, t0), lRecs(7, "hello", "world")), err: ErrSequence, msg: "batch 7: framing: frame out of sequence: BatchEnd for batch 8"},
	{name: "records-outside-batch.dstream", gen: bytesOf(cat(hdr, recs7, end)),
		err: ErrSequence, msg: "before the first batch: framing: frame out of sequence: Records frame outside a batch"},
	{name: "nested-batch.dstream", gen: bytesOf(cat(hdr, bb7, bb8, end)),
		frames: lines(lBegin(7, t0)), err: ErrSequence, msg: "batch 7: framing: frame out of sequence: BatchBegin frame inside a batch"},
	{name: "batch-end-outside-batch.dstream", gen: bytesOf(cat(hdr, bb7, recs7, be7, be7, end)),
		frames: lines(lBegin(7, t0), lRecs(7, "hello", "world"), lEnd(7, 2)), err: ErrSequence, msg: "after batch 7: "},
	{name: "watermark-inside-batch.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindWatermark, 0, u64(uint64(t0))), be7, end)),
		frames: lines(lBegin(7, t0)), err: ErrSequence, msg: "batch 7: framing: frame out of sequence: Watermark frame inside a batch"},
	{name: "end-inside-batch.dstream", gen: bytesOf(cat(hdr, bb7, recs7, end)),
		frames: lines(lBegin(7, t0), lRecs(7, "hello", "world")), err: ErrSequence, msg: "batch 7: framing: frame out of sequence: End frame inside a batch"},
	{name: "unknown-kind.dstream", gen: bytesOf(cat(hdr, bb7, recs7, be7, frame(0x07, 0, []byte("new")), end)),
		frames: lines(lBegin(7, t0), lRecs(7, "hello", "world"), lEnd(7, 2)), err: ErrUnknown, msg: "after batch 7: framing: unknown frame kind: UNKNOWN_KIND_0x07"},
	{name: "unknown-kind-0x80.dstream", gen: bytesOf(cat(hdr, frame(0x80, 0, nil), end)),
		err: ErrUnknown, msg: "UNKNOWN_KIND_0x80"},
	{name: "unknown-kind-0x00.dstream", gen: bytesOf(cat(hdr, make([]byte, FrameHeaderLen))),
		err: ErrUnknown, msg: "UNKNOWN_KIND_0x00"},
	{name: "too-large-length.dstream", gen: bytesOf(cat(hdr, bb7, rawFrame(MaxPayload+1, KindRecords, 0, 0, nil))),
		frames: lines(lBegin(7, t0)), err: ErrTooLarge, msg: "batch 7: framing: frame too large: Records frame of 67108865 bytes exceeds the limit of 67108864"},
	{name: "bad-flags.dstream", gen: bytesOf(cat(hdr, frame(KindBatchBegin, FlagS2, u64(7, uint64(t0))), end)),
		err: ErrCorrupt, msg: "BatchBegin frame with flags 0x01"},
	{name: "unknown-flag.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindRecords, 0x04, block(rec("hello"))), end)),
		frames: lines(lBegin(7, t0)), err: ErrCorrupt, msg: "batch 7: framing: corrupt frame: Records frame with flags 0x04"},
	{name: "both-compressions.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindRecords, FlagS2|FlagZstd, block(rec("hello"))), end)),
		frames: lines(lBegin(7, t0)), err: ErrCorrupt, msg: "Records frame with flags 0x03"},
	{name: "short-batch-begin.dstream", gen: bytesOf(cat(hdr, frame(KindBatchBegin, 0, u64(7, uint64(t0))[:15]), end)),
		err: ErrCorrupt, msg: "BatchBegin frame of 15 bytes, want 16"},
	{name: "long-end.dstream", gen: bytesOf(cat(hdr, frame(KindEnd, 0, []byte{0}))),
		err: ErrCorrupt, msg: "End frame of 1 bytes, want 0"},
	{name: "empty-records.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindRecords, 0, nil), end)),
		frames: lines(lBegin(7, t0)), err: ErrCorrupt, msg: "batch 7: framing: corrupt frame: Records frame with a bad record count"},
	{name: "record-overrun.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindRecords, 0, []byte{1, 10, 0x80, 0xc0}), end)),
		frames: lines(lBegin(7, t0)), err: ErrCorrupt, msg: "batch 7: framing: corrupt frame: Records frame: record 0 overruns the frame"},
	{name: "record-count-too-high.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindRecords, 0, append([]byte{2}, rawBlock(rec("hello"))...)), end)),
		frames: lines(lBegin(7, t0)), err: ErrCorrupt, msg: "record 1 overruns the frame"},
	{name: "second-block-overrun.dstream", gen: bytesOf(cat(hdr, bb7, recs7, frame(KindRecords, 0, append([]byte{2}, rawBlock(rec("hello"))...)), end)),
		frames: lines(lBegin(7, t0), lRecs(7, "hello", "world")), err: ErrCorrupt, msg: "batch 7: framing: corrupt frame: Records frame: record 1 overruns the frame"},
	{name: "bytes-after-records.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindRecords, 0, append(block(rec("hello")), 0xc0)), end)),
		frames: lines(lBegin(7, t0)), err: ErrCorrupt, msg: "1 bytes after the last record"},
	{name: "bad-s2.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindRecords, FlagS2, []byte{20, 0xff, 0xff}), end)),
		frames: lines(lBegin(7, t0)), err: ErrCorrupt, msg: "batch 7: framing: corrupt frame: s2: "},
	{name: "s2-too-large.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindRecords, FlagS2, binary.AppendUvarint(nil, MaxPayload+1)), end)),
		frames: lines(lBegin(7, t0)), err: ErrTooLarge, msg: "batch 7: framing: frame too large: Records frame decompresses to 67108865 bytes"},
	{name: "bad-zstd.dstream", gen: bytesOf(cat(hdr, bb7, frame(KindRecords, FlagZstd, []byte("not zstd")), end)),
		frames: lines(lBegin(7, t0)), err: ErrCorrupt, msg: "batch 7: framing: corrupt frame: zstd: "},
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatalf("%v (run go test ./framing -run TestVectors -update)", err)
	}
	return b
}

// TestVectors checks each vector under testdata/framing: a good one reads
// to the frames it holds, a bad one fails with its sentinel error and a
// message naming the batch. With -update it writes the vectors first.
func TestVectors(t *testing.T) {
	if *update {
		if err := os.MkdirAll(vectorDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			gen := v.gen()
			if *update {
				if err := os.WriteFile(filepath.Join(vectorDir, v.name), gen, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b := readVector(t, v.name)
			// A compressor may change its output between versions: the file
			// on disk, which readers must keep reading, is what counts.
			if !v.encoder && !bytes.Equal(gen, b) {
				t.Errorf("the file differs from what the test generates (run with -update if the change is meant)\nfile:\n%s\ngenerated:\n%s", annotate(b), annotate(gen))
			}
			got, err := readAll(bytes.NewReader(b))
			if !slices.Equal(got, v.frames) {
				t.Errorf("frames\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(v.frames, "\n"))
			}
			switch {
			case v.err == nil && err != nil:
				t.Errorf("error %v", err)
			case v.err != nil && !errors.Is(err, v.err):
				t.Errorf("error %v, want %v", err, v.err)
			case v.err != nil && !strings.Contains(err.Error(), v.msg):
				t.Errorf("error %q does not contain %q", err, v.msg)
			}
		})
	}
}

// TestVectorFiles checks that every file under testdata/framing is a vector
// of the table, so that none is left untested.
func TestVectorFiles(t *testing.T) {
	ents, err := os.ReadDir(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !slices.ContainsFunc(vectors, func(v vector) bool { return v.name == e.Name() }) {
			t.Errorf("%s is not in the table of vectors", e.Name())
		}
	}
}

// TestWriterLayout checks the Writer against the frames assembled by hand.
func TestWriterLayout(t *testing.T) {
	got := vectors[slices.IndexFunc(vectors, func(v vector) bool { return v.name == "two-batches.dstream" })].gen()
	if !bytes.Equal(got, twoBat) {
		t.Errorf("the Writer wrote\n%s\nwant\n%s", annotate(got), annotate(twoBat))
	}
}

var specBlock = regexp.MustCompile("(?s)```hex ([^\\s`]+)\n(.*?)```")

// TestSpec checks the hex test vectors written out in SPEC.md against the
// files: the hex bytes of each line, before its '#', must be the file.
func TestSpec(t *testing.T) {
	spec, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := specBlock.FindAllSubmatch(spec, -1)
	seen := map[string]bool{}
	for _, m := range blocks {
		name := string(m[1])
		seen[name] = true
		var b []byte
		for i, l := range strings.Split(string(m[2]), "\n") {
			l, _, _ = strings.Cut(l, "#")
			h, err := hex.DecodeString(strings.Join(strings.Fields(l), ""))
			if err != nil {
				t.Fatalf("SPEC.md, %s line %d: %v", name, i+1, err)
			}
			b = append(b, h...)
		}
		if file := readVector(t, name); !bytes.Equal(b, file) {
			t.Errorf("SPEC.md gives %s as\n%x\nbut the file is\n%s", name, b, annotate(file))
		}
	}
	for _, v := range vectors {
		if v.err == nil && !seen[v.name] {
			t.Errorf("SPEC.md does not write out the good vector %s; it is\n%s", v.name, annotate(readVector(t, v.name)))
		}
	}

	// The table of bad vectors gives each one's error message.
	rows := specErrRow.FindAllSubmatch(spec, -1)
	listed := map[string]bool{}
	for _, m := range rows {
		name, msg := string(m[1]), string(m[3])
		listed[name] = true
		i := slices.IndexFunc(vectors, func(v vector) bool { return v.name == name })
		if i < 0 || vectors[i].err == nil {
			t.Errorf("SPEC.md lists %s as a bad vector", name)
			continue
		}
		_, err := readAll(bytes.NewReader(readVector(t, name)))
		if err == nil || err.Error() != msg || !errors.Is(err, vectorErr[string(m[2])]) {
			t.Errorf("SPEC.md gives %s the error %s: %s; the Reader says %v", name, m[2], msg, err)
		}
	}
	for _, v := range vectors {
		if v.err != nil && !listed[v.name] {
			t.Errorf("SPEC.md does not list the bad vector %s", v.name)
		}
	}
}

// specErrRow is a row of the table of bad vectors in SPEC.md.
var specErrRow = regexp.MustCompile("(?m)^\\| `([^`]+)` \\| .* \\| `(Err[A-Za-z]+)`: `(.*)` \\|$")

var vectorErr = map[string]error{
	"ErrNotDstream": ErrNotDstream, "ErrVersion": ErrVersion, "ErrTruncated": ErrTruncated, "ErrChecksum": ErrChecksum,
	"ErrTooLarge": ErrTooLarge, "ErrCorrupt": ErrCorrupt, "ErrSequence": ErrSequence, "ErrUnknown": ErrUnknown,
}

// annotate dumps a stream in hex, one field a line, each with a comment:
// the form of the test vectors in SPEC.md.
func annotate(b []byte) string {
	var sb strings.Builder
	line := func(p []byte, format string, args ...any) {
		h := fmt.Sprintf("% x", p)
		fmt.Fprintf(&sb, "%-48s # %s\n", h, fmt.Sprintf(format, args...))
	}
	long := func(p []byte, format string, args ...any) {
		for i := 0; i < len(p); i += 16 {
			if i == 0 {
				line(p[:min(16, len(p))], format, args...)
			} else {
				fmt.Fprintf(&sb, "% x\n", p[i:min(i+16, len(p))])
			}
		}
	}
	if len(b) < HeaderLen || string(b[:len(Magic)]) != Magic {
		long(b, "not a stream")
		return sb.String()
	}
	line(b[:HeaderLen], "stream header: %q, version %d", Magic, b[len(Magic)])
	off := HeaderLen
	for off+FrameHeaderLen <= len(b) {
		h := b[off : off+FrameHeaderLen]
		n := int(binary.BigEndian.Uint32(h))
		k := Kind(h[4])
		name := k.String()
		if k >= SkipFirst && k <= SkipLast {
			name = "(skippable)"
		}
		line(h, "frame header: length %d, kind 0x%02x %s, flags 0x%02x, crc 0x%08x", n, h[4], name, h[5], binary.BigEndian.Uint32(h[6:]))
		off += FrameHeaderLen
		if off+n > len(b) {
			break
		}
		p := b[off : off+n]
		off += n
		switch {
		case (k == KindBatchBegin || k == KindBatchEnd) && n == 16:
			line(p[:8], "batch id %d", binary.BigEndian.Uint64(p))
			if k == KindBatchBegin {
				line(p[8:], "batch time %d", int64(binary.BigEndian.Uint64(p[8:])))
			} else {
				line(p[8:], "record count %d", binary.BigEndian.Uint64(p[8:]))
			}
		case k == KindCheckpoint:
			long(p, "checkpoint: id length, id, directory")
		case k == KindWatermark && n == 8:
			line(p, "event time %d", int64(binary.BigEndian.Uint64(p)))
		case k == KindRecords && h[5] == FlagS2:
			long(p, "s2 block of the payload (count and records)")
		case k == KindRecords && h[5] == FlagZstd:
			long(p, "zstd frame of the payload (count and records)")
		case k == KindRecords && h[5] == 0:
			c, m := binary.Uvarint(p)
			if m <= 0 {
				long(p, "payload")
				break
			}
			line(p[:m], "record count %d", c)
			q := p[m:]
			for i := uint64(0); i < c && len(q) > 0; i++ {
				l, m := binary.Uvarint(q)
				if m <= 0 || l > uint64(len(q)-m) {
					break
				}
				line(q[:m], "record length %d", l)
				r := q[m : m+int(l)]
				j, _, err := record.AppendJSON(nil, r)
				if err != nil {
					j = []byte("not msgpack")
				}
				long(r, "msgpack %s", j)
				q = q[m+int(l):]
			}
			if len(q) > 0 {
				long(q, "more bytes")
			}
		case n > 0:
			long(p, "payload")
		}
	}
	if off < len(b) {
		long(b[off:], "bytes after the last frame")
	}
	return sb.String()
}

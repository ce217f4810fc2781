package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dstream/dstream/record"
)

// t0 is the batch time of the first batch in tests: 2023-11-14T22:13:20Z.
const t0 = int64(1700000000000)

var compressions = []struct {
	name string
	c    Compression
}{{"none", None}, {"s2", S2}, {"zstd", Zstd}}

// rec returns the record {"value": s}.
func rec(s string) []byte {
	b := record.AppendMapHeader(nil, 1)
	b = record.AppendString(b, "value")
	return record.AppendString(b, s)
}

// bigRec returns a record {"i": i, "value": <n bytes>} whose value is random
// (incompressible) when random is set and repetitive otherwise.
func bigRec(rng *rand.Rand, i, n int, random bool) []byte {
	v := make([]byte, n)
	for j := range v {
		if random {
			v[j] = byte(rng.Uint32())
		} else {
			v[j] = "abcdefgh"[j%8]
		}
	}
	b := record.AppendMapHeader(nil, 2)
	b = record.AppendString(b, "i")
	b = record.AppendInt(b, int64(i))
	b = record.AppendString(b, "value")
	return record.AppendBinary(b, v)
}

// rawBlock frames records as (uvarint length, msgpack)*, without the count.
func rawBlock(recs ...[]byte) []byte {
	var b []byte
	for _, r := range recs {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	return b
}

// describe is the comparable form of a decoded frame: one line, with the
// fields its kind defines, and the records of a Records frame each on their
// own line.
func describe(f *Frame) []string {
	switch f.Kind {
	case KindBatchBegin:
		return []string{fmt.Sprintf("begin %d %d", f.BatchID, f.Time)}
	case KindRecords:
		out := []string{fmt.Sprintf("records %d %d", f.BatchID, f.Count)}
		rs := f.Records()
		for r, ok := rs.Next(); ok; r, ok = rs.Next() {
			out = append(out, "rec "+recString(r))
		}
		return out
	case KindBatchEnd:
		return []string{fmt.Sprintf("end %d %d", f.BatchID, f.Count)}
	case KindWatermark:
		return []string{fmt.Sprintf("watermark %d", f.Time)}
	case KindEnd:
		return []string{"eos"}
	case KindCheckpoint:
		id, dir := f.Checkpoint()
		return []string{fmt.Sprintf("checkpoint %s %s", id, dir)}
	}
	return []string{fmt.Sprintf("unexpected %v", f.Kind)}
}

// recString shows a record as JSON when it is short, and by its length and
// checksum when not.
func recString(r []byte) string {
	if len(r) > 64 {
		return fmt.Sprintf("len=%d crc=%08x", len(r), crc32.Checksum(r, castagnoli))
	}
	j, _, err := record.AppendJSON(nil, r)
	if err != nil {
		return fmt.Sprintf("%x", r)
	}
	return string(j)
}

// flat drops the Records frame lines, so that streams cut into blocks
// differently compare equal.
func flat(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "records ") {
			out = append(out, l)
		}
	}
	return out
}

// readAll reads a stream to its end or its first error, and describes the
// frames read before it.
func readAll(src io.Reader) ([]string, error) {
	r := NewReader(src)
	var out []string
	var f Frame
	for {
		if err := r.Read(&f); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, describe(&f)...)
	}
}

// script writes a stream and records what a Reader must read back from it.
type script struct {
	t     testing.TB
	w     *Writer
	want  []string
	count uint64
	id    uint64
}

func (s *script) check(err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *script) begin(id uint64, t int64) {
	s.t.Helper()
	s.check(s.w.BeginBatch(id, t))
	s.id, s.count = id, 0
	s.want = append(s.want, fmt.Sprintf("begin %d %d", id, t))
}

func (s *script) rec(r []byte) {
	s.t.Helper()
	s.check(s.w.WriteRecord(r))
	s.count++
	s.want = append(s.want, "rec "+recString(r))
}

func (s *script) raw(recs ...[]byte) {
	s.t.Helper()
	s.check(s.w.WriteRawBlock(rawBlock(recs...), len(recs)))
	s.count += uint64(len(recs))
	for _, r := range recs {
		s.want = append(s.want, "rec "+recString(r))
	}
}

func (s *script) end() {
	s.t.Helper()
	s.check(s.w.EndBatch())
	s.want = append(s.want, fmt.Sprintf("end %d %d", s.id, s.count))
}

func (s *script) watermark(t int64) {
	s.t.Helper()
	s.check(s.w.Watermark(t))
	s.want = append(s.want, fmt.Sprintf("watermark %d", t))
}

func (s *script) skippable(k Kind, p []byte) {
	s.t.Helper()
	s.check(s.w.WriteSkippable(k, p))
}

func (s *script) close() {
	s.t.Helper()
	if s.w.InBatch() {
		s.want = append(s.want, fmt.Sprintf("end %d %d", s.id, s.count))
	}
	s.check(s.w.Close())
	s.want = append(s.want, "eos")
}

var roundTrips = []struct {
	name      string
	blockSize int // 0: the default
	minBlocks int // at least this many Records frames
	write     func(s *script)
}{
	{"empty stream", 0, 0, func(s *script) { s.close() }},
	{"one empty batch", 0, 0, func(s *script) {
		s.begin(1, t0)
		s.end()
		s.close()
	}},
	{"close ends an open batch", 0, 1, func(s *script) {
		s.begin(1, t0)
		s.rec(rec("a"))
		s.close()
	}},
	{"many batches, some empty", 0, 100, func(s *script) {
		for i := range 300 {
			if i%10 == 0 {
				s.watermark(t0 + int64(i)*1000 - 5000)
			}
			s.begin(uint64(1000+i), t0+int64(i)*1000)
			for j := range i % 5 {
				s.rec(rec(fmt.Sprintf("batch %d record %d", i, j)))
			}
			s.end()
		}
		s.close()
	}},
	{"records crossing BlockSize", 0, 6, func(s *script) {
		rng := rand.New(rand.NewPCG(1, 2))
		s.begin(7, t0)
		for i := range 100 {
			s.rec(bigRec(rng, i, 5000+i*13, i%2 == 0))
		}
		s.end()
		s.close()
	}},
	{"records larger than the read buffer", 0, 4, func(s *script) {
		rng := rand.New(rand.NewPCG(3, 4))
		s.begin(7, t0)
		s.rec(rec("small"))
		s.rec(bigRec(rng, 1, readSize+1000, true))
		s.rec(bigRec(rng, 2, 1<<20, true))
		s.rec(rec("small again"))
		s.rec(bigRec(rng, 3, 3<<20, false))
		s.end()
		s.begin(8, t0+1000)
		s.rec(bigRec(rng, 4, 2*readSize, true))
		s.end()
		s.close()
	}},
	{"raw blocks", 0, 2, func(s *script) {
		s.begin(7, t0)
		s.rec(rec("a"))
		s.raw(rec("b"), rec("c"), rec("d"))
		s.raw()
		s.rec(rec("e"))
		s.end()
		s.begin(8, t0+1000)
		s.raw(rec("f"))
		s.end()
		s.close()
	}},
	{"skippable frames", 0, 1, func(s *script) {
		s.skippable(SkipFirst, []byte("before"))
		s.begin(7, t0)
		s.skippable(SkipLast, nil)
		s.rec(rec("a"))
		s.skippable(0x55, bytes.Repeat([]byte("x"), 1000))
		s.rec(rec("b"))
		s.end()
		s.skippable(SkipLast, []byte("after"))
		s.close()
	}},
	{"one record per block", 1, 50, func(s *script) {
		s.begin(7, t0)
		for i := range 50 {
			s.rec(rec(fmt.Sprint(i)))
		}
		s.end()
		s.close()
	}},
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTrips {
		for _, c := range compressions {
			t.Run(tc.name+"/"+c.name, func(t *testing.T) {
				var buf bytes.Buffer
				w := NewWriter(&buf)
				if tc.blockSize != 0 {
					w.BlockSize = tc.blockSize
				}
				if err := w.SetCompression(c.c); err != nil {
					t.Fatal(err)
				}
				s := &script{t: t, w: w}
				tc.write(s)

				got, err := readAll(bytes.NewReader(buf.Bytes()))
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if !slices.Equal(flat(got), s.want) {
					t.Fatalf("read back\n%s\nwant\n%s", strings.Join(flat(got), "\n"), strings.Join(s.want, "\n"))
				}
				blocks := 0
				for _, l := range got {
					if strings.HasPrefix(l, "records ") {
						blocks++
					}
				}
				if blocks < tc.minBlocks {
					t.Errorf("%d Records frames, want at least %d", blocks, tc.minBlocks)
				}
				checkFlags(t, buf.Bytes(), c.c)
			})
		}
	}
}

// checkFlags checks that a stream's Records frames carry the flag of
// compression c or none (a block that does not shrink is stored), that at
// least one is compressed when the stream has compressible blocks, and that
// no other frame carries a flag.
func checkFlags(t *testing.T, b []byte, c Compression) {
	t.Helper()
	want := map[Compression]byte{None: 0, S2: FlagS2, Zstd: FlagZstd}[c]
	compressed := 0
	for _, h := range frameHeaders(b) {
		switch {
		case h.kind == KindRecords && h.flags == want && want != 0:
			compressed++
		case h.flags != 0 && (h.kind != KindRecords || h.flags != want):
			t.Errorf("%v frame at offset %d with flags 0x%02x, want 0x%02x", h.kind, h.off, h.flags, want)
		}
	}
	if want != 0 && compressed == 0 && bytes.Contains(b, []byte("abcdefghabcdefgh")) {
		t.Errorf("no Records frame compressed")
	}
}

type frameHeader struct {
	off    int // of the frame header
	length int
	kind   Kind
	flags  byte
}

// frameHeaders lists the frames of a stream that are whole, without checking
// them.
func frameHeaders(b []byte) []frameHeader {
	var hs []frameHeader
	for off := HeaderLen; off+FrameHeaderLen <= len(b); {
		n := int(binary.BigEndian.Uint32(b[off:]))
		if off+FrameHeaderLen+n > len(b) {
			break
		}
		hs = append(hs, frameHeader{off, n, Kind(b[off+4]), b[off+5]})
		off += FrameHeaderLen + n
	}
	return hs
}

// streams are valid streams used by the error tests.
func streams(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, c := range compressions {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.BlockSize = 40
		if err := w.SetCompression(c.c); err != nil {
			t.Fatal(err)
		}
		s := &script{t: t, w: w}
		s.watermark(t0 - 5000)
		s.begin(7, t0)
		for i := range 6 {
			s.rec(rec(strings.Repeat(fmt.Sprintf("record %d ", i), 4)))
		}
		s.skippable(0x41, []byte("note"))
		s.end()
		s.begin(8, t0+1000)
		s.end()
		s.close()
		out[c.name] = buf.Bytes()
	}
	return out
}

func TestStreamsCompressed(t *testing.T) {
	for _, c := range compressions[1:] {
		n := 0
		for _, h := range frameHeaders(streams(t)[c.name]) {
			if h.flags != 0 {
				n++
			}
		}
		if n < 3 {
			t.Errorf("the %s stream of the error tests has %d compressed frames, want 3 or more", c.name, n)
		}
	}
}

// TestReaders reads every test vector and stream through readers that return
// data in different pieces: the frames and the error must not change.
func TestReaders(t *testing.T) {
	inputs := streams(t)
	for _, v := range vectors {
		inputs[v.name] = readVector(t, v.name)
	}
	wrap := []struct {
		name string
		r    func([]byte) io.Reader
	}{
		{"OneByteReader", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		{"HalfReader", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
		{"DataErrReader", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
		{"DataErrReader+OneByteReader", func(b []byte) io.Reader {
			return iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(b)))
		}},
	}
	for name, in := range inputs {
		want, wantErr := readAll(bytes.NewReader(in))
		for _, wr := range wrap {
			t.Run(name+"/"+wr.name, func(t *testing.T) {
				got, err := readAll(wr.r(in))
				if !slices.Equal(got, want) {
					t.Errorf("frames\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Errorf("error %v, want %v", err, wantErr)
				}
			})
		}
	}
}

// TestTruncated cuts valid streams at every byte: the Reader must read the
// frames before the cut and then report ErrTruncated.
func TestTruncated(t *testing.T) {
	for name, in := range streams(t) {
		full, err := readAll(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		for cut := range len(in) {
			for _, r := range []io.Reader{bytes.NewReader(in[:cut]), iotest.OneByteReader(bytes.NewReader(in[:cut]))} {
				got, err := readAll(r)
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("%s cut at %d of %d: error %v, want ErrTruncated", name, cut, len(in), err)
				}
				if !slices.Equal(got, full[:len(got)]) {
					t.Fatalf("%s cut at %d: frames\n%s\nare not a prefix of\n%s", name, cut, strings.Join(got, "\n"), strings.Join(full, "\n"))
				}
			}
		}
	}
}

// TestTruncatedLarge cuts a stream of records larger than the Reader's
// buffer at each frame boundary, next to it, and at points in between.
func TestTruncatedLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range compressions {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := w.SetCompression(c.c); err != nil {
			t.Fatal(err)
		}
		s := &script{t: t, w: w}
		s.begin(7, t0)
		s.rec(bigRec(rng, 1, readSize+100, true))
		s.rec(bigRec(rng, 2, 3*readSize, false))
		s.rec(rec("small"))
		s.end()
		s.close()
		in := buf.Bytes()
		cuts := []int{0, HeaderLen}
		for _, h := range frameHeaders(in) {
			cuts = append(cuts, h.off-1, h.off+1, h.off+FrameHeaderLen, h.off+FrameHeaderLen+h.length/2, h.off+FrameHeaderLen+h.length-1)
		}
		for i := 1; i < 20; i++ {
			cuts = append(cuts, i*len(in)/20)
		}
		for _, cut := range cuts {
			if cut < 0 || cut >= len(in) {
				continue
			}
			_, err := readAll(iotest.HalfReader(bytes.NewReader(in[:cut])))
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s cut at %d of %d: error %v, want ErrTruncated", c.name, cut, len(in), err)
			}
		}
	}
}

var errBoom = errors.New("boom")

// TestSourceError makes the source fail at every byte: the Reader must
// report that error, not ErrTruncated, and name where it happened.
func TestSourceError(t *testing.T) {
	in := streams(t)["s2"]
	for cut := range len(in) {
		r := io.MultiReader(bytes.NewReader(in[:cut]), iotest.ErrReader(errBoom))
		_, err := readAll(r)
		if !errors.Is(err, errBoom) || errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: error %v, want boom", cut, err)
		}
		if cut >= HeaderLen && !strings.Contains(err.Error(), "batch") {
			t.Errorf("cut at %d: error %q does not name a batch", cut, err)
		}
	}
}

// countingReader counts the calls to Read.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func TestReaderStickyError(t *testing.T) {
	for _, name := range []string{"bad-checksum.dstream", "missing-end.dstream", "not-dstream.txt", "empty-batch.dstream"} {
		t.Run(name, func(t *testing.T) {
			src := &countingReader{r: iotest.OneByteReader(bytes.NewReader(readVector(t, name)))}
			r := NewReader(src)
			var f Frame
			var first error
			for first == nil {
				first = r.Read(&f)
			}
			reads := src.reads
			for range 3 {
				if _, err := r.ReadFrame(); err != first {
					t.Fatalf("after %v: error %v", first, err)
				}
			}
			if src.reads != reads {
				t.Errorf("the Reader read its source %d more times after an error", src.reads-reads)
			}
		})
	}
}

func TestReaderReset(t *testing.T) {
	ins := streams(t)
	r := NewReader(bytes.NewReader(nil))
	for i, name := range []string{"zstd", "bad", "s2", "zstd", "truncated", "none", "zstd"} {
		in := ins[name]
		switch name {
		case "bad":
			in = readVector(t, "bad-count.dstream")
		case "truncated":
			in = ins["zstd"][:len(ins["zstd"])-30]
		}
		want, wantErr := readAll(bytes.NewReader(in))
		r.Reset(bytes.NewReader(in))
		if r.InBatch() || r.Batches() != 0 {
			t.Fatalf("after Reset: InBatch %v, Batches %d", r.InBatch(), r.Batches())
		}
		var got []string
		var err error
		var f Frame
		for {
			if err = r.Read(&f); err != nil {
				break
			}
			got = append(got, describe(&f)...)
		}
		if err == io.EOF {
			err = nil
		}
		if !slices.Equal(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("read %d (%s) after Reset: %v, %v\nwant %v, %v", i, name, got, err, want, wantErr)
		}
		if wantErr == nil && r.Batches() != 2 {
			t.Errorf("Batches %d, want 2", r.Batches())
		}
	}
}

func TestReaderState(t *testing.T) {
	r := NewReader(bytes.NewReader(readVector(t, "two-batches.dstream")))
	want := []struct {
		kind    Kind
		inBatch bool
		batches uint64
	}{
		{KindBatchBegin, true, 0}, {KindRecords, true, 0}, {KindBatchEnd, false, 1},
		{KindBatchBegin, true, 1}, {KindRecords, true, 1}, {KindBatchEnd, false, 2},
		{KindEnd, false, 2},
	}
	for i, w := range want {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind != w.kind || r.InBatch() != w.inBatch || r.Batches() != w.batches {
			t.Errorf("frame %d: %v, InBatch %v, Batches %d; want %v, %v, %d", i, f.Kind, r.InBatch(), r.Batches(), w.kind, w.inBatch, w.batches)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Errorf("after End: %v, want io.EOF", err)
	}
}

// TestReaderMemory guards against allocating the length a frame header
// claims before its bytes arrive.
func TestReaderMemory(t *testing.T) {
	in := []byte(Magic + "\x01")
	in = binary.BigEndian.AppendUint32(in, 60<<20)
	in = append(in, byte(KindRecords), 0, 0, 0, 0, 0, 1, 2, 3)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := NewReader(bytes.NewReader(in))
	_, err := r.ReadFrame()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("error %v, want ErrTruncated", err)
	}
	if len(r.buf) > readSize {
		t.Errorf("the Reader grew its buffer to %d bytes for %d bytes of input", len(r.buf), len(in))
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("reading %d bytes allocated %d bytes", len(in), n)
	}
}

func TestRecordsIterator(t *testing.T) {
	r := NewReader(bytes.NewReader(readVector(t, "two-batches.dstream")))
	var f Frame
	for f.Kind != KindRecords {
		if err := r.Read(&f); err != nil {
			t.Fatal(err)
		}
	}
	rs := f.Records()
	if rs.Len() != 2 {
		t.Fatalf("Len %d, want 2", rs.Len())
	}
	first, _ := rs.Next()
	if rs.Len() != 1 {
		t.Errorf("Len after Next %d, want 1", rs.Len())
	}
	// Appending to a record must not overwrite the next one.
	_ = append(first, 0xc0, 0xc0, 0xc0)
	second, ok := rs.Next()
	if !ok || !bytes.Equal(second, rec("world")) {
		t.Errorf("second record %x, want %x", second, rec("world"))
	}
	if _, ok := rs.Next(); ok || rs.Len() != 0 {
		t.Error("Next after the last record")
	}
}

// writeLog records the calls to Write, and fails once fail is set.
type writeLog struct {
	buf    bytes.Buffer
	writes int
	fail   bool
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes++
	if w.fail {
		return 0, errBoom
	}
	return w.buf.Write(p)
}

func TestWriterFlushes(t *testing.T) {
	out := &writeLog{}
	w := NewWriter(out)
	if err := w.SetCompression(S2); err != nil {
		t.Fatal(err)
	}
	if err := w.BeginBatch(1, t0); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := w.WriteRecord(rec(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if out.writes != 0 {
		t.Errorf("%d writes inside a small batch, want 0", out.writes)
	}
	if err := w.EndBatch(); err != nil {
		t.Fatal(err)
	}
	if out.writes != 1 {
		t.Errorf("%d writes for one small batch, want 1", out.writes)
	}
	// Everything up to BatchEnd has been written.
	got, err := readAll(bytes.NewReader(out.buf.Bytes()))
	if !errors.Is(err, ErrTruncated) || len(got) == 0 || got[len(got)-1] != "end 1 1000" {
		t.Errorf("after EndBatch the output ends with %q, %v", got[len(got)-1:], err)
	}
	if err := w.Watermark(t0); err != nil {
		t.Fatal(err)
	}
	if out.writes != 2 {
		t.Errorf("Watermark did not flush")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if out.writes != 3 {
		t.Errorf("%d writes, want 3", out.writes)
	}
}

func TestWriterNothingWritten(t *testing.T) {
	out := &writeLog{}
	w := NewWriter(out)
	if err := w.Flush(); err != nil || out.writes != 0 {
		t.Errorf("Flush of a new Writer: %v, %d writes", err, out.writes)
	}
	// The stream header goes out with the first frame.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.buf.String(), string(readVector(t, "empty-stream.dstream")); got != want {
		t.Errorf("empty stream %q, want %q", got, want)
	}
}

func TestWriterStickyError(t *testing.T) {
	big := bigRec(rand.New(rand.NewPCG(5, 6)), 0, 1000, true)
	// fails returns the calls that must all return the error once a write
	// failed.
	for name, fail := range map[string]func(w *Writer) (after []func() error){
		"inside a batch": func(w *Writer) []func() error {
			w.BeginBatch(1, t0)
			var err error
			for i := 0; err == nil && i < 2*flushSize/len(big); i++ {
				err = w.WriteRecord(big)
			}
			if !errors.Is(err, errBoom) {
				t.Fatalf("WriteRecord: %v, want boom", err)
			}
			return []func() error{
				func() error { return w.WriteRecord(big) },
				func() error { return w.WriteRawBlock(rawBlock(rec("c")), 1) },
				w.Flush,
				w.EndBatch,
				w.Close,
			}
		},
		"at the end of a batch": func(w *Writer) []func() error {
			w.BeginBatch(1, t0)
			w.WriteRecord(rec("a"))
			if err := w.EndBatch(); !errors.Is(err, errBoom) {
				t.Fatalf("EndBatch: %v, want boom", err)
			}
			return []func() error{
				func() error { return w.BeginBatch(2, t0) },
				func() error { return w.Watermark(t0) },
				func() error { return w.WriteSkippable(SkipFirst, nil) },
				w.Flush,
				w.Close,
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			out := &writeLog{fail: true}
			w := NewWriter(out)
			after := fail(w)
			writes := out.writes
			for i, call := range after {
				if err := call(); !errors.Is(err, errBoom) {
					t.Errorf("call %d after a failed write: %v, want boom", i, err)
				}
			}
			if out.writes != writes {
				t.Errorf("%d more writes after a failed one", out.writes-writes)
			}
		})
	}
}

func TestWriterMisuse(t *testing.T) {
	w := func() *Writer { return NewWriter(io.Discard) }
	inBatch := func() *Writer {
		w := w()
		if err := w.BeginBatch(1, t0); err != nil {
			t.Fatal(err)
		}
		return w
	}
	for name, call := range map[string]func(){
		"BeginBatch inside a batch":     func() { _ = inBatch().BeginBatch(2, t0) },
		"WriteRecord outside a batch":   func() { _ = w().WriteRecord(rec("a")) },
		"WriteRawBlock outside":         func() { _ = w().WriteRawBlock(nil, 0) },
		"EndBatch outside a batch":      func() { _ = w().EndBatch() },
		"Watermark inside a batch":      func() { _ = inBatch().Watermark(t0) },
		"WriteSkippable of a kind 0x3f": func() { _ = w().WriteSkippable(0x3f, nil) },
		"WriteSkippable of a kind 0x80": func() { _ = w().WriteSkippable(0x80, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			call()
		})
	}
}

// TestWriterLargeBlock passes on a block as large as a Reader accepts, after
// a record and with every compression: the Writer must cut the open block
// first, and store a block that compression would grow past MaxPayload.
func TestWriterLargeBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MiB frames")
	}
	big := make([]byte, MaxPayload-5)
	rand.NewChaCha8([32]byte{}).Read(big)
	block := rawBlock(big) // with its count, 1 byte, exactly MaxPayload
	for _, c := range compressions {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if err := w.SetCompression(c.c); err != nil {
				t.Fatal(err)
			}
			s := &script{t: t, w: w}
			s.begin(1, t0)
			s.rec(rec("a"))
			s.check(w.WriteRawBlock(block, 1))
			s.count++
			s.want = append(s.want, "rec "+recString(big))
			s.rec(rec("b"))
			s.close()
			got, err := readAll(&buf)
			if err != nil || !slices.Equal(flat(got), s.want) {
				t.Errorf("read %v, %v; want %v", flat(got), err, s.want)
			}
		})
	}
	w := NewWriter(io.Discard)
	w.BeginBatch(1, t0)
	if err := w.WriteRawBlock(append(block, 0), 1); err == nil {
		t.Error("a block over MaxPayload was accepted")
	}
}

func TestWriterRecordTooLarge(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.BeginBatch(1, t0); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(make([]byte, MaxRecord+1)); err == nil {
		t.Error("a record over MaxRecord was accepted")
	}
	if w.BatchCount() != 0 {
		t.Errorf("BatchCount %d after a rejected record", w.BatchCount())
	}
}

// TestWriterCopies checks that WriteRecord copies its record.
func TestWriterCopies(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	s := &script{t: t, w: w}
	s.begin(1, t0)
	r := rec("a")
	s.rec(r)
	copy(r, rec("b"))
	s.end()
	s.close()
	got, err := readAll(&buf)
	if err != nil || !slices.Equal(flat(got), s.want) {
		t.Errorf("read %v, %v; want %v", flat(got), err, s.want)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{
		KindBatchBegin: "BatchBegin", KindRecords: "Records", KindBatchEnd: "BatchEnd",
		KindWatermark: "Watermark", KindEnd: "End", 0: "UNKNOWN_KIND_0x00", 0x40: "UNKNOWN_KIND_0x40", 0xff: "UNKNOWN_KIND_0xff",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(0x%02x).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

func TestParseCompression(t *testing.T) {
	for s, want := range map[string]Compression{"": None, "none": None, "s2": S2, "zstd": Zstd} {
		if got, err := ParseCompression(s); err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseCompression("gzip"); err == nil {
		t.Error("ParseCompression(gzip) succeeded")
	}
}

// TestWriteRecordsPassesFramesOn: a stage that passes every block on with
// WriteRecords writes the very bytes it read; one that took a record first,
// or compresses otherwise, writes the same records, in frames of its own.
func TestWriteRecordsPassesFramesOn(t *testing.T) {
	for _, comp := range []Compression{None, S2, Zstd} {
		var in bytes.Buffer
		w := NewWriter(&in)
		w.SetCompression(comp)
		for b := 0; b < 3; b++ {
			w.BeginBatch(uint64(b), int64(b))
			for i := 0; i < 5000*b; i++ {
				w.WriteRecord([]byte(fmt.Sprintf("\x81\xa5value\xa9record%03d", i%1000)))
			}
			w.EndBatch()
		}
		w.Close()
		for _, outComp := range []Compression{None, S2} {
			for _, takeOne := range []bool{false, true} {
				var out bytes.Buffer
				r, ow := NewReader(bytes.NewReader(in.Bytes())), NewWriter(&out)
				ow.SetCompression(outComp)
				ow.BlockSize = 64 // re-blocked records would come out in other frames
				var f Frame
				for r.Read(&f) == nil {
					switch f.Kind {
					case KindBatchBegin:
						ow.BeginBatch(f.BatchID, f.Time)
					case KindRecords:
						recs := f.Records()
						if takeOne {
							rec, _ := recs.Next()
							ow.WriteRecord(rec)
						}
						if err := ow.WriteRecords(recs); err != nil {
							t.Fatal(err)
						}
					case KindBatchEnd:
						ow.EndBatch()
					}
				}
				ow.Close()
				if comp == outComp && !takeOne && !bytes.Equal(out.Bytes(), in.Bytes()) {
					t.Errorf("in %v, out %v: frames passed on were changed", comp, outComp)
				}
				if got, want := contents(t, out.Bytes()), contents(t, in.Bytes()); got != want {
					t.Errorf("in %v, out %v, take one %v: records differ", comp, outComp, takeOne)
				}
			}
		}
	}
}

// contents lists a stream's batches and records, leaving out how the
// records were cut into frames.
func contents(t *testing.T, stream []byte) string {
	lines, err := readAll(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "records ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

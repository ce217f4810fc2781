package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/zstd"
)

// FuzzReader feeds the Reader arbitrary bytes, as they are and with their
// frame checksums made right (so that the fuzzer gets past them). The Reader
// must not panic, must grow its buffer only with its input, must fail only
// with the package's errors, must read the same whether the input arrives
// whole or one byte at a time, and the frames it reads before the end or an
// error must survive a round trip through a Writer.
func FuzzReader(f *testing.F) {
	ents, err := os.ReadDir(vectorDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		f.Add(readVector(f, e.Name()))
	}
	for _, s := range streams(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzStream(t, data)
		if fixed := fixChecksums(data); !bytes.Equal(fixed, data) {
			fuzzStream(t, fixed)
		}
	})
}

// fixChecksums returns data with the crc of each whole frame made right.
func fixChecksums(data []byte) []byte {
	b := slices.Clone(data)
	for off := HeaderLen; off+FrameHeaderLen <= len(b); {
		n := uint64(binary.BigEndian.Uint32(b[off:]))
		if uint64(off+FrameHeaderLen)+n > uint64(len(b)) {
			break
		}
		p := b[off+FrameHeaderLen : off+FrameHeaderLen+int(n)]
		binary.BigEndian.PutUint32(b[off+6:], crc32.Checksum(p, castagnoli))
		off += FrameHeaderLen + int(n)
	}
	return b
}

var sentinels = []error{ErrNotDstream, ErrVersion, ErrTruncated, ErrChecksum, ErrTooLarge, ErrCorrupt, ErrSequence, ErrUnknown}

// decoded is a copy of a frame, with only the fields its kind defines.
type decoded struct {
	Kind    Kind
	BatchID uint64
	Time    int64
	Count   uint64
	Payload string
}

func copyFrame(f *Frame) decoded {
	d := decoded{Kind: f.Kind}
	switch f.Kind {
	case KindBatchBegin:
		d.BatchID, d.Time = f.BatchID, f.Time
	case KindRecords:
		d.BatchID, d.Count, d.Payload = f.BatchID, f.Count, string(f.Payload)
	case KindBatchEnd:
		d.BatchID, d.Count = f.BatchID, f.Count
	case KindWatermark:
		d.Time = f.Time
	case KindCheckpoint:
		d.Payload = string(f.Payload)
	}
	return d
}

// readChecked reads a stream as fuzzStream requires and returns its frames
// and its error (nil at a clean end).
func readChecked(t *testing.T, data []byte, src io.Reader) ([]decoded, error) {
	r := NewReader(src)
	var out []decoded
	var f Frame
	for {
		err := r.Read(&f)
		// Memory: the read buffer grows only with the bytes that arrived; a
		// decompressed payload is bounded by MaxPayload (zstd may allocate
		// a little over).
		if len(r.buf) > max(readSize, 2*len(data)) {
			t.Fatalf("the read buffer grew to %d bytes for %d bytes of input", len(r.buf), len(data))
		}
		if cap(r.dbuf) > MaxPayload+1<<20 {
			t.Fatalf("the decompression buffer grew to %d bytes", cap(r.dbuf))
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("error %q wraps none of the package's errors", err)
			}
			if err2 := r.Read(&f); err2 != err {
				t.Fatalf("error %v, then %v: not sticky", err, err2)
			}
			return out, err
		}
		if f.Kind == KindRecords {
			if f.Count > uint64(len(f.Payload)) {
				t.Fatalf("Records frame of %d records in %d bytes", f.Count, len(f.Payload))
			}
			rs := f.Records()
			n := 0
			for _, ok := rs.Next(); ok; _, ok = rs.Next() {
				n++
			}
			if uint64(n) != f.Count {
				t.Fatalf("Records frame with count %d holds %d records", f.Count, n)
			}
		}
		out = append(out, copyFrame(&f))
		if len(out) > len(data)/FrameHeaderLen {
			t.Fatalf("%d frames from %d bytes", len(out), len(data))
		}
	}
}

// fuzzZstd is shared by the fuzz target's Writers: making an encoder costs
// more than the rest of a run.
var fuzzZstd *zstd.Encoder

func fuzzStream(t *testing.T, data []byte) {
	frames, err := readChecked(t, data, bytes.NewReader(data))
	frames1, err1 := readChecked(t, data, iotest.OneByteReader(bytes.NewReader(data)))
	if !slices.Equal(frames, frames1) || fmt.Sprint(err) != fmt.Sprint(err1) {
		t.Fatalf("whole: %v, %v\none byte at a time: %v, %v", frames, err, frames1, err1)
	}

	// Write the frames read back with a Writer, one Records frame for each
	// (BlockSize 1), ending the stream where it stopped: it must read back
	// the same, with End.
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.BlockSize = 1
	c := Compression(len(data) % 3)
	if c == Zstd {
		if fuzzZstd == nil {
			if err := w.SetCompression(Zstd); err != nil {
				t.Fatal(err)
			}
			fuzzZstd = w.zenc
		}
		w.zenc = fuzzZstd
	}
	if err := w.SetCompression(c); err != nil {
		t.Fatal(err)
	}
	var want []decoded
	var open *decoded
	for _, d := range frames {
		var err error
		switch d.Kind {
		case KindBatchBegin:
			err = w.BeginBatch(d.BatchID, d.Time)
			open = &decoded{Kind: KindBatchEnd, BatchID: d.BatchID}
		case KindRecords:
			if d.Count == 0 {
				continue // a Writer writes no empty Records frame
			}
			err = w.WriteRawBlock([]byte(d.Payload), int(d.Count))
			open.Count += d.Count
		case KindBatchEnd:
			err = w.EndBatch()
			open = nil
		case KindWatermark:
			err = w.Watermark(d.Time)
		case KindCheckpoint:
			f := Frame{Kind: KindCheckpoint, Payload: []byte(d.Payload)}
			err = w.Checkpoint(f.Checkpoint())
		case KindEnd:
			err = w.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	if open != nil {
		want = append(want, *open)
	}
	if len(want) == 0 || want[len(want)-1].Kind != KindEnd {
		want = append(want, decoded{Kind: KindEnd})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := readChecked(t, buf.Bytes(), bytes.NewReader(buf.Bytes()))
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("round trip with compression %d: %v, %v\nwant %v", c, got, err, want)
	}
}

// checkBlockRef is checkBlock as the protocol states it, one binary.Uvarint
// per record, for FuzzCheckBlock to hold the fast one to.
func checkBlockRef(b []byte, n int) error {
	for i := 0; i < n; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return fmt.Errorf("record %d overruns the frame", i)
		}
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return fmt.Errorf("%d bytes after the last record", len(b))
	}
	return nil
}

// FuzzCheckBlock holds checkBlock's fast path (one-byte lengths) to the
// plain walk: the same verdict and the same message on any block and count.
func FuzzCheckBlock(f *testing.F) {
	f.Add([]byte{1, 0x80, 2, 0x91, 0x01}, 2)
	f.Add([]byte{3, 0, 0}, 1)
	f.Add([]byte{0x80, 0x01}, 1)
	f.Add(append([]byte{0x81, 0x01}, make([]byte, 129)...), 1)
	f.Add([]byte{0, 0, 5, 1}, 3)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		n %= 1 << 16
		if n < 0 {
			n = -n
		}
		got, want := checkBlock(b, n, 0), checkBlockRef(b, n)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("checkBlock(%x, %d) = %v, want %v", b, n, got, want)
		}
	})
}

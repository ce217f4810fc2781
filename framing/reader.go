package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// readSize is the Reader's initial buffer; it grows only for larger frames.
const readSize = 256 << 10

// Frame is one decoded frame. It is valid only until the next call to
// ReadFrame: its slices point into the Reader's buffers.
type Frame struct {
	Kind    Kind
	BatchID uint64 // BatchBegin, BatchEnd, and Records (the open batch)
	Time    int64  // BatchBegin: batch time; Watermark: event time (unix ms)
	Count   uint64 // Records: records in the frame; BatchEnd: in the batch
	Payload []byte // Records: the records, (uvarint length, msgpack)*; Checkpoint and skippable kinds: the payload

	raw       []byte // Records: the whole frame as it came, for Writer.WriteRecords
	flags     byte
	unchecked bool // Records: the layout is left to the consumer (Reader.DeferCheck)
}

// Checkpoint returns the id and directory a Checkpoint frame carries.
func (f *Frame) Checkpoint() (id, dir string) {
	n, k := binary.Uvarint(f.Payload) // checked by the Reader
	return string(f.Payload[k : k+int(n)]), string(f.Payload[k+int(n):])
}

// Records iterates over the records of a Records frame.
func (f *Frame) Records() Records {
	return Records{b: f.Payload, n: int(f.Count), total: int(f.Count), raw: f.raw, flags: f.flags, unchecked: f.unchecked}
}

// Records walks the records of a block. The Reader has checked the block's
// layout, so Next needs no error; unless the Reader left that to the
// consumer (Reader.DeferCheck): then Check comes first, or a walk that
// checks each length as it goes (agg.Table.AddBlock, with Overrun and
// Trailing for its errors).
type Records struct {
	b []byte
	n int

	// The frame the records came in, for passing it on whole and unchanged
	// (Writer.WriteRecords) while none has been taken: total is its count.
	raw       []byte
	total     int
	flags     byte
	unchecked bool // the layout is not checked yet (Reader.DeferCheck)
}

// Check checks the layout of the records not yet returned, if the Reader
// left it to the consumer: that they fill the rest of the frame exactly.
// Its error is the one the Reader would have returned, but for the batch
// (see stage.Env.Loop).
func (r *Records) Check() error {
	if !r.unchecked {
		return nil
	}
	if err := checkBlock(r.b, r.n, r.total-r.n); err != nil {
		return layoutError(err)
	}
	r.unchecked = false
	return nil
}

// Overrun is the error of a walk that checks the records' layout as it
// goes: the record it is at, with left records still to come (this one
// among them), runs past the frame's end.
func (r *Records) Overrun(left int) error {
	return layoutError(fmt.Errorf("record %d overruns the frame", r.total-left))
}

// Trailing is the error of a walk that checks the records' layout as it
// goes: extra bytes follow the last record.
func Trailing(extra int) error {
	return layoutError(fmt.Errorf("%d bytes after the last record", extra))
}

func layoutError(err error) error { return fmt.Errorf("%w: Records frame: %v", ErrCorrupt, err) }

// SetRest makes b, holding n records, the records not yet returned: a walk
// over Rest gives back what it did not take. The frame's count stays, so
// that errors name records by their place in it.
func (r *Records) SetRest(b []byte, n int) { r.b, r.n = b, n }

// Next returns the next record, or false at the end.
func (r *Records) Next() ([]byte, bool) {
	if r.n == 0 {
		return nil, false
	}
	r.n--
	rec, rest := CutRecord(r.b)
	r.b = rest
	return rec, true
}

// CutRecord returns the first record of a well-formed block of records (as
// Rest returns it, or NewRecords takes it) and the block after it: Next,
// for a loop that keeps the block in local variables rather than in a
// Records (agg.Table.AddBlock, where Next was a fifth of the time). The
// record's capacity ends with it, so that appending to it copies instead
// of overwriting the next record.
//
// A record under 128 bytes has a length of one byte, which such a loop
// may read itself: block[0] < 0x80 is the length, the record follows.
func CutRecord(block []byte) (rec, rest []byte) {
	l, k := int(block[0]), 1 // a record under 128 bytes: the usual case
	if l >= 0x80 {
		u, kk := binary.Uvarint(block)
		l, k = int(u), kk
	}
	return block[k : k+l : k+l], block[k+l:]
}

// Len is the number of records not yet returned.
func (r *Records) Len() int { return r.n }

// Reader reads a dstream stream and checks it: the header, each frame's
// length (against MaxPayload, before allocating), checksum and layout, and the
// order of frames (batches begin and end in turn, record counts match). Its
// errors wrap the package's sentinel errors and name the batch. Errors are
// sticky.
type Reader struct {
	r          io.Reader
	buf        []byte // buf[start:end] holds bytes read but not consumed
	start, end int
	srcErr     error // error from r, reported once the buffer is used up

	started bool
	done    bool // End seen
	inBatch bool
	batchID uint64
	count   uint64 // records seen in the open batch
	last    uint64 // id of the last batch, for errors between batches
	nbatch  uint64 // batches completed

	dbuf []byte // decompressed payload
	zdec *zstd.Decoder
	err  error

	// DeferCheck leaves the check of each Records frame's layout (that
	// its records, each a length and its bytes, fill it exactly) to the
	// consumer, whose walk over the records checks each length anyway
	// (framing.Records.Check). The word count's sreduce spent a tenth of
	// its time checking the layout of blocks it then walked again.
	DeferCheck bool
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, buf: make([]byte, readSize)}
}

// Reset makes the Reader read a new stream from r, keeping its buffers.
func (r *Reader) Reset(src io.Reader) {
	*r = Reader{r: src, buf: r.buf, dbuf: r.dbuf, zdec: r.zdec}
}

// InBatch reports whether the last frame read left a batch open.
func (r *Reader) InBatch() bool { return r.inBatch }

// Batches is the number of batches read to their end.
func (r *Reader) Batches() uint64 { return r.nbatch }

// fill makes at least n bytes available in buf[start:end]; it returns
// io.EOF if the input ends before any of them and io.ErrUnexpectedEOF if it
// ends part way.
func (r *Reader) fill(n int) error {
	for r.end-r.start < n {
		if r.srcErr != nil {
			if r.srcErr == io.EOF {
				if r.end == r.start {
					return io.EOF
				}
				return io.ErrUnexpectedEOF
			}
			return r.srcErr
		}
		if r.start+n > len(r.buf) && r.start > 0 {
			copy(r.buf, r.buf[r.start:r.end])
			r.end -= r.start
			r.start = 0
		}
		if r.end == len(r.buf) {
			// Grow only once the buffer is full of bytes that did arrive,
			// and at most double it, rather than to n at once: a frame
			// header that claims 64 MiB, then 10 bytes, must not cost 64 MiB.
			nb := make([]byte, min(n, max(2*len(r.buf), readSize)))
			copy(nb, r.buf[:r.end])
			r.buf = nb
		}
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		if err != nil {
			r.srcErr = err
		}
	}
	return nil
}

// where names the position of an error: the open batch or the last one.
func (r *Reader) where() string {
	switch {
	case r.inBatch:
		return fmt.Sprintf("batch %d", r.batchID)
	case r.nbatch > 0:
		return fmt.Sprintf("after batch %d", r.last)
	}
	return "before the first batch"
}

func (r *Reader) fail(err error) error {
	r.err = err
	return err
}

func (r *Reader) failf(sentinel error, format string, args ...any) error {
	return r.fail(fmt.Errorf("%s: %w: "+format, append([]any{r.where(), sentinel}, args...)...))
}

// ReadFrame reads the next frame. At the end of a well-formed stream, after
// the End frame, it returns io.EOF. A stream that stops anywhere else is
// ErrTruncated.
func (r *Reader) ReadFrame() (*Frame, error) {
	f := new(Frame)
	return f, r.Read(f)
}

// Read reads the next frame into f, reusing f. See ReadFrame.
func (r *Reader) Read(f *Frame) error {
	if r.err != nil {
		return r.err
	}
	if !r.started {
		if err := r.readHeader(); err != nil {
			return r.fail(err)
		}
	}
	for {
		if r.done {
			return r.fail(io.EOF)
		}
		if err := r.fill(FrameHeaderLen); err != nil {
			return r.truncated(err, "frame header")
		}
		h := r.buf[r.start : r.start+FrameHeaderLen]
		length := binary.BigEndian.Uint32(h)
		kind, flags, sum := Kind(h[4]), h[5], binary.BigEndian.Uint32(h[6:])
		if length > MaxPayload {
			return r.failf(ErrTooLarge, "%v frame of %d bytes exceeds the limit of %d", kind, length, MaxPayload)
		}
		if err := r.fill(FrameHeaderLen + int(length)); err != nil {
			return r.truncated(err, fmt.Sprintf("%v frame of %d bytes", kind, length))
		}
		raw := r.buf[r.start : r.start+FrameHeaderLen+int(length)]
		payload := raw[FrameHeaderLen:]
		r.start += FrameHeaderLen + int(length)
		if crc32.Checksum(payload, castagnoli) != sum {
			return r.failf(ErrChecksum, "%v frame of %d bytes", kind, length)
		}
		if flags&^flagsAll != 0 || (flags != 0 && kind != KindRecords) || flags == flagsAll {
			return r.failf(ErrCorrupt, "%v frame with flags 0x%02x", kind, flags)
		}
		*f = Frame{Kind: kind, BatchID: r.batchID, raw: raw, flags: flags}
		skip, err := r.decode(f, flags, payload)
		if err != nil {
			return r.fail(err)
		}
		if !skip {
			return nil
		}
	}
}

func (r *Reader) readHeader() error {
	r.started = true
	err := r.fill(HeaderLen)
	got := r.buf[r.start:r.end]
	if n := min(len(got), len(Magic)); !bytes.Equal(got[:n], []byte(Magic)[:n]) {
		// Read the whole preview, so that the message does not depend on
		// how the input arrives.
		_ = r.fill(previewLen)
		return fmt.Errorf("%w (it starts with %q)", ErrNotDstream, preview(r.buf[r.start:r.end]))
	}
	switch {
	case err == io.EOF:
		return ErrEmpty
	case err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: in the stream header", ErrTruncated)
	case err != nil:
		return err
	}
	if v := got[len(Magic)]; v != Version {
		return fmt.Errorf("%w %d (this reader knows version %d)", ErrVersion, v, Version)
	}
	r.start += HeaderLen
	return nil
}

// previewLen is how much of a non-dstream input an error message shows.
const previewLen = 16

func preview(b []byte) []byte {
	if len(b) > previewLen {
		return b[:previewLen]
	}
	return b
}

func (r *Reader) truncated(err error, what string) error {
	switch err {
	case io.EOF:
		return r.failf(ErrTruncated, "the stream ended without its end-of-stream frame")
	case io.ErrUnexpectedEOF:
		return r.failf(ErrTruncated, "the stream ended inside a %s", what)
	}
	return r.fail(fmt.Errorf("%s: %w", r.where(), err))
}

// decode fills f from a checked payload and advances the sequence state. It
// reports skip for frames of a skippable unknown kind.
func (r *Reader) decode(f *Frame, flags byte, p []byte) (skip bool, err error) {
	need := func(n int) error {
		if len(p) != n {
			return r.failf(ErrCorrupt, "%v frame of %d bytes, want %d", f.Kind, len(p), n)
		}
		return nil
	}
	seq := func(wantBatch bool) error {
		if r.inBatch != wantBatch {
			return r.failf(ErrSequence, "%v frame %s a batch", f.Kind, map[bool]string{true: "inside", false: "outside"}[r.inBatch])
		}
		return nil
	}
	switch f.Kind {
	case KindBatchBegin:
		if err := need(16); err != nil {
			return false, err
		}
		if err := seq(false); err != nil {
			return false, err
		}
		f.BatchID, f.Time = binary.BigEndian.Uint64(p), int64(binary.BigEndian.Uint64(p[8:]))
		r.inBatch, r.batchID, r.count = true, f.BatchID, 0
	case KindRecords:
		if err := seq(true); err != nil {
			return false, err
		}
		if flags != 0 {
			if p, err = r.decompress(flags, p); err != nil {
				return false, err
			}
		}
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)) {
			return false, r.failf(ErrCorrupt, "Records frame with a bad record count")
		}
		p = p[k:]
		f.unchecked = r.DeferCheck
		if !r.DeferCheck {
			if err := checkBlock(p, int(n), 0); err != nil {
				return false, r.fail(fmt.Errorf("%s: %w", r.where(), layoutError(err)))
			}
		}
		f.Count, f.Payload = n, p
		r.count += n
	case KindBatchEnd:
		if err := need(16); err != nil {
			return false, err
		}
		if err := seq(true); err != nil {
			return false, err
		}
		f.BatchID, f.Count = binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])
		if f.BatchID != r.batchID {
			return false, r.failf(ErrSequence, "BatchEnd for batch %d", f.BatchID)
		}
		if f.Count != r.count {
			return false, r.failf(ErrCorrupt, "the batch ends with %d records but carried %d", f.Count, r.count)
		}
		r.inBatch, r.last = false, r.batchID
		r.nbatch++
	case KindWatermark:
		if err := need(8); err != nil {
			return false, err
		}
		if err := seq(false); err != nil {
			return false, err
		}
		f.Time = int64(binary.BigEndian.Uint64(p))
	case KindCheckpoint:
		if err := seq(false); err != nil {
			return false, err
		}
		if len(p) > MaxCheckpoint {
			return false, r.failf(ErrCorrupt, "%v frame of %d bytes, at most %d", f.Kind, len(p), MaxCheckpoint)
		}
		if n, k := binary.Uvarint(p); k <= 0 || n == 0 || n > uint64(len(p)-k) {
			return false, r.failf(ErrCorrupt, "%v frame with a bad id length", f.Kind)
		}
		f.Payload = p
	case KindEnd:
		if err := need(0); err != nil {
			return false, err
		}
		if err := seq(false); err != nil {
			return false, err
		}
		r.done = true
	default:
		if f.Kind >= SkipFirst && f.Kind <= SkipLast {
			f.Payload = p
			return true, nil
		}
		return false, r.failf(ErrUnknown, "%v", f.Kind)
	}
	return false, nil
}

// checkBlock verifies that b holds exactly n length-prefixed records. It
// runs on every Records frame a stage reads, so records under 128 bytes
// (a one-byte length) take a branch and an add, with the bounds checked
// once per record at the loop's top: a third of a pass-through stage's CPU
// went to binary.Uvarint here before.
//
// The records are numbered from first in its errors (the place in the
// frame of b's first record).
func checkBlock(b []byte, n, first int) error {
	i := 0
	for r := 0; r < n; r++ {
		if i >= len(b) {
			if i > len(b) {
				r-- // the record before ended past the frame
			}
			return fmt.Errorf("record %d overruns the frame", first+r)
		}
		if c := b[i]; c < 0x80 {
			i += 1 + int(c)
			continue
		}
		l, k := binary.Uvarint(b[i:])
		if k <= 0 || l > uint64(len(b)-i-k) {
			return fmt.Errorf("record %d overruns the frame", first+r)
		}
		i += k + int(l)
	}
	switch {
	case i > len(b):
		return fmt.Errorf("record %d overruns the frame", first+n-1)
	case i < len(b):
		return fmt.Errorf("%d bytes after the last record", len(b)-i)
	}
	return nil
}

func (r *Reader) decompress(flags byte, p []byte) ([]byte, error) {
	var err error
	if flags == FlagS2 {
		n, derr := s2.DecodedLen(p)
		if derr != nil {
			return nil, r.failf(ErrCorrupt, "%v", derr) // s2's errors start with "s2: "
		}
		if n > MaxPayload {
			return nil, r.failf(ErrTooLarge, "Records frame decompresses to %d bytes, over the limit of %d", n, MaxPayload)
		}
		if cap(r.dbuf) < n {
			r.dbuf = make([]byte, n)
		}
		r.dbuf, err = s2.Decode(r.dbuf[:cap(r.dbuf)], p)
		if err != nil {
			return nil, r.failf(ErrCorrupt, "%v", err)
		}
		return r.dbuf, nil
	}
	if r.zdec == nil {
		r.zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxPayload))
		if err != nil {
			return nil, r.fail(err)
		}
	}
	r.dbuf, err = r.zdec.DecodeAll(p, r.dbuf[:0])
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, r.failf(ErrTooLarge, "Records frame decompresses beyond the limit of %d", MaxPayload)
		}
		return nil, r.failf(ErrCorrupt, "zstd: %v", err)
	}
	return r.dbuf, nil
}

// NewRecords iterates over a block of n records laid out as in a Records
// frame, (uvarint length, msgpack)*. The block must be well formed: build it
// with AppendRecord.
func NewRecords(block []byte, n int) Records { return Records{b: block, n: n, total: n} }

// AppendRecord appends rec to a block as a Records frame lays it out.
func AppendRecord(block, rec []byte) []byte {
	return append(binary.AppendUvarint(block, uint64(len(rec))), rec...)
}

// Rest returns the records not yet returned, as a block, and their count.
func (r *Records) Rest() ([]byte, int) { return r.b, r.n }

// Buffered is the number of bytes read from the input but not yet returned
// in a frame, as bufio.Reader's: a part of the next frame, after an error.
func (r *Reader) Buffered() int { return r.end - r.start }

package framing

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BlockSize is the default size at which a Writer cuts a Records frame.
const BlockSize = 64 << 10

// MaxRecord bounds one record, so that a block always fits in a frame.
const MaxRecord = MaxPayload - 2*BlockSize

// flushSize is how much framed output a Writer gathers before one Write.
const flushSize = 256 << 10

// Writer writes a dstream stream. It gathers records into blocks and frames
// into one buffer, so a batch of small records costs few Write calls; every
// BatchEnd, Watermark and End flushes, so downstream sees each batch whole and
// at once. Errors are sticky: after one, every method returns it.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	w     io.Writer
	out   []byte // framed bytes not yet written to w
	block []byte // records of the open block: (uvarint length, msgpack)*
	nrec  int    // records in block

	inBatch bool
	batchID uint64
	count   uint64 // records in the open batch
	done    uint64 // records in the batches ended
	started bool   // header written
	ended   bool

	// BlockSize is the payload size at which a Records frame is cut.
	BlockSize int

	comp Compression
	zenc *zstd.Encoder
	cbuf []byte // block with its count, before compression
	zbuf []byte // compressed block
	err  error
}

// NewWriter returns a Writer on w. The stream header is written with the
// first frame, so a stage that fails before writing anything leaves its
// output empty.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, BlockSize: BlockSize, out: make([]byte, 0, flushSize+BlockSize+64)}
}

// SetCompression selects the compression of Records frames.
func (w *Writer) SetCompression(c Compression) error {
	w.comp = c
	if c == Zstd && w.zenc == nil {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return err
		}
		w.zenc = enc
	}
	return nil
}

// InBatch reports whether a batch is open.
func (w *Writer) InBatch() bool { return w.inBatch }

// BatchCount is the number of records written to the open batch so far.
func (w *Writer) BatchCount() uint64 { return w.count }

// Written is the number of records written so far, in every batch.
func (w *Writer) Written() uint64 {
	if w.inBatch {
		return w.done + w.count
	}
	return w.done
}

// BeginBatch opens batch id whose interval ends at time t (unix ms).
func (w *Writer) BeginBatch(id uint64, t int64) error {
	if w.err != nil {
		return w.err
	}
	if w.inBatch {
		panic("framing: BeginBatch inside a batch")
	}
	w.inBatch, w.batchID, w.count = true, id, 0
	p := w.frameStart(KindBatchBegin)
	w.out = binary.BigEndian.AppendUint64(w.out, id)
	w.out = binary.BigEndian.AppendUint64(w.out, uint64(t))
	w.frameEnd(p, 0)
	return w.maybeFlush()
}

// WriteRecord adds one record (a msgpack map) to the open batch. rec is
// copied: the caller may reuse it at once.
func (w *Writer) WriteRecord(rec []byte) error {
	if !w.inBatch {
		panic("framing: WriteRecord outside a batch")
	}
	if len(rec) > MaxRecord {
		return fmt.Errorf("framing: record of %d bytes exceeds the limit of %d", len(rec), MaxRecord)
	}
	if err := w.makeRoom(len(rec) + binary.MaxVarintLen64); err != nil {
		return err
	}
	w.block = binary.AppendUvarint(w.block, uint64(len(rec)))
	w.block = append(w.block, rec...)
	w.nrec++
	w.count++
	if len(w.block) >= w.BlockSize {
		return w.flushBlock()
	}
	return w.err
}

// WriteRawBlock adds nrec records already framed as (uvarint length,
// msgpack)* to the open batch, as a stage passing a block on unchanged does.
func (w *Writer) WriteRawBlock(block []byte, nrec int) error {
	if !w.inBatch {
		panic("framing: WriteRawBlock outside a batch")
	}
	if uvarintLen(uint64(nrec))+len(block) > MaxPayload {
		return fmt.Errorf("framing: block of %d bytes exceeds the limit of %d", len(block), MaxPayload-uvarintLen(uint64(nrec)))
	}
	if err := w.makeRoom(len(block)); err != nil {
		return err
	}
	w.block = append(w.block, block...)
	w.nrec += nrec
	w.count += uint64(nrec)
	if len(w.block) >= w.BlockSize {
		return w.flushBlock()
	}
	return w.err
}

// WriteRecords adds the records recs has not yet returned to the open
// batch. When it has returned none, and they came in a frame compressed as
// this Writer compresses, that frame is passed on as it came: no copy into a
// block, no new checksum. This is how a stage passes a block through.
func (w *Writer) WriteRecords(recs Records) error {
	if !w.inBatch {
		panic("framing: WriteRecords outside a batch")
	}
	if err := recs.Check(); err != nil {
		return err
	}
	if recs.raw == nil || recs.n != recs.total || recs.n == 0 || recs.flags != w.flags() {
		b, n := recs.Rest()
		if n == 0 {
			return w.err
		}
		return w.WriteRawBlock(b, n)
	}
	if err := w.flushBlock(); err != nil {
		return err
	}
	w.header()
	w.out = append(w.out, recs.raw...)
	w.count += uint64(recs.n)
	return w.maybeFlush()
}

// flags are the frame flags of the Writer's compression.
func (w *Writer) flags() byte {
	switch w.comp {
	case S2:
		return FlagS2
	case Zstd:
		return FlagZstd
	}
	return 0
}

// EndBatch closes the open batch and flushes the stream.
func (w *Writer) EndBatch() error {
	if !w.inBatch {
		panic("framing: EndBatch outside a batch")
	}
	if err := w.flushBlock(); err != nil {
		return err
	}
	w.inBatch = false
	w.done += w.count
	p := w.frameStart(KindBatchEnd)
	w.out = binary.BigEndian.AppendUint64(w.out, w.batchID)
	w.out = binary.BigEndian.AppendUint64(w.out, w.count)
	w.frameEnd(p, 0)
	return w.Flush()
}

// Watermark writes an event-time watermark (unix ms) between batches.
func (w *Writer) Watermark(t int64) error {
	if w.inBatch {
		panic("framing: Watermark inside a batch")
	}
	p := w.frameStart(KindWatermark)
	w.out = binary.BigEndian.AppendUint64(w.out, uint64(t))
	w.frameEnd(p, 0)
	return w.Flush()
}

// Checkpoint writes a Checkpoint frame between batches: the source of the
// stream keeps the checkpoint id in the directory dir, so every stage after
// it learns that the pipeline replays from a checkpoint.
func (w *Writer) Checkpoint(id, dir string) error {
	if w.inBatch {
		panic("framing: Checkpoint inside a batch")
	}
	if n := uvarintLen(uint64(len(id))) + len(id) + len(dir); id == "" || n > MaxCheckpoint {
		return fmt.Errorf("framing: checkpoint id of %d bytes and directory of %d bytes: the frame holds at most %d bytes", len(id), len(dir), MaxCheckpoint)
	}
	p := w.frameStart(KindCheckpoint)
	w.out = binary.AppendUvarint(w.out, uint64(len(id)))
	w.out = append(w.out, id...)
	w.out = append(w.out, dir...)
	w.frameEnd(p, 0)
	return w.Flush()
}

// WriteSkippable writes a frame of a kind in the skippable range.
func (w *Writer) WriteSkippable(k Kind, payload []byte) error {
	if k < SkipFirst || k > SkipLast {
		panic("framing: WriteSkippable with a kind outside the skippable range")
	}
	p := w.frameStart(k)
	w.out = append(w.out, payload...)
	w.frameEnd(p, 0)
	return w.maybeFlush()
}

// Close ends the stream: it closes an open batch, writes End and flushes. It
// does not close the underlying writer.
func (w *Writer) Close() error {
	if w.ended {
		return w.err
	}
	if w.inBatch {
		if err := w.EndBatch(); err != nil {
			return err
		}
	}
	w.ended = true
	p := w.frameStart(KindEnd)
	w.frameEnd(p, 0)
	return w.Flush()
}

// Flush writes out everything buffered (but not an open block).
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.out) == 0 {
		return nil
	}
	_, err := w.w.Write(w.out)
	w.out = w.out[:0]
	if err != nil {
		w.err = err
	}
	return err
}

func (w *Writer) maybeFlush() error {
	if len(w.out) >= flushSize {
		return w.Flush()
	}
	return w.err
}

// makeRoom frames the open block first if n more bytes would take it, with
// its count, over MaxPayload: a block passed on whole (WriteRawBlock) may be
// as large as a frame, and BlockSize may be set high.
func (w *Writer) makeRoom(n int) error {
	if binary.MaxVarintLen64+len(w.block)+n > MaxPayload {
		return w.flushBlock()
	}
	return w.err
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// flushBlock frames the open block, if it holds any record.
func (w *Writer) flushBlock() error {
	if w.nrec == 0 {
		return w.err
	}
	var flags byte
	if w.comp != None {
		w.cbuf = binary.AppendUvarint(w.cbuf[:0], uint64(w.nrec))
		w.cbuf = append(w.cbuf, w.block...)
		if w.comp == S2 {
			w.zbuf, flags = s2.Encode(w.zbuf[:cap(w.zbuf)], w.cbuf), FlagS2
		} else {
			w.zbuf, flags = w.zenc.EncodeAll(w.cbuf, w.zbuf[:0]), FlagZstd
		}
		payload := w.zbuf
		if len(payload) >= len(w.cbuf) {
			// Store a block that does not shrink: it reads faster, and a
			// block as large as a frame would not fit once grown.
			payload, flags = w.cbuf, 0
		}
		p := w.frameStart(KindRecords)
		w.out = append(w.out, payload...)
		w.frameEnd(p, flags)
	} else {
		p := w.frameStart(KindRecords)
		w.out = binary.AppendUvarint(w.out, uint64(w.nrec))
		w.out = append(w.out, w.block...)
		w.frameEnd(p, flags)
	}
	w.block, w.nrec = w.block[:0], 0
	return w.maybeFlush()
}

// header appends the stream header before the first frame.
func (w *Writer) header() {
	if !w.started {
		w.started = true
		w.out = append(w.out, Magic...)
		w.out = append(w.out, Version)
	}
}

// frameStart appends a frame header whose length and checksum frameEnd fills
// in, and returns its offset.
func (w *Writer) frameStart(k Kind) int {
	w.header()
	p := len(w.out)
	w.out = append(w.out, 0, 0, 0, 0, byte(k), 0, 0, 0, 0, 0)
	return p
}

func (w *Writer) frameEnd(p int, flags byte) {
	payload := w.out[p+FrameHeaderLen:]
	if len(payload) > MaxPayload {
		panic(fmt.Sprintf("framing: frame of %d bytes exceeds MaxPayload", len(payload)))
	}
	binary.BigEndian.PutUint32(w.out[p:], uint32(len(payload)))
	w.out[p+5] = flags
	binary.BigEndian.PutUint32(w.out[p+6:], crc32.Checksum(payload, castagnoli))
}

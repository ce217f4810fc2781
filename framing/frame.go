// Package framing implements the dstream wire protocol: a header, then
// frames that mark batch boundaries and carry blocks of msgpack records.
// framing/SPEC.md gives the byte layout; this comment is its summary.
//
//	stream  = header frame*
//	header  = "DSTREAM" version(1 byte, = 1)
//	frame   = length(4, uint32 BE: payload bytes on the wire, <= MaxPayload)
//	          kind(1) flags(1) crc(4, CRC-32C of the payload on the wire)
//	          payload(length)
//
// Kinds (payload, integers big endian):
//
//	BatchBegin 0x01  batch id (8) batch time (8, int64 unix ms, the END of the interval)
//	Records    0x02  count (uvarint) then count x (length uvarint, msgpack map)
//	BatchEnd   0x03  batch id (8) record count (8)
//	Watermark  0x04  event time (8, int64 unix ms)
//	End        0x05  empty: the end of the stream
//	Checkpoint 0x06  id length (uvarint) id, then the directory: the source
//	                 keeps a checkpoint (<= MaxCheckpoint bytes, between batches)
//	0x40-0x7f        reserved, skipped by readers that do not know them
//	anything else    an error
//
// Flags: bit 0 the payload is s2-compressed, bit 1 zstd-compressed (only
// Records frames are compressed). A stream is well formed when every batch is
// BatchBegin Records* BatchEnd with matching id and count, watermarks come
// between batches, and End comes last. The Reader checks all of that.
package framing

import (
	"errors"
	"fmt"
)

// Magic starts every stream; Version follows it.
const (
	Magic   = "DSTREAM"
	Version = 1
)

// HeaderLen is the length of the stream header; FrameHeaderLen of each frame
// header.
const (
	HeaderLen      = len(Magic) + 1
	FrameHeaderLen = 10
)

// MaxPayload bounds a frame's payload on the wire and, after decompression,
// in memory. Writers cut blocks far below it (BlockSize).
const MaxPayload = 64 << 20

// Kind is the type of a frame.
type Kind uint8

// Frame kinds.
const (
	KindBatchBegin Kind = 0x01
	KindRecords    Kind = 0x02
	KindBatchEnd   Kind = 0x03
	KindWatermark  Kind = 0x04
	KindEnd        Kind = 0x05
	KindCheckpoint Kind = 0x06
)

// MaxCheckpoint bounds a Checkpoint frame's payload.
const MaxCheckpoint = 8 << 10

// Frames of kinds in [SkipFirst, SkipLast] are skipped by readers that do not
// know them; any other unknown kind is an error.
const (
	SkipFirst Kind = 0x40
	SkipLast  Kind = 0x7f
)

var kindNames = map[Kind]string{
	KindBatchBegin: "BatchBegin",
	KindRecords:    "Records",
	KindBatchEnd:   "BatchEnd",
	KindWatermark:  "Watermark",
	KindEnd:        "End",
	KindCheckpoint: "Checkpoint",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("UNKNOWN_KIND_0x%02x", uint8(k))
}

// Flags of a frame.
const (
	FlagS2   = 1 << 0
	FlagZstd = 1 << 1
	flagsAll = FlagS2 | FlagZstd
)

// Errors. Reader errors wrap these, and name the batch they occur in.
var (
	ErrNotDstream = errors.New("framing: input is not a dstream stream")
	ErrVersion    = errors.New("framing: unsupported protocol version")
	ErrTruncated  = errors.New("framing: stream truncated")
	// ErrEmpty is ErrTruncated of an input with no byte at all: no stage
	// wrote into it (stdin from /dev/null, an empty file).
	ErrEmpty    = fmt.Errorf("%w: the input is empty", ErrTruncated)
	ErrChecksum = errors.New("framing: checksum mismatch")
	ErrTooLarge = errors.New("framing: frame too large")
	ErrCorrupt  = errors.New("framing: corrupt frame")
	ErrSequence = errors.New("framing: frame out of sequence")
	ErrUnknown  = errors.New("framing: unknown frame kind")
)

// Compression selects how a Writer compresses Records frames.
type Compression uint8

// Compression methods.
const (
	None Compression = iota
	S2
	Zstd
)

// ParseCompression reads "none", "s2" or "zstd".
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "", "none":
		return None, nil
	case "s2":
		return S2, nil
	case "zstd":
		return Zstd, nil
	}
	return None, fmt.Errorf("unknown compression %q (want none, s2 or zstd)", s)
}

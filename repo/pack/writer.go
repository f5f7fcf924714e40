package pack

import (
	"encoding/binary"

	"github.com/azfs/azfs/keys"
)

// Writer accumulates sealed blobs into one pack in memory. Blobs are either
// copied in (Add) or sealed straight into the pack's buffer (Reserve), so a
// blob's sealed bytes are written once.
type Writer struct {
	buf     []byte
	entries []Entry
	dataLen int // bytes before the trailer, once finished
}

// bufferSize is the capacity of a new Writer's buffer: a full pack, the
// blob that fills it and the trailer.
const bufferSize = TargetSize + 1<<20

// NewWriter returns an empty pack writer.
func NewWriter() *Writer { return &Writer{buf: make([]byte, 0, bufferSize)} }

// Add appends a sealed blob.
func (w *Writer) Add(kind keys.Kind, id keys.ID, sealed []byte) {
	w.entries = append(w.entries, Entry{Kind: kind, ID: id, Offset: uint32(len(w.buf)), Length: uint32(len(sealed))})
	w.buf = append(w.buf, sealed...)
}

// Reserve appends an entry for a sealed blob of n bytes and returns the
// room for it in the pack's buffer, for the caller to seal into (while
// other callers fill the room they reserved: the buffer never moves once
// it holds a blob). It returns nil, leaving w as it was, when the blob
// and the trailer that would list it do not fit in the buffer's capacity
// beside the blobs w holds; the caller then finishes w and reserves in
// another. An empty w always takes the blob, growing its buffer if need
// be. Finish must not run before every reserved room is filled.
func (w *Writer) Reserve(kind keys.Kind, id keys.ID, n int) []byte {
	need := len(w.buf) + n + trailerBound(len(w.entries)+1)
	if need > cap(w.buf) {
		if len(w.entries) > 0 {
			return nil
		}
		w.buf = make([]byte, 0, need)
	}
	off := len(w.buf)
	w.entries = append(w.entries, Entry{Kind: kind, ID: id, Offset: uint32(off), Length: uint32(n)})
	w.buf = w.buf[:off+n]
	return w.buf[off : off+n : off+n]
}

// trailerBound is the most bytes the sealed trailer and the footer of a
// pack of count blobs take, so that Finish never moves the buffer.
func trailerBound(count int) int {
	return len(trailerMagic) + binary.MaxVarintLen64 + count*(1+len(keys.ID{})+2*binary.MaxVarintLen32) + keys.Overhead + FooterLen
}

// Size returns the bytes added so far.
func (w *Writer) Size() int { return len(w.buf) }

// Count returns the number of blobs added so far.
func (w *Writer) Count() int { return len(w.entries) }

// Finish appends the trailer, sealed with the index sealer, and the footer,
// and returns the pack's name, bytes and entries. The writer must not be used
// again before Reset.
func (w *Writer) Finish(ks *keys.KeySet, sealer *keys.Sealer) (keys.ID, []byte, []Entry) {
	w.dataLen = len(w.buf)
	trailer := EncodeTrailer(w.entries)
	tid := ks.ID(keys.KindTrailer, trailer)
	start := len(w.buf)
	w.buf = sealer.Seal(w.buf, keys.KindTrailer, tid, trailer)
	w.buf = append(w.buf, tid[:]...)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(w.buf)-start-len(tid)))
	w.buf = append(w.buf, footerMagic...)
	return Name(w.buf), w.buf, w.entries
}

// Regap makes a finished pack over again with gap (random bytes) before
// its first blob, and returns it as Finish does: the same blobs under
// another name, for when a pack of the same bytes exists already and may
// not be relied on (a prune is deleting it). Readers accept gaps between
// blobs.
func (w *Writer) Regap(ks *keys.KeySet, sealer *keys.Sealer, gap []byte) (keys.ID, []byte, []Entry) {
	buf := make([]byte, 0, len(gap)+cap(w.buf))
	buf = append(append(buf, gap...), w.buf[:w.dataLen]...)
	for i := range w.entries {
		w.entries[i].Offset += uint32(len(gap))
	}
	w.buf = buf
	return w.Finish(ks, sealer)
}

// Reset empties the writer for reuse, keeping its buffer.
func (w *Writer) Reset() {
	w.buf = w.buf[:0]
	w.entries = nil
}

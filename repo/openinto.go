package repo

import (
	"errors"
	"fmt"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/pack"
)

// OpenBlobInto is OpenBlob for a reader that opens many blobs one after
// the other and reuses one buffer for them (package restore): the
// plaintext is appended to dst (a compressed blob decoded into dst's room,
// grown only when that is too small), and with a nil dst it is OpenBlob.
// sealed is overwritten: it is decrypted in place.
func (v *Area) OpenBlobInto(dst []byte, kind keys.Kind, id keys.ID, sealed []byte) ([]byte, error) {
	return v.openBlobInto(dst, kind, id, sealed, nil)
}

// openBlobInto is OpenBlobInto handing decoded the plaintext's prefixes
// as it decodes them, after the tag verified (loadBlobInto).
func (v *Area) openBlobInto(dst []byte, kind keys.Kind, id keys.ID, sealed []byte, decoded func(prefix []byte)) ([]byte, error) {
	payload, err := v.openSealed(kind, id, sealed)
	if err != nil {
		return nil, err
	}
	return v.decodePayload(dst, kind, id, payload, decoded)
}

// openSealed authenticates sealed and decrypts it in place, returning the
// payload.
func (v *Area) openSealed(kind keys.Kind, id keys.ID, sealed []byte) ([]byte, error) {
	if v.open.Len() == 0 {
		return nil, ErrWriteOnly
	}
	payload, err := v.open.OpenInPlace(kind, id, sealed)
	if errors.Is(err, keys.ErrOtherKey) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return payload, nil
}

// decodePayload appends the data of an opened blob's payload to dst (a
// subslice of payload with a nil dst, for an uncompressed one), handing
// decoded its prefixes when both are set (pack.DecodePayloadSteps).
func (v *Area) decodePayload(dst []byte, kind keys.Kind, id keys.ID, payload []byte, decoded func(prefix []byte)) ([]byte, error) {
	limit := maxTreePart
	if kind == keys.KindData {
		limit = v.cfg.Chunker.Max
	}
	var plain []byte
	var err error
	if decoded != nil && dst != nil {
		plain, err = pack.DecodePayloadSteps(dst, payload, limit, decoded)
	} else {
		plain, err = pack.DecodePayload(dst, payload, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %w", kind, id.Short(), ErrDamaged, err)
	}
	return plain, nil
}

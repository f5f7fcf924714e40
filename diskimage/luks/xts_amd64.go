//go:build !purego

package luks

import (
	"crypto/aes"
	"encoding/binary"
	"math/bits"

	"golang.org/x/sys/cpu"
)

// aesniKey is an AES key's round keys for AESDEC, the equivalent inverse
// cipher: the encryption round keys in reverse order, the inner ones
// passed through InvMixColumns.
type aesniKey struct {
	rounds int
	dec    []byte // (rounds+1) round keys of 16 bytes
}

// newAESNIKey returns the decryption round keys of AES key key (16 or 32
// bytes), or nil when the CPU has no AES instructions.
func newAESNIKey(key []byte) *aesniKey {
	if !cpu.X86.HasAES {
		return nil
	}
	enc := expandKey(key)
	rounds := len(enc)/aes.BlockSize - 1
	dec := make([]byte, len(enc))
	copy(dec, enc[rounds*aes.BlockSize:])
	for r := 1; r < rounds; r++ {
		invMixColumns(&dec[r*aes.BlockSize], &enc[(rounds-r)*aes.BlockSize])
	}
	copy(dec[rounds*aes.BlockSize:], enc[:aes.BlockSize])
	clear(enc)
	return &aesniKey{rounds: rounds, dec: dec}
}

// decryptSector decrypts sector (a multiple of 128 bytes) in place, the
// first block's tweak being tweak.
func (k *aesniKey) decryptSector(sector []byte, tweak *[aes.BlockSize]byte) {
	decryptSectorAsm(k.rounds, &k.dec[0], &sector[0], len(sector)/aes.BlockSize, &tweak[0])
}

//go:noescape
func decryptSectorAsm(rounds int, dk *byte, buf *byte, blocks int, tweak *byte)

//go:noescape
func invMixColumns(dst, src *byte)

// expandKey returns the encryption round keys of AES key key (16 or 32
// bytes) as FIPS 197 §5.2 expands them, each round key's four words
// big-endian, as AES instructions take them.
func expandKey(key []byte) []byte {
	nk := len(key) / 4
	rounds := nk + 6
	w := make([]uint32, 4*(rounds+1))
	for i := range nk {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := nk; i < len(w); i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = subWord(bits.RotateLeft32(t, 8)) ^ rcon<<24
			rcon = uint32(xtime(byte(rcon)))
		case nk > 6 && i%nk == 4:
			t = subWord(t)
		}
		w[i] = w[i-nk] ^ t
	}
	out := make([]byte, 4*len(w))
	for i, x := range w {
		binary.BigEndian.PutUint32(out[4*i:], x)
	}
	clear(w)
	return out
}

// subWord applies the S-box to each byte of x.
func subWord(x uint32) uint32 {
	return uint32(sbox[x>>24])<<24 | uint32(sbox[x>>16&0xff])<<16 | uint32(sbox[x>>8&0xff])<<8 | uint32(sbox[x&0xff])
}

// xtime multiplies b by x in GF(2^8) modulo AES's polynomial.
func xtime(b byte) byte {
	return b<<1 ^ (b>>7)*0x1b
}

// sbox is AES's S-box: the inverse in GF(2^8) followed by the affine map.
var sbox = func() (s [256]byte) {
	// p runs through the field's non-zero elements as powers of 3, q
	// through their inverses as powers of 3's inverse.
	p, q := byte(1), byte(1)
	for {
		p ^= xtime(p)
		q ^= q << 1
		q ^= q << 2
		q ^= q << 4
		if q&0x80 != 0 {
			q ^= 0x09
		}
		s[p] = q ^ bits.RotateLeft8(q, 1) ^ bits.RotateLeft8(q, 2) ^ bits.RotateLeft8(q, 3) ^ bits.RotateLeft8(q, 4) ^ 0x63
		if p == 1 {
			break
		}
	}
	s[0] = 0x63
	return s
}()

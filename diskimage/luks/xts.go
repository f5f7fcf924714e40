package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
)

// xtsCipher decrypts AES-XTS sectors, as golang.org/x/crypto/xts does.
// Where the CPU has AES instructions (amd64), a sector's blocks are
// decrypted eight at a time in assembly (aesniKey), their tweaks computed
// in registers: Go's crypto/aes decrypts one block per call on amd64 (its
// CBC decryption too), which made XTS the largest cost of reading inside
// an encrypted image. Elsewhere each block is decrypted through
// cipher.Block, its tweak kept in two words.
type xtsCipher struct {
	k1, k2 cipher.Block
	// asm holds k1's round keys for the assembly, nil without it.
	asm *aesniKey
}

// newXTS returns the cipher for an XTS key: two AES keys of equal size.
func newXTS(key []byte) (*xtsCipher, error) {
	if len(key) != 32 && len(key) != 64 {
		return nil, fmt.Errorf("aes-xts key of %d bytes", len(key))
	}
	k1, err := aes.NewCipher(key[:len(key)/2])
	if err != nil {
		return nil, err
	}
	k2, err := aes.NewCipher(key[len(key)/2:])
	if err != nil {
		return nil, err
	}
	return &xtsCipher{k1: k1, k2: k2, asm: newAESNIKey(key[:len(key)/2])}, nil
}

// decryptSectors decrypts buf in place: sectors of sectorSize bytes (a
// multiple of 16), the first with IV iv, the next iv+ivStep, and so on.
// A partial sector at the end is left alone.
func (c *xtsCipher) decryptSectors(buf []byte, sectorSize int, iv, ivStep uint64) {
	var tweak [aes.BlockSize]byte
	for off := 0; off+sectorSize <= len(buf); off += sectorSize {
		// The tweak of a sector's first block is E_k2(iv).
		binary.LittleEndian.PutUint64(tweak[:8], iv)
		clear(tweak[8:])
		c.k2.Encrypt(tweak[:], tweak[:])
		sector := buf[off : off+sectorSize]
		if c.asm != nil && sectorSize%(8*aes.BlockSize) == 0 {
			c.asm.decryptSector(sector, &tweak)
		} else {
			c.decryptSector(sector, &tweak)
		}
		iv += ivStep
	}
}

// decryptSector decrypts one sector in place block by block, the first
// block's tweak being tweak.
func (c *xtsCipher) decryptSector(sector []byte, tweak *[aes.BlockSize]byte) {
	le := binary.LittleEndian
	lo, hi := le.Uint64(tweak[:8]), le.Uint64(tweak[8:])
	for j := 0; j+aes.BlockSize <= len(sector); j += aes.BlockSize {
		b := sector[j : j+aes.BlockSize : j+aes.BlockSize]
		le.PutUint64(b, le.Uint64(b)^lo)
		le.PutUint64(b[8:], le.Uint64(b[8:])^hi)
		c.k1.Decrypt(b, b)
		le.PutUint64(b, le.Uint64(b)^lo)
		le.PutUint64(b[8:], le.Uint64(b[8:])^hi)
		// The next block's tweak is this one times α in GF(2^128).
		carry := hi >> 63
		hi = hi<<1 | lo>>63
		lo = lo<<1 ^ carry*0x87
	}
}

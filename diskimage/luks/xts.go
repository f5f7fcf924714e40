package luks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// xtsCipher decrypts AES-XTS sectors. It does what golang.org/x/crypto/xts
// does, several times faster: the AES block decryptions of a sector run as
// one CBC decryption (AES-NI's pipelined path) of the tweaked blocks, and
// the CBC chaining is XORed away after.
type xtsCipher struct {
	k1, k2 cipher.Block
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
	return &xtsCipher{k1: k1, k2: k2}, nil
}

// decryptSectors decrypts buf in place: sectors of sectorSize bytes (a
// multiple of 16), the first with IV iv, the next iv+ivStep, and so on.
// The tweaks of all sectors are computed first, then the whole buffer is
// decrypted as one CBC run: CBC decryption of X = C ^ T with a zero IV
// gives D(X_j) ^ X_{j-1}, and P_j = D(X_j) ^ T_j.
func (c *xtsCipher) decryptSectors(buf []byte, sectorSize int, iv, ivStep uint64) {
	n := len(buf) - len(buf)%sectorSize
	if n == 0 {
		return
	}
	buf = buf[:n]
	tweaks := make([]byte, n)
	for off := 0; off < n; off += sectorSize {
		// The tweak of block j is E_k2(iv) times α^j in GF(2^128).
		t := tweaks[off : off+aes.BlockSize]
		binary.LittleEndian.PutUint64(t, iv)
		c.k2.Encrypt(t, t)
		lo, hi := binary.LittleEndian.Uint64(t[:8]), binary.LittleEndian.Uint64(t[8:])
		for j := off + aes.BlockSize; j < off+sectorSize; j += aes.BlockSize {
			carry := hi >> 63
			hi = hi<<1 | lo>>63
			lo = lo<<1 ^ carry*0x87
			binary.LittleEndian.PutUint64(tweaks[j:], lo)
			binary.LittleEndian.PutUint64(tweaks[j+8:], hi)
		}
		iv += ivStep
	}
	tweaked := make([]byte, n)
	subtle.XORBytes(tweaked, buf, tweaks)
	var zero [aes.BlockSize]byte
	cipher.NewCBCDecrypter(c.k1, zero[:]).CryptBlocks(buf, tweaked)
	subtle.XORBytes(buf[aes.BlockSize:], buf[aes.BlockSize:], tweaked[:n-aes.BlockSize])
	subtle.XORBytes(buf, buf, tweaks)
}

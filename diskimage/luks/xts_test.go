package luks

import (
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/xts"
)

// TestXTSMatchesReference: decryptSectors decrypts as golang.org/x/crypto/xts
// does, for both key sizes, both sector sizes and, where the CPU has AES
// instructions, with and without the assembly.
func TestXTSMatchesReference(t *testing.T) {
	for _, keyLen := range []int{32, 64} {
		for _, sectorSize := range []int{512, 4096} {
			for _, asm := range []bool{true, false} {
				testXTSMatchesReference(t, keyLen, sectorSize, asm)
			}
		}
	}
}

func testXTSMatchesReference(t *testing.T, keyLen, sectorSize int, asm bool) {
	key := make([]byte, keyLen)
	rand.Read(key)
	ref, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newXTS(key)
	if err != nil {
		t.Fatal(err)
	}
	if asm && c.asm == nil {
		t.Logf("no AES instructions: the assembly is not tested")
		return
	}
	if !asm {
		c.asm = nil
	}
	data := make([]byte, 4*sectorSize)
	rand.Read(data)
	want := make([]byte, len(data))
	iv := uint64(1<<40 + 7)
	for i := 0; i < 4; i++ {
		ref.Decrypt(want[i*sectorSize:(i+1)*sectorSize], data[i*sectorSize:(i+1)*sectorSize], iv+uint64(i)*8)
	}
	c.decryptSectors(data, sectorSize, iv, 8)
	if !bytes.Equal(data, want) {
		t.Errorf("key %d bytes, sectors of %d, assembly %v: differs from x/crypto/xts", keyLen, sectorSize, asm)
	}
}

func BenchmarkXTS(b *testing.B) {
	key := make([]byte, 64)
	c, _ := newXTS(key)
	ref, _ := xts.NewCipher(aes.NewCipher, key)
	buf := make([]byte, 1<<20)
	b.Run("own", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			c.decryptSectors(buf, 512, 0, 1)
		}
	})
	b.Run("own-no-assembly", func(b *testing.B) {
		c, _ := newXTS(key)
		c.asm = nil
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			c.decryptSectors(buf, 512, 0, 1)
		}
	})
	b.Run("x-crypto-xts", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			for i := 0; i < len(buf); i += 512 {
				ref.Decrypt(buf[i:i+512], buf[i:i+512], uint64(i/512))
			}
		}
	})
}

//go:build !amd64 || purego

package luks

import "crypto/aes"

// aesniKey has no assembly here: newAESNIKey returns nil, and xtsCipher
// decrypts through cipher.Block.
type aesniKey struct{}

func newAESNIKey([]byte) *aesniKey { return nil }

func (*aesniKey) decryptSector([]byte, *[aes.BlockSize]byte) {}

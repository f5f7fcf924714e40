package luks_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/azfs/azfs/diskimage/imagetest"
	"github.com/azfs/azfs/diskimage/luks"
)

// encrypted returns the plaintext that cryptsetup encrypted and the LUKS
// volume it made of it, a file of sizeMiB MiB whose last 8 MiB were free.
func encrypted(t *testing.T, sizeMiB int, o imagetest.LUKSOptions) ([]byte, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vol")
	plain := make([]byte, (sizeMiB-8)<<20)
	if _, err := rand.Read(plain); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(plain, make([]byte, 8<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	imagetest.LUKS(t, path, o)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return plain, f
}

func TestUnlockRealVolumes(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    imagetest.LUKSOptions
	}{
		{"luks2-argon2id", imagetest.LUKSOptions{}},
		{"luks2-argon2i", imagetest.LUKSOptions{PBKDF: "argon2i"}},
		{"luks2-pbkdf2", imagetest.LUKSOptions{PBKDF: "pbkdf2"}},
		{"luks2-sector4096", imagetest.LUKSOptions{SectorSize: 4096}},
		{"luks1", imagetest.LUKSOptions{Type: "luks1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain, f := encrypted(t, 12, tc.o)
			st, _ := f.Stat()
			h, err := luks.Open(f, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Unlock(f, []byte("wrong")); !errors.Is(err, luks.ErrKey) {
				t.Fatalf("wrong passphrase: %v, want ErrKey", err)
			}
			v, err := h.Unlock(f, []byte(imagetest.Passphrase))
			if err != nil {
				t.Fatal(err)
			}
			if v.Size() < int64(len(plain)) {
				t.Fatalf("volume of %d bytes, want at least %d", v.Size(), len(plain))
			}
			got := make([]byte, len(plain))
			if _, err := v.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatal("decrypted volume differs from the plaintext")
			}
			// An unaligned read in the middle.
			part := make([]byte, 10000)
			if _, err := v.ReadAt(part, 1<<20+123); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(part, plain[1<<20+123:][:10000]) {
				t.Fatal("unaligned read differs")
			}
			if n, err := v.ReadAt(nil, 4096); n != 0 || err != nil {
				t.Fatalf("empty read: %d, %v", n, err)
			}
			if n, err := v.ReadAt(part, v.Size()-100); n != 100 || err != io.EOF {
				t.Fatalf("read at the end: %d, %v", n, err)
			}
		})
	}
}

func TestReadKeys(t *testing.T) {
	dir := t.TempDir()
	pass, key, empty := filepath.Join(dir, "pass"), filepath.Join(dir, "key"), filepath.Join(dir, "empty")
	os.WriteFile(pass, []byte("typed\n"), 0o600)
	os.WriteFile(key, []byte("raw\n\x00bytes\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	keys, err := luks.ReadKeys([]string{pass}, []string{key})
	if err != nil || len(keys) != 2 || string(keys[0]) != "typed" || string(keys[1]) != "raw\n\x00bytes\n" {
		t.Fatalf("keys %q, %v", keys, err)
	}
	if _, err := luks.ReadKeys([]string{empty}, nil); err == nil {
		t.Fatal("an empty passphrase file is accepted")
	}
	if _, err := luks.ReadKeys(nil, []string{filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing key file: %v", err)
	}
}

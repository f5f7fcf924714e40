package smb

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/smb/smbtest"
	"github.com/azfs/azfs/repo/storage/storagetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := smbtest.StopShared(); err != nil {
		println("smbtest:", err.Error())
	}
	os.Exit(code)
}

// newStore creates a store at share/path of the shared server, closed
// when the test ends.
func newStore(t testing.TB, share, path string) *Store {
	t.Helper()
	srv := smbtest.Shared(t)
	loc, err := ParseLocation(srv.URL(smbtest.User, share, path), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Create(context.Background(), loc, Auth{Password: srv.Password})
	if err != nil {
		t.Fatalf("Create(%s): %v", loc, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// putFile writes a file into a share's directory on the server's disk,
// bypassing the store, owned by the account the store logs on as.
func putFile(t testing.TB, dir, name string) {
	t.Helper()
	u, err := user.Lookup(smbtest.User)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p := filepath.Join(dir, filepath.FromSlash(name))
	for d := filepath.Dir(p); d != dir; d = filepath.Dir(d) {
		defer os.Chown(d, uid, gid)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("decoy"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	srv := smbtest.Shared(t)
	t.Run("Share", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Storage {
			return newStore(t, srv.NewShare(t), "")
		})
	})
	// A store below a path of a share, among files that are not its
	// objects: names sharing the path as a string, and invalid names
	// inside it.
	share := srv.NewShare(t)
	t.Run("Path", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Storage {
			path := "vaults/" + strings.ToLower(rand.Text())
			for _, name := range []string{"config", path + "x/config", path + "-data", path + "/.tmp-1", path + "/data/.x"} {
				putFile(t, srv.ShareDir(share), name)
			}
			return newStore(t, share, path)
		})
	})
}

// TestLogon: a wrong password fails Open with ErrLogon, in a message that
// names neither password; a missing share or directory with ErrNotFound.
func TestLogon(t *testing.T) {
	ctx := context.Background()
	srv := smbtest.Shared(t)
	share := srv.NewShare(t)
	loc, err := ParseLocation(srv.URL(smbtest.User, share, ""), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, loc, Auth{Password: "wrong-" + srv.Password})
	if !errors.Is(err, ErrLogon) || strings.Contains(err.Error(), srv.Password) {
		t.Errorf("Open with a wrong password: %v, want ErrLogon without the password", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("Open with a wrong password: %q is not one line", err)
	}
	missing := loc
	missing.Share = "nosuchshare"
	if _, err := Open(ctx, missing, Auth{Password: srv.Password}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open of a missing share: %v, want ErrNotFound", err)
	}
	missing = loc
	missing.Path = "no/such/dir"
	if _, err := Open(ctx, missing, Auth{Password: srv.Password}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open of a missing directory: %v, want ErrNotFound", err)
	}
}

// TestSecurity: sessions are SMB 3, signed, and encrypted when the server
// asks for it (the test server does).
func TestSecurity(t *testing.T) {
	s := newStore(t, smbtest.Shared(t).NewShare(t), "")
	sec := s.Security()
	if sec.Dialect < 0x300 || !sec.Signed || !sec.Encrypted {
		t.Errorf("Security() = %s, want SMB 3, signed, encrypted", sec)
	}
}

// TestInsecureRefused: a server that offers only SMB 2 is refused unless
// Insecure allows it.
func TestInsecureRefused(t *testing.T) {
	ctx := context.Background()
	srv := smbtest.Start(t, "server max protocol = SMB2_10", "server smb encrypt = off")
	loc, err := ParseLocation(srv.URL(smbtest.User, srv.NewShare(t), ""), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, loc, Auth{Password: srv.Password})
	if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "SMB 2.1") {
		t.Errorf("Open of an SMB 2.1 server: %v, want ErrInsecure naming SMB 2.1", err)
	}
	s, err := Open(ctx, loc, Auth{Password: srv.Password, Insecure: true})
	if err != nil {
		t.Fatalf("Open of an SMB 2.1 server with Insecure: %v", err)
	}
	defer s.Close()
	if err := s.Save(ctx, "config", []byte("x")); err != nil {
		t.Errorf("Save with Insecure: %v", err)
	}
}

// TestReadOnlyUser: an account the share lets read but not write can
// load, but saving or deleting fails with ErrPermission and leaves
// nothing behind.
func TestReadOnlyUser(t *testing.T) {
	ctx := context.Background()
	srv := smbtest.Shared(t)
	rw := newStore(t, "ro", "v")
	if err := rw.Save(ctx, "config", []byte("c")); err != nil {
		t.Fatal(err)
	}
	loc, err := ParseLocation(srv.URL(smbtest.ReadOnly, "ro", "v"), "")
	if err != nil {
		t.Fatal(err)
	}
	ro, err := Open(ctx, loc, Auth{Password: srv.ROPassword})
	if err != nil {
		t.Fatalf("Open as %s: %v", smbtest.ReadOnly, err)
	}
	defer ro.Close()
	if b, err := ro.Load(ctx, "config", 0, -1); err != nil || string(b) != "c" {
		t.Errorf("Load as %s = %q, %v", smbtest.ReadOnly, b, err)
	}
	for _, name := range []string{"keys/k", "data/ab/new"} {
		if err := ro.Save(ctx, name, []byte("x")); !errors.Is(err, storage.ErrPermission) {
			t.Errorf("Save(%q) as %s: %v, want ErrPermission", name, smbtest.ReadOnly, err)
		}
	}
	if err := ro.Delete(ctx, "config"); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("Delete as %s: %v, want ErrPermission", smbtest.ReadOnly, err)
	}
	var names []string
	rw.List(ctx, "", func(fi storage.Info) error { names = append(names, fi.Name); return nil })
	if len(names) != 1 || names[0] != "config" {
		t.Errorf("after refused writes the store lists %q, want only config", names)
	}
	if entries, _ := os.ReadDir(filepath.Join(srv.ShareDir("ro"), "v")); len(entries) != 1 {
		t.Errorf("after refused writes the directory holds %d entries, want 1", len(entries))
	}
}

// TestReconnect: after the server restarts, the request that meets the
// dropped connection fails, and the next one dials again and succeeds.
func TestReconnect(t *testing.T) {
	ctx := context.Background()
	srv := smbtest.Start(t)
	loc, err := ParseLocation(srv.URL(smbtest.User, srv.NewShare(t), "p"), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Create(ctx, loc, Auth{Password: srv.Password, Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Save(ctx, "config", []byte("before")); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	var failed int
	for i := range 3 {
		b, err := s.Load(ctx, "config", 0, -1)
		if err == nil && string(b) == "before" {
			break
		}
		if errors.Is(err, storage.ErrNotFound) || i == 2 {
			t.Fatalf("Load %d after the restart: %q, %v", i, b, err)
		}
		failed++
	}
	if failed > 2 {
		t.Errorf("%d loads failed after the restart, want at most one per pooled session", failed)
	}
	if err := s.Save(ctx, "keys/k", []byte("after")); err != nil {
		t.Errorf("Save after the restart: %v", err)
	}
}

// TestLargeRanges loads ranges of an object of several pieces (requests of
// 1 MiB, several at once): across piece boundaries, to the end, and past it.
func TestLargeRanges(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, smbtest.Shared(t).NewShare(t), "")
	data := make([]byte, 5<<20+3)
	rand.Read(data)
	if err := s.Save(ctx, "data/ab/big", data); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	for _, r := range [][2]int64{
		{0, -1}, {0, size}, {1, 3 << 20}, {1<<20 - 1, 2<<20 + 2}, {size - 10, 3 << 20}, {size - (2 << 20), -1}, {4 << 20, 64 << 20}, {size, -1},
	} {
		got, err := s.Load(ctx, "data/ab/big", r[0], r[1])
		end := size
		if r[1] >= 0 {
			end = min(size, r[0]+r[1])
		}
		if err != nil || !bytes.Equal(got, data[r[0]:end]) {
			t.Errorf("Load(%d, %d) = %d bytes, %v; want %d bytes of the object", r[0], r[1], len(got), err, end-r[0])
		}
	}
}

// TestListCallbackUsesStore: List holds no session while it calls fn, so
// fn may load what it is given even when the store keeps one session.
func TestListCallbackUsesStore(t *testing.T) {
	srv := smbtest.Shared(t)
	loc, err := ParseLocation(srv.URL(smbtest.User, srv.NewShare(t), ""), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, loc, Auth{Password: srv.Password, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"index/a", "index/b", "data/ab/c"} {
		if err := s.Save(ctx, name, []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err = s.List(ctx, "", func(fi storage.Info) error {
		b, err := s.Load(ctx, fi.Name, 0, -1)
		if err == nil && string(b) != fi.Name {
			err = fmt.Errorf("%s holds %q", fi.Name, b)
		}
		n++
		return err
	})
	if err != nil || n != 3 {
		t.Errorf("List loading in its callback: %d objects, %v", n, err)
	}
}

package unlock_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/certs"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/unlock"
)

var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

const (
	ownerPass keys.Passphrase = "owner passphrase, long enough"
	webPass   keys.Passphrase = "web01 passphrase, long enough"
	dbPass    keys.Passphrase = "db01 passphrase, long enough"
)

// fixture is a vault in memory with two machines, web01 (this host's) and
// db01, each with a point.
type fixture struct {
	st    *mem.Store
	root  repo.Root
	owner *keys.OwnerKeys
	web   *keys.KeySet
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := mem.New()
	root, owner, err := repo.CreateVault(ctx, st, ownerPass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, root: root, owner: owner}
	for _, m := range []struct {
		name string
		pass keys.Passphrase
	}{{"web01", webPass}, {"db01", dbPass}} {
		v, err := root.RegisterMachine(ctx, m.name, m.pass, cheapKDF, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.SavePoint(ctx, &repo.Point{Machine: m.name, Time: time.Unix(1e9, 0), Root: keys.ID{1}}); err != nil {
			t.Fatal(err)
		}
		if m.name == "web01" {
			f.web = v.Keys()
		}
	}
	return f
}

// readsPoints checks that v is machine's area and reads its point.
func readsPoints(t *testing.T, v *repo.Area, machine string) {
	t.Helper()
	points, err := v.Points(context.Background())
	if err != nil || len(points) != 1 || points[0].Machine != machine {
		t.Errorf("area opened for %s lists %v, %v", machine, points, err)
	}
}

func asked(pass keys.Passphrase, machines *[]string) func(string) (keys.Passphrase, error) {
	return func(m string) (keys.Passphrase, error) {
		*machines = append(*machines, m)
		return pass, nil
	}
}

// TestArea: each key at hand opens what it should, in the one order: host
// keys for the host's machine (no passphrase asked), the owner's escrow for
// another, a passphrase last.
func TestArea(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, c := range []struct {
		name        string
		machine     string
		keys        func(asks *[]string) unlock.Keys
		wantMachine string
		wantAsked   []string
	}{
		{"host keys, no machine named", "", func(a *[]string) unlock.Keys {
			return unlock.Keys{Host: f.web, HostMachine: "web01", Passphrase: asked("wrong", a)}
		}, "web01", nil},
		{"host keys, own machine named", "web01", func(a *[]string) unlock.Keys {
			return unlock.Keys{Host: f.web, HostMachine: "web01", Owner: f.owner, Passphrase: asked("wrong", a)}
		}, "web01", nil},
		{"another machine by passphrase", "db01", func(a *[]string) unlock.Keys {
			return unlock.Keys{Host: f.web, HostMachine: "web01", Passphrase: asked(dbPass, a)}
		}, "db01", []string{"db01"}},
		{"another machine by the owner's escrow", "db01", func(a *[]string) unlock.Keys {
			return unlock.Keys{Host: f.web, HostMachine: "web01", Owner: f.owner, Passphrase: asked("wrong", a)}
		}, "db01", nil},
		// Issue 14: the owner without its keys on this host lists another
		// machine's points with the owner passphrase.
		{"another machine by the owner's passphrase", "db01", func(a *[]string) unlock.Keys {
			return unlock.Keys{Passphrase: asked(ownerPass, a)}
		}, "db01", []string{"db01"}},
		{"no host keys: passphrase", "web01", func(a *[]string) unlock.Keys {
			return unlock.Keys{HostMachine: "web01", Passphrase: asked(webPass, a)}
		}, "web01", []string{"web01"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var asks []string
			v, machine, err := unlock.Area(ctx, f.root, c.machine, c.keys(&asks))
			if err != nil {
				t.Fatal(err)
			}
			if machine != c.wantMachine {
				t.Errorf("opened %q, want %q", machine, c.wantMachine)
			}
			readsPoints(t, v, c.wantMachine)
			if len(asks) != len(c.wantAsked) || len(asks) > 0 && asks[0] != c.wantAsked[0] {
				t.Errorf("passphrase asked for %q, want %q", asks, c.wantAsked)
			}
		})
	}
}

// TestAreaRefuses: what opens nothing says why, with the kind the commands
// turn into an exit code.
func TestAreaRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var asks []string
	for _, c := range []struct {
		name    string
		machine string
		keys    unlock.Keys
		want    error
		kind    errkind.Kind
	}{
		{"nothing named, not registered", "", unlock.Keys{Owner: f.owner, Passphrase: asked(webPass, &asks)}, unlock.ErrNoMachine, errkind.Usage},
		{"registered without keys", "", unlock.Keys{HostMachine: "web01", Passphrase: asked(webPass, &asks)}, unlock.ErrNoMachine, errkind.Usage},
		{"wrong passphrase", "db01", unlock.Keys{Passphrase: asked(webPass, &asks)}, keys.ErrWrongPassphrase, errkind.Permission},
		{"no keys at all", "db01", unlock.Keys{}, unlock.ErrNoKeys, errkind.Permission},
		{"bad name for the escrow", "../x", unlock.Keys{Owner: f.owner}, repo.ErrMachineName, errkind.Invalid},
		{"unknown machine by escrow", "nosuch", unlock.Keys{Owner: f.owner}, repo.ErrNoMachine, errkind.NotFound},
	} {
		_, _, err := unlock.Area(ctx, f.root, c.machine, c.keys)
		if !errors.Is(err, c.want) || errkind.Of(err) != c.kind {
			t.Errorf("%s: %v (kind %v), want %v (kind %v)", c.name, err, errkind.Of(err), c.want, c.kind)
		}
	}
}

// TestAreaWithPrivateKey: a certificate-mode machine's points open with the
// certificate's private key, and only with it; another key or a vault
// without certificates says so.
func TestAreaWithPrivateKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	read := func(name string) []byte {
		b, err := os.ReadFile("../../keys/cert/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ecKey, err := cert.ParsePrivateKey(read("ec.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := unlock.Area(ctx, f.root, "web01", unlock.Keys{PrivateKey: ecKey, Host: f.web, HostMachine: "web01"}); !errors.Is(err, certs.ErrNoCertificate) {
		t.Errorf("private key in a passphrase-mode vault: %v, want ErrNoCertificate", err)
	}

	c, err := cert.ParseCertificate(read("ec.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.Add(ctx, f.st, f.owner, c); err != nil {
		t.Fatal(err)
	}
	v, err := f.root.RegisterMachine(ctx, "wo01", "wo01 passphrase, long enough", cheapKDF, &repo.CertMode{ID: c.ID(), Wrap: c.Wrap})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.StartSession(ctx, c.Wrap); err != nil {
		t.Fatal(err)
	}
	if err := v.SavePoint(ctx, &repo.Point{Machine: "wo01", Time: time.Unix(1e9, 0), Root: keys.ID{1}}); err != nil {
		t.Fatal(err)
	}
	hostKeys := v.Keys()

	// This host's own write-only keys do not read; the private key does,
	// and is tried first, even for the host's own machine.
	own, _, err := unlock.Area(ctx, f.root, "", unlock.Keys{Host: hostKeys, HostMachine: "wo01"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.Points(ctx); !errors.Is(err, repo.ErrWriteOnly) {
		t.Errorf("write-only host keys list points: %v", err)
	}
	withKey, machine, err := unlock.Area(ctx, f.root, "", unlock.Keys{PrivateKey: ecKey, Host: hostKeys, HostMachine: "wo01"})
	if err != nil || machine != "wo01" {
		t.Fatalf("private key: %q, %v", machine, err)
	}
	readsPoints(t, withKey, "wo01")

	rsaKey, err := cert.ParsePrivateKey(read("rsa.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := unlock.Area(ctx, f.root, "wo01", unlock.Keys{PrivateKey: rsaKey}); !errors.Is(err, unlock.ErrOtherCertificate) {
		t.Errorf("another certificate's key: %v, want ErrOtherCertificate", err)
	}
}

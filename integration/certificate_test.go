package integration

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	azkeys "github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage/local"
)

// Certificate mode (Azure Stack's certificate-encrypted backups), end to
// end: machines that back up hold only the vault's X.509 certificate and
// cannot read their own points; the certificate's private key (PEM, PKCS #8
// or .pfx) recovers them anywhere; rotating the certificate starts a new key
// epoch that shares no data with the old one.

// ctCert is a self-signed test certificate and its private key, as files.
type ctCert struct {
	cert  string // PEM certificate
	key   string // PEM PKCS #8 private key
	id    string // SHA-256 of the DER, lower-case hex (what the vault names it by)
	thumb string // SHA-1 of the DER, upper-case hex (what people are shown)
}

// ctNewCert generates a self-signed certificate (ECDSA P-256 when ec, else
// RSA-2048) and writes name.crt.pem and name.key.pem (PKCS #8) in dir.
func ctNewCert(t *testing.T, dir, name string, ec bool) ctCert {
	t.Helper()
	var priv crypto.Signer
	var err error
	usage := x509.KeyUsageDigitalSignature
	if ec {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
		usage |= x509.KeyUsageKeyAgreement
	} else {
		priv, err = rsa.GenerateKey(crand.Reader, 2048)
		usage |= x509.KeyUsageKeyEncipherment
	}
	if err != nil {
		t.Fatalf("generate key for %s: %v", name, err)
	}
	serial, err := crand.Int(crand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "azfs integration " + name, Organization: []string{"azfs"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              usage,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatalf("create certificate %s: %v", name, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	c := ctCert{
		cert:  filepath.Join(dir, name+".crt.pem"),
		key:   filepath.Join(dir, name+".key.pem"),
		thumb: fmt.Sprintf("%X", sha1.Sum(der)),
	}
	sum := sha256.Sum256(der)
	c.id = hex.EncodeToString(sum[:])
	writeFile(t, c.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	writeFile(t, c.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600)
	return c
}

// ctPFX exports c's key and certificate to a .pfx protected by password,
// with openssl and the extra options; it returns the .pfx and the password
// file. Without openssl the test fails on CI and is skipped elsewhere.
func ctPFX(t *testing.T, c ctCert, name, password string, extra ...string) (pfx, pwFile string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		unavailable(t, "openssl is not on PATH: "+err.Error())
	}
	dir := t.TempDir()
	pfx = filepath.Join(dir, name+".pfx")
	pwFile = filepath.Join(dir, name+".pw")
	writeFile(t, pwFile, []byte(password+"\n"), 0o600)
	args := append([]string{"pkcs12", "-export", "-inkey", c.key, "-in", c.cert, "-out", pfx, "-passout", "file:" + pwFile}, extra...)
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return pfx, pwFile
}

// ctCreateVault creates e's vault in certificate mode, to c; e's machine
// (testMachine) is its owner and a write-only machine.
func ctCreateVault(t *testing.T, e *env, c ctCert) {
	t.Helper()
	e.vault = filepath.Join(e.dir, "vault")
	e.passFile = filepath.Join(e.dir, "passphrase")
	r := e.mustAzfs("vault", "create", e.vault, "--generate-passphrase", e.passFile, "--machine", testMachine, "--certificate", c.cert)
	if !strings.Contains(r.stderr, c.thumb) {
		t.Errorf("vault create in certificate mode: want the certificate's thumbprint %s on stderr, got:\n%s", c.thumb, r)
	}
	mcCheckSecretFile(t, "keyring", mcKeyring(e), 0)
	mcCheckSecretFile(t, "generated passphrase", e.passFile, 32)
}

// ctBuildTree is mcBuildTree's tree plus a 4 MiB random file, big.bin; it
// returns the number of random bytes in the tree.
func ctBuildTree(t *testing.T, src string) int64 {
	t.Helper()
	mcBuildTree(t, src)
	writeRandom(t, filepath.Join(src, "big.bin"), 4<<20, 0xce27)
	return 3<<20 + 4<<20
}

// ctPoints lists machine's points from env e with a private key (and the
// extra flags, a .pfx password file say).
func ctPoints(e *env, vault, machine, key string, extra ...string) result {
	e.t.Helper()
	return e.azfs(append([]string{"points", "--vault", vault, "--machine", machine, "--private-key", key, "--json"}, extra...)...)
}

// ctMustPoints is ctPoints expecting success; it returns the point IDs,
// oldest first, after checking every row is machine's.
func ctMustPoints(t *testing.T, e *env, vault, machine, key string, extra ...string) []string {
	t.Helper()
	r := ctPoints(e, vault, machine, key, extra...)
	if r.code != 0 {
		t.Fatalf("points of %s with the private key: want exit 0, got:\n%s", machine, r)
	}
	var rows []pointRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("points --json printed invalid JSON: %v\n%s", err, r)
	}
	var ids []string
	for _, row := range rows {
		if row.Machine != machine {
			t.Errorf("points of %s lists %s of machine %q", machine, row.ID, row.Machine)
		}
		ids = append(ids, row.ID)
	}
	return ids
}

// ctWriteOnlyKeys checks what machine env e holds for the vault: its
// keyring entry's key set has no data key (32 zero bytes, or none) and
// writes for the certificate certID. It returns the key set and the entry.
func ctWriteOnlyKeys(t *testing.T, e *env, certID string) (*azkeys.KeySet, *keyring.Vault) {
	t.Helper()
	rootID := mcVaultID(t, e.vault)
	// The file itself, as JSON: nothing in it decodes to a data key.
	b, err := os.ReadFile(mcKeyring(e))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Vaults map[string]struct {
			Keys map[string]json.RawMessage `json:"keys"`
		} `json:"vaults"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("keyring.json: %v", err)
	}
	entry, ok := raw.Vaults[rootID]
	if !ok || entry.Keys == nil {
		t.Fatalf("keyring.json has no keys for vault %s:\n%s", rootID, redactKeyring(b))
	}
	if dk, ok := entry.Keys["data_key"]; ok {
		var s string
		if err := json.Unmarshal(dk, &s); err != nil {
			t.Errorf("keyring.json data_key %s is not a string: %v", dk, err)
		} else if raw, err := base64.StdEncoding.DecodeString(s); err != nil || len(raw) != 32 || !allZero(raw) {
			t.Errorf("keyring.json: data_key of a write-only machine decodes to %d bytes (err %v), want 32 zero bytes", len(raw), err)
		}
	}
	var cert string
	if err := json.Unmarshal(entry.Keys["certificate"], &cert); err != nil || cert != certID {
		t.Errorf("keyring.json: keys.certificate = %s (%v), want %q", entry.Keys["certificate"], err, certID)
	}
	// ... and as azfs reads it.
	ring, err := keyring.Load(e.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ring.Problems {
		t.Errorf("keyring: %v", p)
	}
	v := ring.Vaults[rootID]
	if v == nil || v.Keys == nil {
		t.Fatalf("keyring.Load: no usable keys for vault %s", rootID)
	}
	if v.Keys.DataKey != (azkeys.Secret{}) || !v.Keys.WriteOnly() || v.Keys.Certificate != certID {
		t.Errorf("keyring.Load: key set has a data key: %v, write-only: %v, certificate %q; want no data key, write-only, %q",
			v.Keys.DataKey != (azkeys.Secret{}), v.Keys.WriteOnly(), v.Keys.Certificate, certID)
	}
	return v.Keys, v
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// redactKeyring shows a keyring's structure without its secrets.
func redactKeyring(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return "(not JSON)"
	}
	var walk func(any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			for k, val := range x {
				if strings.HasSuffix(k, "_key") || k == "chunker_seed" || k == "sign_seed" || k == "escrow" {
					x[k] = "[redacted]"
				} else {
					x[k] = walk(val)
				}
			}
		}
		return x
	}
	out, _ := json.MarshalIndent(walk(v), "", "  ")
	return string(out)
}

// ctUnreadableInProcess opens machine's area in process with the key sets
// a write-only machine and its owner hold (the machine's keyring entry;
// the escrow sealed to the owner, when owner is set): listing points fails
// with repo.ErrWriteOnly either way.
func ctUnreadableInProcess(t *testing.T, vault, machine string, ks *azkeys.KeySet, owner *azkeys.OwnerKeys) {
	t.Helper()
	ctx := context.Background()
	st, err := local.Open(vault)
	if err != nil {
		t.Fatal(err)
	}
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, v *repo.Area, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: open machine %s: %v", what, machine, err)
			return
		}
		pts, err := v.Points(ctx)
		if !errors.Is(err, repo.ErrWriteOnly) {
			t.Errorf("%s: Points of machine %s = %d points, %v; want repo.ErrWriteOnly", what, machine, len(pts), err)
		}
		if len(pts) != 0 {
			t.Errorf("%s: Points of machine %s returned %d points to a write-only key set", what, machine, len(pts))
		}
	}
	v, err := root.OpenMachine(ctx, machine, ks)
	check("the machine's keyring key set", v, err)
	if owner != nil {
		v, err := root.OpenMachineAsOwner(ctx, machine, owner)
		check("the owner's escrow of the machine", v, err)
	}
}

// ctMountWithKey mounts machine's latest point from env e with a private
// key (and extra flags) on a fresh directory and returns the mount.
func ctMountWithKey(t *testing.T, e *env, vault, machine, key string, extra ...string) *mount {
	t.Helper()
	dir := mkdir(t, filepath.Join(t.TempDir(), "mnt"))
	args := append([]string{"--vault", vault, "--machine", machine, "--private-key", key, "--point", "latest"}, extra...)
	return e.mount(dir, args...)
}

// ctUnmount stops a mount the test no longer needs; azmount must exit 0.
func ctUnmount(t *testing.T, m *mount) {
	t.Helper()
	code, err := m.stop(os.Interrupt)
	if err != nil {
		t.Error(err)
		return
	}
	if code != 0 {
		t.Errorf("azmount exited with %d after SIGINT, want 0; stderr:\n%s", code, m.stderr)
	}
	if isMounted(t, m.dir) {
		t.Errorf("%s is still mounted after azmount exited", m.dir)
	}
}

// ctRecover mounts machine's latest point with the private key, compares
// it and a cp -a copy out of it with want (the source tree src as it was
// backed up), and unmounts.
func ctRecover(t *testing.T, e *env, vault, machine, key, src string, want map[string]*entry, extra ...string) {
	t.Helper()
	m := ctMountWithKey(t, e, vault, machine, key, extra...)
	inMount := filepath.Join(m.dir, src)
	compareTrees(t, "the mount with the private key", want, snapshot(t, inMount), compareOpts{atime: true})
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", inMount, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a from the mount: %v\n%s", err, out)
	}
	compareTrees(t, "cp -a copy out of the mount", want, snapshot(t, dst), compareOpts{atime: true, xattrPrefix: "user."})
	ctUnmount(t, m)
}

// ctMachineRefuses checks that machine env e, write-only, cannot read its
// own points: 'azfs points' and azmount fail with one line that names the
// certificate and its private key.
func ctMachineRefuses(t *testing.T, e *env) {
	t.Helper()
	for _, args := range [][]string{{"points"}, {"points", "--json"}} {
		r := e.azfs(args...)
		mcRefused(t, r, "certificate", "private key")
		if strings.TrimSpace(r.stdout) != "" && strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("azfs %s on a write-only machine printed:\n%s", strings.Join(args, " "), r.stdout)
		}
	}
	msg := strings.ToLower(mcMountRefused(t, e, "--point", "latest"))
	for _, w := range []string{"certificate", "private key"} {
		if !strings.Contains(msg, w) {
			t.Errorf("azmount on a write-only machine: want the error to mention %q, got:\n%s", w, msg)
		}
	}
}

// TestCertificateWriteOnly: a certificate-mode vault's machine backs up,
// deduplicates, and cannot read what it wrote, by any command or with any
// key it holds; the certificate's private key (PEM or .pfx) recovers the
// tree exactly on a machine with no azfs state, and other keys are refused.
func TestCertificateWriteOnly(t *testing.T) {
	requireFUSE(t)
	certDir := t.TempDir()
	c := ctNewCert(t, certDir, "backup", false)       // RSA-2048
	otherRSA := ctNewCert(t, certDir, "other", false) // not the vault's
	otherEC := ctNewCert(t, certDir, "other-ec", true)

	m := newEnv(t)
	ctCreateVault(t, m, c)
	src := filepath.Join(t.TempDir(), "src")
	random := ctBuildTree(t, src)
	want := snapshot(t, src)
	first := m.backup(src)
	if first.Machine != testMachine {
		t.Errorf("backup: machine %q, want %s", first.Machine, testMachine)
	}
	if first.Stats.BytesStored < uint64(random) {
		t.Errorf("first backup stored %d bytes, want at least the %d random bytes", first.Stats.BytesStored, random)
	}

	// What the next backup of the unchanged tree sees: the source as the
	// first backup left it (see TestCertificateModeBackupKeepsSymlinkAtime
	// for what that backup changed).
	want = snapshot(t, src)

	// (a), (b): the machine's own commands cannot read its points.
	ctMachineRefuses(t, m)

	// (c): nor can the key material it holds. Its keyring has no data key.
	ks, entry := ctWriteOnlyKeys(t, m, c.id)
	if entry.Owner == nil {
		t.Fatalf("the creating machine holds no owner keys")
	}
	ctUnreadableInProcess(t, m.vault, testMachine, ks, entry.Owner)
	// Its passphrase, from a machine with no azfs state, opens the same
	// write-only key set.
	stranger := newEnv(t)
	mcRefused(t, stranger.azfs("points", "--vault", m.vault, "--machine", testMachine, "--passphrase-file", m.passFile), "certificate", "private key")
	mcNoKeyring(t, stranger, "a refused points")

	// Deduplication without reading: with its file cache gone, the machine
	// reads every file again and stores (almost) nothing new.
	if err := os.RemoveAll(m.cacheDir); err != nil {
		t.Fatal(err)
	}
	second := m.backup(src)
	if second.Stats.BytesRead < uint64(random) {
		t.Errorf("backup without a file cache read %d bytes, want every file read again (at least %d)", second.Stats.BytesRead, random)
	}
	if second.Stats.BytesStored >= 64<<10 {
		t.Errorf("backup of the unchanged tree stored %d bytes, want < 64 KiB: a write-only machine must still deduplicate", second.Stats.BytesStored)
	}
	if second.Point == first.Point {
		t.Errorf("second backup made no new point (%s)", second.Point)
	}

	// Recovery with the private key (PEM, PKCS #8), on a fresh machine.
	fresh := newEnv(t)
	ids := ctMustPoints(t, fresh, m.vault, testMachine, c.key)
	if strings.Join(ids, ",") != first.Point+","+second.Point {
		t.Errorf("points with the private key: %v, want [%s %s]", ids, first.Point, second.Point)
	}
	ctRecover(t, fresh, m.vault, testMachine, c.key, src, want)
	mcNoKeyring(t, fresh, "recovery with a private key")

	// Keys of other certificates are refused, naming the vault's
	// certificate by its thumbprint.
	for _, other := range []ctCert{otherRSA, otherEC} {
		r := ctPoints(fresh, m.vault, testMachine, other.key)
		mcRefused(t, r, c.thumb)
		if strings.Contains(r.stdout, first.Point) {
			t.Errorf("points with another certificate's key listed points:\n%s", r)
		}
		if msg := mcMountRefused(t, fresh, "--vault", m.vault, "--machine", testMachine, "--private-key", other.key, "--point", "latest"); !strings.Contains(msg, c.thumb) {
			t.Errorf("azmount with another certificate's key: want the error to mention the thumbprint %s, got:\n%s", c.thumb, msg)
		}
	}
	// A certificate is no private key.
	mcRefused(t, ctPoints(fresh, m.vault, testMachine, c.cert), "private key")
	mcNoKeyring(t, fresh, "refused recoveries")

	// .pfx: made as the brief and the README say (OpenSSL's defaults),
	// and in the TripleDES-SHA1 form Windows exports.
	const password = "pfx password 1234"
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"pfx OpenSSL default", nil},
		{"pfx TripleDES-SHA1", []string{"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pfx, pw := ctPFX(t, c, "backup", password, tc.extra...)
			e := newEnv(t)
			wrongPW := filepath.Join(e.dir, "wrong.pw")
			writeFile(t, wrongPW, []byte("not the password\n"), 0o600)
			r := ctPoints(e, m.vault, testMachine, pfx, "--private-key-password-file", pw)
			if r.code != 0 {
				t.Errorf("points with the .pfx and its password: want exit 0, got:\n%s", r)
			} else {
				ids := ctMustPoints(t, e, m.vault, testMachine, pfx, "--private-key-password-file", pw)
				if len(ids) != 2 || ids[1] != second.Point {
					t.Errorf("points with the .pfx: %v, want [%s %s]", ids, first.Point, second.Point)
				}
				ctRecover(t, e, m.vault, testMachine, pfx, src, want, "--private-key-password-file", pw)
			}
			r = ctPoints(e, m.vault, testMachine, pfx, "--private-key-password-file", wrongPW)
			checkOneLineError(t, r, "azfs: ")
			if r.code == 0 {
				t.Errorf("a wrong .pfx password opened the points")
			} else if !strings.Contains(strings.ToLower(r.stderr), "wrong") {
				t.Errorf("wrong .pfx password: want the error to say it is wrong, got:\n%s", r)
			}
			if strings.Contains(r.stderr, "not the password") || strings.Contains(r.stderr, password) {
				t.Errorf("the error shows a password:\n%s", r)
			}
			mcRefused(t, ctPoints(e, m.vault, testMachine, pfx), "") // no password at all
			mcNoKeyring(t, e, ".pfx recovery")
		})
	}
}

// TestCertificateRotation: the owner rotates from an ECDSA certificate to
// an RSA one; the machine's next backup starts a new key epoch that stores
// its data anew; each private key opens exactly the points of its epoch.
func TestCertificateRotation(t *testing.T) {
	requireFUSE(t)
	certDir := t.TempDir()
	c1 := ctNewCert(t, certDir, "epoch1", true) // ECDSA P-256
	c2 := ctNewCert(t, certDir, "epoch2", false)

	m := newEnv(t)
	ctCreateVault(t, m, c1)
	src := filepath.Join(t.TempDir(), "src")
	random := ctBuildTree(t, src)
	state1 := snapshot(t, src)
	p1 := m.backup(src)

	r := m.mustAzfs("certificate", "rotate", "--certificate", c2.cert)
	if !strings.Contains(r.stderr, c2.thumb) {
		t.Errorf("certificate rotate: want the new thumbprint %s on stderr, got:\n%s", c2.thumb, r)
	}
	// Rotating to the current certificate again is refused.
	mcRefused(t, m.azfs("certificate", "rotate", "--certificate", c2.cert), "already")

	// The tree changes: one file rewritten, one added, one removed.
	writeFile(t, filepath.Join(src, "hello.txt"), []byte("hello after the rotation\n"), 0o644)
	writeFile(t, filepath.Join(src, "docs", "new.txt"), []byte("written in epoch 2\n"), 0o600)
	if err := os.Remove(filepath.Join(src, "empty")); err != nil {
		t.Fatal(err)
	}
	state2 := snapshot(t, src)
	p2 := m.backup(src)
	if p2.Stats.BytesStored < uint64(random)/2 {
		t.Errorf("first backup under the new certificate stored %d bytes, want at least %d (half the %d random bytes): no deduplication across certificates",
			p2.Stats.BytesStored, random/2, random)
	}
	// The machine now writes for the new certificate, still without a data
	// key, and still cannot read.
	ks, entry := ctWriteOnlyKeys(t, m, c2.id)
	ctUnreadableInProcess(t, m.vault, testMachine, ks, entry.Owner)
	ctMachineRefuses(t, m)

	// A third backup, unchanged, stays in epoch 2 and deduplicates.
	if err := os.RemoveAll(m.cacheDir); err != nil {
		t.Fatal(err)
	}
	p3 := m.backup(src)
	if p3.Stats.BytesStored >= 64<<10 {
		t.Errorf("second backup under the new certificate stored %d bytes, want < 64 KiB (same epoch: deduplicated)", p3.Stats.BytesStored)
	}

	fresh := newEnv(t)
	if ids := ctMustPoints(t, fresh, m.vault, testMachine, c1.key); strings.Join(ids, ",") != p1.Point {
		t.Errorf("points with the first certificate's key: %v, want just %s", ids, p1.Point)
	}
	if ids := ctMustPoints(t, fresh, m.vault, testMachine, c2.key); strings.Join(ids, ",") != p2.Point+","+p3.Point {
		t.Errorf("points with the second certificate's key: %v, want [%s %s]", ids, p2.Point, p3.Point)
	}
	ctRecover(t, fresh, m.vault, testMachine, c1.key, src, state1)
	ctRecover(t, fresh, m.vault, testMachine, c2.key, src, state2)

	// Either key checks its own epoch of an intact vault without calling
	// the other epoch's data damaged.
	for _, c := range []ctCert{c1, c2} {
		r := fresh.azfs("check", "--read-data", "--vault", m.vault, "--machine", testMachine, "--private-key", c.key)
		if r.code != 0 || strings.Contains(r.stdout+r.stderr, "damaged") {
			t.Errorf("check --read-data of an intact vault with the key of certificate %s: want exit 0 and no damage, got:\n%s", c.thumb[:8], firstLines(r, 4))
		}
	}
	mcNoKeyring(t, fresh, "recovery with private keys")
}

// firstLines shortens a result's output to n lines of each stream.
func firstLines(r result, n int) string {
	cut := func(s string) string {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		if len(lines) > n {
			lines = append(lines[:n], fmt.Sprintf("... (%d more lines)", len(lines)-n))
		}
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, cut(r.stdout), cut(r.stderr))
}

// TestCertificateRegisteredMachine: a machine registered with a
// certificate-mode vault's credentials is write-only too: it backs up but
// cannot read its points, nor can its passphrase; the certificate's private
// key reads them with --machine.
func TestCertificateRegisteredMachine(t *testing.T) {
	requireFUSE(t)
	certDir := t.TempDir()
	c := ctNewCert(t, certDir, "backup", false)
	owner := newEnv(t)
	ctCreateVault(t, owner, c)
	creds := mcCredentials(t, owner, "backup.VaultCredentials")
	alpha, alphaPass := mcRegister(t, owner, creds, "alpha")
	alpha.vault = owner.vault

	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	writeFile(t, filepath.Join(src, "notes.txt"), []byte("alpha's notes\n"), 0o644)
	mkdir(t, filepath.Join(src, "sub"))
	writeRandom(t, filepath.Join(src, "sub", "blob.bin"), 1<<20, 0xa1fa)
	if err := os.Symlink("../notes.txt", filepath.Join(src, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, src)
	out := alpha.backup(src)
	if out.Machine != "alpha" {
		t.Errorf("alpha's backup: machine %q, want alpha", out.Machine)
	}

	// Alpha is write-only: its commands, its keyring, its passphrase.
	ctMachineRefuses(t, alpha)
	ks, entry := ctWriteOnlyKeys(t, alpha, c.id)
	if entry.Owner != nil {
		t.Errorf("registered machine alpha holds owner keys")
	}
	ctUnreadableInProcess(t, owner.vault, "alpha", ks, nil)
	_, ownerEntry := ctWriteOnlyKeys(t, owner, c.id)
	ctUnreadableInProcess(t, owner.vault, "alpha", ks, ownerEntry.Owner)
	fresh := newEnv(t)
	mcRefused(t, mcPoints(fresh, creds, "alpha", alphaPass), "certificate", "private key")
	// Nor can it rotate the vault to a certificate of its own.
	mine := ctNewCert(t, certDir, "alphas-own", true)
	mcRefused(t, alpha.azfs("certificate", "rotate", "--certificate", mine.cert))
	if got := mcNames(t, filepath.Join(owner.vault, "certificates")); len(got) != 1 || got[0] != "000001" {
		t.Errorf("vault certificates after alpha's refused rotation: %v, want just the first", got)
	}

	// The private key reads alpha's points, from a machine with no state,
	// by the vault's path or with the credentials file.
	if ids := ctMustPoints(t, fresh, owner.vault, "alpha", c.key); strings.Join(ids, ",") != out.Point {
		t.Errorf("alpha's points with the private key: %v, want just %s", ids, out.Point)
	}
	r := fresh.azfs("points", "--vault-credentials", creds, "--machine", "alpha", "--private-key", c.key, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, out.Point) {
		t.Errorf("alpha's points with the credentials file and the private key: want %s listed, got:\n%s", out.Point, r)
	}
	// The owner machine has no points; alpha's are not listed as its.
	if ids := ctMustPoints(t, fresh, owner.vault, testMachine, c.key); len(ids) != 0 {
		t.Errorf("owner machine %s's points with the private key: %v, want none", testMachine, ids)
	}
	ctRecover(t, fresh, owner.vault, "alpha", c.key, src, want)
	mcNoKeyring(t, fresh, "recovery with the private key")
}

// TestCertificateModeBackupRecordsSymlinkAtime: a point records a
// symlink's atime as it was before the backup. Reading a link's target
// updates its atime under relatime whatever the open flags (the kernel's
// readlink touches it; files and directories are read with O_NOATIME), and
// putting it back would change the link's ctime instead, so the source's
// link atime does move, as with tar, rsync or restic; what the point holds
// is the value from before.
func TestCertificateModeBackupRecordsSymlinkAtime(t *testing.T) {
	c := ctNewCert(t, t.TempDir(), "backup", true)
	m := newEnv(t)
	ctCreateVault(t, m, c)
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	writeFile(t, filepath.Join(src, "target.txt"), []byte("pointed at\n"), 0o644)
	link := filepath.Join(src, "link")
	if err := os.Symlink("target.txt", link); err != nil {
		t.Fatal(err)
	}
	// An atime no later than the mtime, as a new symlink has: relatime
	// updates it on the next read.
	old := time.Date(2022, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := unix.Lutimes(link, []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, src)
	m.backup(src)
	ctRecover(t, newEnv(t), m.vault, testMachine, c.key, src, before)
}

// TestSwitchToCertificateMode: a passphrase-mode vault switched to
// certificate mode with `certificate rotate` stays switched: its machine's
// next backup moves to the certificate's key epoch for good, so the new
// point opens with the private key and no longer on the machine itself,
// while the earlier point still opens with the machine's passphrase.
func TestSwitchToCertificateMode(t *testing.T) {
	c := ctNewCert(t, t.TempDir(), "switch", true)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	writeFile(t, filepath.Join(src, "a.txt"), []byte("before the switch\n"), 0o644)
	e.backup(src)
	e.mustAzfs("certificate", "rotate", "--certificate", c.cert)
	writeFile(t, filepath.Join(src, "b.txt"), []byte("after the switch\n"), 0o644)
	r := e.mustAzfs("backup", src)
	if !strings.Contains(r.stderr, c.thumb) {
		t.Errorf("first backup after the switch does not name the certificate %s:\n%s", c.thumb, r)
	}
	mcRefused(t, e.azfs("points"), "certificate", "private key")
	fresh := newEnv(t)
	withKey := ctMustPoints(t, fresh, e.vault, testMachine, c.key)
	if len(withKey) != 1 {
		t.Errorf("points with the private key: %v, want exactly the one written after the switch", withKey)
	}
	r = fresh.mustAzfs("points", "--json", "--vault", e.vault, "--machine", testMachine, "--passphrase-file", e.passFile)
	if n := strings.Count(r.stdout, `"id"`); n != 1 {
		t.Errorf("points with the machine's passphrase: %d, want the one from before the switch:\n%s", n, r.stdout)
	}
	// Each reader sees the other key's point as not its own, not as damage.
	for _, args := range [][]string{
		{"points", "--vault", e.vault, "--machine", testMachine, "--passphrase-file", e.passFile},
		{"points", "--vault", e.vault, "--machine", testMachine, "--private-key", c.key},
	} {
		if r := fresh.mustAzfs(args...); strings.Contains(r.stderr, "damaged") {
			t.Errorf("azfs %s reports damage in an intact vault:\n%s", strings.Join(args, " "), r.stderr)
		}
	}
}

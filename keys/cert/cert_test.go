package cert_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
)

// A testKey is a generated key with its self-signed certificate.
type testKey struct {
	name   string
	signer crypto.Signer
	der    []byte // the certificate
}

func (k *testKey) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.der})
}

func (k *testKey) pkcs8(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (k *testKey) pkcs8PEM(t *testing.T) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k.pkcs8(t)})
}

func (k *testKey) cert(t *testing.T) *cert.Certificate {
	t.Helper()
	c, err := cert.ParseCertificate(k.certPEM())
	if err != nil {
		t.Fatalf("%s: %v", k.name, err)
	}
	return c
}

func (k *testKey) key(t *testing.T) *cert.PrivateKey {
	t.Helper()
	pk, err := cert.ParsePrivateKey(k.pkcs8PEM(t), "")
	if err != nil {
		t.Fatalf("%s: %v", k.name, err)
	}
	return pk
}

func newTestKey(name string, signer crypto.Signer) *testKey {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "azfs test " + name, Organization: []string{"azfs"}},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		panic(fmt.Sprintf("certificate for %s: %v", name, err))
	}
	return &testKey{name: name, signer: signer, der: der}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// testKeys generates each kind of key once per test binary: RSA key
// generation is slow.
var testKeys = sync.OnceValue(func() map[string][2]*testKey {
	gens := map[string]func() crypto.Signer{
		"RSA-2048": func() crypto.Signer { return must(rsa.GenerateKey(rand.Reader, 2048)) },
		"RSA-3072": func() crypto.Signer { return must(rsa.GenerateKey(rand.Reader, 3072)) },
		"P-256":    func() crypto.Signer { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) },
		"P-384":    func() crypto.Signer { return must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)) },
	}
	m := make(map[string][2]*testKey)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, gen := range gens {
		wg.Go(func() {
			pair := [2]*testKey{newTestKey(name, gen()), newTestKey(name+" other", gen())}
			mu.Lock()
			m[name] = pair
			mu.Unlock()
		})
	}
	wg.Wait()
	return m
})

var kinds = []string{"RSA-2048", "RSA-3072", "P-256", "P-384"}

func TestWrapUnwrap(t *testing.T) {
	all := testKeys()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			c, k := all[kind][0].cert(t), all[kind][0].key(t)
			other := all[kind][1].key(t)
			ad := []byte("vault 1234 slot 1")
			for _, n := range []int{0, 32, cert.MaxSecret} {
				secret := bytes.Repeat([]byte{0xa5}, n)
				w, err := c.Wrap(secret, ad)
				if err != nil {
					t.Fatal(err)
				}
				got, err := k.Unwrap(w, ad)
				if err != nil {
					t.Fatalf("%d-byte secret: %v", n, err)
				}
				if !bytes.Equal(got, secret) {
					t.Fatalf("%d-byte secret: unwrapped %x", n, got)
				}
			}

			secret := []byte("0123456789abcdef0123456789abcdef")
			w, err := c.Wrap(secret, ad)
			if err != nil {
				t.Fatal(err)
			}
			if w2, _ := c.Wrap(secret, ad); bytes.Equal(w, w2) {
				t.Error("two wraps of one secret are equal")
			}
			wantTag := byte(2)
			if strings.HasPrefix(kind, "RSA") {
				wantTag = 1
			}
			if w[0] != wantTag {
				t.Errorf("algorithm tag %d, want %d", w[0], wantTag)
			}
			if bytes.Contains(w, secret) {
				t.Error("wrapped secret contains the secret")
			}

			refuse := func(what string, k *cert.PrivateKey, w, ad []byte) {
				t.Helper()
				if got, err := k.Unwrap(w, ad); !errors.Is(err, keys.ErrAuth) {
					t.Errorf("%s: Unwrap = %x, %v; want ErrAuth", what, got, err)
				}
			}
			refuse("wrong ad", k, w, []byte("vault 1234 slot 2"))
			refuse("nil ad", k, w, nil)
			refuse("another key", other, w, ad)
			for _, otherKind := range kinds {
				if otherKind != kind {
					refuse(otherKind+" key", all[otherKind][0].key(t), w, ad)
				}
			}
			// RSA decryption is slow: flip a few bytes of an RSA wrap, every
			// byte of an ECDH wrap.
			flips := []int{0, 1, len(w) / 2, len(w) - 17, len(w) - 1}
			if wantTag == 2 {
				flips = flips[:0]
				for i := range w {
					flips = append(flips, i)
				}
			}
			for _, i := range flips {
				bad := bytes.Clone(w)
				bad[i] ^= 0x01
				refuse(fmt.Sprintf("byte %d flipped", i), k, bad, ad)
			}
			for _, n := range []int{0, 1, 2, len(w) - 17, len(w) - 16, len(w) - 1} {
				refuse(fmt.Sprintf("cut to %d bytes", n), k, w[:n], ad)
			}
			refuse("extended", k, append(bytes.Clone(w), 0), ad)
		})
	}
}

func TestWrapRefusesLongSecret(t *testing.T) {
	c := testKeys()["P-256"][0].cert(t)
	if _, err := c.Wrap(make([]byte, cert.MaxSecret+1), nil); err == nil {
		t.Fatal("Wrap accepted a secret longer than MaxSecret")
	}
}

func TestMatches(t *testing.T) {
	all := testKeys()
	for _, kind := range kinds {
		for _, certKind := range kinds {
			for i := range 2 {
				for j := range 2 {
					want := kind == certKind && i == j
					k, c := all[kind][i], all[certKind][j]
					if got := k.key(t).Matches(c.cert(t)); got != want {
						t.Errorf("key %s matches certificate %s: %v, want %v", k.name, c.name, got, want)
					}
				}
			}
		}
	}
}

func TestParseCertificate(t *testing.T) {
	k := testKeys()["P-256"][0]
	other := testKeys()["RSA-2048"][0]
	sum := sha256.Sum256(k.der)
	wantID := hex.EncodeToString(sum[:])

	for name, in := range map[string][]byte{
		"PEM":              k.certPEM(),
		"DER":              k.der,
		"PEM with CRLF":    bytes.ReplaceAll(k.certPEM(), []byte("\n"), []byte("\r\n")),
		"PEM after a key":  append(k.pkcs8PEM(t), k.certPEM()...),
		"PEM, leaf first":  append(append([]byte("subject=CN=leaf\n"), k.certPEM()...), other.certPEM()...),
		"PEM, no newlines": bytes.TrimSpace(k.certPEM()),
	} {
		c, err := cert.ParseCertificate(in)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.ID() != wantID {
			t.Errorf("%s: ID %s, want %s", name, c.ID(), wantID)
		}
	}

	c := k.cert(t)
	if !regexp.MustCompile(`^[0-9A-F]{40}$`).MatchString(c.Thumbprint()) {
		t.Errorf("Thumbprint %q is not 40 upper-case hex digits", c.Thumbprint())
	}
	if !bytes.Equal(c.PEM(), k.certPEM()) {
		t.Errorf("PEM:\n%s\nwant:\n%s", c.PEM(), k.certPEM())
	}
	if want := "CN=azfs test P-256,O=azfs"; c.Subject() != want {
		t.Errorf("Subject %q, want %q", c.Subject(), want)
	}
	if want := time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC); !c.NotAfter().Equal(want) {
		t.Errorf("NotAfter %v, want %v", c.NotAfter(), want)
	}

	for name, in := range map[string][]byte{
		"empty":         nil,
		"key only":      k.pkcs8PEM(t),
		"truncated DER": k.der[:len(k.der)-1],
		"trailing data": append(bytes.Clone(k.der), 0),
		"text":          []byte("not a certificate"),
	} {
		if _, err := cert.ParseCertificate(in); err == nil {
			t.Errorf("%s: parsed", name)
		} else if errors.Is(err, cert.ErrUnsupported) {
			t.Errorf("%s: %v wraps ErrUnsupported", name, err)
		}
	}
}

func TestParsePrivateKey(t *testing.T) {
	rsaKey := testKeys()["RSA-2048"][0]
	ecKey := testKeys()["P-384"][0]
	sec1 := must(x509.MarshalECPrivateKey(ecKey.signer.(*ecdsa.PrivateKey)))
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey.signer.(*rsa.PrivateKey))
	ecParams := "-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n"

	for _, tc := range []struct {
		name string
		in   []byte
		key  *testKey
	}{
		{"RSA PKCS #8 PEM", rsaKey.pkcs8PEM(t), rsaKey},
		{"RSA PKCS #1 PEM", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1}), rsaKey},
		{"RSA PKCS #8 DER", rsaKey.pkcs8(t), rsaKey},
		{"RSA key and certificate PEM", append(rsaKey.certPEM(), rsaKey.pkcs8PEM(t)...), rsaKey},
		{"EC PKCS #8 PEM", ecKey.pkcs8PEM(t), ecKey},
		{"EC SEC 1 PEM", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ecKey},
		{"EC SEC 1 PEM after EC PARAMETERS", append([]byte(ecParams), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), ecKey},
		{"EC PKCS #8 DER", ecKey.pkcs8(t), ecKey},
	} {
		k, err := cert.ParsePrivateKey(tc.in, "ignored")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !k.Matches(tc.key.cert(t)) {
			t.Errorf("%s: key does not match its certificate", tc.name)
		}
	}

	encrypted := &pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   pkcs1,
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"encrypted PEM", pem.EncodeToMemory(encrypted), cert.ErrUnsupported},
		{"encrypted PKCS #8 PEM", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: pkcs1}), cert.ErrUnsupported},
		{"certificate PEM", rsaKey.certPEM(), cert.ErrNoKey},
		{"certificate DER", rsaKey.der, cert.ErrNoKey},
		{"empty", nil, cert.ErrNoKey},
		{"text", []byte("not a key"), cert.ErrNoKey},
	} {
		_, err := cert.ParsePrivateKey(tc.in, "")
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if tc.want == cert.ErrUnsupported && (err == nil || !strings.Contains(err.Error(), "unencrypted key")) {
			t.Errorf("%s: %v does not ask for an unencrypted key", tc.name, err)
		}
	}
	if _, err := cert.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0}}), ""); err == nil {
		t.Error("a broken PKCS #8 block parsed")
	}
}

func TestUnsupported(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]*testKey{
		"Ed25519":  newTestKey("Ed25519", edKey),
		"RSA-1024": newTestKey("RSA-1024", rsa1024),
		"P-224":    newTestKey("P-224", p224),
	} {
		_, err := cert.ParseCertificate(k.certPEM())
		if !errors.Is(err, cert.ErrUnsupported) {
			t.Errorf("%s certificate: %v, want ErrUnsupported", name, err)
		} else {
			t.Logf("%s certificate: %v", name, err)
		}
		_, err = cert.ParsePrivateKey(k.pkcs8PEM(t), "")
		if !errors.Is(err, cert.ErrUnsupported) {
			t.Errorf("%s key: %v, want ErrUnsupported", name, err)
		} else {
			t.Logf("%s key: %v", name, err)
		}
	}
}

func TestPrivateKeyRedacted(t *testing.T) {
	k := testKeys()["P-256"][0].key(t)
	for _, s := range []string{
		k.String(), k.GoString(),
		fmt.Sprint(k), fmt.Sprint(*k),
		fmt.Sprintf("%v|%+v|%#v|%s|%x|%d", k, k, k, k, k, k),
	} {
		if strings.ReplaceAll(strings.ReplaceAll(s, "[redacted]", ""), "|", "") != "" {
			t.Errorf("printed key %q", s)
		}
	}
}

// openssl runs the openssl command in dir. Without openssl on PATH the test
// is skipped, or fails under CI=true.
func openssl(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not on PATH; CI must run the tests that need it")
		}
		t.Skip("openssl is not on PATH")
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

var tripleDES = []string{"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"}

func TestPKCS12(t *testing.T) {
	dir := t.TempDir()
	ecKey, rsaKey := testKeys()["P-256"][0], testKeys()["RSA-2048"][0]
	writeFiles(t, dir, map[string][]byte{
		"ec.key": ecKey.pkcs8PEM(t), "ec.crt": ecKey.certPEM(),
		"rsa.key": rsaKey.pkcs8PEM(t), "rsa.crt": rsaKey.certPEM(),
		"ca.crt": testKeys()["P-384"][0].certPEM(),
	})
	const password = "correct horse"
	export := func(name string, args ...string) []byte {
		t.Helper()
		args = append([]string{"pkcs12", "-export", "-out", name, "-passout", "pass:" + password}, args...)
		openssl(t, dir, args...)
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	for _, tc := range []struct {
		name string
		pfx  []byte
		key  *testKey
	}{
		{"EC", export("ec.pfx", append([]string{"-inkey", "ec.key", "-in", "ec.crt"}, tripleDES...)...), ecKey},
		{"RSA", export("rsa.pfx", append([]string{"-inkey", "rsa.key", "-in", "rsa.crt"}, tripleDES...)...), rsaKey},
		{"RSA with chain", export("chain.pfx", append([]string{"-inkey", "rsa.key", "-in", "rsa.crt", "-certfile", "ca.crt"}, tripleDES...)...), rsaKey},
		{"EC with chain", export("ecchain.pfx", append([]string{"-inkey", "ec.key", "-in", "ec.crt", "-certfile", "ca.crt"}, tripleDES...)...), ecKey},
	} {
		k, err := cert.ParsePrivateKey(tc.pfx, password)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !k.Matches(tc.key.cert(t)) {
			t.Errorf("%s: key does not match its certificate", tc.name)
		}
		_, err = cert.ParsePrivateKey(tc.pfx, "wrong password")
		if !errors.Is(err, keys.ErrWrongPassphrase) {
			t.Errorf("%s, wrong password: %v, want ErrWrongPassphrase", tc.name, err)
		} else if strings.Contains(err.Error(), "wrong password") {
			t.Errorf("%s: error %q shows the password", tc.name, err)
		} else {
			t.Logf("%s, wrong password: %v", tc.name, err)
		}
	}

	certsOnly := export("certs.pfx", append([]string{"-nokeys", "-in", "ec.crt"}, tripleDES...)...)
	if _, err := cert.ParsePrivateKey(certsOnly, password); err == nil {
		t.Errorf("a .pfx holding only certificates gave a private key")
	}

	// OpenSSL 3's default is AES-256-CBC with a SHA-256 MAC: read as well
	// as the legacy TripleDES files.
	aes := export("aes.pfx", "-inkey", "ec.key", "-in", "ec.crt")
	k, err := cert.ParsePrivateKey(aes, password)
	if err != nil {
		t.Fatalf("AES .pfx: %v", err)
	}
	if !k.Matches(ecKey.cert(t)) {
		t.Errorf("the key read from the AES .pfx does not match its certificate")
	}
	if _, err := cert.ParsePrivateKey(aes, "wrong"); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("AES .pfx with a wrong password: %v, want ErrWrongPassphrase", err)
	}
}

func TestThumbprintMatchesOpenSSL(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"RSA-2048", "P-256"} {
		k := testKeys()[kind][0]
		writeFiles(t, dir, map[string][]byte{"c.crt": k.certPEM()})
		out := string(openssl(t, dir, "x509", "-in", "c.crt", "-noout", "-fingerprint", "-sha1"))
		_, fp, ok := strings.Cut(strings.TrimSpace(out), "=")
		if !ok {
			t.Fatalf("openssl printed %q", out)
		}
		if got, want := k.cert(t).Thumbprint(), strings.ReplaceAll(fp, ":", ""); got != want {
			t.Errorf("%s: Thumbprint %s, openssl %s", kind, got, want)
		}
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFixtures checks the certificates and keys other packages' tests use.
func TestFixtures(t *testing.T) {
	certs := map[string]*cert.Certificate{}
	for _, name := range []string{"rsa", "rsa2", "ec"} {
		c, err := cert.ParseCertificate(readFixture(t, name+".crt"))
		if err != nil {
			t.Fatalf("%s.crt: %v", name, err)
		}
		if c.NotAfter().Before(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s.crt expires %v", name, c.NotAfter())
		}
		certs[name] = c
	}
	privs := map[string]*cert.PrivateKey{}
	for _, name := range []string{"rsa", "rsa2", "ec"} {
		k, err := cert.ParsePrivateKey(readFixture(t, name+".key"), "")
		if err != nil {
			t.Fatalf("%s.key: %v", name, err)
		}
		privs[name] = k
	}
	pfx, err := cert.ParsePrivateKey(readFixture(t, "ec.pfx"), "azfs-test")
	if err != nil {
		t.Fatalf("ec.pfx: %v", err)
	}
	privs["ec.pfx"] = pfx

	for kname, k := range privs {
		for cname, c := range certs {
			if want := strings.TrimSuffix(kname, ".pfx") == cname; k.Matches(c) != want {
				t.Errorf("%s matches %s.crt: %v, want %v", kname, cname, !want, want)
			}
		}
		c := certs[strings.TrimSuffix(kname, ".pfx")]
		w, err := c.Wrap([]byte("fixture secret"), []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Unwrap(w, []byte("ad")); err != nil || string(got) != "fixture secret" {
			t.Errorf("%s: Unwrap = %q, %v", kname, got, err)
		}
	}
}

// TestUnwrapStoredFormat unwraps secrets wrapped to the fixtures when the
// format was made, so that a change to the format cannot go unnoticed: vaults
// store these. The RSA value was also checked with Python's cryptography
// package (OAEP, SHA-256, label "stored ad").
func TestUnwrapStoredFormat(t *testing.T) {
	for name, wrapped := range map[string]string{
		"rsa": "0164796b1c1d8904ca459c8ed93b234e3803806c8b47033e78d6925a1429040d9c110c178ead87dd75b2873f48c451b299" +
			"bdeaa918d1ccbb49a7a7e4cbd1037227bb40a027a2c200938da963548955b1bdfb5eca5a6fd8505ac26afa1118c61fb23edc" +
			"d889ce9514b96baaf9f3574407b4dd46d4d527f1c26626b031c2a931c269128c1007376b9657d6fde89f19482715e525f934" +
			"3ece4edbfc1f1cca7acdb4bf8c8cbc1f43bc62e9ebd13488236b7ba11e19a7f929a07d7ce9afb368ce97efcac9a79a629cba" +
			"183f77ca492e6d778ba38074be7fcbafba6698c729d6466d9945312b3c3322e301170f924e22893798e18f9e38fb484fee7a" +
			"8b0cc23003e2b0e2",
		"ec": "024104964432672a014dd6ee65e8617b25af0069732c77626cc6f023d4f422d52d3601b15dbebba9b8e6844f4f022164196a" +
			"4ff8bea3cfda7c50892f1ff2333cee04544bb0fb35dc64395c287b3de6177fd0d59a0cf1699a385d710bfa9c6e3f",
	} {
		k, err := cert.ParsePrivateKey(readFixture(t, name+".key"), "")
		if err != nil {
			t.Fatal(err)
		}
		w, err := hex.DecodeString(wrapped)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Unwrap(w, []byte("stored ad")); err != nil || string(got) != "stored secret" {
			t.Errorf("%s: Unwrap = %q, %v", name, got, err)
		}
	}
}

func Example() {
	c, err := cert.ParseCertificate(must(os.ReadFile("testdata/ec.crt")))
	if err != nil {
		panic(err)
	}
	wrapped, err := c.Wrap([]byte("a 32-byte slot key goes here...."), []byte("vault 42, slot 1"))
	if err != nil {
		panic(err)
	}

	k, err := cert.ParsePrivateKey(must(os.ReadFile("testdata/ec.pfx")), "azfs-test")
	if err != nil {
		panic(err)
	}
	secret, err := k.Unwrap(wrapped, []byte("vault 42, slot 1"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n%v\n", secret, k)
	// Output:
	// a 32-byte slot key goes here....
	// [redacted]
}

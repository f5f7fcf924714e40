package cert_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/azfs/azfs/internal/formatdoc"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
)

// rowStarting returns the value of the one row of rows whose first cell
// starts with prefix.
func rowStarting(t *testing.T, rows map[string]string, prefix string) string {
	t.Helper()
	var found []string
	for k, v := range rows {
		if strings.HasPrefix(k, prefix) {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("docs/format.md §16: %d rows start with %q, want 1", len(found), prefix)
	}
	return found[0]
}

// docAD turns the document's `"a" ‖ "b\0"` notation into bytes.
func docAD(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for part := range strings.SplitSeq(s, " ‖ ") {
		u, err := strconv.Unquote(strings.ReplaceAll(part, `\0`, `\x00`))
		if err != nil {
			t.Fatalf("docs/format.md §16: AD part %s: %v", part, err)
		}
		out = append(out, u...)
	}
	return out
}

func derive(ctx string, parts ...[]byte) []byte {
	out := make([]byte, 32)
	blake3.DeriveKey(ctx, bytes.Join(parts, nil), out)
	return out
}

func gcmSeal(t *testing.T, key, plain, ad []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return g.Seal(nil, make([]byte, 12), plain, ad)
}

// TestFormatDocOwnerVectors pins the second table of docs/format.md §16
// (owner keys, §4.5–§4.7: sign_seed = 80…9f, escrow = a0…bf): the public
// keys and the signature as package keys makes them, the escrow as
// OwnerKeys.OpenAsOwner opens it, and E, shared and K by §4.6's formulas.
func TestFormatDocOwnerVectors(t *testing.T) {
	rows := formatdoc.Tables(t)[1]
	want := func(key string) []byte { return formatdoc.Hex(t, formatdoc.Row(t, rows, key)) }
	const vaultID = "00112233445566778899aabbccddeeff"
	owner := &keys.OwnerKeys{Version: 1, Vault: vaultID, SignSeed: keys.Secret(formatdoc.Counting(0x80)), Escrow: keys.Secret(formatdoc.Counting(0xa0))}
	pub := owner.Public()
	formatdoc.Check(t, "owner.sign", pub.Sign, want("`owner.sign` (Ed25519 public key)"))
	formatdoc.Check(t, "owner.escrow", pub.Escrow, want("`owner.escrow` (X25519 public key)"))
	formatdoc.Check(t, "signature", owner.Sign("pin", []byte("hello")), want("signature, context `pin`, message `\"hello\"`"))

	eph := keys.Secret(formatdoc.Counting(0xc0))
	e, err := ecdh.X25519().NewPrivateKey(eph[:])
	if err != nil {
		t.Fatal(err)
	}
	E := e.PublicKey().Bytes()
	formatdoc.Check(t, "E", E, want("escrow with ephemeral private key `c0 c1 … df`: `E`"))
	o, err := ecdh.X25519().NewPublicKey(pub.Escrow)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := e.ECDH(o)
	if err != nil {
		t.Fatal(err)
	}
	formatdoc.Check(t, "shared", shared, want("`shared`"))
	k := derive("azfs 2026 owner escrow v1", shared, E, pub.Escrow)
	formatdoc.Check(t, "K", k, want("`K`"))
	ad := []byte("azfs-escrow-v1\x00" + vaultID + "\x00web01")
	escrow := formatdoc.Hex(t, rowStarting(t, rows, "escrow of plaintext `\"hello\"`"))
	formatdoc.Check(t, "escrow", append(append([]byte(nil), E...), gcmSeal(t, k, []byte("hello"), ad)...), escrow)
	if plain, err := owner.OpenAsOwner(escrow, ad); err != nil || string(plain) != "hello" {
		t.Errorf("OpenAsOwner of the document's escrow: %q, %v", plain, err)
	}
}

// TestFormatDocCertificateVectors pins the third table of docs/format.md
// §16 (certificate mode, §4.11–§4.13, with testdata/ec.crt and ec.key,
// session key S = 00…1f, ephemeral scalar c0…df): the certificate's ID and
// thumbprint and the session key ID as the code makes them, the wrapped key
// as PrivateKey.Unwrap opens it, E, shared and K by §4.11's formulas, and
// keys.SealOnce's output.
func TestFormatDocCertificateVectors(t *testing.T) {
	rows := formatdoc.Tables(t)[2]
	want := func(key string) []byte { return formatdoc.Hex(t, formatdoc.Row(t, rows, key)) }
	crtPEM, err := os.ReadFile("testdata/ec.crt")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cert.ParseCertificate(crtPEM)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile("testdata/ec.key")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := cert.ParsePrivateKey(keyPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	formatdoc.Check(t, "certificate ID", []byte(c.ID()), []byte(formatdoc.Spans(formatdoc.Row(t, rows, "certificate ID, SHA-256 of the DER"))[0]))
	formatdoc.Check(t, "thumbprint", []byte(c.Thumbprint()), []byte(formatdoc.Spans(formatdoc.Row(t, rows, "thumbprint, SHA-1 of the DER"))[0]))

	s := keys.Secret(formatdoc.Counting(0x00))
	keyID := keys.NewDataSealer(s).KeyID()
	formatdoc.Check(t, "session keyID", keyID[:], want("session `keyID` (the content `keyID` of the first table: same derivation, same key)"))
	const areaID = "00112233445566778899aabbccddeeff"
	ad := docAD(t, formatdoc.Spans(formatdoc.Row(t, rows, "AD"))[0])
	formatdoc.Check(t, "AD", ad, []byte("azfs-session-v1\x00"+areaID+"\x00"+hex.EncodeToString(keyID[:])))

	p := want("`P` (certificate's public key)")
	eph := keys.Secret(formatdoc.Counting(0xc0))
	e, err := ecdh.P256().NewPrivateKey(eph[:])
	if err != nil {
		t.Fatal(err)
	}
	E := e.PublicKey().Bytes()
	formatdoc.Check(t, "E", E, want("`E`"))
	pk, err := ecdh.P256().NewPublicKey(p)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := e.ECDH(pk)
	if err != nil {
		t.Fatal(err)
	}
	formatdoc.Check(t, "shared", shared, want("`shared`"))
	k := derive("azfs 2026 certificate wrap v1", shared, E, p)
	formatdoc.Check(t, "K", k, want("`K`"))
	// `wrapped` = `02 41` ‖ `E` ‖ ct ‖ tag: E stands for the row above.
	spans := formatdoc.Spans(formatdoc.Row(t, rows, "`wrapped`, 115 bytes"))
	if len(spans) != 4 || spans[1] != "E" {
		t.Fatalf("docs/format.md §16 `wrapped`: spans %q, want tag, E, ct, tag", spans)
	}
	var wrapped []byte
	for i, span := range spans {
		if i == 1 {
			wrapped = append(wrapped, E...)
			continue
		}
		wrapped = append(wrapped, formatdoc.Hex(t, "`"+span+"`")...)
	}
	formatdoc.Check(t, "wrapped", append(append([]byte{0x02, byte(len(E))}, E...), gcmSeal(t, k, s[:], ad)...), wrapped)
	if got, err := priv.Unwrap(wrapped, ad); err != nil || !bytes.Equal(got, s[:]) {
		t.Errorf("Unwrap of the document's wrapped key: %x, %v", got, err)
	}

	once := keys.Secret(formatdoc.Counting(0x20))
	onceAD := []byte("azfs-certkey-v1\x00" + areaID + "\x00" + c.ID())
	formatdoc.Check(t, "SealOnce", keys.SealOnce(once, []byte("hello"), onceAD), formatdoc.Hex(t, rowStarting(t, rows, "`SealOnce` of `\"hello\"`")))
}

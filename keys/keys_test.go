package keys_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/azfs/azfs/keys"
)

// cheapKDF makes passphrase slots fast in tests; the format and the code path
// are the same as with DefaultKDF.
var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

// testPass is a passphrase that satisfies Check.
const testPass keys.Passphrase = "correct horse battery staple"

// fixedKeySet returns a key set with constant secrets, so that sealed test
// vectors (and the fuzz seed corpus in testdata) stay valid across runs.
func fixedKeySet(vault string) *keys.KeySet {
	ks := &keys.KeySet{Version: 1, Vault: vault}
	for i := range 32 {
		ks.IDKey[i] = byte(i)
		ks.DataKey[i] = byte(0x40 + i)
		ks.IndexKey[i] = byte(0x60 + i)
		ks.ChunkerSeed[i] = byte(0x80 + i)
	}
	return ks
}

func newKeySet(t testing.TB, vault string) *keys.KeySet {
	t.Helper()
	ks, err := keys.NewKeySet(vault)
	if err != nil {
		t.Fatalf("NewKeySet: %v", err)
	}
	return ks
}

func TestRedaction(t *testing.T) {
	var secret keys.Secret
	for i := range secret {
		secret[i] = 0xab
	}
	pass := keys.Passphrase("hunter2hunter2hunter2")
	token := keys.Token("sv=2025-01-05&si=azfs&sr=c&sig=SECRET")
	for _, verb := range []string{"%v", "%s", "%q", "%+v", "%#v", "%x", "%X", "%d", "%10s", "%-12v"} {
		for name, v := range map[string]any{"Secret": secret, "*Secret": &secret, "Passphrase": pass, "Token": token} {
			// A pointer to a Secret goes through the value's Format as well.
			if got := fmt.Sprintf(verb, v); got != "[redacted]" {
				t.Errorf("Sprintf(%q, %s) = %q, want [redacted]", verb, name, got)
			}
		}
	}
	if got := secret.String(); got != "[redacted]" {
		t.Errorf("Secret.String() = %q", got)
	}
	if got := pass.String(); got != "[redacted]" {
		t.Errorf("Passphrase.String() = %q", got)
	}
	if got := token.String(); got != "[redacted]" {
		t.Errorf("Token.String() = %q", got)
	}
	if got := fmt.Sprint(secret, secret); got != "[redacted] [redacted]" {
		t.Errorf("Sprint(secret, secret) = %q", got)
	}
	if got := fmt.Sprintln(secret, pass); got != "[redacted] [redacted]\n" {
		t.Errorf("Sprintln(secret, pass) = %q", got)
	}
}

func TestRedactionInStructs(t *testing.T) {
	var secret keys.Secret
	for i := range secret {
		secret[i] = 0xab
	}
	type config struct {
		Name string
		Key  keys.Secret
		Pass keys.Passphrase
	}
	c := config{Name: "n", Key: secret, Pass: "a passphrase of some length"}
	for _, tc := range []struct {
		format string
		arg    any
		want   string
	}{
		{"%+v", c, "{Name:n Key:[redacted] Pass:[redacted]}"},
		{"%v", c, "{n [redacted] [redacted]}"},
		{"%+v", &c, "&{Name:n Key:[redacted] Pass:[redacted]}"},
		{"%v", []keys.Secret{secret, secret}, "[[redacted] [redacted]]"},
		{"%v", map[string]keys.Passphrase{"p": "xxxxxxxxxxxxxxxxxxxx"}, "map[p:[redacted]]"},
	} {
		if got := fmt.Sprintf(tc.format, tc.arg); got != tc.want {
			t.Errorf("Sprintf(%q, %T) = %q, want %q", tc.format, tc.arg, got, tc.want)
		}
	}

	ks := fixedKeySet("vault-1")
	want := "&{Version:1 Vault:vault-1 IDKey:[redacted] DataKey:[redacted] IndexKey:[redacted] ChunkerSeed:[redacted] Certificate:}"
	if got := fmt.Sprintf("%+v", ks); got != want {
		t.Errorf("Sprintf(%%+v, key set) = %q, want %q", got, want)
	}
	got := fmt.Sprintf("%#v", ks)
	if strings.Count(got, "[redacted]") != 4 || strings.Contains(got, "0x") {
		t.Errorf("Sprintf(%%#v, key set) = %q: want four redacted secrets and no bytes", got)
	}
}

func TestSecretJSON(t *testing.T) {
	var s keys.Secret
	for i := range s {
		s[i] = byte(i * 7)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var back keys.Secret
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if back != s {
		t.Errorf("JSON round trip changed the secret")
	}
	for _, bad := range []string{
		`"AAAA"`,                            // 3 bytes
		`"` + strings.Repeat("A", 44) + `"`, // 33 bytes
		`"not base64!"`,
		`12`,
		`null`,
	} {
		var s keys.Secret
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s) succeeded, want an error", bad)
		}
	}
}

func TestParseID(t *testing.T) {
	var id keys.ID
	for i := range id {
		id[i] = byte(0xf0 - i)
	}
	got, err := keys.ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseID(%s) = %v, %v; want the same ID", id, got, err)
	}
	if got, err := keys.ParseID(strings.ToUpper(id.String())); err != nil || got != id {
		t.Errorf("ParseID(upper case) = %v, %v", got, err)
	}
	if id.Short() != id.String()[:8] {
		t.Errorf("Short() = %q, want %q", id.Short(), id.String()[:8])
	}
	if id.IsZero() || !(keys.ID{}).IsZero() {
		t.Errorf("IsZero wrong")
	}
	for _, bad := range []string{"", "ab", id.String()[:63], id.String() + "0", strings.Repeat("g", 64)} {
		if _, err := keys.ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded, want an error", bad)
		}
	}
	text, err := id.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var back keys.ID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Errorf("text round trip = %v, %v", back, err)
	}
	if err := back.UnmarshalText([]byte("zz")); err == nil {
		t.Errorf("UnmarshalText(zz) succeeded")
	}
}

func TestKeySetMarshalParse(t *testing.T) {
	ks := newKeySet(t, "0123abcd")
	secrets := map[keys.Secret]bool{ks.IDKey: true, ks.DataKey: true, ks.IndexKey: true, ks.ChunkerSeed: true, {}: true}
	if len(secrets) != 5 {
		t.Fatalf("NewKeySet secrets are not four distinct non-zero random values")
	}
	other := newKeySet(t, "0123abcd")
	if other.IDKey == ks.IDKey || other.DataKey == ks.DataKey {
		t.Fatalf("two NewKeySet calls returned the same secrets")
	}
	b, err := ks.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := keys.ParseKeySet(b)
	if err != nil {
		t.Fatalf("ParseKeySet: %v", err)
	}
	if *back != *ks {
		t.Errorf("round trip changed the key set")
	}

	for name, in := range map[string]string{
		"not json":       "{",
		"empty":          "",
		"version 0":      `{"vault":"v"}`,
		"version 2":      `{"version":2,"vault":"v"}`,
		"no vault":       `{"version":1}`,
		"short secret":   `{"version":1,"vault":"v","id_key":"AAAA"}`,
		"secret not b64": `{"version":1,"vault":"v","data_key":"@@"}`,
	} {
		if _, err := keys.ParseKeySet([]byte(in)); !errors.Is(err, keys.ErrKeySet) {
			t.Errorf("ParseKeySet(%s): err = %v, want ErrKeySet", name, err)
		}
	}
	// Each key that seals or names objects must be present (not zero).
	for _, field := range []string{"id_key", "data_key", "index_key"} {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, field)
		in, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.ParseKeySet(in); !errors.Is(err, keys.ErrKeySet) {
			t.Errorf("ParseKeySet without %s: err = %v, want ErrKeySet", field, err)
		}
	}
}

func TestIDIsKeyed(t *testing.T) {
	a, b := fixedKeySet("v"), fixedKeySet("v")
	b.IDKey[0] ^= 1
	data := []byte("some content")
	if a.ID(keys.KindData, data) == b.ID(keys.KindData, data) {
		t.Errorf("IDs under different ID keys are equal")
	}
	if a.ID(keys.KindData, data) != fixedKeySet("other vault").ID(keys.KindData, data) {
		t.Errorf("ID depends on more than the ID key")
	}
	if a.ID(keys.KindData, data) == a.ID(keys.KindData, []byte("some contenT")) {
		t.Errorf("different data, same ID")
	}
	// Every kind hashes under its own key.
	seen := make(map[keys.ID]keys.Kind)
	for _, kind := range []keys.Kind{keys.KindData, keys.KindTree, keys.KindTrailer, keys.KindIndex, keys.KindPoint} {
		id := a.ID(kind, data)
		if prev, dup := seen[id]; dup {
			t.Errorf("kinds %s and %s give the same ID", prev, kind)
		}
		seen[id] = kind
	}
	// A reused Hasher gives the same IDs as fresh ones.
	h := a.NewHasher(keys.KindTree)
	for _, d := range [][]byte{nil, data, make([]byte, 100000), data} {
		if got, want := h.Sum(d), a.ID(keys.KindTree, d); got != want {
			t.Errorf("Hasher.Sum(%d bytes) = %s, want %s", len(d), got.Short(), want.Short())
		}
	}
}

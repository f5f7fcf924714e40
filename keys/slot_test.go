package keys_test

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/azfs/azfs/keys"
)

func TestPassphraseCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		pass string
		ok   bool
	}{
		{"empty", "", false},
		{"15 ASCII", strings.Repeat("a", 15), false},
		{"16 ASCII", strings.Repeat("a", 16), true},
		{"15 two-byte runes (30 bytes)", strings.Repeat("é", 15), false},
		{"16 two-byte runes", strings.Repeat("é", 16), true},
		{"8 four-byte runes (32 bytes)", strings.Repeat("😀", 8), false},
		// Characters are counted after NFC: e + combining acute is one.
		{"16 decomposed é (32 runes)", strings.Repeat("e\u0301", 16), true},
		{"8 decomposed é (16 runes)", strings.Repeat("e\u0301", 8), false},
		{"long", strings.Repeat("x", 200), true},
	} {
		err := keys.Passphrase(tc.pass).Check()
		if tc.ok && err != nil {
			t.Errorf("%s: Check() = %v, want nil", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, keys.ErrShortPassphrase) {
			t.Errorf("%s: Check() = %v, want ErrShortPassphrase", tc.name, err)
		}
	}
}

func TestGeneratePassphrase(t *testing.T) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	seen := make(map[keys.Passphrase]bool)
	used := make(map[rune]bool)
	for range 200 {
		p, err := keys.GeneratePassphrase()
		if err != nil {
			t.Fatalf("GeneratePassphrase: %v", err)
		}
		s := string(p)
		if err := p.Check(); err != nil {
			t.Fatalf("generated passphrase fails Check: %v", err)
		}
		groups := strings.Split(s, "-")
		if len(s) != 47 || len(groups) != 8 {
			t.Fatalf("generated passphrase %q: %d chars in %d groups, want 47 in 8 groups of 5", s, len(s), len(groups))
		}
		for _, g := range groups {
			if utf8.RuneCountInString(g) != 5 {
				t.Fatalf("generated passphrase %q has group %q, want 5 characters", s, g)
			}
			for _, r := range g {
				if !strings.ContainsRune(alphabet, r) {
					t.Fatalf("generated passphrase %q has %q, outside the alphabet", s, r)
				}
				used[r] = true
			}
		}
		if seen[p] {
			t.Fatalf("GeneratePassphrase repeated %q", s)
		}
		seen[p] = true
	}
	// 8000 uniform draws from 57 symbols miss one with probability ~1e-59.
	if len(used) != len(alphabet) {
		t.Errorf("200 passphrases used %d of the %d alphabet characters", len(used), len(alphabet))
	}
	for _, lookAlike := range "01lIO" {
		if used[lookAlike] {
			t.Errorf("generated passphrases contain look-alike %q", lookAlike)
		}
	}
}

func TestSlotRoundTrip(t *testing.T) {
	ks := newKeySet(t, "vault-a")
	slot, err := keys.NewPassphraseSlot(ks, "slot-1", testPass, cheapKDF)
	if err != nil {
		t.Fatalf("NewPassphraseSlot: %v", err)
	}
	if slot.Kind != "passphrase" || slot.KDF != cheapKDF || len(slot.Salt) != 32 {
		t.Errorf("slot = kind %q, kdf %+v, %d-byte salt", slot.Kind, slot.KDF, len(slot.Salt))
	}
	b, err := slot.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	for _, leak := range []string{string(testPass), "id_key", "data_key"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("stored slot contains %q in the clear", leak)
		}
	}
	parsed, err := keys.ParseSlot(b)
	if err != nil {
		t.Fatalf("ParseSlot: %v", err)
	}
	got, err := parsed.Unlock("vault-a", "slot-1", testPass)
	if err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if *got != *ks {
		t.Errorf("Unlock returned a different key set")
	}

	// Fresh salt each time: two slots of the same keys and passphrase differ.
	again, err := keys.NewPassphraseSlot(ks, "slot-1", testPass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Salt) == string(slot.Salt) || string(again.Sealed) == string(slot.Sealed) {
		t.Errorf("two slots share a salt or sealed bytes")
	}
}

func TestSlotUnlockFailures(t *testing.T) {
	ks := newKeySet(t, "vault-a")
	slot, err := keys.NewPassphraseSlot(ks, "slot-1", testPass, cheapKDF)
	if err != nil {
		t.Fatalf("NewPassphraseSlot: %v", err)
	}
	for _, tc := range []struct {
		name          string
		vault, slotID string
		pass          keys.Passphrase
	}{
		{"wrong passphrase", "vault-a", "slot-1", testPass + "!"},
		{"passphrase differing in case", "vault-a", "slot-1", keys.Passphrase(strings.ToUpper(string(testPass)))},
		{"another vault ID", "vault-b", "slot-1", testPass},
		{"another slot ID", "vault-a", "slot-2", testPass},
		{"vault and slot IDs run together", "vault-aslot-1", "", testPass},
	} {
		if got, err := slot.Unlock(tc.vault, tc.slotID, tc.pass); !errors.Is(err, keys.ErrWrongPassphrase) || got != nil {
			t.Errorf("%s: Unlock = %v, %v; want nil, ErrWrongPassphrase", tc.name, got, err)
		}
	}
	damaged := *slot
	damaged.Sealed = append([]byte(nil), slot.Sealed...)
	damaged.Sealed[len(damaged.Sealed)/2] ^= 1
	if _, err := damaged.Unlock("vault-a", "slot-1", testPass); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("damaged sealed key set: err = %v, want ErrWrongPassphrase", err)
	}
	otherSalt := *slot
	otherSalt.Salt = append([]byte(nil), slot.Salt...)
	otherSalt.Salt[0] ^= 1
	if _, err := otherSalt.Unlock("vault-a", "slot-1", testPass); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("changed salt: err = %v, want ErrWrongPassphrase", err)
	}
}

func TestNewPassphraseSlotRefuses(t *testing.T) {
	ks := newKeySet(t, "v")
	if _, err := keys.NewPassphraseSlot(ks, "s", "too short", cheapKDF); !errors.Is(err, keys.ErrShortPassphrase) {
		t.Errorf("short passphrase: err = %v, want ErrShortPassphrase", err)
	}
	bad := cheapKDF
	bad.Algorithm = "scrypt"
	if _, err := keys.NewPassphraseSlot(ks, "s", testPass, bad); !errors.Is(err, keys.ErrSlot) {
		t.Errorf("unknown KDF: err = %v, want ErrSlot", err)
	}
	bad = cheapKDF
	bad.Time = 0
	if _, err := keys.NewPassphraseSlot(ks, "s", testPass, bad); !errors.Is(err, keys.ErrSlot) {
		t.Errorf("KDF time 0: err = %v, want ErrSlot", err)
	}
}

func TestDefaultKDF(t *testing.T) {
	if keys.DefaultKDF.Algorithm != "argon2id" || keys.DefaultKDF.MemoryKiB < 64<<10 || keys.DefaultKDF.Time < 1 || keys.DefaultKDF.Threads < 1 {
		t.Fatalf("DefaultKDF = %+v, want argon2id with at least 64 MiB", keys.DefaultKDF)
	}
	if testing.Short() {
		t.Skip("a DefaultKDF unlock costs 64 MiB and a fraction of a second")
	}
	ks := newKeySet(t, "v")
	slot, err := keys.NewPassphraseSlot(ks, "s", testPass, keys.DefaultKDF)
	if err != nil {
		t.Fatalf("NewPassphraseSlot(DefaultKDF): %v", err)
	}
	got, err := slot.Unlock("v", "s", testPass)
	if err != nil || *got != *ks {
		t.Fatalf("Unlock(DefaultKDF) = %v, %v", got, err)
	}
}

// slotJSON returns a valid stored slot as a generic map, to be altered.
func slotJSON(t *testing.T) map[string]any {
	t.Helper()
	slot, err := keys.NewPassphraseSlot(fixedKeySet("v"), "s", testPass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	b, err := slot.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encodeSlot(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSlotRejectsMalformed(t *testing.T) {
	for name, alter := range map[string]func(m map[string]any){
		"unknown kind":  func(m map[string]any) { m["kind"] = "fido2" },
		"no kind":       func(m map[string]any) { delete(m, "kind") },
		"short salt":    func(m map[string]any) { m["salt"] = "AAAAAAAAAAAAAAAAAAAA" }, // 15 bytes
		"no salt":       func(m map[string]any) { delete(m, "salt") },
		"short sealed":  func(m map[string]any) { m["sealed"] = "AAAA" },
		"salt not b64":  func(m map[string]any) { m["salt"] = "@@@@" },
		"kdf not obj":   func(m map[string]any) { m["kdf"] = "argon2id" },
		"threads > 255": func(m map[string]any) { m["kdf"].(map[string]any)["threads"] = 256 },
		"negative time": func(m map[string]any) { m["kdf"].(map[string]any)["time"] = -1 },
	} {
		m := slotJSON(t)
		alter(m)
		if _, err := keys.ParseSlot(encodeSlot(t, m)); !errors.Is(err, keys.ErrSlot) {
			t.Errorf("%s: ParseSlot err = %v; want ErrSlot", name, err)
		}
	}
	for _, in := range []string{"", "{", "null", "[]", `"slot"`} {
		if _, err := keys.ParseSlot([]byte(in)); !errors.Is(err, keys.ErrSlot) {
			t.Errorf("ParseSlot(%q): err = %v, want ErrSlot", in, err)
		}
	}
}

// hostileKDFs are KDF parameters that a slot must not be allowed to carry:
// some would make an unlock allocate gigabytes or run for minutes.
var hostileKDFs = map[string]keys.KDF{
	"memory 4 GiB + 1 KiB":       {Algorithm: "argon2id", Time: 1, MemoryKiB: 4<<20 + 1, Threads: 1},
	"memory max uint32":          {Algorithm: "argon2id", Time: 1, MemoryKiB: 1<<32 - 1, Threads: 1},
	"time 0":                     {Algorithm: "argon2id", Time: 0, MemoryKiB: 64, Threads: 1},
	"time 65":                    {Algorithm: "argon2id", Time: 65, MemoryKiB: 64, Threads: 1},
	"time max uint32":            {Algorithm: "argon2id", Time: 1<<32 - 1, MemoryKiB: 64, Threads: 1},
	"threads 0":                  {Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 0},
	"memory below 8 KiB/thread":  {Algorithm: "argon2id", Time: 1, MemoryKiB: 31, Threads: 4},
	"unknown algorithm":          {Algorithm: "argon2i", Time: 1, MemoryKiB: 64, Threads: 1},
	"empty algorithm":            {Algorithm: "", Time: 1, MemoryKiB: 64, Threads: 1},
	"huge memory and many times": {Algorithm: "argon2id", Time: 64, MemoryKiB: 1<<32 - 1, Threads: 255},
}

func hostileSlot(t *testing.T, kdf keys.KDF) []byte {
	t.Helper()
	m := slotJSON(t)
	m["kdf"] = map[string]any{"algorithm": kdf.Algorithm, "time": kdf.Time, "memory_kib": kdf.MemoryKiB, "threads": kdf.Threads}
	return encodeSlot(t, m)
}

// TestParseSlotRejectsBadKDF: a stored slot with KDF parameters outside the
// limits is malformed, and is refused when it is parsed.
func TestParseSlotRejectsBadKDF(t *testing.T) {
	for name, kdf := range hostileKDFs {
		if s, err := keys.ParseSlot(hostileSlot(t, kdf)); !errors.Is(err, keys.ErrSlot) {
			t.Errorf("%s: ParseSlot accepted KDF %+v (err %v); want ErrSlot", name, s.KDF, err)
		}
	}
	// The limits themselves are accepted.
	for name, kdf := range map[string]keys.KDF{
		"max memory and time": {Algorithm: "argon2id", Time: 64, MemoryKiB: 4 << 20, Threads: 255},
		"min memory":          {Algorithm: "argon2id", Time: 1, MemoryKiB: 8, Threads: 1},
	} {
		if _, err := keys.ParseSlot(hostileSlot(t, kdf)); err != nil {
			t.Errorf("%s: ParseSlot: %v", name, err)
		}
	}
}

// TestUnlockRefusesBadKDFWithoutAllocating: whatever ParseSlot lets through,
// Unlock checks the parameters before running Argon2.
func TestUnlockRefusesBadKDFWithoutAllocating(t *testing.T) {
	for name, kdf := range hostileKDFs {
		slot, err := keys.NewPassphraseSlot(fixedKeySet("v"), "s", testPass, cheapKDF)
		if err != nil {
			t.Fatal(err)
		}
		slot.KDF = kdf
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ks, err := slot.Unlock("v", "s", testPass)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, keys.ErrSlot) || ks != nil {
			t.Errorf("%s: Unlock = %v, %v; want ErrSlot", name, ks, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: Unlock allocated %d bytes before refusing", name, n)
		}
	}
}

// TestSlotNFC: the same passphrase typed with composed or decomposed accents
// unlocks the same slot.
func TestSlotNFC(t *testing.T) {
	ks := newKeySet(t, "v")
	composed := keys.Passphrase(strings.Repeat("\u00e9", 16))    // é as one code point
	decomposed := keys.Passphrase(strings.Repeat("e\u0301", 16)) // e + combining acute
	slot, err := keys.NewPassphraseSlot(ks, "s", decomposed, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	for name, pass := range map[string]keys.Passphrase{"composed": composed, "decomposed": decomposed} {
		if got, err := slot.Unlock("v", "s", pass); err != nil || *got != *ks {
			t.Errorf("%s: Unlock = %v", name, err)
		}
	}
	if _, err := slot.Unlock("v", "s", keys.Passphrase(strings.Repeat("e", 16))); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Errorf("unaccented: err = %v, want ErrWrongPassphrase", err)
	}
}

// BenchmarkUnlockDefaultKDF measures what opening a vault with a passphrase
// costs: one Argon2id derivation with DefaultKDF (64 MiB, t=3, p=4) and the
// unwrap. Run with -cpu 1,2 to see the effect of the four lanes.
func BenchmarkUnlockDefaultKDF(b *testing.B) {
	ks := newKeySet(b, "v")
	slot, err := keys.NewPassphraseSlot(ks, "s", "correct horse battery staple", keys.DefaultKDF)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := slot.Unlock("v", "s", "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

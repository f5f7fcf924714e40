package access

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

// fixedCredentials are well-formed credentials with fixed values.
func fixedCredentials() *Credentials {
	c := &Credentials{
		VaultID:  "0123456789abcdef0123456789abcdef",
		Location: "/srv/backup/vault",
		Access:   AccessRestore,
		ID:       "fedcba9876543210fedcba9876543210",
		Issued:   time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
		Expires:  time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		Owner:    keys.OwnerPublic{Sign: bytes.Repeat([]byte{1}, 32), Escrow: bytes.Repeat([]byte{2}, 32)},
	}
	for i := range c.Secret {
		c.Secret[i] = byte(i)
	}
	return c
}

// blobSAS is a SAS token as the CLI puts in the credentials of a blob
// vault (made-up signature).
const blobSAS = "si=azfs-0123456789abcdef0123456789abcdef-read-0011223344556677&sig=SECRETSIG%2Babc%3D&sr=c&sv=2025-11-05"

// blobCredentials are fixedCredentials for a vault in a blob container.
func blobCredentials() *Credentials {
	c := fixedCredentials()
	c.Location = "https://acct.blob.core.windows.net/vaults/home"
	c.SAS = blobSAS
	return c
}

func equalCredentials(a, b *Credentials) bool {
	return a.VaultID == b.VaultID && a.Location == b.Location && a.SAS == b.SAS && a.Access == b.Access && a.ID == b.ID &&
		a.Secret == b.Secret && a.Issued.Equal(b.Issued) && a.Expires.Equal(b.Expires) && a.Owner.Equal(b.Owner)
}

func issue(t *testing.T, v testVault, access Access) *Credentials {
	t.Helper()
	c, err := Issue(context.Background(), v.root, v.owner, "/srv/backup/vault", access, 48*time.Hour, t0)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return c
}

// viaFile returns c as a machine reads it: marshalled and parsed again.
func viaFile(t *testing.T, c *Credentials) *Credentials {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := ParseCredentials(b)
	if err != nil {
		t.Fatalf("ParseCredentials: %v\n%s", err, b)
	}
	return back
}

func TestCredentialsRoundTrip(t *testing.T) {
	v := newTestVault(t)
	for _, c := range []*Credentials{fixedCredentials(), blobCredentials(), issue(t, v, AccessBackup), issue(t, v, AccessRestore)} {
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n",
			`<VaultCredentials xmlns="urn:azfs:vault-credentials:1">`,
			"<VaultId>" + c.VaultID + "</VaultId>",
			"<Access>" + string(c.Access) + "</Access>",
			"<CredentialId>" + c.ID + "</CredentialId>",
			"<Secret>" + base64.StdEncoding.EncodeToString(c.Secret[:]) + "</Secret>",
			"<Issued>" + c.Issued.Format(time.RFC3339) + "</Issued>",
			"<Expires>" + c.Expires.Format(time.RFC3339) + "</Expires>",
			"<OwnerSigningKey>" + base64.StdEncoding.EncodeToString(c.Owner.Sign) + "</OwnerSigningKey>",
		} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("file lacks %q:\n%s", want, b)
			}
		}
		sas := "<SharedAccessSignature>" + strings.ReplaceAll(string(c.SAS), "&", "&amp;") + "</SharedAccessSignature>"
		if c.SAS != "" && !bytes.Contains(b, []byte("<Location>"+c.Location+"</Location>\n  "+sas+"\n  <Access>")) {
			t.Errorf("file lacks %q after Location:\n%s", sas, b)
		}
		if c.SAS == "" && bytes.Contains(b, []byte("SharedAccessSignature")) {
			t.Errorf("file without a SAS token has the element:\n%s", b)
		}
		if back := viaFile(t, c); !equalCredentials(back, c) {
			t.Errorf("round trip changed the credentials:\n%+v\n%+v", c, back)
		}
	}
}

// A credentials file saved by Windows Notepad starts with a UTF-8 byte
// order mark (issue 14): it parses as the file without one.
func TestCredentialsWithBOM(t *testing.T) {
	c := fixedCredentials()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCredentials(append([]byte("\xef\xbb\xbf"), b...))
	if err != nil {
		t.Fatalf("ParseCredentials with a BOM: %v", err)
	}
	if !equalCredentials(back, c) {
		t.Errorf("with a BOM the credentials changed:\n%+v\n%+v", c, back)
	}
}

func TestCredentialsLocationRoundTrip(t *testing.T) {
	for _, loc := range []string{`C:\Backups\Vault <1> & "2"`, "/mnt/ün ïcode/ vault ", "]]>"} {
		c := fixedCredentials()
		c.Location = loc
		if back := viaFile(t, c); back.Location != loc {
			t.Errorf("Location %q came back as %q", loc, back.Location)
		}
	}
	c := fixedCredentials()
	c.Location = "/tmp/a\nb"
	if _, err := c.Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Marshal with a newline in Location: %v, want ErrMalformed", err)
	}
}

func TestCredentialsRedacted(t *testing.T) {
	c := blobCredentials()
	out := fmt.Sprintf("%v %+v %#v %s %v %x %s %q", *c, c, *c, c.Secret, c.Secret, c.Secret, c.SAS, c.SAS)
	for _, leak := range []string{
		base64.StdEncoding.EncodeToString(c.Secret[:]),
		hex.EncodeToString(c.Secret[:]),
		fmt.Sprint(c.Secret[:]),
		"0 1 2 3 4 5 6 7 8 9 10",
		"SECRETSIG",
	} {
		if strings.Contains(out, leak) {
			t.Errorf("printing credentials shows the secret (%q):\n%s", leak, out)
		}
	}
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("printed credentials say nothing about the secret:\n%s", out)
	}
}

func TestIssueVerify(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	backup, restore := viaFile(t, issue(t, v, AccessBackup)), viaFile(t, issue(t, v, AccessRestore))
	if !backup.Expires.Equal(t0.Add(48*time.Hour)) || !backup.Issued.Equal(t0) || backup.VaultID != v.root.ID || !backup.Owner.Equal(*v.root.Owner) {
		t.Errorf("issued %+v, want vault %s, issued %v, valid 48h, the owner's keys", backup, v.root.ID, t0)
	}
	if backup.ID == restore.ID || backup.Secret == restore.Secret {
		t.Error("two credentials share an ID or a secret")
	}
	for _, tc := range []struct {
		c    *Credentials
		need Access
	}{{backup, AccessBackup}, {backup, AccessRestore}, {restore, AccessRestore}} {
		cfg, err := Verify(ctx, v.st, tc.c, tc.need, t0.Add(47*time.Hour))
		if err != nil {
			t.Errorf("Verify %s credentials for %s: %v", tc.c.Access, tc.need, err)
			continue
		}
		if cfg.ID != v.root.ID || !cfg.Owner.Equal(*v.root.Owner) {
			t.Errorf("Verify returned config %+v, want the vault root's", cfg)
		}
	}
	// The vault keeps a hash of the secret, never the secret.
	rec, err := v.st.Load(ctx, credentialsPrefix+backup.ID, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range [][]byte{backup.Secret[:], []byte(base64.StdEncoding.EncodeToString(backup.Secret[:]))} {
		if bytes.Contains(rec, leak) {
			t.Errorf("the record of credentials %s holds their secret", backup.ID)
		}
	}
}

func TestIssueRefuses(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	fake, other := v.impostor(t)
	if _, err := Issue(ctx, v.root, other, "/v", AccessBackup, time.Hour, t0); !errors.Is(err, repo.ErrOwnerMismatch) {
		t.Errorf("Issue with other owner keys: %v, want ErrOwnerMismatch", err)
	}
	noOwner := v.root
	noOwner.Owner = nil
	if _, err := Issue(ctx, noOwner, v.owner, "/v", AccessBackup, time.Hour, t0); !errors.Is(err, repo.ErrNotOwnerVault) {
		t.Errorf("Issue for a vault without owner: %v, want ErrNotOwnerVault", err)
	}
	if _, err := Issue(ctx, fake, v.owner, "/v", AccessBackup, time.Hour, t0); !errors.Is(err, repo.ErrOwnerMismatch) {
		t.Errorf("Issue for a config naming other owner keys: %v, want ErrOwnerMismatch", err)
	}
	for _, tc := range []struct {
		access Access
		valid  time.Duration
		loc    string
	}{{"admin", time.Hour, "/v"}, {AccessBackup, 0, "/v"}, {AccessBackup, -time.Hour, "/v"}, {AccessBackup, time.Hour, ""}} {
		if _, err := Issue(ctx, v.root, v.owner, tc.loc, tc.access, tc.valid, t0); err == nil {
			t.Errorf("Issue(%q, %q, %v) succeeded", tc.loc, tc.access, tc.valid)
		}
	}
	if n := countObjects(t, v.st, credentialsPrefix); n != 0 {
		t.Errorf("refused Issue calls left %d records", n)
	}
}

func countObjects(t *testing.T, st storage.Storage, prefix string) int {
	t.Helper()
	n := 0
	if err := st.List(context.Background(), prefix, func(storage.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestVerifyExpired(t *testing.T) {
	v := newTestVault(t)
	c := viaFile(t, issue(t, v, AccessBackup))
	if _, err := Verify(context.Background(), v.st, c, AccessBackup, c.Expires.Add(-time.Second)); err != nil {
		t.Fatalf("Verify a second before expiry: %v", err)
	}
	for _, now := range []time.Time{c.Expires, c.Expires.Add(time.Hour)} {
		_, err := Verify(context.Background(), v.st, c, AccessRestore, now)
		if !errors.Is(err, ErrExpired) {
			t.Fatalf("Verify at %v: %v, want ErrExpired", now, err)
		}
		want := "vault credentials expired at 2026-11-24 12:00 UTC: ask the vault's owner for new ones ('azfs vault credentials')"
		if err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
	// Expiry is reported first, before the vault is even looked at.
	if _, err := Verify(context.Background(), mem.New(), c, AccessRestore, c.Expires); !errors.Is(err, ErrExpired) {
		t.Errorf("expired credentials against no vault: %v, want ErrExpired", err)
	}
}

func TestVerifyTampered(t *testing.T) {
	v := newTestVault(t)
	restore := issue(t, v, AccessRestore)
	other := newTestVault(t)
	within, afterOriginal := t0.Add(time.Hour), t0.Add(49*time.Hour)
	for _, tc := range []struct {
		name string
		edit func(c *Credentials)
		now  time.Time
		want error
	}{
		{"vault id", func(c *Credentials) { c.VaultID = other.root.ID }, within, ErrForeign},
		{"access upgraded", func(c *Credentials) { c.Access = AccessBackup }, within, ErrForeign},
		{"expiry extended", func(c *Credentials) { c.Expires = c.Expires.Add(24 * time.Hour) }, within, ErrForeign},
		{"expiry extended, used late", func(c *Credentials) { c.Expires = c.Expires.Add(24 * time.Hour) }, afterOriginal, ErrExpired},
		{"issued changed", func(c *Credentials) { c.Issued = c.Issued.Add(-time.Hour) }, within, ErrForeign},
		{"secret changed", func(c *Credentials) { c.Secret[0] ^= 1 }, within, ErrForeign},
		{"credential id", func(c *Credentials) { c.ID = strings.Repeat("ab", 16) }, within, ErrRevoked},
		{"owner keys", func(c *Credentials) { c.Owner = *other.root.Owner }, within, ErrForeign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *restore
			c.Owner = keys.OwnerPublic{Sign: bytes.Clone(restore.Owner.Sign), Escrow: bytes.Clone(restore.Owner.Escrow)}
			tc.edit(&c)
			_, err := Verify(context.Background(), v.st, viaFile(t, &c), AccessRestore, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
	// The untouched file still works.
	if _, err := Verify(context.Background(), v.st, viaFile(t, restore), AccessRestore, within); err != nil {
		t.Fatalf("Verify the untouched credentials: %v", err)
	}
}

func TestVerifyRevoked(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	c := issue(t, v, AccessBackup)
	if err := v.st.Delete(ctx, credentialsPrefix+c.ID); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(ctx, v.st, c, AccessBackup, t0)
	if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), c.ID) {
		t.Fatalf("Verify revoked credentials: %v, want ErrRevoked naming %s", err, c.ID)
	}
}

// TestRevoke: Revoke deletes the records of the credentials of the access
// it is given, which Verify then refuses; others stay valid, and a record
// the owner did not sign is left alone.
func TestRevoke(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	b1, b2, r := issue(t, v, AccessBackup), issue(t, v, AccessBackup), issue(t, v, AccessRestore)
	fake, other := v.impostor(t)
	forged, err := Issue(ctx, fake, other, "/srv/backup/vault", AccessBackup, 48*time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(ctx, v.root, other, AccessBackup); !errors.Is(err, repo.ErrOwnerMismatch) {
		t.Errorf("Revoke with other owner keys: %v, want ErrOwnerMismatch", err)
	}
	if n, err := Revoke(ctx, v.root, v.owner, AccessBackup); err != nil || n != 2 {
		t.Fatalf("Revoke(backup) = %d, %v; want 2", n, err)
	}
	for _, c := range []*Credentials{b1, b2} {
		if _, err := Verify(ctx, v.st, c, AccessRestore, t0); !errors.Is(err, ErrRevoked) {
			t.Errorf("Verify revoked backup credentials: %v, want ErrRevoked", err)
		}
	}
	if _, err := Verify(ctx, v.st, r, AccessRestore, t0); err != nil {
		t.Errorf("Verify restore credentials after revoking backup ones: %v", err)
	}
	if _, err := v.st.Stat(ctx, credentialsPrefix+forged.ID); err != nil {
		t.Errorf("Revoke touched a record the owner did not sign: %v", err)
	}
	if n, err := Revoke(ctx, v.root, v.owner, AccessBackup, AccessRestore); err != nil || n != 1 {
		t.Errorf("Revoke(backup, restore) = %d, %v; want 1", n, err)
	}
	if _, err := Verify(ctx, v.st, r, AccessRestore, t0); !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify revoked restore credentials: %v, want ErrRevoked", err)
	}
}

func TestVerifyForeignVault(t *testing.T) {
	ctx := context.Background()
	a, b := newTestVault(t), newTestVault(t)
	c := issue(t, a, AccessBackup)
	if _, err := Verify(ctx, b.st, c, AccessRestore, t0); !errors.Is(err, ErrForeign) {
		t.Errorf("credentials of vault A against vault B: %v, want ErrForeign", err)
	}
	// A vault that claims A's ID, with A's records copied in, but its own
	// owner keys: the credentials' owner keys, not the storage, decide.
	swapped := mem.New()
	cfg := b.root.Config
	cfg.ID = a.root.ID
	saveJSON(t, swapped, "config", cfg)
	rec, err := a.st.Load(ctx, credentialsPrefix+c.ID, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := swapped.Save(ctx, credentialsPrefix+c.ID, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, swapped, c, AccessRestore, t0); !errors.Is(err, ErrForeign) {
		t.Errorf("credentials of vault A against a vault claiming A's ID: %v, want ErrForeign", err)
	}
	if _, err := Verify(ctx, mem.New(), c, AccessRestore, t0); !errors.Is(err, repo.ErrNoVault) {
		t.Errorf("credentials against an empty storage: %v, want ErrNoVault", err)
	}
}

func saveJSON(t *testing.T, st storage.Storage, name string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(context.Background(), name, b); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyAccess(t *testing.T) {
	v := newTestVault(t)
	c := issue(t, v, AccessRestore)
	_, err := Verify(context.Background(), v.st, c, AccessBackup, t0)
	if !errors.Is(err, ErrAccess) {
		t.Fatalf("restore credentials for backup: %v, want ErrAccess", err)
	}
	if want := "restore credentials do not allow backup"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestVerifyForgedRecord(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	fake, other := v.impostor(t)

	// Credentials made up by someone who can write the vault: a record
	// signed with other keys, a file naming the real owner's keys.
	forged, err := Issue(ctx, fake, other, "/v", AccessBackup, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	forged.Owner = *v.root.Owner

	// Real restore credentials whose record was replaced with one that
	// allows backup.
	upgraded := issue(t, v, AccessRestore)
	if err := v.st.Delete(ctx, credentialsPrefix+upgraded.ID); err != nil {
		t.Fatal(err)
	}
	rec := credentialsRecord{Vault: v.root.ID, ID: upgraded.ID, Access: AccessBackup, Issued: upgraded.Issued, Expires: upgraded.Expires, SecretHash: secretHash(upgraded.Secret)}
	if err := signed.Save(ctx, v.st, credentialsPrefix+upgraded.ID, other, credentialsContext, rec); err != nil {
		t.Fatal(err)
	}
	upgraded.Access = AccessBackup

	// A record the owner signed, but for a PIN.
	pinSigned := issue(t, v, AccessRestore)
	if err := v.st.Delete(ctx, credentialsPrefix+pinSigned.ID); err != nil {
		t.Fatal(err)
	}
	rec = credentialsRecord{Vault: v.root.ID, ID: pinSigned.ID, Access: AccessRestore, Issued: pinSigned.Issued, Expires: pinSigned.Expires, SecretHash: secretHash(pinSigned.Secret)}
	if err := signed.Save(ctx, v.st, credentialsPrefix+pinSigned.ID, v.owner, pinContext, rec); err != nil {
		t.Fatal(err)
	}

	for _, c := range []*Credentials{forged, upgraded, pinSigned} {
		_, err := Verify(ctx, v.st, viaFile(t, c), AccessRestore, t0)
		if !errors.Is(err, keys.ErrSignature) || !errors.Is(err, repo.ErrDamaged) {
			t.Errorf("Verify credentials %s with a forged record: %v, want ErrDamaged and ErrSignature", c.ID, err)
		}
	}
}

func TestParseCredentialsMalformed(t *testing.T) {
	valid, err := fixedCredentials().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := string(valid)
	replace := func(old, new string) string {
		if !strings.Contains(file, old) {
			t.Fatalf("the valid file lacks %q", old)
		}
		return strings.Replace(file, old, new, 1)
	}
	secret := "<Secret>" + base64.StdEncoding.EncodeToString(fixedCredentials().Secret[:]) + "</Secret>"
	for _, tc := range []struct {
		name, file, want string
	}{
		{"empty", "", "no VaultCredentials element"},
		{"not xml", "{\"vault\": 1}", "text outside the elements"},
		{"truncated", file[:len(file)/2], "unexpected EOF"},
		{"too big", file + strings.Repeat(" ", 64<<10), "more than the 64 KiB"},
		{"missing element", replace(secret, ""), "element Secret is missing"},
		{"duplicate element", replace("<Access>restore</Access>", "<Access>restore</Access><Access>backup</Access>"), "element Access appears twice"},
		{"unknown element", replace("<Access>", "<Admin>yes</Admin><Access>"), "unknown element Admin"},
		{"no namespace", replace(` xmlns="urn:azfs:vault-credentials:1"`, ""), "not in namespace"},
		{"other namespace", replace("vault-credentials:1", "vault-credentials:2"), "not in namespace"},
		{"child in other namespace", replace("<Access>restore</Access>", `<Access xmlns="urn:x">restore</Access>`), "not in namespace"},
		{"other root", strings.ReplaceAll(file, "VaultCredentials", "VaultCreds"), "root element is VaultCreds"},
		{"root attribute", replace(`<VaultCredentials `, `<VaultCredentials version="2" `), "unexpected attribute version"},
		{"second root", file + `<VaultCredentials xmlns="urn:azfs:vault-credentials:1"/>`, "after the end"},
		{"nested element", replace("<VaultId>", "<VaultId><b/>"), "element VaultId holds more than text"},
		{"text between elements", replace("<Access>", "hello<Access>"), "text outside the elements"},
		{"doctype", replace("<VaultCredentials", "<!DOCTYPE x><VaultCredentials"), "unexpected directive"},
		{"processing instruction", replace("<VaultCredentials", "<?php echo 1 ?><VaultCredentials"), "processing instruction"},
		{"upper-case vault id", replace("0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789ABCDEF"), "VaultId: want 32 lower-case hex digits"},
		{"short credential id", replace("fedcba9876543210fedcba9876543210", "fedcba98"), "CredentialId: want 32"},
		{"unknown access", replace("<Access>restore", "<Access>admin"), `Access: want "backup" or "restore"`},
		{"empty location", replace("/srv/backup/vault", ""), "Location: want 1 to 4096 bytes"},
		{"control character in location", replace("/srv/backup/vault", "/srv/&#x1;vault"), "illegal character code U+0001"},
		{"tab in location", replace("/srv/backup/vault", "/srv/&#9;vault"), "Location: holds the character U+0009"},
		{"short secret", replace(secret, "<Secret>"+base64.StdEncoding.EncodeToString(make([]byte, 31))+"</Secret>"), "Secret: want 32 bytes in base64"},
		{"secret not base64", replace(secret, "<Secret>!!!!</Secret>"), "Secret: want 32 bytes in base64"},
		{"secret with a line break", replace(secret, "<Secret>AAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAA=</Secret>"), "Secret: want 32 bytes in base64"},
		{"secret with spaces", replace(secret, "<Secret> "+base64.StdEncoding.EncodeToString(make([]byte, 32))+" </Secret>"), "Secret: want 32 bytes in base64"},
		{"short signing key", replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 33))), "OwnerSigningKey: want 32 bytes"},
		{"escrow key missing", replace("<OwnerEscrowKey>", "<OwnerEscrowKeys>"), "unknown element OwnerEscrowKeys"},
		{"time with offset", replace("2026-11-24T12:00:00Z", "2026-11-24T13:00:00+01:00"), "Expires: want an RFC 3339 time in UTC"},
		{"time with fraction", replace("2026-11-22T12:00:00Z", "2026-11-22T12:00:00.5Z"), "Issued: want an RFC 3339 time in UTC"},
		{"not a time", replace("2026-11-22T12:00:00Z", "yesterday"), "Issued: want an RFC 3339 time"},
		{"expires before issued", replace("2026-11-24T12:00:00Z", "2026-11-21T12:00:00Z"), "Expires: not after Issued"},
		{"empty SAS", replace("<Access>", "<SharedAccessSignature></SharedAccessSignature><Access>"), "element SharedAccessSignature is empty"},
		{"two SAS", replace("<Access>", "<SharedAccessSignature>sig=a</SharedAccessSignature><SharedAccessSignature>sig=b</SharedAccessSignature><Access>"), "element SharedAccessSignature appears twice"},
		{"SAS with ?", replace("<Access>", "<SharedAccessSignature>?sv=1&amp;sig=a</SharedAccessSignature><Access>"), "SharedAccessSignature: want a SAS token"},
		{"SAS with space", replace("<Access>", "<SharedAccessSignature>sv=1&amp;sig=a b</SharedAccessSignature><Access>"), "SharedAccessSignature: want a SAS token"},
		{"SAS without signature", replace("<Access>", "<SharedAccessSignature>sv=1&amp;si=x</SharedAccessSignature><Access>"), "with a signature (sig)"},
		{"SAS bad escape", replace("<Access>", "<SharedAccessSignature>sig=%zz</SharedAccessSignature><Access>"), "with a signature (sig)"},
		{"SAS too long", replace("<Access>", "<SharedAccessSignature>sig="+strings.Repeat("a", 4096)+"</SharedAccessSignature><Access>"), "SharedAccessSignature: longer than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCredentials([]byte(tc.file))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseCredentials = %+v, %v; want ErrMalformed", c, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sig=") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

func TestParseCredentialsLenient(t *testing.T) {
	// What XML allows that Marshal does not write: no header, comments,
	// another order, a prefix for the namespace.
	c := fixedCredentials()
	var b strings.Builder
	b.WriteString("<!-- from the owner --><v:VaultCredentials xmlns:v=\"urn:azfs:vault-credentials:1\">\n")
	for _, e := range []struct{ name, text string }{
		{"OwnerEscrowKey", base64.StdEncoding.EncodeToString(c.Owner.Escrow)},
		{"OwnerSigningKey", base64.StdEncoding.EncodeToString(c.Owner.Sign)},
		{"Expires", "2026-11-24T12:00:00Z"},
		{"Issued", "2026-11-22T12:00:00Z"},
		{"Secret", base64.StdEncoding.EncodeToString(c.Secret[:])},
		{"CredentialId", c.ID},
		{"Access", string(c.Access)},
		{"Location", c.Location},
		{"VaultId", c.VaultID},
	} {
		fmt.Fprintf(&b, "  <v:%s>%s</v:%s>\n", e.name, e.text, e.name)
	}
	b.WriteString("</v:VaultCredentials>\n")
	got, err := ParseCredentials([]byte(b.String()))
	if err != nil {
		t.Fatalf("ParseCredentials: %v\n%s", err, b.String())
	}
	if !equalCredentials(got, c) {
		t.Errorf("parsed %+v, want %+v", got, c)
	}
}

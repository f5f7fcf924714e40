package access

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zeebo/blake3"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage"
)

// Credentials is a vault credentials file, like the .VaultCredentials file
// Azure Backup lets an owner download: XML naming the vault, where it is,
// what it allows, until when, the owner's public keys and a secret, and for
// a vault in an Azure Blob container a SAS token. Its Secret and SAS never
// print; the file itself must be kept private (the CLI writes it with mode
// 0600).
type Credentials struct {
	VaultID  string // the vault's ID, 32 hex digits
	Location string // where the vault is (a directory path for local vaults)
	// SAS is a SAS token for the vault's container that the storage
	// service enforces (allowing what Access allows, until Expires or
	// later); empty for other vaults. The CLI mints it; Issue leaves it
	// empty.
	SAS     keys.Token
	Access  Access
	ID      string      // credential ID, 32 hex digits
	Secret  keys.Secret // 32 random bytes; the vault stores only a hash of it
	Issued  time.Time   // to the second
	Expires time.Time   // to the second
	// Owner are the owner's public keys: a machine checks the vault against
	// these, not against what the storage says.
	Owner keys.OwnerPublic
}

// Names in the vault root and the file format.
const (
	credentialsPrefix  = "credentials/"
	credentialsNS      = "urn:azfs:vault-credentials:1"
	maxCredentialsFile = 64 << 10
	maxLocation        = 4096
	maxSAS             = 4096
)

// secretHashContext is the BLAKE3 derive-key context under which a
// credentials record stores the hash of the secret.
const secretHashContext = "azfs 2026 vault credentials secret v1"

// secretHash is what a credentials record keeps of the secret: BLAKE3 in
// derive-key mode (context secretHashContext) over its 32 bytes. The secret
// is uniformly random, so the hash needs no salt or stretching.
func secretHash(s keys.Secret) []byte {
	out := make([]byte, 32)
	blake3.DeriveKey(secretHashContext, s[:], out)
	return out
}

// credentialsRecord is the body of the owner-signed record
// credentials/<id> that makes a credentials file valid.
type credentialsRecord struct {
	Vault      string    `json:"vault"`
	ID         string    `json:"id"`
	Access     Access    `json:"access"`
	Issued     time.Time `json:"issued"`
	Expires    time.Time `json:"expires"`
	SecretHash []byte    `json:"secret_hash"`
}

// Issue creates credentials for the vault root st (whose config is root and
// whose owner's keys are owner) at location, allowing access, valid for
// valid from now, and stores their owner-signed record credentials/<id>.
// The record holds a hash of the secret, never the secret: BLAKE3 in
// derive-key mode with the context "azfs 2026 vault credentials secret v1".
// Times are kept to the second.
func Issue(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, location string, access Access, valid time.Duration, now time.Time) (*Credentials, error) {
	if err := root.CheckOwner(owner); err != nil {
		return nil, fmt.Errorf("issue vault credentials: %w", err)
	}
	if valid < time.Second {
		return nil, fmt.Errorf("issue vault credentials: validity %v is less than a second", valid)
	}
	c := &Credentials{
		VaultID:  root.ID,
		Location: location,
		Access:   access,
		Issued:   now.UTC().Truncate(time.Second),
		Owner:    keys.OwnerPublic{Sign: bytes.Clone(root.Owner.Sign), Escrow: bytes.Clone(root.Owner.Escrow)},
	}
	c.Expires = c.Issued.Add(valid).Truncate(time.Second)
	var err error
	if c.ID, err = newID(); err != nil {
		return nil, fmt.Errorf("issue vault credentials: %w", err)
	}
	if _, err := rand.Read(c.Secret[:]); err != nil {
		return nil, fmt.Errorf("issue vault credentials: read random: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("issue vault credentials: %w", err)
	}
	rec := credentialsRecord{Vault: c.VaultID, ID: c.ID, Access: c.Access, Issued: c.Issued, Expires: c.Expires, SecretHash: secretHash(c.Secret)}
	if err := signed.Save(ctx, root.Storage, credentialsPrefix+c.ID, owner, credentialsContext, rec); err != nil {
		return nil, fmt.Errorf("issue vault credentials: %w", err)
	}
	return c, nil
}

// Verify checks credentials c presented for an operation needing need, at
// time now, against the vault root st, and returns the root's config. It
// refuses, in this order: a malformed c (ErrMalformed); expired credentials
// (ErrExpired); a vault whose ID or owner keys are not the credentials'
// (ErrForeign: a swapped or foreign vault); credentials of which the vault
// has no record (ErrRevoked); a record the owner did not sign
// (repo.ErrDamaged and keys.ErrSignature); a record that expired (ErrExpired)
// or that disagrees with the file, or whose secret hash the file's secret
// does not match (ErrForeign: an altered file); and access that does not
// allow need (ErrAccess).
func Verify(ctx context.Context, st storage.Storage, c *Credentials, need Access, now time.Time) (repo.Config, error) {
	var none repo.Config
	if err := c.validate(); err != nil {
		return none, fmt.Errorf("verify vault credentials: %w", err)
	}
	if err := c.CheckExpiry(now); err != nil {
		return none, err
	}
	cfg, err := repo.ReadConfig(ctx, st)
	if err != nil {
		return none, fmt.Errorf("verify vault credentials: %w", err)
	}
	if cfg.ID != c.VaultID {
		return none, fmt.Errorf("%w: they are for vault %s, but this is vault %s", ErrForeign, c.VaultID, cfg.ID)
	}
	if cfg.Owner == nil || !cfg.Owner.Equal(c.Owner) {
		return none, fmt.Errorf("%w: vault %s does not have the owner keys the credentials name (a replaced or forged vault)", ErrForeign, cfg.ID)
	}
	var rec credentialsRecord
	err = signed.Load(ctx, st, credentialsPrefix+c.ID, c.Owner, credentialsContext, &rec)
	if errors.Is(err, storage.ErrNotFound) {
		return none, fmt.Errorf("%w: vault %s has no record of credentials %s: ask the vault's owner for new ones ('azfs vault credentials')", ErrRevoked, cfg.ID, c.ID)
	}
	if err != nil {
		return none, fmt.Errorf("verify vault credentials %s: %w", c.ID, err)
	}
	if !now.Before(rec.Expires) {
		return none, expired(rec.Expires)
	}
	if rec.Vault != c.VaultID || rec.ID != c.ID || rec.Access != c.Access || !rec.Issued.Equal(c.Issued) || !rec.Expires.Equal(c.Expires) {
		return none, fmt.Errorf("%w: the file's access, dates or IDs differ from the owner's record of credentials %s (an altered file)", ErrForeign, c.ID)
	}
	if subtle.ConstantTimeCompare(secretHash(c.Secret), rec.SecretHash) != 1 {
		return none, fmt.Errorf("%w: the file's secret does not match the owner's record of credentials %s (an altered file)", ErrForeign, c.ID)
	}
	if !c.Access.Allows(need) {
		return none, fmt.Errorf("%w: %s credentials do not allow %s: ask the vault's owner for %s credentials ('azfs vault credentials')", ErrAccess, c.Access, need, need)
	}
	return cfg, nil
}

// Revoke deletes the owner-signed records of the credentials of the vault
// root st (whose config is root and whose owner's keys are owner) that
// allow one of access, so that clients refuse those files from then on
// (ErrRevoked), and returns how many it deleted. Records the owner did not
// sign, and those of other access, are left alone. A registered machine
// never presents its credentials again: revoking them does not cut it off
// (on a blob vault, deleting the SAS tokens' policies does).
func Revoke(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, access ...Access) (int, error) {
	if err := root.CheckOwner(owner); err != nil {
		return 0, fmt.Errorf("revoke vault credentials: %w", err)
	}
	var ids []string
	err := root.Storage.List(ctx, credentialsPrefix, func(fi storage.Info) error {
		if id := strings.TrimPrefix(fi.Name, credentialsPrefix); isID(id) {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("revoke vault credentials: %w", err)
	}
	n := 0
	for _, id := range ids {
		var rec credentialsRecord
		err := signed.Load(ctx, root.Storage, credentialsPrefix+id, owner.Public(), credentialsContext, &rec)
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("revoke vault credentials: %w", err)
		}
		if rec.ID != id || rec.Vault != root.ID || !slices.Contains(access, rec.Access) {
			continue
		}
		if err := root.Storage.Delete(ctx, credentialsPrefix+id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, fmt.Errorf("revoke vault credentials %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

// CheckExpiry fails with ErrExpired, saying what to do, when the
// credentials expired at now: the first of Verify's checks, which a client
// can make before it asks the storage anything.
func (c *Credentials) CheckExpiry(now time.Time) error {
	if !now.Before(c.Expires) {
		return expired(c.Expires)
	}
	return nil
}

func expired(at time.Time) error {
	return fmt.Errorf("%w at %s: ask the vault's owner for new ones ('azfs vault credentials')", ErrExpired, at.UTC().Format("2006-01-02 15:04 UTC"))
}

// credentialsXML is the file's layout. Marshal writes the elements in this
// order; ParseCredentials accepts them in any order.
type credentialsXML struct {
	XMLName         xml.Name `xml:"urn:azfs:vault-credentials:1 VaultCredentials"`
	VaultID         string   `xml:"VaultId"`
	Location        string
	SAS             string `xml:"SharedAccessSignature,omitempty"`
	Access          string
	CredentialID    string `xml:"CredentialId"`
	Secret          string
	Issued          string
	Expires         string
	OwnerSigningKey string
	OwnerEscrowKey  string
}

// element is one of the file's elements and where its text goes.
type element struct {
	name     string
	text     *string
	optional bool // may be left out, but not empty
}

// elements returns the file's elements in order.
func (x *credentialsXML) elements() []element {
	return []element{
		{"VaultId", &x.VaultID, false},
		{"Location", &x.Location, false},
		{"SharedAccessSignature", &x.SAS, true},
		{"Access", &x.Access, false},
		{"CredentialId", &x.CredentialID, false},
		{"Secret", &x.Secret, false},
		{"Issued", &x.Issued, false},
		{"Expires", &x.Expires, false},
		{"OwnerSigningKey", &x.OwnerSigningKey, false},
		{"OwnerEscrowKey", &x.OwnerEscrowKey, false},
	}
}

// Marshal encodes the credentials as a vault credentials file: XML with a
// header and the root element <VaultCredentials
// xmlns="urn:azfs:vault-credentials:1">, holding VaultId, Location,
// SharedAccessSignature (only when there is a SAS token), Access,
// CredentialId, Secret (base64), Issued and Expires (RFC 3339, UTC),
// OwnerSigningKey and OwnerEscrowKey (base64). It refuses credentials that
// ParseCredentials would refuse.
func (c *Credentials) Marshal() ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("marshal vault credentials: %w", err)
	}
	b, err := xml.MarshalIndent(credentialsXML{
		VaultID:         c.VaultID,
		Location:        c.Location,
		SAS:             string(c.SAS),
		Access:          string(c.Access),
		CredentialID:    c.ID,
		Secret:          base64.StdEncoding.EncodeToString(c.Secret[:]),
		Issued:          formatTime(c.Issued),
		Expires:         formatTime(c.Expires),
		OwnerSigningKey: base64.StdEncoding.EncodeToString(c.Owner.Sign),
		OwnerEscrowKey:  base64.StdEncoding.EncodeToString(c.Owner.Escrow),
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal vault credentials: %w", err)
	}
	return append(append([]byte(xml.Header), b...), '\n'), nil
}

// ParseCredentials decodes a vault credentials file strictly: at most
// 64 KiB, the root element in its namespace, every element exactly once
// (SharedAccessSignature at most once) and nothing else, and every value
// well-formed and in the form Marshal writes it. Errors wrap ErrMalformed
// and say what is wrong.
func ParseCredentials(b []byte) (*Credentials, error) {
	if len(b) > maxCredentialsFile {
		return nil, malformed("%d bytes, more than the %d KiB a credentials file can be", len(b), maxCredentialsFile>>10)
	}
	// Windows Notepad saves UTF-8 with a byte order mark, which XML
	// allows but encoding/xml refuses.
	x, err := decodeCredentialsXML(bytes.TrimPrefix(b, utf8BOM))
	if err != nil {
		return nil, err
	}
	c := &Credentials{VaultID: x.VaultID, Location: x.Location, SAS: keys.Token(x.SAS), Access: Access(x.Access), ID: x.CredentialID}
	secret, err := decodeBase64("Secret", x.Secret, len(c.Secret))
	if err != nil {
		return nil, err
	}
	copy(c.Secret[:], secret)
	if c.Owner.Sign, err = decodeBase64("OwnerSigningKey", x.OwnerSigningKey, 32); err != nil {
		return nil, err
	}
	if c.Owner.Escrow, err = decodeBase64("OwnerEscrowKey", x.OwnerEscrowKey, 32); err != nil {
		return nil, err
	}
	if c.Issued, err = parseTime("Issued", x.Issued); err != nil {
		return nil, err
	}
	if c.Expires, err = parseTime("Expires", x.Expires); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeCredentialsXML reads the file's elements: an optional XML
// declaration, comments and white space around one root element, whose
// children are the known elements, each once, holding text only.
// utf8BOM is the UTF-8 encoding of U+FEFF, the byte order mark.
var utf8BOM = []byte("\xef\xbb\xbf")

func decodeCredentialsXML(b []byte) (*credentialsXML, error) {
	var x credentialsXML
	elements := x.elements()
	seen := make(map[string]bool, len(elements))
	d := xml.NewDecoder(bytes.NewReader(b))
	inRoot, closed := false, false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, malformed("unexpected processing instruction %q", t.Target)
			}
		case xml.Directive:
			return nil, malformed("unexpected directive")
		case xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, malformed("text outside the elements")
			}
		case xml.EndElement:
			closed = true // the decoder checks that it ends the root
		case xml.StartElement:
			if t.Name.Space != credentialsNS {
				return nil, malformed("element %s is not in namespace %s", t.Name.Local, credentialsNS)
			}
			if closed {
				return nil, malformed("element %s after the end of VaultCredentials", t.Name.Local)
			}
			if !inRoot {
				if t.Name.Local != "VaultCredentials" {
					return nil, malformed("root element is %s, want VaultCredentials", t.Name.Local)
				}
				for _, a := range t.Attr {
					if a.Name.Space != "xmlns" && (a.Name.Space != "" || a.Name.Local != "xmlns") {
						return nil, malformed("VaultCredentials has an unexpected attribute %s", a.Name.Local)
					}
				}
				inRoot = true
				continue
			}
			var p *string
			optional := false
			for _, e := range elements {
				if e.name == t.Name.Local {
					p, optional = e.text, e.optional
				}
			}
			switch {
			case p == nil:
				return nil, malformed("unknown element %s", t.Name.Local)
			case seen[t.Name.Local]:
				return nil, malformed("element %s appears twice", t.Name.Local)
			case len(t.Attr) != 0:
				return nil, malformed("element %s has attributes", t.Name.Local)
			}
			seen[t.Name.Local] = true
			if *p, err = elementText(d, t.Name.Local); err != nil {
				return nil, err
			}
			if optional && *p == "" {
				return nil, malformed("element %s is empty: leave it out instead", t.Name.Local)
			}
		}
	}
	if !inRoot {
		return nil, malformed("no VaultCredentials element")
	}
	for _, e := range elements {
		if !seen[e.name] && !e.optional {
			return nil, malformed("element %s is missing", e.name)
		}
	}
	return &x, nil
}

// elementText reads the text of the element name up to its end.
func elementText(d *xml.Decoder, name string) (string, error) {
	var text []byte
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			text = append(text, t...)
		case xml.EndElement:
			return string(text), nil
		default:
			return "", malformed("element %s holds more than text", name)
		}
	}
}

// validate checks what Marshal and Verify need and ParseCredentials
// guarantees.
func (c *Credentials) validate() error {
	switch {
	case !isID(c.VaultID):
		return malformed("VaultId: want %d lower-case hex digits", idLen)
	case !c.Access.known():
		return malformed("Access: want %q or %q", AccessBackup, AccessRestore)
	case !isID(c.ID):
		return malformed("CredentialId: want %d lower-case hex digits", idLen)
	case len(c.Owner.Sign) != 32:
		return malformed("OwnerSigningKey: want 32 bytes")
	case len(c.Owner.Escrow) != 32:
		return malformed("OwnerEscrowKey: want 32 bytes")
	case c.Issued.UTC().Year() < 0 || c.Expires.UTC().Year() > 9999:
		return malformed("Issued or Expires: outside the years 0 to 9999")
	case !c.Expires.After(c.Issued):
		return malformed("Expires: not after Issued")
	}
	if err := checkSAS(string(c.SAS)); err != nil {
		return err
	}
	return checkLocation(c.Location)
}

// checkSAS accepts no token, or a SAS token as a URL query string without
// the "?": up to maxSAS bytes of letters, digits and "%&=-._~+", with a
// signature (sig). Errors do not show the token.
func checkSAS(token string) error {
	if token == "" {
		return nil
	}
	if len(token) > maxSAS {
		return malformed("SharedAccessSignature: longer than %d bytes", maxSAS)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; !isAlnum(c) && !strings.ContainsRune("%&=-._~+", rune(c)) {
			return malformed("SharedAccessSignature: want a SAS token, the query string of a SAS URL without \"?\"")
		}
	}
	q, err := url.ParseQuery(token)
	if err != nil || q.Get("sig") == "" {
		return malformed("SharedAccessSignature: want a SAS token with a signature (sig)")
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// checkLocation accepts what an XML file can carry unchanged: up to
// maxLocation bytes of UTF-8 without control characters.
func checkLocation(loc string) error {
	if loc == "" || len(loc) > maxLocation || !utf8.ValidString(loc) {
		return malformed("Location: want 1 to %d bytes of UTF-8", maxLocation)
	}
	for _, r := range loc {
		if unicode.IsControl(r) || r == 0xFFFE || r == 0xFFFF {
			return malformed("Location: holds the character %U", r)
		}
	}
	return nil
}

// decodeBase64 decodes the standard base64 of exactly n bytes, written as
// Marshal writes it (no line breaks, padding).
func decodeBase64(name, s string, n int) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != n || base64.StdEncoding.EncodeToString(b) != s {
		return nil, malformed("%s: want %d bytes in base64", name, n)
	}
	return b, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// parseTime parses an RFC 3339 time written as Marshal writes it: UTC, to
// the second.
func parseTime(name, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || formatTime(t) != s {
		return time.Time{}, malformed("%s: want an RFC 3339 time in UTC to the second, such as 2026-11-24T12:00:00Z", name)
	}
	return t.UTC(), nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Package certs is the vault root's list of certificates (certificate
// mode, format.md §4.10): certificates/<seq>, each an owner-signed record
// (package repo/signed) of the certificate and its sequence number, so that a storage can neither make
// machines encrypt to a certificate of its choosing nor replay an older one
// as the newest. The newest is current. What it returns is verified: signed
// by the owner keys the caller trusts, and a certificate whose ID is the
// SHA-256 of its DER.
package certs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage"
)

// Prefix names the certificate objects in the vault root.
const Prefix = "certificates/"

// signContext is the owner-signature context of certificate objects.
const signContext = "certificate"

// ErrNoCertificate reports a vault that is not in certificate mode.
var ErrNoCertificate = errkind.New(errkind.NotFound, "the vault has no certificate")

// Certificate is one verified certificate of a vault and its place in the
// list.
type Certificate struct {
	Seq int
	*cert.Certificate
}

// body is what a certificate object says, signed by the owner: its
// place, its ID and its PEM. It is stored as a signed record (package
// repo/signed) whose body is this, in JSON.
type body struct {
	Seq int    `json:"seq"`
	ID  string `json:"id"`
	PEM []byte `json:"pem"`
}

// legacyObject is a certificate object as azfs wrote it before
// certificates were signed records (format.md §4.10, "Migration"): the
// owner's signature is over legacyMessage. It is still read, never
// written.
type legacyObject struct {
	ID  string `json:"id"`
	PEM []byte `json:"pem"`
	Sig []byte `json:"sig"`
}

func legacyMessage(seq int, id string, pem []byte) []byte {
	return append(fmt.Appendf(nil, "%06d\x00%s\x00", seq, id), pem...)
}

// stored is a certificate object that decodes, at its place seq, not yet
// verified: a signed record, or (legacy set) the form before it.
type stored struct {
	seq    int
	id     string // the ID it claims
	rec    signed.Record
	legacy *legacyObject
}

// parse decodes the certificate object b at place seq, in either form. It
// does not check the signature.
func parse(b []byte, seq int) (stored, bool) {
	s := stored{seq: seq}
	if rec, err := signed.Decode(b); err == nil && rec.Body != nil {
		var claimed body
		if json.Unmarshal(rec.Body, &claimed) != nil {
			return s, false
		}
		s.id, s.rec = claimed.ID, rec
	} else {
		var old legacyObject
		if json.Unmarshal(b, &old) != nil {
			return s, false
		}
		s.id, s.legacy = old.ID, &old
	}
	return s, len(s.id) == 64
}

// objects returns the certificate objects of the vault root st that
// decode, oldest first. Others are skipped: the certificate before such an
// object stays current.
func objects(ctx context.Context, st storage.Storage) ([]stored, error) {
	var names []string
	err := st.List(ctx, Prefix, func(fi storage.Info) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", Prefix, err)
	}
	var out []stored
	for _, n := range names {
		var seq int
		if base := path.Base(n); len(base) != 6 {
			continue // not a certificate object
		} else if _, err := fmt.Sscanf(base, "%06d", &seq); err != nil {
			continue
		}
		b, err := st.Load(ctx, n, 0, signed.MaxRecord)
		if err != nil {
			return nil, fmt.Errorf("read certificate %d: %w", seq, err)
		}
		if s, ok := parse(b, seq); ok {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, nil
}

// decode checks that b is a certificate object that owner signed for place
// seq, and returns its certificate. Anything else wraps repo.ErrDamaged.
func decode(b []byte, seq int, owner keys.OwnerPublic) (*cert.Certificate, error) {
	s, ok := parse(b, seq)
	if !ok {
		return nil, fmt.Errorf("certificate %d: %w: not a certificate object", seq, repo.ErrDamaged)
	}
	return s.verify(owner)
}

// verify checks that owner signed s for its place and that its PEM is the
// certificate its ID names, and returns that certificate. Anything else
// wraps repo.ErrDamaged.
func (s stored) verify(owner keys.OwnerPublic) (*cert.Certificate, error) {
	var b body
	if s.legacy != nil {
		b = body{Seq: s.seq, ID: s.legacy.ID, PEM: s.legacy.PEM}
		if err := owner.Verify(signContext, legacyMessage(s.seq, b.ID, b.PEM), s.legacy.Sig); err != nil {
			return nil, fmt.Errorf("certificate %d (%s): %w: %w", s.seq, shortID(s.id), repo.ErrDamaged, err)
		}
	} else if err := s.rec.Open(owner, signContext, &b); err != nil {
		return nil, fmt.Errorf("certificate %d (%s): %w", s.seq, shortID(s.id), err)
	}
	if b.Seq != s.seq {
		return nil, fmt.Errorf("certificate %d (%s): %w: signed for place %d", s.seq, shortID(s.id), repo.ErrDamaged, b.Seq)
	}
	c, err := cert.ParseCertificate(b.PEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %d: %w: %w", s.seq, repo.ErrDamaged, err)
	}
	if c.ID() != b.ID {
		return nil, fmt.Errorf("certificate %d (%s): %w: content does not match its name", s.seq, shortID(s.id), repo.ErrDamaged)
	}
	return c, nil
}

func shortID(id string) string { return id[:min(16, len(id))] }

// List returns the vault root's certificates that owner signed, oldest
// first. Objects that do not verify are left out: only the owner's
// signature makes a certificate count.
func List(ctx context.Context, st storage.Storage, owner keys.OwnerPublic) ([]Certificate, error) {
	objs, err := objects(ctx, st)
	if err != nil {
		return nil, err
	}
	var out []Certificate
	for _, s := range objs {
		if c, err := s.verify(owner); err == nil {
			out = append(out, Certificate{Seq: s.seq, Certificate: c})
		}
	}
	return out, nil
}

// Current returns the vault's newest certificate (of the objects that
// decode), verified against owner (the owner keys the caller trusts), so
// that a storage cannot make machines encrypt to a certificate of its
// choosing. A newest certificate that does not verify is an error wrapping
// repo.ErrDamaged, never a fall back to an older one; a vault without any
// gives ErrNoCertificate.
func Current(ctx context.Context, st storage.Storage, owner keys.OwnerPublic) (*cert.Certificate, error) {
	objs, err := objects(ctx, st)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, ErrNoCertificate
	}
	c, err := objs[len(objs)-1].verify(owner)
	if err != nil {
		return nil, fmt.Errorf("the vault's certificate: %w", err)
	}
	return c, nil
}

// Add makes c the vault's current certificate, signed by owner. There is
// no way back to passphrase-only backups.
func Add(ctx context.Context, st storage.Storage, owner *keys.OwnerKeys, c *cert.Certificate) error {
	objs, err := objects(ctx, st)
	if err != nil {
		return err
	}
	id, pem := c.ID(), c.PEM()
	seq := 1
	if len(objs) > 0 {
		last := objs[len(objs)-1]
		if last.id == id {
			return fmt.Errorf("certificate %s is already the current one", shortID(id))
		}
		seq = last.seq + 1
	}
	b, err := signed.Encode(owner, signContext, body{Seq: seq, ID: id, PEM: pem})
	if err != nil {
		return fmt.Errorf("add certificate: %w", err)
	}
	// The sequence number alone names the object: a never-overwrite save
	// gives concurrent rotations distinct numbers, or fails one of them.
	if err := st.Save(ctx, fmt.Sprintf("%s%06d", Prefix, seq), b); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("add certificate: another rotation happened at the same time; run it again")
		}
		return fmt.Errorf("add certificate: %w", err)
	}
	return nil
}

package azblob

// SAS tokens that the owner hands to machines (vault credentials).
//
// A token minted by GrantSAS carries nothing but the identifier of a
// stored access policy of the container (si), the resource (sr=c), the
// service version (sv), on https endpoints spr=https, and the signature.
// The policy holds the permissions and the expiry. Azure takes each of
// these fields from the policy or from the token and refuses a SAS that
// has one in both; azfs puts them in the policy because that is also what
// Azurite enforces: Azurite 3.35.0 reads start, expiry and permissions of a
// SAS that names a policy from the policy only, so that an expiry in such a
// token would never be checked there (TestAzuriteTakesPolicyFields).
//
// Policies are named azfs-<scope>-<access>-<generation>: scope is what the
// tokens are for (the vault's ID, as a container may hold several vaults
// below prefixes), access "create" or "read", and the generation 16 random
// hex digits. A policy lives until its expiry or until RevokeSAS deletes it,
// which the service applies to every token naming it (Azure documents that
// a change to a policy takes up to 30 seconds to apply; Azurite applies it
// at once). Identifiers are random rather than counted because a deleted
// policy leaves no trace in the container: a counter would start again
// after a revocation and revive the revoked tokens, a random generation is
// never reused.
//
// Each scope has at most one live policy per access: tokens minted while it
// lives share it and its expiry, which is the latest expiry asked for (a
// token asked for a shorter time is accepted by the service until the
// policy expires; the vault's client-side checks still end it on time). An
// expired policy is deleted at the next GrantSAS of its scope and access.
// A container holds at most five policies (MaxPolicies); azfs needs two per
// vault and leaves the others, and the container's public access level, as
// it finds them.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/repo/storage"
)

// Access is what a SAS token minted by [Store.GrantSAS] allows.
type Access int

const (
	// ReadOnly tokens read and list blobs (SAS permissions "rl"): restores.
	ReadOnly Access = iota + 1
	// CreateOnly tokens also create blobs that do not exist yet and append
	// to append blobs ("racl"): backups. They neither overwrite nor delete,
	// so a machine holding one cannot destroy what is stored.
	CreateOnly
)

// permissions returns the SAS permissions of a.
func (a Access) permissions() string {
	switch a {
	case ReadOnly:
		return (&sas.ContainerPermissions{Read: true, List: true}).String()
	case CreateOnly:
		return (&sas.ContainerPermissions{Read: true, Add: true, Create: true, List: true}).String()
	}
	return ""
}

// String returns the name of a in policy identifiers: "read" or "create".
func (a Access) String() string {
	switch a {
	case ReadOnly:
		return "read"
	case CreateOnly:
		return "create"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// MaxPolicies is how many stored access policies Azure allows a container.
// Azurite 3.35.0 does not enforce it; GrantSAS never goes beyond it.
const MaxPolicies = 5

// Errors of GrantSAS.
var (
	ErrNoAccountKey    = errkind.New(errkind.Permission, "minting a SAS token needs the storage account key: authenticate with a connection string that holds AccountKey")
	ErrTooManyPolicies = fmt.Errorf("the container already has %d stored access policies, the most Azure allows: remove one that azfs does not own, or revoke credentials", MaxPolicies)
)

// Grant is a minted SAS token.
type Grant struct {
	Token   string    // the SAS token: a query string without "?"
	Policy  string    // the identifier of the stored access policy it names
	Expires time.Time // when the service stops accepting it: the policy's expiry
}

// policyPrefix returns the identifier prefix of scope's policies for a.
func policyPrefix(scope string, a Access) (string, error) {
	if a.permissions() == "" {
		return "", fmt.Errorf("unknown access %d", int(a))
	}
	if len(scope) < 1 || len(scope) > 32 {
		return "", fmt.Errorf("invalid SAS scope %q: 1 to 32 lowercase letters and digits", scope)
	}
	for _, c := range []byte(scope) {
		if !isLowerAlnum(c) {
			return "", fmt.Errorf("invalid SAS scope %q: 1 to 32 lowercase letters and digits", scope)
		}
	}
	return "azfs-" + scope + "-" + a.String() + "-", nil
}

// CanGrantSAS fails with ErrNoAccountKey when the store cannot mint SAS
// tokens: it was not opened with the account key.
func (s *Store) CanGrantSAS() error {
	if s.key == nil {
		return ErrNoAccountKey
	}
	return nil
}

// GrantSAS returns a SAS token for the container that allows a until
// expiry or later, hanging off scope's live policy for a (made, or extended
// to expiry, when needed; see the notes at the top of sas.go). scope is
// what the tokens are for, such as a vault's ID: 1 to 32 lowercase letters
// and digits. It needs the account key ([ErrNoAccountKey]).
func (s *Store) GrantSAS(ctx context.Context, scope string, a Access, expiry time.Time) (Grant, error) {
	fail := func(err error) (Grant, error) {
		return Grant{}, &storage.Error{Op: "grant SAS", Name: s.loc.String(), Err: err}
	}
	if err := s.CanGrantSAS(); err != nil {
		return fail(err)
	}
	prefix, err := policyPrefix(scope, a)
	if err != nil {
		return fail(err)
	}
	// Policies keep whole seconds; round up, never grant less.
	if t := expiry.UTC().Truncate(time.Second); t.Before(expiry) {
		expiry = t.Add(time.Second)
	} else {
		expiry = t
	}
	perm := a.permissions()
	var live *container.SignedIdentifier
	err = s.editACL(ctx, func(acl []*container.SignedIdentifier, now time.Time) ([]*container.SignedIdentifier, bool, error) {
		if !expiry.After(now) {
			return nil, false, fmt.Errorf("expiry %s is not in the future", expiry.Format(time.RFC3339))
		}
		var kept []*container.SignedIdentifier
		live = nil
		changed := false
		for _, si := range acl {
			if !ownedBy(si, prefix) {
				kept = append(kept, si)
				continue
			}
			if !policyExpiry(si).After(now) {
				changed = true // expired: it allows nothing any more
				continue
			}
			kept = append(kept, si)
			if live == nil || policyExpiry(si).After(policyExpiry(live)) {
				live = si
			}
		}
		if live == nil {
			if len(kept) >= MaxPolicies {
				return nil, false, ErrTooManyPolicies
			}
			var gen [8]byte
			if _, err := rand.Read(gen[:]); err != nil {
				return nil, false, err
			}
			live = &container.SignedIdentifier{ID: to.Ptr(prefix + hex.EncodeToString(gen[:])), AccessPolicy: &container.AccessPolicy{}}
			kept = append(kept, live)
			changed = true
		}
		p := live.AccessPolicy
		if p.Expiry == nil || p.Expiry.Before(expiry) {
			p.Expiry = to.Ptr(expiry)
			changed = true
		}
		if p.Permission == nil || *p.Permission != perm || p.Start != nil {
			p.Permission, p.Start = to.Ptr(perm), nil
			changed = true
		}
		return kept, changed, nil
	})
	if err != nil {
		return fail(err)
	}
	token, err := s.token(*live.ID)
	if err != nil {
		return fail(err)
	}
	return Grant{Token: token, Policy: *live.ID, Expires: policyExpiry(live)}, nil
}

// token signs a container SAS that names the stored access policy id and
// carries no permissions or times of its own; over https only when the
// endpoint is https.
func (s *Store) token(id string) (string, error) {
	v := sas.BlobSignatureValues{ContainerName: s.loc.Container, Identifier: id}
	if strings.HasPrefix(s.loc.Endpoint, "https://") {
		v.Protocol = sas.ProtocolHTTPS
	}
	qp, err := v.SignWithSharedKey(s.key)
	if err != nil {
		return "", err
	}
	return qp.Encode(), nil
}

// RevokeSAS deletes scope's stored access policies for each of access,
// live or expired, and returns how many it deleted: from then on the
// service refuses every token that names one of them. Other policies are
// kept as they are.
func (s *Store) RevokeSAS(ctx context.Context, scope string, access ...Access) (int, error) {
	var prefixes []string
	for _, a := range access {
		p, err := policyPrefix(scope, a)
		if err != nil {
			return 0, &storage.Error{Op: "revoke SAS", Name: s.loc.String(), Err: err}
		}
		prefixes = append(prefixes, p)
	}
	var n int
	err := s.editACL(ctx, func(acl []*container.SignedIdentifier, _ time.Time) ([]*container.SignedIdentifier, bool, error) {
		var kept []*container.SignedIdentifier
		n = 0
	next:
		for _, si := range acl {
			for _, p := range prefixes {
				if ownedBy(si, p) {
					n++
					continue next
				}
			}
			kept = append(kept, si)
		}
		return kept, n > 0, nil
	})
	if err != nil {
		return 0, &storage.Error{Op: "revoke SAS", Name: s.loc.String(), Err: err}
	}
	return n, nil
}

func ownedBy(si *container.SignedIdentifier, prefix string) bool {
	return si != nil && si.ID != nil && strings.HasPrefix(*si.ID, prefix)
}

// policyExpiry returns the expiry of a policy; the zero time when it has
// none (an azfs policy without one counts as expired).
func policyExpiry(si *container.SignedIdentifier) time.Time {
	if si.AccessPolicy == nil || si.AccessPolicy.Expiry == nil {
		return time.Time{}
	}
	return *si.AccessPolicy.Expiry
}

// aclAttempts bounds how often editACL starts again after another client
// changed the policies between its read and its write.
const aclAttempts = 4

// editACL replaces the container's stored access policies by what edit
// makes of them, given the time; edit reports whether it changed
// anything. The write is conditional on the container being unchanged
// since the read (If-Unmodified-Since, to the second: the finest the
// service offers for a container ACL), so that two owners editing at once
// do not drop each other's policies unless they do it within one second.
// The container's public access level is kept.
func (s *Store) editACL(ctx context.Context, edit func(acl []*container.SignedIdentifier, now time.Time) ([]*container.SignedIdentifier, bool, error)) error {
	for range aclAttempts {
		resp, err := s.c.GetAccessPolicy(ctx, nil)
		if err != nil {
			return mapErr(err)
		}
		// The service's clock decides expiry, but Azurite's Date can lag by
		// seconds: the later of the two clocks treats a policy as expired
		// rather than extend one that may be (and revive its tokens).
		now := time.Now()
		if resp.Date != nil && resp.Date.After(now) {
			now = *resp.Date
		}
		acl, changed, err := edit(resp.SignedIdentifiers, now)
		if err != nil || !changed {
			return err
		}
		opts := &container.SetAccessPolicyOptions{Access: resp.BlobPublicAccess, ContainerACL: acl}
		if resp.LastModified != nil {
			opts.AccessConditions = &container.AccessConditions{ModifiedAccessConditions: &container.ModifiedAccessConditions{IfUnmodifiedSince: resp.LastModified}}
		}
		_, err = s.c.SetAccessPolicy(ctx, opts)
		if bloberror.HasCode(err, bloberror.ConditionNotMet) {
			continue
		}
		if err != nil {
			return mapErr(err)
		}
		return nil
	}
	return errors.New("the container's stored access policies kept changing while azfs edited them: try again")
}

package azblob

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/azfs/azfs/repo/storage"
)

// The scopes of the tests' policies, as vault IDs would be.
const (
	scopeA = "0123456789abcdef0123456789abcdef"
	scopeB = "fedcba9876543210fedcba9876543210"
)

// sasClient returns a raw SDK client of loc's container authenticated by
// token, to make requests that Store never makes.
func sasClient(t *testing.T, loc Location, token string) *container.Client {
	t.Helper()
	c, err := container.NewClientWithNoCredential(loc.Endpoint+loc.Container+"?"+token, &container.ClientOptions{
		ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refused checks that err is the service's 403 with one of codes.
func refused(t *testing.T, what string, err error, codes ...bloberror.Code) {
	t.Helper()
	if !bloberror.HasCode(err, codes...) {
		t.Errorf("%s: %v, want the service to refuse it with %v", what, err, codes)
	}
}

// grant mints a token with the owner's store, failing the test on error.
func grant(t *testing.T, owner *Store, scope string, a Access, expiry time.Time) Grant {
	t.Helper()
	g, err := owner.GrantSAS(context.Background(), scope, a, expiry)
	if err != nil {
		t.Fatalf("GrantSAS(%s, %s): %v", scope, a, err)
	}
	return g
}

// TestGrantSASToken: a minted token names its policy and carries no
// permissions or times of its own (Azure refuses a SAS that has a field
// both in the token and in the policy).
func TestGrantSASToken(t *testing.T) {
	loc, _ := newContainer(t, "vault")
	owner := openStore(t, loc, Auth{ConnectionString: connString(t)})
	g := grant(t, owner, scopeA, CreateOnly, time.Now().Add(time.Hour))
	q, err := url.ParseQuery(g.Token)
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("si") != g.Policy || !strings.HasPrefix(g.Policy, "azfs-"+scopeA+"-create-") || len(g.Policy) > 64 {
		t.Errorf("token names policy %q, grant says %q: want azfs-%s-create-<generation>, at most 64 characters", q.Get("si"), g.Policy, scopeA)
	}
	for _, field := range []string{"sp", "se", "st", "spr"} {
		if q.Has(field) {
			t.Errorf("the token of an http endpoint carries %s=%q", field, q.Get(field))
		}
	}
	if q.Get("sr") != "c" || q.Get("sig") == "" {
		t.Errorf("token %q is not a signed container SAS", g.Token)
	}
	if until := time.Until(g.Expires); until < 59*time.Minute || until > 61*time.Minute {
		t.Errorf("grant expires in %v, want an hour", until)
	}
}

// TestGrantSASHTTPSOnly: a token for an https endpoint is refused over
// http (spr=https).
func TestGrantSASHTTPSOnly(t *testing.T) {
	loc := Location{Endpoint: "https://" + devAccount + ".blob.core.windows.net/", Container: "vault"}
	s, err := newStore(loc, Auth{ConnectionString: "DefaultEndpointsProtocol=https;AccountName=" + devAccount + ";AccountKey=" + devKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.token("azfs-" + scopeA + "-read-0011223344556677")
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := url.ParseQuery(token); q.Get("spr") != "https" {
		t.Errorf("token %q: spr = %q, want https", token, q.Get("spr"))
	}
}

// TestCreateOnlySAS: on Azurite, a CreateOnly token reads, lists and
// creates, and the service refuses it every change to an existing blob:
// overwriting (Put Blob, with or without If-None-Match, and Put Block
// List), metadata, deleting blobs and the container, and the container's
// policies. Store.Save reports the existing blob as ErrExists.
func TestCreateOnlySAS(t *testing.T) {
	ctx := context.Background()
	loc, _ := newContainer(t, "vault")
	owner := openStore(t, loc, Auth{ConnectionString: connString(t)})
	if err := owner.Save(ctx, "config", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	g := grant(t, owner, scopeA, CreateOnly, time.Now().Add(time.Hour))
	s := openStore(t, loc, Auth{SAS: g.Token})

	if err := s.Save(ctx, "data/ab/new", []byte("new")); err != nil {
		t.Errorf("Save of a new object: %v", err)
	}
	if got, err := s.Load(ctx, "config", 0, -1); err != nil || string(got) != "hello" {
		t.Errorf("Load = %q, %v", got, err)
	}
	var names []string
	if err := s.List(ctx, "", func(fi storage.Info) error { names = append(names, fi.Name); return nil }); err != nil {
		t.Errorf("List: %v", err)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"config", "data/ab/new"}) {
		t.Errorf("List = %q", names)
	}
	err := s.Save(ctx, "config", []byte("evil"))
	checkErr(t, err, "save", "config", storage.ErrExists)
	if errors.Is(err, storage.ErrPermission) {
		t.Errorf("Save of an existing object: %v also wraps ErrPermission", err)
	}
	err = s.Delete(ctx, "config")
	checkErr(t, err, "delete", "config", storage.ErrPermission)
	refused(t, "Delete", err, bloberror.AuthorizationPermissionMismatch)
	if err := s.Save(ctx, "pins/x-used", nil); err != nil {
		t.Errorf("Save of an empty marker: %v", err)
	}

	raw := sasClient(t, loc, g.Token)
	blob := "vault/config"
	_, err = raw.NewBlockBlobClient(blob).UploadBuffer(ctx, []byte("evil"), nil)
	refused(t, "Put Blob over an existing blob", err, bloberror.AuthorizationPermissionMismatch)
	id := base64.StdEncoding.EncodeToString([]byte("block-0001"))
	_, err = raw.NewBlockBlobClient(blob).StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader([]byte("evil"))), nil)
	refused(t, "Put Block", err, bloberror.AuthorizationPermissionMismatch)
	_, err = raw.NewBlockBlobClient(blob).CommitBlockList(ctx, []string{id}, nil)
	refused(t, "Put Block List over an existing blob", err, bloberror.AuthorizationPermissionMismatch)
	_, err = raw.NewBlobClient(blob).SetMetadata(ctx, map[string]*string{"x": to.Ptr("y")}, nil)
	refused(t, "Set Blob Metadata", err, bloberror.AuthorizationPermissionMismatch)
	_, err = raw.NewBlobClient(blob).Delete(ctx, nil)
	refused(t, "Delete Blob", err, bloberror.AuthorizationPermissionMismatch)
	_, err = raw.SetAccessPolicy(ctx, nil)
	refused(t, "Set Container ACL", err, bloberror.AuthorizationPermissionMismatch)
	_, err = raw.Delete(ctx, nil)
	refused(t, "Delete Container", err, bloberror.AuthorizationPermissionMismatch)
	if _, err := s.GrantSAS(ctx, scopeA, CreateOnly, time.Now().Add(time.Hour)); !errors.Is(err, ErrNoAccountKey) {
		t.Errorf("GrantSAS with a SAS: %v, want ErrNoAccountKey", err)
	}

	if got, err := owner.Load(ctx, "config", 0, -1); err != nil || string(got) != "hello" {
		t.Errorf("after the token's attempts, config = %q, %v; want \"hello\"", got, err)
	}
}

// TestAzuritePermissionLetters: what CreateOnly leaves out is what Azurite
// needs for the changes it refuses: write (w) to overwrite a blob, delete
// (d) to delete one. With only create (c), a new blob may be saved (with
// If-None-Match: *, as Save does) and an existing one not.
func TestAzuritePermissionLetters(t *testing.T) {
	ctx := context.Background()
	loc, _ := newContainer(t, "")
	owner := openStore(t, loc, Auth{ConnectionString: connString(t)})
	for _, name := range []string{"a", "b"} {
		if err := owner.Save(ctx, name, []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	create := sasClient(t, loc, containerSAS(t, loc, sas.ContainerPermissions{Create: true}))
	ifNoneMatch := &blockblob.UploadBufferOptions{AccessConditions: &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)},
	}}
	if _, err := create.NewBlockBlobClient("c").UploadBuffer(ctx, []byte("new"), ifNoneMatch); err != nil {
		t.Errorf("Put Blob of a new blob with If-None-Match: * and c: %v", err)
	}
	_, err := create.NewBlockBlobClient("a").UploadBuffer(ctx, []byte("new"), ifNoneMatch)
	refused(t, "Put Blob over a blob with If-None-Match: * and c", err, bloberror.AuthorizationPermissionMismatch)
	_, err = create.NewBlockBlobClient("a").UploadBuffer(ctx, []byte("new"), nil)
	refused(t, "Put Blob over a blob with c", err, bloberror.AuthorizationPermissionMismatch)

	write := sasClient(t, loc, containerSAS(t, loc, sas.ContainerPermissions{Write: true}))
	if _, err := write.NewBlockBlobClient("a").UploadBuffer(ctx, []byte("new"), nil); err != nil {
		t.Errorf("Put Blob over a blob with w: %v", err)
	}
	del := sasClient(t, loc, containerSAS(t, loc, sas.ContainerPermissions{Delete: true}))
	if _, err := del.NewBlobClient("b").Delete(ctx, nil); err != nil {
		t.Errorf("Delete Blob with d: %v", err)
	}
	if got, err := owner.Load(ctx, "a", 0, -1); err != nil || string(got) != "new" {
		t.Errorf("a = %q, %v; want it overwritten with w", got, err)
	}
	if _, err := owner.Stat(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("b after a delete with d: %v", err)
	}
}

// TestReadOnlySAS: a ReadOnly token reads and lists; the service refuses it
// creating or deleting a blob.
func TestReadOnlySAS(t *testing.T) {
	ctx := context.Background()
	loc, _ := newContainer(t, "vault")
	owner := openStore(t, loc, Auth{ConnectionString: connString(t)})
	if err := owner.Save(ctx, "config", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	g := grant(t, owner, scopeA, ReadOnly, time.Now().Add(time.Hour))
	if !strings.HasPrefix(g.Policy, "azfs-"+scopeA+"-read-") {
		t.Errorf("policy %q, want azfs-%s-read-<generation>", g.Policy, scopeA)
	}
	s := openStore(t, loc, Auth{SAS: g.Token})
	if got, err := s.Load(ctx, "config", 0, -1); err != nil || string(got) != "hello" {
		t.Errorf("Load = %q, %v", got, err)
	}
	if err := s.List(ctx, "", func(storage.Info) error { return nil }); err != nil {
		t.Errorf("List: %v", err)
	}
	err := s.Save(ctx, "points/new", []byte("x"))
	checkErr(t, err, "save", "points/new", storage.ErrPermission)
	refused(t, "Save", err, bloberror.AuthorizationPermissionMismatch)
	checkErr(t, s.Delete(ctx, "config"), "delete", "config", storage.ErrPermission)
	if _, err := owner.Stat(ctx, "points/new"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the read-only token's Save left points/new: %v", err)
	}
}

// policies returns the container's stored access policies by identifier
// (as "<permissions> <expiry>") and its public access level.
func policies(t *testing.T, c *container.Client) (map[string]string, string) {
	t.Helper()
	resp, err := c.GetAccessPolicy(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, si := range resp.SignedIdentifiers {
		p := si.AccessPolicy
		out[*si.ID] = *p.Permission + " " + p.Expiry.UTC().Format(time.RFC3339)
		if p.Start != nil {
			out[*si.ID] += " from " + p.Start.UTC().Format(time.RFC3339)
		}
	}
	access := "private"
	if resp.BlobPublicAccess != nil {
		access = string(*resp.BlobPublicAccess)
	}
	return out, access
}

// works reports whether token may read the container's config and list
// its blobs.
func works(t *testing.T, loc Location, token string) error {
	t.Helper()
	s, err := Open(context.Background(), loc, Auth{SAS: token})
	if err != nil {
		return err
	}
	if _, err := s.Load(context.Background(), "config", 0, -1); err != nil {
		return err
	}
	return s.List(context.Background(), "", func(storage.Info) error { return nil })
}

// TestSASPolicies: tokens of one scope and access share a policy, whose
// expiry only grows; RevokeSAS cuts its tokens off at once and leaves every
// other policy, and the container's public access level, as they were; the
// next grant makes a policy of a new generation, under which the revoked
// tokens stay refused; and no grant goes beyond five policies.
func TestSASPolicies(t *testing.T) {
	ctx := context.Background()
	loc, c := newContainer(t, "vault")
	owner := openStore(t, loc, Auth{ConnectionString: connString(t)})
	if err := owner.Save(ctx, "config", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	foreign := &container.SignedIdentifier{ID: to.Ptr("someone-else"), AccessPolicy: &container.AccessPolicy{
		Permission: to.Ptr("rl"), Start: to.Ptr(hour.Add(-2 * time.Hour)), Expiry: to.Ptr(hour.Add(24 * time.Hour)),
	}}
	_, err := c.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{ContainerACL: []*container.SignedIdentifier{foreign}})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := policies(t, c)

	g1 := grant(t, owner, scopeA, CreateOnly, hour)
	g2 := grant(t, owner, scopeA, CreateOnly, hour.Add(-30*time.Minute))
	if g2.Policy != g1.Policy || !g2.Expires.Equal(hour) {
		t.Errorf("a shorter grant got policy %s until %v, want %s until %v (the live one, unchanged)", g2.Policy, g2.Expires, g1.Policy, hour)
	}
	g3 := grant(t, owner, scopeA, CreateOnly, hour.Add(time.Hour))
	if g3.Policy != g1.Policy || !g3.Expires.Equal(hour.Add(time.Hour)) {
		t.Errorf("a longer grant got policy %s until %v, want %s extended to %v", g3.Policy, g3.Expires, g1.Policy, hour.Add(time.Hour))
	}
	r := grant(t, owner, scopeA, ReadOnly, hour)
	other := grant(t, owner, scopeB, CreateOnly, hour)
	if r.Policy == g1.Policy || other.Policy == g1.Policy || other.Policy == r.Policy {
		t.Errorf("policies %s, %s, %s: want one per scope and access", g1.Policy, r.Policy, other.Policy)
	}
	got, access := policies(t, c)
	want := map[string]string{
		"someone-else": before["someone-else"],
		g1.Policy:      "racl " + hour.Add(time.Hour).Format(time.RFC3339),
		r.Policy:       "rl " + hour.Format(time.RFC3339),
		other.Policy:   "racl " + hour.Format(time.RFC3339),
	}
	if !maps.Equal(got, want) || access != "private" {
		t.Errorf("policies %v, access %s; want %v, access private", got, access, want)
	}
	for _, g := range []Grant{g1, g2, g3, r, other} {
		if err := works(t, loc, g.Token); err != nil {
			t.Errorf("token of %s before revocation: %v", g.Policy, err)
		}
	}

	if n, err := owner.RevokeSAS(ctx, scopeA, CreateOnly); err != nil || n != 1 {
		t.Fatalf("RevokeSAS = %d, %v; want 1", n, err)
	}
	for _, g := range []Grant{g1, g2, g3} {
		err := works(t, loc, g.Token)
		if !errors.Is(err, storage.ErrPermission) {
			t.Errorf("revoked token: %v, want ErrPermission", err)
		}
		refused(t, "revoked token", err, bloberror.AuthorizationFailure)
	}
	for _, g := range []Grant{r, other} {
		if err := works(t, loc, g.Token); err != nil {
			t.Errorf("token of %s after revoking another policy: %v", g.Policy, err)
		}
	}
	got, access = policies(t, c)
	delete(want, g1.Policy)
	if !maps.Equal(got, want) || access != "private" {
		t.Errorf("after RevokeSAS: policies %v, access %s; want %v, access private", got, access, want)
	}

	g4 := grant(t, owner, scopeA, CreateOnly, hour)
	if g4.Policy == g1.Policy {
		t.Errorf("a grant after revocation reuses policy %s", g1.Policy)
	}
	if err := works(t, loc, g4.Token); err != nil {
		t.Errorf("token of the new generation: %v", err)
	}
	if err := works(t, loc, g1.Token); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("revoked token under a new generation: %v, want ErrPermission", err)
	}

	// Five policies: a sixth is refused and nothing changes.
	want[g4.Policy] = "racl " + hour.Format(time.RFC3339)
	want["someone-else-2"] = "rl " + hour.Format(time.RFC3339)
	acl := []*container.SignedIdentifier{{ID: to.Ptr("someone-else-2"), AccessPolicy: &container.AccessPolicy{Permission: to.Ptr("rl"), Expiry: &hour}}}
	resp, err := c.GetAccessPolicy(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Public read access to blobs (which would also let revoked tokens
	// read) is set only now, to see that grants and revocations keep it.
	_, err = c.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{
		Access:       to.Ptr(container.PublicAccessTypeBlob),
		ContainerACL: append(resp.SignedIdentifiers, acl...),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.GrantSAS(ctx, "third", ReadOnly, hour); !errors.Is(err, ErrTooManyPolicies) {
		t.Errorf("a sixth policy: %v, want ErrTooManyPolicies", err)
	}
	if got, _ := policies(t, c); !maps.Equal(got, want) {
		t.Errorf("after a refused grant: policies %v, want %v", got, want)
	}
	if n, err := owner.RevokeSAS(ctx, scopeA, CreateOnly, ReadOnly); err != nil || n != 2 {
		t.Errorf("RevokeSAS of both = %d, %v; want 2", n, err)
	}
	delete(want, g4.Policy)
	delete(want, r.Policy)
	if got, access := policies(t, c); !maps.Equal(got, want) || access != string(container.PublicAccessTypeBlob) {
		t.Errorf("after RevokeSAS of both: policies %v, access %s; want %v, access blob", got, access, want)
	}
	if n, err := owner.RevokeSAS(ctx, scopeA, CreateOnly, ReadOnly); err != nil || n != 0 {
		t.Errorf("RevokeSAS again = %d, %v; want 0", n, err)
	}
}

// TestSASExpiry: Azurite refuses a token once its policy expired; the next
// grant deletes the expired policy and makes a new generation, which does
// not revive the expired tokens.
func TestSASExpiry(t *testing.T) {
	ctx := context.Background()
	loc, c := newContainer(t, "vault")
	owner := openStore(t, loc, Auth{ConnectionString: connString(t)})
	if err := owner.Save(ctx, "config", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	g := grant(t, owner, scopeA, ReadOnly, time.Now().Add(time.Second))
	s := openStore(t, loc, Auth{SAS: g.Token})
	if _, err := s.Load(ctx, "config", 0, -1); err != nil {
		t.Fatalf("Load before expiry: %v", err)
	}
	time.Sleep(time.Until(g.Expires.Add(1100 * time.Millisecond)))
	_, err := s.Load(ctx, "config", 0, -1)
	checkErr(t, err, "load", "config", storage.ErrPermission)
	refused(t, "Load after expiry", err, bloberror.AuthorizationFailure)

	next := grant(t, owner, scopeA, ReadOnly, time.Now().Add(time.Hour))
	if next.Policy == g.Policy {
		t.Errorf("the grant after expiry reuses policy %s", g.Policy)
	}
	if got, _ := policies(t, c); len(got) != 1 || got[next.Policy] == "" {
		t.Errorf("policies after the next grant: %v, want only %s", got, next.Policy)
	}
	if _, err := s.Load(ctx, "config", 0, -1); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("expired token under a new generation: %v, want ErrPermission", err)
	}
}

// TestAzuriteTakesPolicyFields documents why a minted token leaves
// permissions and expiry to its policy: for a SAS that names a policy,
// Azurite 3.35.0 takes them from the policy alone. An expiry in the token
// is not checked (a token expired a minute ago is accepted), and
// permissions in the token do not widen the policy's. Without a policy, a
// token's expiry is enforced. (Azure refuses a SAS that has a field both
// in the token and in the policy.)
func TestAzuriteTakesPolicyFields(t *testing.T) {
	ctx := context.Background()
	loc, c := newContainer(t, "vault")
	owner := openStore(t, loc, Auth{ConnectionString: connString(t)})
	if err := owner.Save(ctx, "config", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(time.Hour)
	_, err := c.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{ContainerACL: []*container.SignedIdentifier{
		{ID: to.Ptr("perms-only"), AccessPolicy: &container.AccessPolicy{Permission: to.Ptr("rl")}},
		{ID: to.Ptr("read"), AccessPolicy: &container.AccessPolicy{Permission: to.Ptr("rl"), Expiry: &hour}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := container.NewSharedKeyCredential(devAccount, devKey)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(v sas.BlobSignatureValues) string {
		v.ContainerName = loc.Container
		qp, err := v.SignWithSharedKey(cred)
		if err != nil {
			t.Fatal(err)
		}
		return qp.Encode()
	}
	past := time.Now().Add(-time.Minute)
	if err := works(t, loc, sign(sas.BlobSignatureValues{Identifier: "perms-only", ExpiryTime: past})); err != nil {
		t.Errorf("Azurite now checks the expiry of a token that names a policy (%v): a token may carry it", err)
	}
	wide := openStore(t, loc, Auth{SAS: sign(sas.BlobSignatureValues{Identifier: "read", Permissions: "rcwd"})})
	refused(t, "Delete with permissions in the token only", wide.Delete(ctx, "config"), bloberror.AuthorizationPermissionMismatch)
	err = works(t, loc, sign(sas.BlobSignatureValues{Permissions: "rl", ExpiryTime: past}))
	refused(t, "an expired token without a policy", err, bloberror.AuthorizationFailure)
}

// TestPolicyPrefix: scopes and accesses that cannot name a policy.
func TestPolicyPrefix(t *testing.T) {
	if p, err := policyPrefix(scopeA, ReadOnly); err != nil || p != "azfs-"+scopeA+"-read-" {
		t.Errorf("policyPrefix = %q, %v", p, err)
	}
	for _, tc := range []struct {
		scope string
		a     Access
	}{{"", ReadOnly}, {scopeA + "0", ReadOnly}, {"Vault", CreateOnly}, {"a-b", CreateOnly}, {scopeA, 0}, {scopeA, 3}} {
		if p, err := policyPrefix(tc.scope, tc.a); err == nil {
			t.Errorf("policyPrefix(%q, %d) = %q, want an error", tc.scope, tc.a, p)
		}
	}
}

// TestTokenCredential: a store opened with a token credential sends it
// over https only; over http the request fails with a one-line error
// instead of leaking the token.
func TestTokenCredential(t *testing.T) {
	loc, _ := newContainer(t, "vault")
	_, err := Open(context.Background(), loc, Auth{Token: fakeToken{}})
	if err == nil || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("Open with a token credential over http: %q, want a one-line error without the token", err)
	}
}

type fakeToken struct{}

func (fakeToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "SECRET", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

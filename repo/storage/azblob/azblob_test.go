package azblob

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob/azuritetest"
	"github.com/azfs/azfs/repo/storage/storagetest"
)

// The well-known account of the Azurite emulator.
const (
	devAccount = azuritetest.DevAccount
	devKey     = azuritetest.DevKey
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := azuritetest.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// endpoint returns the Azurite blob service URL, skipping the test when
// Azurite is unavailable, or failing it under CI=true.
func endpoint(t testing.TB) string {
	t.Helper()
	return azuritetest.Endpoint(t)
}

// connString returns the connection string of the Azurite dev account.
func connString(t testing.TB) string {
	t.Helper()
	return azuritetest.ConnString(t)
}

// newContainer creates a container with a random name, deleted when the
// test ends, and returns its location with prefix and a client for it.
func newContainer(t testing.TB, prefix string) (Location, *container.Client) {
	t.Helper()
	loc := Location{
		Endpoint:  endpoint(t) + "/",
		Container: "t" + strings.ToLower(rand.Text()),
		Prefix:    prefix,
	}
	c, err := container.NewClientFromConnectionString(connString(t), loc.Container, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(context.Background(), loc, Auth{ConnectionString: connString(t)}); err != nil {
		t.Fatalf("Create(%s): %v", loc, err)
	}
	t.Cleanup(func() {
		if _, err := c.Delete(context.Background(), nil); err != nil {
			t.Errorf("deleting container %s: %v", loc.Container, err)
		}
	})
	return loc, c
}

// putBlob writes a blob directly, bypassing the store.
func putBlob(t *testing.T, c *container.Client, name string, data []byte) {
	t.Helper()
	if _, err := c.NewBlockBlobClient(name).UploadBuffer(context.Background(), data, nil); err != nil {
		t.Fatalf("uploading %s: %v", name, err)
	}
}

func openStore(t testing.TB, loc Location, auth Auth) *Store {
	t.Helper()
	s, err := Open(context.Background(), loc, auth)
	if err != nil {
		t.Fatalf("Open(%s): %v", loc, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	endpoint(t) // skip here rather than in every subtest
	t.Run("Container", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Storage {
			loc, _ := newContainer(t, "")
			return openStore(t, loc, Auth{ConnectionString: connString(t)})
		})
	})
	// A store below a prefix, among blobs that are not its objects: names
	// sharing the prefix as a string, and an invalid name inside it.
	t.Run("Prefix", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Storage {
			loc, c := newContainer(t, "vaults/one")
			for _, name := range []string{"config", "vaults/onex/config", "vaults/one-data", "vaults/one/.tmp-1", "vaults/one/data/.x"} {
				putBlob(t, c, name, []byte("decoy"))
			}
			return openStore(t, loc, Auth{ConnectionString: connString(t)})
		})
	})
}

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Location
	}{
		{"azblob://acct/vault", Location{"https://acct.blob.core.windows.net/", "vault", ""}},
		{"azblob://acct/vault/", Location{"https://acct.blob.core.windows.net/", "vault", ""}},
		{"azblob://acct/vaults/home/laptop", Location{"https://acct.blob.core.windows.net/", "vaults", "home/laptop"}},
		{"azblob://acct/vaults/home/", Location{"https://acct.blob.core.windows.net/", "vaults", "home"}},
		{"https://acct.blob.core.windows.net/vault", Location{"https://acct.blob.core.windows.net/", "vault", ""}},
		{"https://acct.blob.core.windows.net/vault/a-b/c_d.e", Location{"https://acct.blob.core.windows.net/", "vault", "a-b/c_d.e"}},
		{"https://acct.blob.core.chinacloudapi.cn/v01", Location{"https://acct.blob.core.chinacloudapi.cn/", "v01", ""}},
		{"http://blob.example:8080/vault/p", Location{"http://blob.example:8080/", "vault", "p"}},
		{"http://127.0.0.1:10000/devstoreaccount1/vault", Location{"http://127.0.0.1:10000/devstoreaccount1/", "vault", ""}},
		{"http://127.0.0.1:10000/devstoreaccount1/vault/p/q", Location{"http://127.0.0.1:10000/devstoreaccount1/", "vault", "p/q"}},
		{"http://localhost:10000/devstoreaccount1/vault", Location{"http://localhost:10000/devstoreaccount1/", "vault", ""}},
		{"http://[::1]:10000/devstoreaccount1/vault", Location{"http://[::1]:10000/devstoreaccount1/", "vault", ""}},
	} {
		got, err := ParseLocation(tc.in)
		if err != nil {
			t.Errorf("ParseLocation(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseLocation(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		// String gives back a location that parses to the same.
		if again, err := ParseLocation(got.String()); err != nil || again != got {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}

	for _, tc := range []struct {
		in, name, msg string // the error's Name and part of its message
	}{
		{"", "", "unsupported scheme"},
		{"vault", "vault", "unsupported scheme"},
		{"s3://bucket/x", "s3://bucket/x", "unsupported scheme"},
		{"azblob://acct", "azblob://acct", "invalid container name"},
		{"azblob://acct/", "azblob://acct/", "invalid container name"},
		{"azblob://ab/vault", "azblob://ab/vault", "invalid storage account name"},
		{"azblob://Acct/vault", "azblob://Acct/vault", "invalid storage account name"},
		{"azblob://acct:443/vault", "azblob://acct:443/vault", "invalid storage account name"},
		{"azblob://acct/Vault", "azblob://acct/Vault", "invalid container name"},
		{"azblob://acct/v", "azblob://acct/v", "invalid container name"},
		{"azblob://acct/a--b", "azblob://acct/a--b", "invalid container name"},
		{"azblob://acct/-ab", "azblob://acct/-ab", "invalid container name"},
		{"azblob://acct/vault/a//b", "azblob://acct/vault/a//b", "invalid prefix"},
		{"azblob://acct/vault/.hidden", "azblob://acct/vault/.hidden", "invalid prefix"},
		{"azblob://acct/vault/a/../b", "azblob://acct/vault/a/../b", "invalid prefix"},
		{"https:///vault", "https:///vault", "missing host"},
		{"http://127.0.0.1:10000/vault", "http://127.0.0.1:10000/vault", "invalid container name"},
		{"http://127.0.0.1:10000/", "http://127.0.0.1:10000/", "invalid storage account name"},
		{"https://acct.blob.core.windows.net/vault?sv=2024&sig=SECRET", "https://acct.blob.core.windows.net/vault", "SAS token"},
		{"https://acct.blob.core.windows.net/vault#frag", "https://acct.blob.core.windows.net/vault", "no query string or fragment"},
		{"https://user:SECRET@acct.blob.core.windows.net/vault", "https://user:xxxxx@acct.blob.core.windows.net/vault", "no user information"},
		{"https://acct.blob.core.windows.net:x/vault", "https://acct.blob.core.windows.net:x/vault", "invalid port"},
	} {
		loc, err := ParseLocation(tc.in)
		var serr *storage.Error
		if !errors.As(err, &serr) {
			t.Errorf("ParseLocation(%q) = %+v, %v; want a *storage.Error", tc.in, loc, err)
			continue
		}
		if serr.Op != "parse" || serr.Name != tc.name || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseLocation(%q): error %q (Op %q, Name %q), want Op \"parse\", Name %q, message containing %q", tc.in, err, serr.Op, serr.Name, tc.name, tc.msg)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("ParseLocation(%q): error %q shows the secret", tc.in, err)
		}
	}
}

func TestOpenCreate(t *testing.T) {
	ctx := context.Background()
	auth := Auth{ConnectionString: connString(t)}
	loc, _ := newContainer(t, "p")

	missing := loc
	missing.Container = "missing-" + loc.Container[:20]
	_, err := Open(ctx, missing, auth)
	checkErr(t, err, "open", missing.String(), storage.ErrNotFound)

	// Create is idempotent and does not disturb what the container holds.
	s, err := Create(ctx, loc, auth)
	if err != nil {
		t.Fatalf("Create(%s) of an existing container: %v", loc, err)
	}
	if err := s.Save(ctx, "config", []byte("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, loc, auth); err != nil {
		t.Fatalf("Create(%s) again: %v", loc, err)
	}
	if got, err := openStore(t, loc, auth).Load(ctx, "config", 0, -1); err != nil || string(got) != "c" {
		t.Errorf("Load after Create = %q, %v; want \"c\"", got, err)
	}

	for _, tc := range []struct {
		what string
		loc  Location
		auth Auth
		want string
	}{
		{"no credential", loc, Auth{}, ErrNoCredential.Error()},
		{"two credentials", loc, Auth{ConnectionString: connString(t), SAS: "sig=x"}, "give one credential"},
		{"another endpoint", Location{"http://127.0.0.2:1/" + devAccount + "/", loc.Container, ""}, auth, "the connection string is for " + endpoint(t) + "/" + loc.Container},
		{"malformed connection string", loc, Auth{ConnectionString: "AccountKey"}, "connection string"},
		{"invalid container", Location{loc.Endpoint, "UPPER", ""}, auth, "invalid container name"},
		{"invalid prefix", Location{loc.Endpoint, loc.Container, "a//b"}, auth, "invalid prefix"},
		{"endpoint without slash", Location{strings.TrimSuffix(loc.Endpoint, "/"), loc.Container, ""}, auth, `does not end in "/"`},
	} {
		for op, f := range map[string]func(context.Context, Location, Auth) (*Store, error){"open": Open, "create": Create} {
			_, err := f(ctx, tc.loc, tc.auth)
			var serr *storage.Error
			if !errors.As(err, &serr) || serr.Op != op || serr.Name != tc.loc.String() || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s with %s: error %v, want a *storage.Error for %s %s containing %q", op, tc.what, err, op, tc.loc, tc.want)
			}
		}
	}
	if _, err := Open(ctx, loc, Auth{}); !errors.Is(err, ErrNoCredential) {
		t.Errorf("Open without credential: %v, want ErrNoCredential", err)
	}
}

// checkErr asserts that err is a *storage.Error for op and name wrapping
// target.
func checkErr(t *testing.T, err error, op, name string, target error) {
	t.Helper()
	var serr *storage.Error
	if !errors.Is(err, target) || !errors.As(err, &serr) || serr.Op != op || serr.Name != name {
		t.Errorf("got error %v, want a *storage.Error for %s %q wrapping %q", err, op, name, target)
	}
}

// TestLargeObject round-trips a pack-sized object and loads ranges of it.
func TestLargeObject(t *testing.T) {
	ctx := context.Background()
	loc, _ := newContainer(t, "")
	s := openStore(t, loc, Auth{ConnectionString: connString(t)})
	const size = 16 << 20
	data := make([]byte, size)
	rand.Read(data)
	const name = "data/ab/pack"
	if err := s.Save(ctx, name, data); err != nil {
		t.Fatalf("Save of %d bytes: %v", size, err)
	}
	if info, err := s.Stat(ctx, name); err != nil || info.Name != name || info.Size != size {
		t.Errorf("Stat = %+v, %v", info, err)
	}
	for _, tc := range []struct{ off, length int64 }{
		{0, -1},
		{0, 4096},
		{1 << 20, 4 << 20},
		{size/2 - 3, 7},
		{size - 100, 100},
		{size - 100, 1 << 20}, // short tail
		{12345, -1},
		{size - 1, -1},
		{size, -1},
		{size, 10},
		{100, math.MaxInt64}, // no overflow in the range header
	} {
		got, err := s.Load(ctx, name, tc.off, tc.length)
		end := int64(size)
		if tc.length >= 0 && tc.length < end-tc.off {
			end = tc.off + tc.length
		}
		if err != nil || !bytes.Equal(got, data[tc.off:end]) {
			t.Errorf("Load(%d, %d) = %d bytes, %v; want bytes [%d, %d)", tc.off, tc.length, len(got), err, tc.off, end)
		}
	}
	_, err := s.Load(ctx, name, size+1, 1)
	checkErr(t, err, "load", name, storage.ErrRange)
}

// TestSAS uses a store opened with a container SAS that may read and list
// only: loads work, changes fail with the service's permission error.
func TestSAS(t *testing.T) {
	ctx := context.Background()
	loc, _ := newContainer(t, "vault")
	owner := openStore(t, loc, Auth{ConnectionString: connString(t)})
	if err := owner.Save(ctx, "config", []byte("hello")); err != nil {
		t.Fatal(err)
	}

	token := containerSAS(t, loc, sas.ContainerPermissions{Read: true, List: true})
	q, err := url.ParseQuery(token)
	if err != nil {
		t.Fatal(err)
	}
	sig := q.Get("sig")

	for _, form := range []string{token, "?" + token} {
		s := openStore(t, loc, Auth{SAS: form})
		if got, err := s.Load(ctx, "config", 1, 3); err != nil || string(got) != "ell" {
			t.Errorf("Load = %q, %v; want \"ell\"", got, err)
		}
		var names []string
		err := s.List(ctx, "", func(info storage.Info) error {
			names = append(names, info.Name)
			return nil
		})
		if err != nil || !slices.Equal(names, []string{"config"}) {
			t.Errorf("List = %q, %v; want [config]", names, err)
		}
		_, err = s.Stat(ctx, "missing")
		checkErr(t, err, "stat", "missing", storage.ErrNotFound)

		for op, err := range map[string]error{
			"save":   s.Save(ctx, "keys/new", []byte("x")),
			"delete": s.Delete(ctx, "config"),
		} {
			var serr *storage.Error
			switch {
			case err == nil:
				t.Errorf("%s with a read-only SAS succeeded", op)
			case errors.Is(err, storage.ErrExists), errors.Is(err, storage.ErrNotFound):
				t.Errorf("%s with a read-only SAS: %v, want a permission error", op, err)
			case !errors.As(err, &serr) || serr.Op != op:
				t.Errorf("%s with a read-only SAS: %v is not a *storage.Error for %s", op, err, op)
			case !bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch):
				t.Errorf("%s with a read-only SAS: %v, want AuthorizationPermissionMismatch", op, err)
			case strings.Contains(err.Error(), sig):
				t.Errorf("%s with a read-only SAS: error %q shows the signature", op, err)
			}
		}
	}
	if got, err := owner.Load(ctx, "config", 0, -1); err != nil || string(got) != "hello" {
		t.Errorf("after the SAS store's attempts, config = %q, %v", got, err)
	}
	if _, err := owner.Stat(ctx, "keys/new"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the SAS store's Save left keys/new behind: %v", err)
	}

	// A write-only SAS cannot tell whether the container exists, yet Open
	// accepts it, and Save works, never overwriting.
	s := openStore(t, loc, Auth{SAS: containerSAS(t, loc, sas.ContainerPermissions{Create: true, Write: true})})
	if err := s.Save(ctx, "keys/w", []byte("w")); err != nil {
		t.Errorf("Save with a write-only SAS: %v", err)
	}
	checkErr(t, s.Save(ctx, "keys/w", []byte("v")), "save", "keys/w", storage.ErrExists)
	if _, err := s.Load(ctx, "keys/w", 0, -1); !bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch) {
		t.Errorf("Load with a write-only SAS: %v, want AuthorizationPermissionMismatch", err)
	}
	if got, err := owner.Load(ctx, "keys/w", 0, -1); err != nil || string(got) != "w" {
		t.Errorf("keys/w = %q, %v; want \"w\"", got, err)
	}
}

// containerSAS returns a SAS token for the container of loc with perm,
// valid for an hour.
func containerSAS(t *testing.T, loc Location, perm sas.ContainerPermissions) string {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(devAccount, devKey)
	if err != nil {
		t.Fatal(err)
	}
	params, err := sas.BlobSignatureValues{
		ExpiryTime:    time.Now().Add(time.Hour),
		Permissions:   perm.String(),
		ContainerName: loc.Container,
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	return params.Encode()
}

// TestSASNotInTransportErrors checks that a SAS does not leak through the
// URL in a transport error.
func TestSASNotInTransportErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	loc := Location{"http://" + addr + "/" + devAccount + "/", "vault", ""}
	noRetry := &container.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}}
	_, err = open(context.Background(), loc, Auth{SAS: "sv=2025-01-05&sp=rl&sig=SECRETSIG"}, noRetry)
	var serr *storage.Error
	if !errors.As(err, &serr) || serr.Op != "open" || serr.Name != loc.String() {
		t.Fatalf("Open of an endpoint where nothing listens: %v, want a *storage.Error for open %s", err, loc)
	}
	if strings.Contains(err.Error(), "SECRETSIG") {
		t.Errorf("error %q shows the SAS", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not say why", err)
	}
}

// faultyPut is a transport that sends every request to the service but has
// fault replace the outcome of the first PUT.
type faultyPut struct {
	fault func(*http.Request, *http.Response) (*http.Response, error)
	mu    sync.Mutex
	done  bool
}

func (f *faultyPut) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	first := req.Method == http.MethodPut && !f.done
	f.done = f.done || first
	f.mu.Unlock()
	if !first {
		return resp, nil
	}
	resp.Body.Close()
	return f.fault(req, resp)
}

// openFaulty opens the store at loc through a faultyPut transport.
func openFaulty(t *testing.T, loc Location, f *faultyPut) *Store {
	t.Helper()
	s, err := open(context.Background(), loc, Auth{ConnectionString: connString(t)}, &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: f,
		Retry:     policy.RetryOptions{RetryDelay: time.Millisecond},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSaveRetried checks that a Save whose upload the SDK retries after a
// lost response succeeds, while another Save of the name still fails.
func TestSaveRetried(t *testing.T) {
	ctx := context.Background()
	loc, _ := newContainer(t, "")
	lose := &faultyPut{fault: func(*http.Request, *http.Response) (*http.Response, error) {
		return nil, errors.New("connection reset (simulated)")
	}}
	s := openFaulty(t, loc, lose)
	if err := s.Save(ctx, "pins/used", []byte("first")); err != nil {
		t.Fatalf("Save with a lost response: %v", err)
	}
	if !lose.done {
		t.Fatal("the transport lost no response")
	}
	err := s.Save(ctx, "pins/used", []byte("second"))
	checkErr(t, err, "save", "pins/used", storage.ErrExists)
	err = openStore(t, loc, Auth{ConnectionString: connString(t)}).Save(ctx, "pins/used", []byte("third"))
	checkErr(t, err, "save", "pins/used", storage.ErrExists)
	if got, err := s.Load(ctx, "pins/used", 0, -1); err != nil || string(got) != "first" {
		t.Errorf("Load = %q, %v; want \"first\"", got, err)
	}
}

// TestSaveConditionNotMet checks that a conflict reported as 412
// ConditionNotMet, rather than 409 BlobAlreadyExists, is ErrExists too.
func TestSaveConditionNotMet(t *testing.T) {
	ctx := context.Background()
	loc, _ := newContainer(t, "")
	if err := openStore(t, loc, Auth{ConnectionString: connString(t)}).Save(ctx, "config", []byte("a")); err != nil {
		t.Fatal(err)
	}
	var status int
	s := openFaulty(t, loc, &faultyPut{fault: func(req *http.Request, resp *http.Response) (*http.Response, error) {
		status = resp.StatusCode
		return &http.Response{
			StatusCode: http.StatusPreconditionFailed,
			Status:     "412 The condition specified using HTTP conditional header(s) is not met.",
			Header:     http.Header{"X-Ms-Error-Code": {string(bloberror.ConditionNotMet)}},
			Body:       http.NoBody,
			Request:    req,
		}, nil
	}})
	err := s.Save(ctx, "config", []byte("b"))
	checkErr(t, err, "save", "config", storage.ErrExists)
	if status != http.StatusConflict {
		t.Errorf("the service answered the conflicting upload with %d, want 409", status)
	}
}

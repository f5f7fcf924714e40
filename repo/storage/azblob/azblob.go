// Package azblob implements [storage.Storage] on an Azure Blob Storage
// container with the official Azure SDK for Go.
//
// A store is a whole container or the part of one below a prefix: in the
// store at azblob://acct/vaults/home the object "data/ab/<hex>" is the block
// blob "home/data/ab/<hex>" of container "vaults" in storage account "acct".
// [ParseLocation] reads such locations; [Open] opens an existing container
// and [Create] makes the container first if needed.
//
// Save uploads with an If-None-Match: * condition, so the service itself
// refuses to overwrite: of several concurrent Saves of one name exactly one
// succeeds and the others fail with [storage.ErrExists]. Objects below
// 256 MiB (vault packs are about 16 MiB) go up in a single Put Blob request,
// larger ones as blocks made visible by one Put Block List, so readers never
// see a partial object. Every Save tags its blob with a random nonce in the
// metadata key "azfsnonce": when the SDK retries an upload whose first
// attempt reached the service but whose response was lost, Save recognizes
// the existing blob as its own instead of reporting ErrExists.
//
// Load is one ranged Get Blob; only the unusual ranges (length 0, a negative
// offset, an offset at or beyond the end) cost a Get Blob Properties too.
//
// A store authenticates with the account's connection string, a SAS token,
// or an Entra ID token credential ([Auth]). With the account key, the owner
// mints SAS tokens that hang off stored access policies of the container
// ([Store.GrantSAS]) and revokes them by deleting those policies
// ([Store.RevokeSAS]); see sas.go for what the service enforces. A request
// the service refuses to the credential in use (HTTP 401 or 403) fails with
// an error wrapping [storage.ErrPermission].
//
// Blobs below the prefix whose names are not valid object names (see
// [storage.ValidName]) are never listed. Storage accounts with a hierarchical
// namespace (Data Lake Storage Gen2) are not supported: they report
// directories as blobs.
//
// Error messages name the HTTP status and the service's error code, never
// the request's query string, so a SAS token does not leak into them.
package azblob

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/repo/storage"
)

// Location names a store: a container, and optionally a prefix inside it.
type Location struct {
	// Endpoint is the blob service URL, ending in "/":
	// "https://ACCOUNT.blob.core.windows.net/", or for an emulator such as
	// Azurite "http://127.0.0.1:10000/devstoreaccount1/".
	Endpoint string
	// Container is the container name.
	Container string
	// Prefix is empty or a valid object name such as "vaults/home"; the
	// store's objects are the blobs named Prefix + "/" + name.
	Prefix string
}

// String returns the location as a URL, without any query string (where a
// SAS would be).
func (l Location) String() string {
	s := withoutQuery(l.Endpoint) + l.Container
	if l.Prefix != "" {
		s += "/" + l.Prefix
	}
	return s
}

// blobPrefix returns what the store puts before object names: "" or
// Prefix + "/".
func (l Location) blobPrefix() string {
	if l.Prefix == "" {
		return ""
	}
	return l.Prefix + "/"
}

func (l Location) validate() error {
	u, err := url.Parse(l.Endpoint)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil:
		return errors.New("endpoint is not an http(s) service URL without query or user")
	case !strings.HasSuffix(l.Endpoint, "/"):
		return errors.New(`endpoint does not end in "/"`)
	case !validContainer(l.Container):
		return fmt.Errorf("invalid container name %q: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit", l.Container)
	case l.Prefix != "" && !storage.ValidName(l.Prefix):
		return fmt.Errorf("invalid prefix %q: %w", l.Prefix, storage.ErrInvalidName)
	}
	return nil
}

// ParseLocation parses a store location, one of
//
//	azblob://ACCOUNT/CONTAINER[/PREFIX]
//	https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]
//	http(s)://HOST[:PORT]/CONTAINER[/PREFIX]           (any endpoint of one account)
//	http(s)://IP-OR-localhost[:PORT]/ACCOUNT/CONTAINER[/PREFIX]
//
// The last form is the path-style URL of emulators such as Azurite, used
// whenever the host is an IP address or "localhost":
// http://127.0.0.1:10000/devstoreaccount1/CONTAINER/PREFIX. A trailing "/"
// is ignored. Query strings are refused: a SAS token belongs in [Auth].
// Errors are *[storage.Error] values with Op "parse".
func ParseLocation(s string) (Location, error) {
	fail := func(name string, err error) (Location, error) {
		return Location{}, &storage.Error{Op: "parse", Name: name, Err: err}
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return fail(s[:i], errors.New("a location has no query string or fragment; give a SAS token as a credential instead"))
	}
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which fail reports
		}
		return fail(s, err)
	}
	if u.User != nil {
		return fail(u.Redacted(), errors.New("a location has no user information; give credentials separately"))
	}
	path := strings.Trim(u.Path, "/")
	var loc Location
	switch u.Scheme {
	case "azblob":
		if !validAccount(u.Host) {
			return fail(s, fmt.Errorf("invalid storage account name %q: 3 to 24 lowercase letters and digits", u.Host))
		}
		loc.Endpoint = "https://" + u.Host + ".blob.core.windows.net/"
	case "http", "https":
		if u.Host == "" {
			return fail(s, errors.New("missing host"))
		}
		loc.Endpoint = u.Scheme + "://" + u.Host + "/"
		if host := u.Hostname(); host == "localhost" || net.ParseIP(host) != nil {
			account, rest, _ := strings.Cut(path, "/")
			if !validAccount(account) {
				return fail(s, fmt.Errorf("invalid storage account name %q in path-style URL: 3 to 24 lowercase letters and digits", account))
			}
			loc.Endpoint += account + "/"
			path = rest
		}
	default:
		return fail(s, fmt.Errorf("unsupported scheme %q: want azblob, https or http", u.Scheme))
	}
	loc.Container, loc.Prefix, _ = strings.Cut(path, "/")
	if err := loc.validate(); err != nil {
		return fail(s, err)
	}
	return loc, nil
}

// validAccount reports whether s is a valid storage account name.
func validAccount(s string) bool {
	if len(s) < 3 || len(s) > 24 {
		return false
	}
	for _, c := range []byte(s) {
		if !isLowerAlnum(c) {
			return false
		}
	}
	return true
}

// validContainer reports whether s is a valid container name.
func validContainer(s string) bool {
	if len(s) < 3 || len(s) > 63 || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) || strings.Contains(s, "--") {
		return false
	}
	for _, c := range []byte(s) {
		if !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}

// Auth is the credential for a store: exactly one field must be set.
type Auth struct {
	// ConnectionString is an Azure Storage connection string with an
	// account key (AccountName=…;AccountKey=…) or a SAS
	// (SharedAccessSignature=…). Its blob endpoint (BlobEndpoint, or the
	// one AccountName, DefaultEndpointsProtocol and EndpointSuffix imply)
	// must be the location's. Only an account key mints SAS tokens.
	ConnectionString string
	// SAS is a shared access signature token: the query string of a SAS
	// URL, with or without the leading "?". A container SAS needs read and
	// list permission to load, create (or write) to save, and delete to
	// delete.
	SAS string
	// Token is an Entra ID credential, such as the Azure SDK's default
	// credential chain (azidentity.NewDefaultAzureCredential), whose
	// identity holds a data role on the container (Storage Blob Data
	// Contributor, or Reader to restore). The SDK sends it over https
	// only.
	Token azcore.TokenCredential
}

// ErrNoCredential reports an [Auth] with no field set.
var ErrNoCredential = errkind.New(errkind.Permission, "no credential: give a connection string, a SAS token or a token credential")

// Store is a vault stored in an Azure Blob Storage container.
type Store struct {
	c      *container.Client
	loc    Location
	prefix string                   // "" or ending in "/"
	key    *sas.SharedKeyCredential // the account key, when the connection string has one
}

var _ storage.Storage = (*Store)(nil)

// Open returns the store at loc. It fails with an error wrapping
// [storage.ErrNotFound] if the container does not exist. A SAS without read
// permission cannot tell, and is accepted as it is.
func Open(ctx context.Context, loc Location, auth Auth) (*Store, error) {
	return open(ctx, loc, auth, nil)
}

// open is Open with the SDK's client options, which tests use to inject
// faults.
func open(ctx context.Context, loc Location, auth Auth, opts *container.ClientOptions) (*Store, error) {
	s, err := newStore(loc, auth, opts)
	if err != nil {
		return nil, &storage.Error{Op: "open", Name: loc.String(), Err: err}
	}
	if err := s.probe(ctx); err != nil {
		return nil, &storage.Error{Op: "open", Name: loc.String(), Err: err}
	}
	return s, nil
}

// Create makes the container of loc if it does not exist and returns the
// store there. An existing container is used as it is, whether empty or not;
// the vault layer decides what to do with it. Creating a container needs an
// account key or an account SAS.
func Create(ctx context.Context, loc Location, auth Auth) (*Store, error) {
	s, err := newStore(loc, auth, nil)
	if err != nil {
		return nil, &storage.Error{Op: "create", Name: loc.String(), Err: err}
	}
	if _, err := s.c.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil, &storage.Error{Op: "create", Name: loc.String(), Err: mapErr(err)}
	}
	return s, nil
}

func newStore(loc Location, auth Auth, opts *container.ClientOptions) (*Store, error) {
	if err := loc.validate(); err != nil {
		return nil, err
	}
	containerURL := loc.Endpoint + loc.Container
	given := 0
	for _, set := range []bool{auth.ConnectionString != "", auth.SAS != "", auth.Token != nil} {
		if set {
			given++
		}
	}
	if given > 1 {
		return nil, errors.New("give one credential: a connection string, a SAS token or a token credential")
	}
	s := &Store{loc: loc, prefix: loc.blobPrefix()}
	var err error
	switch {
	case auth.ConnectionString != "":
		s.c, err = container.NewClientFromConnectionString(auth.ConnectionString, loc.Container, opts)
		if err != nil {
			return nil, fmt.Errorf("connection string: %w", err)
		}
		if got := withoutQuery(s.c.URL()); !sameURL(got, containerURL) {
			return nil, fmt.Errorf("the connection string is for %s, not %s", got, containerURL)
		}
		if name, key := accountKey(auth.ConnectionString); key != "" {
			if s.key, err = container.NewSharedKeyCredential(name, key); err != nil {
				return nil, fmt.Errorf("connection string: %w", err)
			}
		}
	case auth.SAS != "":
		s.c, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(auth.SAS, "?"), opts)
		if err != nil {
			return nil, err
		}
	case auth.Token != nil:
		s.c, err = container.NewClient(containerURL, auth.Token, opts)
		if err != nil {
			return nil, err
		}
	default:
		return nil, ErrNoCredential
	}
	return s, nil
}

// accountKey returns the account name and key of a connection string, or
// empty strings when it has no key. container.NewClientFromConnectionString
// has already checked its syntax.
func accountKey(connectionString string) (name, key string) {
	for part := range strings.SplitSeq(strings.TrimRight(connectionString, ";"), ";") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "AccountName":
			name = v
		case "AccountKey":
			key = v
		}
	}
	if name == "" {
		return "", ""
	}
	return name, key
}

// withoutQuery returns rawURL without its query string, where a SAS would be.
func withoutQuery(rawURL string) string {
	before, _, _ := strings.Cut(rawURL, "?")
	return before
}

// sameURL reports whether two http(s) URLs name the same resource, ignoring
// the case of scheme and host and a trailing "/".
func sameURL(a, b string) bool {
	ua, erra := url.Parse(a)
	ub, errb := url.Parse(b)
	return erra == nil && errb == nil &&
		strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) &&
		strings.TrimSuffix(ua.Path, "/") == strings.TrimSuffix(ub.Path, "/")
}

// probeName is a blob that is never an object (object names have no element
// starting with "."), asked for to learn whether the container exists.
const probeName = ".azfs-probe"

// probe checks that the container exists with Get Blob Properties of
// probeName, which a SAS with read permission may do, unlike Get Container
// Properties.
func (s *Store) probe(ctx context.Context) error {
	_, err := s.c.NewBlobClient(s.prefix+probeName).GetProperties(ctx, nil)
	switch {
	case err == nil, bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.AuthorizationPermissionMismatch):
		return nil
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, mapErr(err))
	}
	return mapErr(err)
}

// serviceError is a concise form of an error response from the service: its
// status and error code, without the request URL, headers and body that
// [azcore.ResponseError] prints. It unwraps to the ResponseError.
type serviceError struct {
	resp *azcore.ResponseError
}

func (e *serviceError) Error() string {
	if e.resp.ErrorCode == "" {
		return fmt.Sprintf("HTTP %d", e.resp.StatusCode)
	}
	return fmt.Sprintf("HTTP %d %s", e.resp.StatusCode, e.resp.ErrorCode)
}

func (e *serviceError) Unwrap() error { return e.resp }

// mapErr translates an SDK error: a missing blob wraps [storage.ErrNotFound],
// a refused credential (HTTP 401 or 403) [storage.ErrPermission], error
// responses become a [serviceError], and transport errors lose the
// request's query string, where a SAS would be.
func mapErr(err error) error {
	var resp *azcore.ResponseError
	if errors.As(err, &resp) {
		switch {
		case resp.ErrorCode == string(bloberror.BlobNotFound):
			return fmt.Errorf("%w: %w", storage.ErrNotFound, &serviceError{resp})
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %w", storage.ErrPermission, &serviceError{resp})
		}
		return &serviceError{resp}
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		uerr.URL = withoutQuery(uerr.URL)
	}
	return err
}

// nonceKey is the metadata key of the nonce that identifies a Save.
const nonceKey = "azfsnonce"

// Save uploads data to a new blob, failing with [storage.ErrExists] if the
// blob exists.
//
// A SAS with create but not write permission may not touch an existing
// blob at all: Azurite answers such an upload with 403
// AuthorizationPermissionMismatch rather than 409, and Save then tells
// from the blob's properties (read permission) whether it exists.
func (s *Store) Save(ctx context.Context, name string, data []byte) error {
	if err := storage.Check(ctx, "save", name); err != nil {
		return err
	}
	nonce := rand.Text()
	_, err := s.c.NewBlockBlobClient(s.prefix+name).UploadBuffer(ctx, data, &blockblob.UploadBufferOptions{
		Metadata: map[string]*string{nonceKey: &nonce},
		AccessConditions: &blob.AccessConditions{
			ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)},
		},
	})
	switch {
	case err == nil:
		return nil
	case bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet):
		if _, ours := s.savedBy(ctx, name, nonce); ours {
			return nil // a retry of an upload that did succeed
		}
		return &storage.Error{Op: "save", Name: name, Err: conflict(err)}
	case bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch):
		switch exists, ours := s.savedBy(ctx, name, nonce); {
		case ours:
			return nil
		case exists:
			return &storage.Error{Op: "save", Name: name, Err: conflict(err)}
		}
	}
	return &storage.Error{Op: "save", Name: name, Err: mapErr(err)}
}

// conflict is the error of a Save that found its blob there: it wraps
// [storage.ErrExists], and not [storage.ErrPermission] even when the
// service said 403.
func conflict(err error) error {
	var resp *azcore.ResponseError
	if errors.As(err, &resp) {
		err = &serviceError{resp}
	}
	return fmt.Errorf("%w: %w", storage.ErrExists, err)
}

// savedBy reports whether the blob of name exists, as far as its
// properties can be read, and whether it carries nonce: whether the Save
// that chose nonce wrote it.
func (s *Store) savedBy(ctx context.Context, name, nonce string) (exists, ours bool) {
	props, err := s.c.NewBlobClient(s.prefix+name).GetProperties(ctx, nil)
	if err != nil {
		return false, false
	}
	for k, v := range props.Metadata {
		// The service may change the case of metadata keys.
		if strings.EqualFold(k, nonceKey) && v != nil && *v == nonce {
			return true, true
		}
	}
	return true, false
}

// Load reads the range [off, off+length) of name with one ranged download.
func (s *Store) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := storage.Check(ctx, "load", name); err != nil {
		return nil, err
	}
	if off < 0 || length == 0 {
		// A download cannot ask for nothing, nor for a negative offset: the
		// answer only depends on whether name exists and how large it is.
		return s.emptyRange(ctx, name, off, length)
	}
	rng := blob.HTTPRange{Offset: off} // Count 0 means to the end
	if length > 0 && length <= math.MaxInt64-off {
		rng.Count = length
	}
	resp, err := s.c.NewBlobClient(s.prefix+name).DownloadStream(ctx, &blob.DownloadStreamOptions{Range: rng})
	if bloberror.HasCode(err, bloberror.InvalidRange) {
		// off is at or beyond the end.
		return s.emptyRange(ctx, name, off, length)
	}
	if err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: mapErr(err)}
	}
	body := resp.NewRetryReader(ctx, nil)
	defer body.Close()
	if resp.ContentLength == nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: errors.New("service sent no Content-Length")}
	}
	data := make([]byte, *resp.ContentLength)
	if _, err := io.ReadFull(body, data); err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: mapErr(err)}
	}
	return data, nil
}

// emptyRange answers a Load of name whose result, if any, is empty: it
// fails with [storage.ErrNotFound] or [storage.ErrRange], or returns an
// empty slice.
func (s *Store) emptyRange(ctx context.Context, name string, off, length int64) ([]byte, error) {
	size, err := s.size(ctx, name)
	if err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: err}
	}
	n, err := storage.ClampRange(size, off, length)
	if err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: err}
	}
	if n != 0 {
		// The service refused the range, yet the blob is large enough now:
		// it was deleted and saved again meanwhile.
		return nil, &storage.Error{Op: "load", Name: name, Err: fmt.Errorf("object replaced while loading %d bytes at offset %d", n, off)}
	}
	return []byte{}, nil
}

// size returns the size of the blob of name.
func (s *Store) size(ctx context.Context, name string) (int64, error) {
	size, _, err := s.props(ctx, name)
	return size, err
}

// props returns the size and the Last-Modified time of the blob of name.
func (s *Store) props(ctx context.Context, name string) (int64, time.Time, error) {
	props, err := s.c.NewBlobClient(s.prefix+name).GetProperties(ctx, nil)
	if err != nil {
		return 0, time.Time{}, mapErr(err)
	}
	if props.ContentLength == nil {
		return 0, time.Time{}, errors.New("service reported no blob size")
	}
	var modified time.Time
	if props.LastModified != nil {
		modified = props.LastModified.UTC()
	}
	return *props.ContentLength, modified, nil
}

// Stat returns the size and Last-Modified time of name.
func (s *Store) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := storage.Check(ctx, "stat", name); err != nil {
		return storage.Info{}, err
	}
	size, modified, err := s.props(ctx, name)
	if err != nil {
		return storage.Info{}, &storage.Error{Op: "stat", Name: name, Err: err}
	}
	return storage.Info{Name: name, Size: size, Modified: modified}, nil
}

// List lists the blobs whose names start with the store's prefix followed
// by prefix, a page of up to 5,000 at a time.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := storage.CheckList(ctx, prefix); err != nil {
		return err
	}
	opts := &container.ListBlobsFlatOptions{}
	if full := s.prefix + prefix; full != "" {
		opts.Prefix = &full
	}
	pager := s.c.NewListBlobsFlatPager(opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return &storage.Error{Op: "list", Name: prefix, Err: mapErr(err)}
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || item.Properties == nil || item.Properties.ContentLength == nil {
				continue // not a blob the service describes fully
			}
			name := strings.TrimPrefix(*item.Name, s.prefix)
			if !storage.ValidName(name) {
				continue // not an object, such as another tool's blob
			}
			info := storage.Info{Name: name, Size: *item.Properties.ContentLength}
			if item.Properties.LastModified != nil {
				info.Modified = item.Properties.LastModified.UTC()
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes the blob of name, with its snapshots if it has any.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := storage.Check(ctx, "delete", name); err != nil {
		return err
	}
	_, err := s.c.NewBlobClient(s.prefix+name).Delete(ctx, &blob.DeleteOptions{
		DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude),
	})
	if err != nil {
		return &storage.Error{Op: "delete", Name: name, Err: mapErr(err)}
	}
	return nil
}

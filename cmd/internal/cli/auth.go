package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob"
)

// ConnectionStringEnv is where the Azure SDK's convention keeps a storage
// account's connection string.
const ConnectionStringEnv = "AZURE_STORAGE_CONNECTION_STRING"

// Auth says how to authenticate to a vault in a blob container (a
// directory needs none of it). The first that is there wins: the SAS token
// (of a credentials file, or of this machine's keyring entry), a connection
// string (the file ConnectionStringFile names, else the environment's
// AZURE_STORAGE_CONNECTION_STRING), Azure's default credential chain.
type Auth struct {
	SAS keys.Token
	// Refused says what to do when the storage refuses SAS.
	Refused string
	// ConnectionStringFile names a file holding the storage account's
	// connection string (--connection-string-file).
	ConnectionStringFile string
}

// source is where a blob vault's credential came from.
type source int

const (
	fromSAS source = iota + 1
	fromConnectionString
	fromDefaultChain
)

// choose picks the credential for a blob vault, reading the connection
// string file or, through getenv, the environment. For the default chain
// it leaves the credential empty: it is built only when used.
func (a Auth) choose(getenv func(string) string) (azblob.Auth, source, error) {
	if a.SAS != "" {
		return azblob.Auth{SAS: string(a.SAS)}, fromSAS, nil
	}
	if a.ConnectionStringFile != "" {
		b, err := os.ReadFile(a.ConnectionStringFile)
		if err != nil {
			return azblob.Auth{}, 0, fmt.Errorf("read connection string: %w", err)
		}
		cs := strings.TrimSpace(strings.TrimPrefix(string(b), utf8BOM))
		if cs == "" || strings.ContainsAny(cs, "\r\n") {
			return azblob.Auth{}, 0, fmt.Errorf("connection string file %s: want the storage account's connection string on one line", a.ConnectionStringFile)
		}
		return azblob.Auth{ConnectionString: cs}, fromConnectionString, nil
	}
	if cs := strings.TrimSpace(getenv(ConnectionStringEnv)); cs != "" {
		return azblob.Auth{ConnectionString: cs}, fromConnectionString, nil
	}
	return azblob.Auth{}, fromDefaultChain, nil
}

// hasConnectionString reports whether a connection string is given: a
// file, or through getenv the environment.
func (a Auth) hasConnectionString(getenv func(string) string) bool {
	return a.ConnectionStringFile != "" || getenv(ConnectionStringEnv) != ""
}

// refused says what to do when the storage refuses the credential of src.
func (a Auth) refused(src source) string {
	switch src {
	case fromSAS:
		return a.Refused
	case fromConnectionString:
		return "check the connection string (" + ConnectionStringEnv + " or --connection-string-file): its account key must be current, or its SAS must allow this"
	}
	return "give the identity of Azure's default credential chain a Storage Blob Data role on the container, or use the account's connection string (" + ConnectionStringEnv + " or --connection-string-file)"
}

// defaultCredential returns Azure's default credential chain
// (environment, workload identity, managed identity, Azure CLI, ...).
func defaultCredential() (azcore.TokenCredential, error) {
	return azidentity.NewDefaultAzureCredential(nil)
}

// noCredential is the one-line error of a blob vault for which no
// credential worked: none was given and the default chain failed with err.
func noCredential(location string, err error) error {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return fmt.Errorf("vault %s: no storage credentials: set %s or pass --connection-string-file FILE (Azure's default credential chain failed: %s)", location, ConnectionStringEnv, strings.TrimSpace(msg))
}

// machineSASRefused says what to do when the storage refuses the SAS token
// of this machine's keyring entry e.
func machineSASRefused(e *keyring.Vault) string {
	from := "its backup credentials"
	if !e.SASExpires.IsZero() {
		from += " (expiring " + e.SASExpires.UTC().Format("2006-01-02 15:04 UTC") + ")"
	}
	return "the storage refused this machine's SAS token from " + from + ": it never allows deleting or overwriting; if it expired or was revoked, ask the vault's owner for new backup credentials and renew it with 'azfs register --vault-credentials FILE'"
}

// credentialsSASRefused says what to do when the storage refuses the SAS
// token of the credentials file.
func credentialsSASRefused(file string, expires time.Time) string {
	return fmt.Sprintf("the storage refused the SAS token of vault credentials %s (expiring %s): restore credentials only read, backup credentials never delete or overwrite; if they were revoked, ask the vault's owner for new ones ('azfs vault credentials')",
		file, expires.UTC().Format("2006-01-02 15:04 UTC"))
}

// explained adds what to do to the errors of requests the storage refuses
// to the credential in use.
type explained struct {
	storage.Storage
	hint string
}

func (e explained) explain(err error) error {
	if errors.Is(err, storage.ErrPermission) && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("%w: %s", err, e.hint)
	}
	return err
}

func (e explained) Save(ctx context.Context, name string, data []byte) error {
	return e.explain(e.Storage.Save(ctx, name, data))
}

func (e explained) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	b, err := e.Storage.Load(ctx, name, off, length)
	return b, e.explain(err)
}

func (e explained) Stat(ctx context.Context, name string) (storage.Info, error) {
	fi, err := e.Storage.Stat(ctx, name)
	return fi, e.explain(err)
}

func (e explained) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return e.explain(e.Storage.List(ctx, prefix, fn))
}

func (e explained) Delete(ctx context.Context, name string) error {
	return e.explain(e.Storage.Delete(ctx, name))
}

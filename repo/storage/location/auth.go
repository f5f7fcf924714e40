package location

import (
	"fmt"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/azfs/azfs/keys"
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

// utf8BOM is the UTF-8 encoding of U+FEFF, the byte order mark Windows
// Notepad puts first.
const utf8BOM = "\ufeff"

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

// HasConnectionString reports whether a connection string is given: a
// file, or the environment's AZURE_STORAGE_CONNECTION_STRING.
func (a Auth) HasConnectionString() bool { return a.hasConnectionString(os.Getenv) }

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

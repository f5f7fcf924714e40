package cli

import (
	"fmt"
	"time"

	"github.com/azfs/azfs/keys/keyring"
)

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

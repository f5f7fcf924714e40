package cli

import (
	"fmt"
	"os"
	"sync"

	"github.com/azfs/azfs/repo/open"
)

// NewTarget returns what package open needs to open the vault at location
// (empty: $AZFS_VAULT, else this host's default vault) as the command line
// says: the passphrase from src (else asked for on the terminal), share
// vaults logged on as the --smb-* flags say, every storage request counted
// in [Requests], and the keyring's problems warned of once.
func NewTarget(location string, src PassphraseSource) open.Target {
	if location == "" {
		location = os.Getenv(VaultEnv)
	}
	return open.Target{Vault: location, Passphrases: src, Share: Share.Logon(), Counts: &Requests, KeyringProblems: warnKeyringProblems}
}

// keyringWarned makes a process report the keyring's problems once, however
// often it loads it.
var keyringWarned sync.Once

func warnKeyringProblems(problems []error) {
	keyringWarned.Do(func() {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "warning: "+Message(p))
		}
	})
}

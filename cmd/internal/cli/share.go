package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/retry"
	"github.com/azfs/azfs/repo/storage/smb"
)

// SMBPasswordFileEnv names a file holding the password of a share vault's
// account, when --smb-password-file does not.
const SMBPasswordFileEnv = "AZFS_SMB_PASSWORD_FILE"

// ShareFlags are the flags every command takes for a vault on an SMB
// share.
type ShareFlags struct {
	User         string // --smb-user: the account, for a UNC location
	PasswordFile string // --smb-password-file
	Insecure     bool   // --smb-insecure: allow SMB 2 and unsigned sessions
}

// Share is what the command line says of share vaults; the commands set it
// from their flags before opening a vault.
var Share ShareFlags

// AddShareFlags adds the --smb-* flags to fs, setting [Share].
func AddShareFlags(fs *pflag.FlagSet) {
	fs.StringVar(&Share.User, "smb-user", "", "share vaults: log on as `[DOMAIN\\]USER` (for a \\\\HOST\\SHARE\\PATH location, or instead of the smb:// URL's user)")
	fs.StringVar(&Share.PasswordFile, "smb-password-file", "", "share vaults: read the account's password from `FILE` (default: the file $"+SMBPasswordFileEnv+" names, else ask)")
	fs.BoolVar(&Share.Insecure, "smb-insecure", false, "share vaults: allow SMB 2 and unsigned sessions (SMB 3 with signing is required otherwise)")
}

// passwords caches the passwords asked for on the terminal, by location,
// so that a process asks once.
var passwords struct {
	sync.Mutex
	m map[string]string
}

// password returns the password of loc's account: from --smb-password-file,
// else from the file AZFS_SMB_PASSWORD_FILE names (one line, a UTF-8 BOM
// and the line ending dropped, as for passphrase files), else asked for on
// the terminal without echo. It is never taken from the command line itself.
func (f ShareFlags) password(loc smb.Location) (string, error) {
	file, flag := f.PasswordFile, "--smb-password-file"
	if file == "" {
		file, flag = os.Getenv(SMBPasswordFileEnv), SMBPasswordFileEnv
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read the share password (%s): %w", flag, err)
		}
		pass := strings.TrimRight(strings.TrimPrefix(string(b), utf8BOM), "\r\n")
		if pass == "" || strings.ContainsAny(pass, "\r\n") {
			return "", fmt.Errorf("share password file %s (%s): want the password on one line", file, flag)
		}
		return pass, nil
	}
	name := loc.String()
	passwords.Lock()
	defer passwords.Unlock()
	if pass, ok := passwords.m[name]; ok {
		return pass, nil
	}
	secret, err := askPassphrase(fmt.Sprintf("Password of %s on %s: ", loc.User, loc.UNC()), false)
	pass := string(secret)
	if errors.Is(err, errNoTerminal) {
		return "", Usagef("the password of share %s is needed: pass --smb-password-file FILE or set %s (no terminal to ask on)", loc.UNC(), SMBPasswordFileEnv)
	}
	if err != nil {
		return "", err
	}
	if passwords.m == nil {
		passwords.m = map[string]string{}
	}
	passwords.m[name] = pass
	return pass, nil
}

// openShare opens (or creates) a share vault, logging on as Share and the
// location say. The storage it returns is retried, which also reconnects
// after a lost connection, and adds to the errors of refused requests what
// to do.
func openShare(location string, open func(context.Context, smb.Location, smb.Auth) (*smb.Store, error)) (storage.Storage, string, error) {
	loc, err := smb.ParseLocation(location, Share.User)
	if err != nil {
		return nil, location, err
	}
	name := loc.String()
	pass, err := Share.password(loc)
	if err != nil {
		return nil, name, err
	}
	st, err := open(context.Background(), loc, smb.Auth{Password: pass, Insecure: Share.Insecure})
	if err != nil {
		switch {
		case errors.Is(err, smb.ErrLogon):
			return nil, name, fmt.Errorf("vault %s: the server refused the password of user %s: check --smb-password-file or %s", name, loc.User, SMBPasswordFileEnv)
		case errors.Is(err, smb.ErrInsecure):
			return nil, name, fmt.Errorf("vault %s: %w", name, errors.Unwrap(err))
		case errors.Is(err, storage.ErrNotFound):
			return nil, name, fmt.Errorf("no vault at %s: the share or its directory does not exist", name)
		}
		return nil, name, fmt.Errorf("vault %s: %w", name, err)
	}
	hint := fmt.Sprintf("the share refuses user %s this: a vault's machines need to read and write it (restore credentials only read)", loc.User)
	return explained{Storage: retry.Wrap(st, retry.DefaultPolicy), hint: hint}, name, nil
}

// errUsed stops a listing at its first object.
var errUsed = errors.New("holds objects")

// refuseUsed fails unless the directory of a new share vault is empty of
// objects, as a new vault's local directory must be.
func refuseUsed(st storage.Storage, name string) error {
	ctx := context.Background()
	if _, err := st.Stat(ctx, "config"); err == nil {
		return fmt.Errorf("a vault already exists at %s", name)
	}
	err := st.List(ctx, "", func(storage.Info) error { return errUsed })
	switch {
	case errors.Is(err, errUsed):
		return fmt.Errorf("%s is not empty: a new vault needs an empty or missing directory", name)
	case err != nil:
		return fmt.Errorf("vault %s: %w", name, err)
	}
	return nil
}

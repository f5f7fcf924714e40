package location

import (
	"context"
	"errors"
	"fmt"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/retry"
	"github.com/azfs/azfs/repo/storage/smb"
)

// PasswordFileEnv names a file holding the password of a share vault's
// account, when --smb-password-file does not; it is named in the errors of
// a refused password.
const PasswordFileEnv = "AZFS_SMB_PASSWORD_FILE"

// Share says how to log on to a vault on an SMB share.
type Share struct {
	User     string // the account, for a UNC location or instead of the smb:// URL's user
	Insecure bool   // allow SMB 2 and unsigned sessions
	// Password returns the password of loc's account (from a file, or
	// asked for: the caller's choice).
	Password func(loc smb.Location) (string, error)
}

// errNoPassword is the password of a Share that has no Password function.
var errNoPassword = errors.New("no password for the share's account")

// openShare opens (or creates) a share vault, logging on as sh and the
// location say. The storage it returns is retried, which also reconnects
// after a lost connection, and adds to the errors of refused requests what
// to do.
func openShare(location string, sh Share, open func(context.Context, smb.Location, smb.Auth) (*smb.Store, error)) (storage.Storage, string, error) {
	loc, err := smb.ParseLocation(location, sh.User)
	if err != nil {
		return nil, location, err
	}
	name := loc.String()
	if sh.Password == nil {
		return nil, name, fmt.Errorf("vault %s: %w", name, errNoPassword)
	}
	pass, err := sh.Password(loc)
	if err != nil {
		return nil, name, err
	}
	st, err := open(context.Background(), loc, smb.Auth{Password: pass, Insecure: sh.Insecure})
	if err != nil {
		switch {
		case errors.Is(err, smb.ErrLogon):
			return nil, name, fmt.Errorf("vault %s: the server refused the password of user %s: check --smb-password-file or %s", name, loc.User, PasswordFileEnv)
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

package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/azfs/azfs/repo/storage/location"
	"github.com/azfs/azfs/repo/storage/smb"
)

// SMBPasswordFileEnv names a file holding the password of a share vault's
// account, when --smb-password-file does not.
const SMBPasswordFileEnv = location.PasswordFileEnv

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

// Logon returns how package location logs on to a share vault as f says.
func (f ShareFlags) Logon() location.Share {
	return location.Share{User: f.User, Insecure: f.Insecure, Password: f.password}
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

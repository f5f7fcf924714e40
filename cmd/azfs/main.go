// Command azfs creates vaults, registers machines, backs up directory trees
// into recovery points, lists and checks them, and manages the owner's
// credentials, PINs and keys. Recovery points are mounted with azmount.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	// Policies name time zones: every machine must find them, whatever
	// its system holds.
	_ "time/tzdata"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/open"
)

// longHelp is what 'azfs --help' says above the list of commands.
const longHelp = `azfs backs up directory trees into an encrypted, deduplicating vault (a
directory, an SMB share or an Azure Blob container) as recovery points; mount them with azmount.

Every command takes --connection-string-file FILE: for a vault in an Azure Blob
container, the storage account's connection string (else AZURE_STORAGE_CONNECTION_STRING;
a machine registered with credentials uses their SAS token instead).

A vault on an SMB share is smb://[DOMAIN;]USER@HOST[:PORT]/SHARE/PATH or
\\HOST\SHARE\PATH with --smb-user [DOMAIN\]USER; every command takes
--smb-password-file FILE (else the file AZFS_SMB_PASSWORD_FILE names, else
a prompt) and --smb-insecure (allow SMB 2 and unsigned sessions).`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil {
		err = cli.Interrupted(err)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "azfs: "+cli.Message(err))
		os.Exit(cli.ExitCode(err))
	}
}

// newRootCmd returns the azfs command tree.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:     "azfs",
		Short:   "Encrypted, deduplicating backups whose recovery points mount read-only",
		Long:    longHelp,
		Example: "  azfs vault create /srv/backup/vault --generate-passphrase ~/vault.pass\n  azfs backup /home /etc\n  azfs points\n  azmount --point latest /mnt/restore",
		// Errors are printed once, by main, as one line with the exit
		// code they map to.
		SilenceErrors: true,
		SilenceUsage:  true,
		// An unknown command reaches RunE, which says so as a usage error.
		Args: cobra.ArbitraryArgs,
	}
	manDir := root.Flags().String(cli.ManPagesFlag, "", "write the man pages to `DIR` ('make man')")
	root.Flags().Lookup(cli.ManPagesFlag).Hidden = true
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if *manDir != "" {
			return cli.WriteManPages(root, *manDir)
		}
		if len(args) > 0 {
			return cli.Usagef("unknown command %q (see 'azfs --help')", args[0])
		}
		fmt.Fprint(os.Stderr, cmd.UsageString())
		return cli.Usagef("name a command (see 'azfs --help')")
	}
	// The completion command is ours, with its example; cobra's hidden
	// __complete, which the scripts call, stays.
	root.CompletionOptions.DisableDefaultCmd = true
	root.Version = cli.ReadBuildInfo().String()
	root.SetVersionTemplate("azfs {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cli.Usagef("%v", err) })
	credentials := newVaultCredentialsCmd()
	credentials.AddCommand(newVaultCredentialsRevokeCmd())
	root.AddCommand(
		group("vault", "Create a vault and manage its credentials and PINs (owner)", "vault create PATH | credentials -o FILE | credentials revoke | pin",
			newVaultCreateCmd(), credentials, newVaultPINCmd()),
		newRegisterCmd(),
		newMachinesCmd(),
		newBackupCmd(),
		newAgentCmd(),
		group("schedule", "Stop or resume this machine's automatic backups", "schedule disable | enable",
			newScheduleDisableCmd(), newScheduleEnableCmd()),
		newStatusCmd(),
		newPointsCmd(),
		newRestoreCmd(),
		newLsCmd(),
		newFindCmd(),
		newDiffCmd(),
		newDumpCmd(),
		newStatsCmd(),
		group("policy", "A machine's schedule and retention (set: owner; shortening needs a PIN)", "policy show | set | apply",
			newPolicyShowCmd(), newPolicySetCmd(), newPolicyApplyCmd()),
		newForgetCmd(),
		newUndeleteCmd(),
		newCheckCmd(),
		newPruneCmd(),
		newRepairCmd(),
		group("passphrase", "Replace this machine's passphrase (needs a security PIN)", "passphrase change (--new-passphrase-file F | --generate-passphrase F) --pin PIN",
			newPassphraseChangeCmd()),
		group("key", "The owner's key slots", "key list|add|remove",
			newKeyListCmd(), newKeyAddCmd(), newKeyRemoveCmd()),
		group("certificate", "Encrypt new points to a new certificate (owner; certificate mode)", "certificate rotate --certificate NEW",
			newCertificateRotateCmd()),
		group("image", "Mount the file system inside a backed-up disk image through the kernel (root)", "image mount POINT:PATH MOUNTPOINT",
			newImageMountCmd()),
		newVersionCmd(),
		newCompletionCmd(),
	)
	return root
}

// group returns a command that only holds subcommands: run without one
// (or with an unknown one) it is a usage error that lists them.
func group(name, short, usage string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:     name + " COMMAND",
		Short:   short,
		Example: "  azfs " + name + " " + subs[0].Name() + " --help",
		RunE: func(*cobra.Command, []string) error {
			return cli.Usagef("usage: azfs %s", usage)
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// connFlag is the flag every command takes for a blob vault's connection
// string.
const connFlag = "connection-string-file"

// flags returns cmd's flag set, holding the flag every command takes.
func flags(cmd *cobra.Command) *pflag.FlagSet {
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.String(connFlag, "", "blob vaults: read the storage account's connection string from `FILE` (default: $AZURE_STORAGE_CONNECTION_STRING)")
	cli.AddShareFlags(fs)
	return fs
}

// connectionStringFile returns the command's --connection-string-file.
func connectionStringFile(fs *pflag.FlagSet) string {
	return fs.Lookup(connFlag).Value.String()
}

// targetFlags are the flags that say which vault and machine to work on.
type targetFlags struct {
	vault, passFile, passCmd, machine, creds, privKey, privPass *string
	connFile                                                    pflag.Value
}

func addTargetFlags(fs *pflag.FlagSet, withMachine bool) *targetFlags {
	t := &targetFlags{
		vault:    fs.String("vault", "", "vault `PATH` (default: $AZFS_VAULT, else this machine's default vault)"),
		passFile: fs.String("passphrase-file", "", "read the passphrase from `FILE` when this machine does not hold the keys (default: $AZFS_PASSPHRASE_FILE)"),
		passCmd:  fs.String("passphrase-command", "", "run the shell command `CMD` and read the passphrase from its output, when this machine does not hold the keys (default: $AZFS_PASSPHRASE_COMMAND)"),
		connFile: fs.Lookup(connFlag).Value,
	}
	if withMachine {
		t.machine = fs.String("machine", "", "work on machine `NAME`'s points (default: this machine)")
		t.creds = fs.String("vault-credentials", "", "open the vault a credentials `FILE` names (recovery on another machine)")
		t.privKey = fs.String("private-key", "", "certificate mode: the certificate's private key `FILE` (PEM, PKCS#8 or .pfx)")
		t.privPass = fs.String("private-key-password-file", "", "read the .pfx password from `FILE`")
	} else {
		t.machine, t.creds, t.privKey, t.privPass = new(string), new(string), new(string), new(string)
	}
	return t
}

func (t *targetFlags) target() open.Target {
	o := cli.NewTarget(*t.vault, cli.PassphraseSource{File: *t.passFile, Command: *t.passCmd})
	o.Machine, o.Credentials, o.PrivateKey, o.PrivateKeyPassFile, o.ConnectionStringFile = *t.machine, *t.creds, *t.privKey, *t.privPass, t.connFile.String()
	return o
}

// newPassphrase returns a new passphrase: generated (when genFile is set,
// which must not exist yet; the caller writes it with saveGenerated just
// before anything depends on it), read from file, or asked for twice on
// the terminal.
func newPassphrase(file, genFile, prompt string) (keys.Passphrase, error) {
	if file != "" && genFile != "" {
		return "", cli.Usagef("a passphrase file and --generate-passphrase are exclusive")
	}
	if genFile != "" {
		if _, err := os.Lstat(genFile); err == nil {
			return "", fmt.Errorf("%s already exists: not overwriting a passphrase file", genFile)
		}
		return keys.GeneratePassphrase()
	}
	pass, err := cli.ReadNewPassphrase(file, prompt)
	if err != nil {
		return "", err
	}
	return pass, pass.Check()
}

// saveGenerated writes a generated passphrase to genFile (0600); it does
// nothing when the passphrase was not generated.
func saveGenerated(genFile string, pass keys.Passphrase) error {
	if genFile == "" {
		return nil
	}
	return cli.WriteSecretFile(genFile, string(pass))
}

// printJSON writes v to standard output as indented JSON.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

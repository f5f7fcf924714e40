package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/internal/hoststate"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/access"
	"github.com/azfs/azfs/repo/enroll"
	"github.com/azfs/azfs/repo/open"
)

func newPassphraseChangeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "change --pin PIN",
		Short: "Replace this machine's passphrase (needs a security PIN)",
		Example: `  azfs passphrase change --pin 123456 --generate-passphrase ~/new.pass
  azfs passphrase change --pin 123456 --new-passphrase-file ~/new.pass`,
	}
	fs := flags(cmd)
	vault := fs.String("vault", "", "vault `PATH` (default: $AZFS_VAULT, else this machine's default vault)")
	newFile := fs.String("new-passphrase-file", "", "read the new passphrase (at least 16 characters) from `FILE`")
	genFile := fs.String("generate-passphrase", "", "generate a random new passphrase and write it to `FILE` (0600)")
	pin := fs.String("pin", "", "security `PIN` from the vault's owner ('azfs vault pin')")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if fs.NArg() != 0 || *pin == "" {
			return cli.Usagef("usage: azfs passphrase change (--new-passphrase-file F | --generate-passphrase F) --pin PIN")
		}
		t := cli.NewTarget(*vault, cli.PassphraseSource{})
		t.ConnectionStringFile, t.OwnerStorage = connectionStringFile(fs), true
		o, err := open.Root(ctx, t)
		if err != nil {
			return err
		}
		// Everything that can be refused is checked before the PIN is spent.
		err = enroll.ChangeHostPassphrase(ctx, o, *pin,
			func() (keys.Passphrase, error) {
				return newPassphrase(*newFile, *genFile, "New passphrase (16+ characters): ")
			},
			func(pass keys.Passphrase) error { return saveGenerated(*genFile, pass) },
			keys.DefaultKDF, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "passphrase of machine %s changed: its key slots open with the new passphrase, no longer with the old one; no data was rewritten\n", o.Entry.Machine)
		if o.Entry.Owner != nil {
			fmt.Fprintln(os.Stderr, "the owner passphrase is unchanged: the owner key slots still open with theirs (the old passphrase, if they shared it), and it opens every machine's points, this one's too; change it with 'azfs key add' and 'azfs key remove'")
		}
		return nil
	}
	return cmd
}

func newRegisterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "register --vault-credentials FILE",
		Short: "Register this machine with a vault credentials file (again: renew its SAS)",
		Long: `Register this machine with a vault credentials file from the vault's owner, under a
new passphrase. Run again on a registered machine, it renews the machine's storage access
(the credentials' SAS token).

A reinstalled machine takes up its old name: 'register --name web01' with web01's
passphrase (or the vault owner's) in --passphrase-file continues web01's points, and its
backups deduplicate against them; the passphrase stays as it was.`,
		Example: `  azfs register --vault-credentials web01.creds --generate-passphrase ~/azfs.pass
  azfs register --vault-credentials web01.creds --name web01 --passphrase-file ~/azfs.pass
  azfs register --vault-credentials web01.creds --name web01 --passphrase-file ~/old-web01.pass   # reinstalled`,
	}
	fs := flags(cmd)
	credsFile := fs.String("vault-credentials", "", "the vault credentials `FILE` from the vault's owner")
	name := fs.String("name", hoststate.Hostname(), "this machine's `NAME` in the vault")
	passFile := fs.String("passphrase-file", "", "read this machine's new passphrase (at least 16 characters) from `FILE`; for a name already registered, its passphrase or the owner's")
	genFile := fs.String("generate-passphrase", "", "generate this machine's passphrase and write it to `FILE` (0600)")
	asJSON := fs.Bool("json", false, "print the registration as JSON (see docs/cli.md)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *credsFile == "" || fs.NArg() != 0 {
			return cli.Usagef("usage: azfs register --vault-credentials FILE [--name HOST] (--passphrase-file F | --generate-passphrase F)")
		}
		if err := repo.CheckMachineName(*name); err != nil {
			return cli.Usagef("%v (set one with --name)", err)
		}
		t := cli.NewTarget("", cli.PassphraseSource{})
		t.Credentials, t.ConnectionStringFile = *credsFile, connectionStringFile(fs)
		o, err := open.WithCredentials(ctx, t, access.AccessBackup)
		if err != nil {
			return err
		}
		if e := o.Entry; e != nil && e.Keys != nil {
			renewName := ""
			if fs.Changed("name") {
				renewName = *name
			}
			if err := enroll.RenewHost(o, renewName); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "this machine is registered with vault %s as %s already: renewed its storage access until %s (its keys and passphrase are unchanged)\n",
				o.Root.ID, o.Entry.Machine, o.Entry.SASExpires.Local().Format("2006-01-02 15:04 MST"))
			return printIf(*asJSON, newRegistrationJSON(o, "renewed", nil))
		}
		taken, err := o.VaultRoot().MachineExists(ctx, *name)
		if err != nil {
			return err
		}
		if taken {
			if *genFile != "" {
				return fmt.Errorf("%w: %s (a reinstalled machine takes up its name with its passphrase or the owner's in --passphrase-file; else choose another with --name)", repo.ErrMachineExists, *name)
			}
			if err := takeUpName(ctx, o, *name, *passFile); err != nil {
				return err
			}
			return printIf(*asJSON, newRegistrationJSON(o, "taken_up", nil))
		}
		pass, err := newPassphrase(*passFile, *genFile, "New passphrase for this machine (16+ characters): ")
		if err != nil {
			return err
		}
		c, err := enroll.RegisterHost(ctx, o, *name, pass, keys.DefaultKDF, func(pass keys.Passphrase) error { return saveGenerated(*genFile, pass) })
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "registered as %s with vault %s at %s\n", *name, o.Root.ID, o.Location)
		tellSAS(o)
		if c != nil {
			fmt.Fprintf(os.Stderr, "certificate mode: this machine backs up to certificate %s and cannot read its points\n", c.Thumbprint())
		}
		return printIf(*asJSON, newRegistrationJSON(o, "registered", c))
	}
	return cmd
}

// registrationJSON is 'azfs register --json'.
type registrationJSON struct {
	VaultID string `json:"vault_id"`
	Vault   string `json:"vault"`
	Machine string `json:"machine"`
	// Action is registered (a new machine), taken_up (a reinstalled
	// machine took up its name) or renewed (its storage access).
	Action string `json:"action"`
	// SASExpires is when this machine's storage access (the credentials'
	// SAS token) ends: blob vaults only.
	SASExpires time.Time `json:"sas_expires,omitzero"`
	// Certificate is the thumbprint of the certificate this machine backs
	// up to (certificate mode).
	Certificate string `json:"certificate,omitempty"`
}

func newRegistrationJSON(o *open.Opened, action string, c *cert.Certificate) registrationJSON {
	out := registrationJSON{VaultID: o.Root.ID, Vault: o.Location, Machine: o.Entry.Machine, Action: action, SASExpires: o.Entry.SASExpires}
	if c != nil {
		out.Certificate = c.Thumbprint()
	}
	return out
}

// takeUpName registers this host, reinstalled, as machine name, which the
// vault o (opened with backup credentials) holds already: the machine's
// passphrase, or the owner's, read from passFile or asked for, proves the
// right to the name (enroll.TakeUpHost).
func takeUpName(ctx context.Context, o *open.Opened, name, passFile string) error {
	src := cli.PassphraseSource{File: passFile}
	err := enroll.TakeUpHost(ctx, o, name, func(machine string) (keys.Passphrase, error) {
		return src.Read("machine "+machine+" is registered already: to take up its name, its passphrase (or the vault owner's)",
			fmt.Sprintf("Machine %s is registered already. To take up its name, its passphrase (or the vault owner's): ", machine))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "registered as %s again with vault %s at %s: this machine continues %s's points, and its backups deduplicate against them; its passphrase is unchanged\n",
		name, o.Root.ID, o.Location, name)
	tellSAS(o)
	return nil
}

// tellSAS says until when a machine registered with a blob vault's
// credentials reaches it with their SAS token.
func tellSAS(o *open.Opened) {
	if e := o.Entry; e != nil && e.SAS != "" {
		fmt.Fprintf(os.Stderr, "this machine reaches the vault with the credentials' SAS token until %s; then renew it with new backup credentials: 'azfs register --vault-credentials FILE'\n",
			e.SASExpires.Local().Format("2006-01-02 15:04 MST"))
	}
}

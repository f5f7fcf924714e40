package main

import (
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
	"github.com/azfs/azfs/repo/certs"
	"github.com/azfs/azfs/repo/enroll"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/storage/location"
)

func newVaultCreateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create PATH",
		Short: "Create a vault; this machine becomes its owner and first machine",
		Example: `  azfs vault create /srv/backup/vault --generate-passphrase ~/vault.pass
  azfs vault create azblob://myaccount/backups --connection-string-file ~/conn.txt --passphrase-file ~/vault.pass
  azfs vault create /srv/backup/vault --certificate backup.cer`,
	}
	fs := flags(cmd)
	passFile := fs.String("passphrase-file", "", "read the passphrase (at least 16 characters) from `FILE`")
	genFile := fs.String("generate-passphrase", "", "generate a random passphrase and write it to `FILE` (0600)")
	machine := fs.String("machine", hoststate.Hostname(), "this machine's `NAME` in the vault")
	certFile := fs.String("certificate", "", "certificate mode: encrypt backups to this X.509 certificate (`FILE`, .cer or PEM); only its private key restores")
	asJSON := fs.Bool("json", false, "print the new vault as JSON (see docs/cli.md)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if fs.NArg() != 1 {
			return cli.Usagef("usage: azfs vault create PATH [--passphrase-file F | --generate-passphrase F] [--certificate CERT]")
		}
		var c *cert.Certificate
		if *certFile != "" {
			var err error
			if c, err = open.LoadCertificate(*certFile); err != nil {
				return err
			}
		}
		if err := repo.CheckMachineName(*machine); err != nil {
			return cli.Usagef("%v (set one with --machine)", err)
		}
		pass, err := newPassphrase(*passFile, *genFile, "New vault passphrase (16+ characters): ")
		if err != nil {
			return err
		}
		// The one passphrase protects both the owner's keys and this machine's;
		// a generated one is written before the vault exists, so its key is
		// never unrecoverable.
		entry, err := enroll.CreateVaultAt(ctx, fs.Arg(0), cli.StorageOptions(location.Auth{ConnectionStringFile: connectionStringFile(fs)}),
			pass, keys.DefaultKDF, *machine, c, func(pass keys.Passphrase) error { return saveGenerated(*genFile, pass) })
		if err != nil {
			return err
		}
		path := entry.Location
		fmt.Fprintf(os.Stderr, "created vault %s at %s; this machine is its owner and is registered as %s (the default vault here)\n", entry.ID, path, *machine)
		if *genFile != "" {
			fmt.Fprintf(os.Stderr, "passphrase written to %s: keep a copy away from this machine; it is needed to recover elsewhere\n", *genFile)
		}
		out := vaultJSON{VaultID: entry.ID, Vault: path, Machine: *machine, PassphraseFile: *genFile}
		if c != nil {
			out.Certificate = c.Thumbprint()
			fmt.Fprintf(os.Stderr, "certificate mode: backups are encrypted to certificate %s (%s); this machine cannot read them, only the private key can\n", c.Thumbprint(), c.Subject())
		}
		return printIf(*asJSON, out)
	}
	return cmd
}

// vaultJSON is 'azfs vault create --json'.
type vaultJSON struct {
	VaultID string `json:"vault_id"`
	Vault   string `json:"vault"`
	Machine string `json:"machine"` // this machine's name in it
	// PassphraseFile is where --generate-passphrase wrote the passphrase;
	// Certificate the thumbprint of the certificate backups are encrypted
	// to. Both omitted when not given.
	PassphraseFile string `json:"passphrase_file,omitempty"`
	Certificate    string `json:"certificate,omitempty"`
}

func newCertificateRotateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rotate --certificate NEW",
		Short:   "Encrypt new points to a new certificate (owner; certificate mode)",
		Example: `  azfs certificate rotate --certificate backup-2027.cer`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	certFile := fs.String("certificate", "", "the new X.509 certificate `FILE`")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *certFile == "" || fs.NArg() != 0 {
			return cli.Usagef("usage: azfs certificate rotate --certificate NEW")
		}
		c, err := open.LoadCertificate(*certFile)
		if err != nil {
			return err
		}
		o, owner, err := open.Owner(ctx, target.target())
		if err != nil {
			return err
		}
		if err := certs.Add(ctx, o.Storage, owner, c); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "certificate %s (%s) is now the vault's: each machine's next point opens with its private key; earlier points open as before (earlier certificates' keys, or the machines' passphrases)\n", c.Thumbprint(), c.Subject())
		return nil
	}
	return cmd
}

func newVaultCredentialsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credentials -o FILE",
		Short: "Write a vault credentials file (owner; valid 48 hours)",
		Example: `  azfs vault credentials -o web01.creds
  azfs vault credentials --access restore --valid 2h -o restore.creds`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	valid := fs.Duration("valid", 48*time.Hour, "how long the credentials are valid (at least 1s); on a blob vault also the storage access of the machines registered with them")
	accessFlag := fs.String("access", string(access.AccessBackup), "`backup` (register machines, back up, restore) or restore (read only)")
	out := fs.StringP("output", "o", "", "write the credentials file to `FILE` (0600)")
	asJSON := fs.Bool("json", false, "print what was written as JSON (see docs/cli.md)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if *out == "" || fs.NArg() != 0 {
			return cli.Usagef("usage: azfs vault credentials [--valid 48h] [--access backup|restore] -o FILE [--json]")
		}
		acc, err := parseAccess(*accessFlag)
		if err != nil {
			return err
		}
		if *valid < time.Second {
			return cli.Usagef("--valid must be at least 1s")
		}
		if _, err := os.Lstat(*out); err == nil {
			return fmt.Errorf("%s already exists: not overwriting it", *out)
		}
		o, owner, err := open.Owner(ctx, target.target())
		if err != nil {
			return err
		}
		creds, err := enroll.Issue(ctx, o.VaultRoot(), owner, o.Location, enroll.SASStoreOf(o), acc, *valid, time.Now())
		if err != nil {
			return err
		}
		b, err := creds.Marshal()
		if err != nil {
			return err
		}
		if err := cli.WriteSecretFile(*out, string(b)); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "vault credentials (%s access) written to %s; they expire at %s\n", acc, *out, creds.Expires.Local().Format("2006-01-02 15:04 MST"))
		if creds.SASExpires.After(creds.Expires) {
			fmt.Fprintf(os.Stderr, "the storage accepts their SAS token until %s, with every %s credentials issued since the last revocation ('azfs vault credentials revoke --access %s' ends them all)\n",
				creds.SASExpires.Local().Format("2006-01-02 15:04 MST"), acc, acc)
		}
		return printIf(*asJSON, credentialsJSON{File: *out, VaultID: o.Root.ID, Vault: o.Location, Access: string(acc), Expires: creds.Expires, SASExpires: creds.SASExpires})
	}
	return cmd
}

// credentialsJSON is 'azfs vault credentials --json'.
type credentialsJSON struct {
	File    string    `json:"file"`
	VaultID string    `json:"vault_id"`
	Vault   string    `json:"vault"`
	Access  string    `json:"access"`
	Expires time.Time `json:"expires"`
	// SASExpires is when the storage stops accepting the credentials'
	// SAS token (blob vaults; omitted elsewhere).
	SASExpires time.Time `json:"sas_expires,omitzero"`
}

// parseAccess parses an --access flag (access.ParseAccess).
func parseAccess(s string) (access.Access, error) {
	acc, err := access.ParseAccess(s)
	if err != nil {
		return "", cli.Usagef("--access %v", err)
	}
	return acc, nil
}

func newVaultCredentialsRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke every credentials file issued (owner)",
		Example: `  azfs vault credentials revoke
  azfs vault credentials revoke --access backup`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	accessFlag := fs.String("access", "", "revoke only `backup` or restore credentials (default: both)")
	asJSON := fs.Bool("json", false, "print what was revoked as JSON (see docs/cli.md)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if fs.NArg() != 0 {
			return cli.Usagef("usage: azfs vault credentials revoke [--access backup|restore] [--json]")
		}
		kinds := []access.Access{access.AccessBackup, access.AccessRestore}
		if *accessFlag != "" {
			acc, err := parseAccess(*accessFlag)
			if err != nil {
				return err
			}
			kinds = []access.Access{acc}
		}
		o, owner, err := open.Owner(ctx, target.target())
		if err != nil {
			return err
		}
		what := string(kinds[0])
		if len(kinds) == 2 {
			what = "backup and restore"
		}
		r, err := enroll.Revoke(ctx, o.VaultRoot(), owner, enroll.SASStoreOf(o), kinds...)
		if err != nil {
			return err
		}
		if r.StorageRefuses {
			fmt.Fprintf(os.Stderr, "revoked every %s credentials file of vault %s (%d on record): the storage refuses their SAS tokens from now on (Azure: within 30 seconds), also those of the machines registered with them, which need new credentials ('azfs register --vault-credentials FILE' on each)\n", what, r.VaultID, r.Revoked)
		} else {
			fmt.Fprintf(os.Stderr, "revoked every %s credentials file of vault %s (%d on record): azfs refuses them from now on; machines already registered are not affected (a directory enforces nothing)\n", what, r.VaultID, r.Revoked)
		}
		return printIf(*asJSON, r)
	}
	return cmd
}

func newVaultPINCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Print a security PIN (owner; valid 5 minutes, works once)",
		Example: `  azfs vault pin
  azfs forget --machine web01 --pin "$(azfs vault pin)" 2026-12-01`,
	}
	fs := flags(cmd)
	target := addTargetFlags(fs, false)
	asJSON := fs.Bool("json", false, `print JSON: {"pin": PIN, "expires": TIME}`)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if fs.NArg() != 0 {
			return cli.Usagef("usage: azfs vault pin [--json]")
		}
		o, owner, err := open.Owner(ctx, target.target())
		if err != nil {
			return err
		}
		pin, expires, err := access.IssuePIN(ctx, o.VaultRoot(), owner, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "security PIN valid until %s, for one use\n", expires.Local().Format("15:04:05 MST"))
		if *asJSON {
			return printJSON(struct {
				PIN     string    `json:"pin"`
				Expires time.Time `json:"expires"`
			}{pin, expires})
		}
		fmt.Println(pin)
		return nil
	}
	return cmd
}

// Command azfs creates vaults, registers machines, backs up directory trees
// into recovery points, lists and checks them, and manages the owner's
// credentials, PINs and keys. Recovery points are mounted with azmount.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	// Policies name time zones: every machine must find them, whatever
	// its system holds.
	_ "time/tzdata"

	"github.com/spf13/pflag"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/backup"
)

const usage = `usage: azfs COMMAND [flags]

commands:
  vault create PATH        create a vault; this machine becomes its owner and first machine
  vault credentials -o F   write a vault credentials file (owner; valid 48 hours)
  vault credentials revoke revoke every credentials file issued (owner; --access backup|restore)
  vault pin                print a security PIN (owner; valid 5 minutes, works once)
  register                 register this machine with a vault credentials file (again: renew its SAS)
  backup PATH...           back up paths into the vault as a new recovery point
  agent PATH...            run this machine's scheduled backups of PATH... (a service: see dist/azfs-agent.service)
  schedule disable|enable  stop or resume this machine's automatic backups
  status                   this machine: last point, next scheduled run, agent, backup running now
  points                   list recovery points (--deleted: the forgotten ones, until purged)
  policy show|set|apply    a machine's schedule and retention (set: owner; shortening needs a PIN)
  forget POINT...          forget points, recoverable for the soft-delete window (owner; needs a PIN)
  undelete POINT...        bring forgotten points back (owner)
  check                    verify the vault (--read-data authenticates every byte, --read-data-subset 10% some)
  prune                    delete data no recovery point needs (owner; safe while backups run)
  repair                   rebuild indexes, quarantine junk, say what is lost (owner; --apply to act)
  passphrase change        replace this machine's passphrase (needs a security PIN)
  key list|add|remove      the owner's key slots
  certificate rotate       encrypt new points to a new certificate (owner; certificate mode)

Every command takes --connection-string-file FILE: for a vault in an Azure Blob
container, the storage account's connection string (else AZURE_STORAGE_CONNECTION_STRING;
a machine registered with credentials uses their SAS token instead).

Mount recovery points with azmount. 'azfs COMMAND --help' shows a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(cli.ExitOK)
		}
		fmt.Fprintln(os.Stderr, "azfs: "+cli.Message(err))
		code := cli.ExitCode(err)
		if errors.Is(err, backup.ErrPartial) {
			code = cli.ExitPartial
		}
		os.Exit(code)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		return nil
	}
	sub := func(want string, cmds map[string]func(context.Context, []string) error) error {
		if len(args) < 2 || cmds[args[1]] == nil {
			return cli.Usagef("usage: azfs %s", want)
		}
		return cmds[args[1]](ctx, args[2:])
	}
	switch args[0] {
	case "vault":
		return sub("vault create PATH | credentials -o FILE | credentials revoke | pin", map[string]func(context.Context, []string) error{
			"create": vaultCreate, "credentials": vaultCredentials, "pin": vaultPIN,
		})
	case "register":
		return register(ctx, args[1:])
	case "backup":
		return backupCmd(ctx, args[1:])
	case "agent":
		return agentCmd(ctx, args[1:])
	case "schedule":
		return sub("schedule disable | enable", map[string]func(context.Context, []string) error{
			"disable": scheduleDisable, "enable": scheduleEnable,
		})
	case "status":
		return statusCmd(ctx, args[1:])
	case "points":
		return pointsCmd(ctx, args[1:])
	case "policy":
		return sub("policy show | set | apply", map[string]func(context.Context, []string) error{
			"show": policyShow, "set": policySet, "apply": policyApply,
		})
	case "forget":
		return forgetCmd(ctx, args[1:])
	case "undelete":
		return undeleteCmd(ctx, args[1:])
	case "check":
		return checkCmd(ctx, args[1:])
	case "prune":
		return pruneCmd(ctx, args[1:])
	case "repair":
		return repairCmd(ctx, args[1:])
	case "passphrase":
		return sub("passphrase change (--new-passphrase-file F | --generate-passphrase F) --pin PIN", map[string]func(context.Context, []string) error{
			"change": passphraseChange,
		})
	case "certificate":
		return sub("certificate rotate --certificate NEW", map[string]func(context.Context, []string) error{
			"rotate": certificateRotate,
		})
	case "key":
		return sub("key list|add|remove", map[string]func(context.Context, []string) error{
			"list": keyList, "add": keyAdd, "remove": keyRemove,
		})
	}
	return cli.Usagef("unknown command %q (see 'azfs --help')", args[0])
}

// connFlag is the flag every command takes for a blob vault's connection
// string.
const connFlag = "connection-string-file"

func flags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("azfs "+name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.String(connFlag, "", "blob vaults: read the storage account's connection string from `FILE` (default: $AZURE_STORAGE_CONNECTION_STRING)")
	return fs
}

// connectionStringFile returns the command's --connection-string-file.
func connectionStringFile(fs *pflag.FlagSet) string {
	return fs.Lookup(connFlag).Value.String()
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return cli.Usagef("%v", err)
	}
	return nil
}

// targetFlags are the flags that say which vault and machine to work on.
type targetFlags struct {
	vault, passFile, machine, creds, privKey, privPass *string
	connFile                                           pflag.Value
}

func addTargetFlags(fs *pflag.FlagSet, withMachine bool) *targetFlags {
	t := &targetFlags{
		vault:    fs.String("vault", "", "vault `PATH` (default: this machine's default vault)"),
		passFile: fs.String("passphrase-file", "", "read the passphrase from `FILE` when this machine does not hold the keys"),
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

func (t *targetFlags) target() cli.Target {
	return cli.Target{Vault: *t.vault, PassFile: *t.passFile, Machine: *t.machine, Credentials: *t.creds,
		PrivateKey: *t.privKey, PrivateKeyPassFile: *t.privPass, ConnectionStringFile: t.connFile.String()}
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
	pass, err := cli.ReadPassphrase(file, prompt, true)
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

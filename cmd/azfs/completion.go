package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
)

func newCompletionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `Print the shell completion script for bash, zsh or fish: it completes
commands, flags and their values. bash needs the bash-completion package.`,
		Example: `  source <(azfs completion bash)
  azfs completion bash > /etc/bash_completion.d/azfs
  azfs completion zsh > "${fpath[1]}/_azfs"
  azfs completion fish > ~/.config/fish/completions/azfs.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return cli.Usagef("usage: azfs completion bash|zsh|fish")
		}
		root := cmd.Root()
		switch args[0] {
		case "bash":
			return root.GenBashCompletionV2(os.Stdout, true)
		case "zsh":
			return root.GenZshCompletion(os.Stdout)
		case "fish":
			return root.GenFishCompletion(os.Stdout, true)
		}
		return cli.Usagef("no completion for shell %q: bash, zsh or fish", args[0])
	}
	return cmd
}

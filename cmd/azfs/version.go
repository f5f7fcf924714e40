package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/azfs/azfs/cmd/internal/cli"
)

func newVersionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print azfs's version and the source revision it was built from",
		Example: `  azfs version
  azfs version --json
  azfs --version`,
	}
	asJSON := cmd.Flags().Bool("json", false, "print JSON: version, revision, revision_time, modified, go, platform")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 0 {
			return cli.Usagef("usage: azfs version [--json]")
		}
		b := cli.ReadBuildInfo()
		if *asJSON {
			return printJSON(b)
		}
		fmt.Println("azfs " + b.String())
		return nil
	}
	return cmd
}

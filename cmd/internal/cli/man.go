package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// ManPagesFlag is the hidden flag of azfs and azmount that writes their
// man pages ('make man').
const ManPagesFlag = "generate-man-pages"

// WriteManPages writes a section 1 man page for root and each command below
// it into dir (created if missing): azfs.1, azfs-vault-create.1, and so on.
// SOURCE_DATE_EPOCH, when set, fixes the date the pages carry.
func WriteManPages(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	root.DisableAutoGenTag = true
	header := &doc.GenManHeader{Section: "1", Source: root.Name() + " " + ReadBuildInfo().Version, Manual: "azfs manual"}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("man pages in %s: %w", dir, err)
	}
	return nil
}

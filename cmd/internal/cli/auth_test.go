package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys/keyring"
)

// TestMachineSASRefused: a refused SAS token of this machine says when it
// expires and how to renew it.
func TestMachineSASRefused(t *testing.T) {
	hint := machineSASRefused(&keyring.Vault{SASExpires: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)})
	if !strings.Contains(hint, "2026-11-24 12:00 UTC") || !strings.Contains(hint, "azfs register --vault-credentials FILE") {
		t.Errorf("machineSASRefused = %q", hint)
	}
}

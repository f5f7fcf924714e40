package access_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/access"
)

// A vault credentials file, as 'azfs vault credentials' writes it (with
// made-up keys and secret).
func ExampleCredentials_Marshal() {
	c := &access.Credentials{
		VaultID:  "0123456789abcdef0123456789abcdef",
		Location: "/srv/backup/vault",
		Access:   access.AccessBackup,
		ID:       "fedcba9876543210fedcba9876543210",
		Issued:   time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
		Expires:  time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		Owner:    keys.OwnerPublic{Sign: bytes.Repeat([]byte{1}, 32), Escrow: bytes.Repeat([]byte{2}, 32)},
	}
	b, err := c.Marshal()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(b))
	fmt.Println(c.Secret)
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <VaultCredentials xmlns="urn:azfs:vault-credentials:1">
	//   <VaultId>0123456789abcdef0123456789abcdef</VaultId>
	//   <Location>/srv/backup/vault</Location>
	//   <Access>backup</Access>
	//   <CredentialId>fedcba9876543210fedcba9876543210</CredentialId>
	//   <Secret>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</Secret>
	//   <Issued>2026-11-22T12:00:00Z</Issued>
	//   <Expires>2026-11-24T12:00:00Z</Expires>
	//   <OwnerSigningKey>AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=</OwnerSigningKey>
	//   <OwnerEscrowKey>AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=</OwnerEscrowKey>
	// </VaultCredentials>
	// [redacted]
}

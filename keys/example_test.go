package keys_test

import (
	"fmt"
	"log"

	"github.com/azfs/azfs/keys"
)

// A key slot wraps a vault's key set under a passphrase. The slot is stored
// in the vault; only someone who knows the passphrase can unwrap it, and only
// for the vault and slot it was made for.
func ExampleNewPassphraseSlot() {
	ks, err := keys.NewKeySet("3f2a9c")
	if err != nil {
		log.Fatal(err)
	}
	pass := keys.Passphrase("a long and memorable passphrase")

	// Real vaults use keys.DefaultKDF; a cheap one keeps the example fast.
	kdf := keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}
	slot, err := keys.NewPassphraseSlot(ks, "slot-1", pass, kdf)
	if err != nil {
		log.Fatal(err)
	}
	stored, err := slot.Marshal()
	if err != nil {
		log.Fatal(err)
	}

	// Later: read the slot back and unwrap the key set.
	parsed, err := keys.ParseSlot(stored)
	if err != nil {
		log.Fatal(err)
	}
	got, err := parsed.Unlock("3f2a9c", "slot-1", pass)
	fmt.Println("unlocked:", err == nil)
	fmt.Println("same keys:", got != nil && *got == *ks)
	fmt.Println("secrets print as:", got.DataKey)

	_, err = parsed.Unlock("3f2a9c", "slot-1", "not the right passphrase")
	fmt.Println("wrong passphrase:", err)
	_, err = parsed.Unlock("another-vault", "slot-1", pass)
	fmt.Println("another vault:", err)

	// Output:
	// unlocked: true
	// same keys: true
	// secrets print as: [redacted]
	// wrong passphrase: wrong passphrase
	// another vault: wrong passphrase
}

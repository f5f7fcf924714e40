package access

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage/mem"
)

func fuzzSecret(base byte) keys.Secret {
	var s keys.Secret
	for i := range s {
		s[i] = base + byte(i)
	}
	return s
}

// FuzzLoadSigned: credentials/<id> and pins/<id> records (and repo/policy's
// records, through the same function) come from storage that anyone who can
// write it controls. signed.Load must never panic, must refuse as damaged
// whatever the given owner key did not sign under the given context, and
// must decode only bodies the owner signed. The seed corpus in
// testdata/fuzz/FuzzLoadSigned holds records signed.Save made with the fixed
// owner keys below.
func FuzzLoadSigned(f *testing.F) {
	ctx := context.Background()
	owner := &keys.OwnerKeys{Version: 1, Vault: "fuzz-vault", SignSeed: fuzzSecret(0x10), Escrow: fuzzSecret(0x30)}
	other := &keys.OwnerKeys{Version: 1, Vault: "fuzz-vault", SignSeed: fuzzSecret(0x11), Escrow: fuzzSecret(0x31)}
	stranger := &keys.OwnerKeys{Version: 1, Vault: "fuzz-vault", SignSeed: fuzzSecret(0x12), Escrow: fuzzSecret(0x32)}
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ownerSigned := map[string]bool{} // bodies the owner signed under credentialsContext
	for _, rec := range []credentialsRecord{
		{Vault: "0123456789abcdef0123456789abcdef", ID: "fedcba9876543210fedcba9876543210", Access: AccessBackup,
			Issued: at, Expires: at.Add(365 * 24 * time.Hour), SecretHash: make([]byte, 32)},
		{Vault: "v", ID: "i", Access: AccessRestore, Issued: at, Expires: at},
	} {
		st := mem.New()
		if err := signed.Save(ctx, st, "credentials/x", owner, credentialsContext, rec); err != nil {
			f.Fatal(err)
		}
		b, err := st.Load(ctx, "credentials/x", 0, -1)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		body, _ := json.Marshal(rec)
		ownerSigned[string(body)] = true
	}
	// Signed, but under another context or by another owner.
	st := mem.New()
	pin := pinRecord{Vault: "v", ID: "i", Expires: at, KDF: keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}, Salt: []byte{1}, Hash: []byte{2}}
	if err := signed.Save(ctx, st, "pins/x", owner, pinContext, pin); err != nil {
		f.Fatal(err)
	}
	if err := signed.Save(ctx, st, "credentials/y", other, credentialsContext, credentialsRecord{Vault: "v"}); err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{"pins/x", "credentials/y"} {
		b, err := st.Load(ctx, n, 0, -1)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"body":"e30=","sig":""}`))
	f.Add([]byte(`{"body":null}`))
	f.Add([]byte(`[`))

	f.Fuzz(func(t *testing.T, b []byte) {
		st := mem.New()
		if err := st.Save(ctx, "credentials/x", b); err != nil {
			t.Fatal(err)
		}
		var rec credentialsRecord
		err := signed.Load(ctx, st, "credentials/x", owner.Public(), credentialsContext, &rec)
		var anyBody map[string]any
		if err != nil {
			if !errors.Is(err, repo.ErrDamaged) {
				t.Fatalf("error %v does not wrap ErrDamaged", err)
			}
		} else {
			var env signed.Record
			if json.Unmarshal(b, &env) != nil || !ownerSigned[string(env.Body)] {
				t.Fatalf("signed.Load accepted a body the owner did not sign: %q", env.Body)
			}
			if err := signed.Load(ctx, st, "credentials/x", other.Public(), credentialsContext, &anyBody); err == nil {
				t.Fatalf("signed.Load accepted the owner's record under another owner's key")
			}
			if err := signed.Load(ctx, st, "credentials/x", owner.Public(), pinContext, &anyBody); err == nil {
				t.Fatalf("signed.Load accepted a credentials record as a PIN record")
			}
		}
		if err := signed.Load(ctx, st, "credentials/x", stranger.Public(), credentialsContext, &anyBody); err == nil {
			t.Fatalf("signed.Load accepted a record under a key that never signed anything")
		}
	})
}

package cli

import (
	"github.com/spf13/pflag"

	"github.com/azfs/azfs/diskimage/luks"
)

// LUKSFlags are the flags that give the keys of LUKS volumes inside disk
// images (azmount, azfs image mount).
type LUKSFlags struct {
	passphraseFiles, keyFiles []string
}

// AddLUKSFlags adds --luks-passphrase-file and --luks-key-file to fs.
func AddLUKSFlags(fs *pflag.FlagSet) *LUKSFlags {
	f := &LUKSFlags{}
	fs.StringArrayVar(&f.passphraseFiles, "luks-passphrase-file", nil, "unlock LUKS volumes inside disk images with the passphrase in `FILE` (one trailing newline dropped; repeatable)")
	fs.StringArrayVar(&f.keyFiles, "luks-key-file", nil, "unlock LUKS volumes inside disk images with the whole content of key `FILE`, as cryptsetup --key-file reads it (repeatable)")
	return f
}

// Keys reads the files the flags name. The keys stay in memory only.
func (f *LUKSFlags) Keys() ([][]byte, error) {
	return luks.ReadKeys(f.passphraseFiles, f.keyFiles)
}

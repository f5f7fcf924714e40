package cli

import (
	"github.com/spf13/pflag"

	"github.com/azfs/azfs/repo"
)

// TagFilterFlag is the repeatable --tag flag of the commands that select
// points by tag (repo.TagFilter): points, forget, azmount.
type TagFilterFlag struct{ values *[]string }

// AddTagFilterFlag adds --tag to fs; what says what the command does with
// the points it selects ("list only the points").
func AddTagFilterFlag(fs *pflag.FlagSet, what string) TagFilterFlag {
	return TagFilterFlag{fs.StringArray("tag", nil, what+" with the tag `T`; T1,T2: with all of them; repeated: with any; '': without tags")}
}

// Filter parses the flag's values; a bad tag is a usage error.
func (f TagFilterFlag) Filter() (repo.TagFilter, error) {
	filter, err := repo.ParseTagFilter(*f.values)
	if err != nil {
		return repo.TagFilter{}, Usagef("--tag: %v", err)
	}
	return filter, nil
}

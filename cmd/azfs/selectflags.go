package main

import (
	"os"
	"slices"

	"github.com/spf13/pflag"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo/selection"
)

// selectFlags are backup's flags that say what to leave out (package
// selection decides).
type selectFlags struct {
	exclude, iexclude, excludeFile, iexcludeFile, ifPresent, includeFS *[]string
	filesFrom, filesFromVerbatim, filesFromRaw                         *[]string
	caches, oneFS                                                      *bool
	largerThan                                                         *string
	// own holds the flags above (also added to the command's flag set).
	own *pflag.FlagSet
}

func addSelectFlags(fs *pflag.FlagSet) *selectFlags {
	own := pflag.NewFlagSet("selection", pflag.ContinueOnError)
	own.SortFlags = false
	defer fs.AddFlagSet(own)
	fs = own
	return &selectFlags{
		own:               own,
		filesFrom:         fs.StringArray("files-from", nil, "also back up the paths listed in `FILE` (- for stdin): one a line, blanks around trimmed, # comments and blank lines skipped, glob patterns expanded; repeatable"),
		filesFromVerbatim: fs.StringArray("files-from-verbatim", nil, "also back up the paths listed in `FILE` (- for stdin), one a line taken as it is (only empty lines skipped); repeatable"),
		filesFromRaw:      fs.StringArray("files-from-raw", nil, "also back up the paths listed in `FILE` (- for stdin), separated by NUL bytes (find -print0); repeatable"),
		exclude:           fs.StringArrayP("exclude", "e", nil, "leave out what matches `PATTERN` (restic's syntax: *, **, ?, [a-z], a leading / anchors, a leading ! re-includes); repeatable"),
		iexclude:          fs.StringArray("iexclude", nil, "as --exclude, ignoring case: `PATTERN` matches names in any case; repeatable"),
		excludeFile:       fs.StringArray("exclude-file", nil, "read --exclude patterns from `FILE`, one a line (# comments, blank lines skipped, $VAR expanded); repeatable"),
		iexcludeFile:      fs.StringArray("iexclude-file", nil, "as --exclude-file, ignoring case; `FILE` repeatable"),
		caches:            fs.Bool("exclude-caches", false, "leave out the contents of directories holding a standard CACHEDIR.TAG (the tag file is kept)"),
		ifPresent:         fs.StringArray("exclude-if-present", nil, "with `NAME[:CONTENT]`, leave out the contents of directories holding a file NAME (whose content starts with CONTENT, when given); that file is kept; repeatable"),
		largerThan:        fs.String("exclude-larger-than", "", "leave out files larger than `SIZE` (examples: 500MiB, 2GiB)"),
		oneFS:             fs.BoolP("one-file-system", "x", false, "do not enter other file systems mounted below the named paths (their mount points are kept as empty directories)"),
		includeFS: fs.StringArray("include-fs", nil, "enter mounts of the pseudo file system `TYPE` anyway; without it these are never entered (mount points kept empty): "+
			selection.PseudoList()),
	}
}

// changed returns the name of one of the flags the command line set, or
// "" when it set none.
func (f *selectFlags) changed() string {
	name := ""
	f.own.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed && name == "" {
			name = fl.Name
		}
	})
	return name
}

// selection builds what the flags select; a bad pattern, file or size is
// a usage error.
func (f *selectFlags) selection() (*selection.Selection, error) {
	sel := &selection.Selection{FileSystems: selection.FileSystems{OneFileSystem: *f.oneFS, Include: *f.includeFS}}
	for _, list := range []struct {
		ps           *selection.Patterns
		fold         bool
		flag, fflag  string
		texts, files []string
	}{
		{&sel.Exclude, false, "exclude", "exclude-file", *f.exclude, *f.excludeFile},
		{&sel.IExclude, true, "iexclude", "iexclude-file", *f.iexclude, *f.iexcludeFile},
	} {
		for _, s := range list.texts {
			if err := list.ps.Add(s, list.fold); err != nil {
				return nil, cli.Usagef("--%s: %v", list.flag, err)
			}
		}
		for _, name := range list.files {
			file, err := os.Open(name)
			if err != nil {
				return nil, cli.Usagef("--%s: %v", list.fflag, err)
			}
			err = list.ps.AddFile(file, name, list.fold)
			file.Close()
			if err != nil {
				return nil, cli.Usagef("--%s: %v", list.fflag, err)
			}
		}
	}
	if *f.caches {
		sel.Tags = append(sel.Tags, selection.CacheTag)
	}
	for _, s := range *f.ifPresent {
		tag, err := selection.ParseTag(s)
		if err != nil {
			return nil, cli.Usagef("--%v", err)
		}
		sel.Tags = append(sel.Tags, tag)
	}
	if *f.largerThan != "" {
		n, err := cli.ParseSize("exclude-larger-than", *f.largerThan)
		if err != nil {
			return nil, err
		}
		sel.LargerThan = n
	}
	return sel, nil
}

// paths returns args and the paths the --files-from lists name; warn is
// told about a pattern that matched nothing.
func (f *selectFlags) paths(args []string, warn func(string)) ([]string, error) {
	paths := slices.Clone(args)
	for _, list := range []struct {
		flag   string
		files  []string
		format selection.ListFormat
	}{
		{"files-from", *f.filesFrom, selection.Lines},
		{"files-from-verbatim", *f.filesFromVerbatim, selection.Verbatim},
		{"files-from-raw", *f.filesFromRaw, selection.Raw},
	} {
		for _, name := range list.files {
			listed, err := readList(name, list.format, warn)
			if err != nil {
				return nil, cli.Usagef("--%s: %v", list.flag, err)
			}
			paths = append(paths, listed...)
		}
	}
	return paths, nil
}

// readList reads one --files-from list, name "-" from stdin.
func readList(name string, format selection.ListFormat, warn func(string)) ([]string, error) {
	if name == "-" {
		return selection.ReadList(os.Stdin, "stdin", format, warn)
	}
	file, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return selection.ReadList(file, name, format, warn)
}

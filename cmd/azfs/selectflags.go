package main

import (
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo/selection"
)

// selectFlags are backup's flags that say what to leave out (package
// selection decides), and the --files-from lists.
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

// given reports whether a flag that gives a selection was set: one of
// the flags, not a --files-from list.
func (f *selectFlags) given() bool {
	given := false
	f.own.VisitAll(func(fl *pflag.Flag) {
		given = given || fl.Changed && !strings.HasPrefix(fl.Name, "files-from")
	})
	return given
}

// spec returns what the flags select, the exclude files read into their
// patterns; a bad pattern, file or size is a usage error.
func (f *selectFlags) spec() (selection.Spec, error) {
	spec := selection.Spec{
		Exclude: slices.Clone(*f.exclude), IExclude: slices.Clone(*f.iexclude), ExcludeCaches: *f.caches,
		ExcludeIfPresent: *f.ifPresent, OneFileSystem: *f.oneFS, IncludeFS: *f.includeFS,
	}
	for _, list := range []struct {
		to    *[]string
		flag  string
		files []string
	}{{&spec.Exclude, "exclude-file", *f.excludeFile}, {&spec.IExclude, "iexclude-file", *f.iexcludeFile}} {
		patterns, err := selection.ReadPatternFiles(list.files)
		if err != nil {
			return spec, cli.Usagef("--%s: %v", list.flag, err)
		}
		*list.to = append(*list.to, patterns...)
	}
	if *f.largerThan != "" {
		n, err := cli.ParseSize("exclude-larger-than", *f.largerThan)
		if err != nil {
			return spec, err
		}
		spec.LargerThan = n
	}
	if _, err := spec.Selection(); err != nil {
		return spec, cli.Usagef("%v", err)
	}
	return spec, nil
}

// selection builds what the flags select; a bad pattern, file or size is
// a usage error.
func (f *selectFlags) selection() (*selection.Selection, error) {
	spec, err := f.spec()
	if err != nil {
		return nil, err
	}
	return spec.Selection()
}

// paths returns args and the paths the --files-from lists name; warn is
// told about a pattern that matched nothing.
func (f *selectFlags) paths(args []string, warn func(string)) ([]string, error) {
	fromLines, literal, err := f.listed(selection.Lines, warn)
	if err != nil {
		return nil, err
	}
	return slices.Concat(args, fromLines, literal), nil
}

// listed returns the entries of the --files-from lists, read in format
// lines (selection.Lines expands them here, LinePatterns keeps them as
// written), and the paths of the --files-from-verbatim and -raw lists.
func (f *selectFlags) listed(lines selection.ListFormat, warn func(string)) (fromLines, literal []string, err error) {
	for _, list := range []struct {
		flag   string
		files  []string
		format selection.ListFormat
		to     *[]string
	}{
		{"files-from", *f.filesFrom, lines, &fromLines},
		{"files-from-verbatim", *f.filesFromVerbatim, selection.Verbatim, &literal},
		{"files-from-raw", *f.filesFromRaw, selection.Raw, &literal},
	} {
		entries, err := selection.ReadListFiles(list.files, os.Stdin, list.format, warn)
		if err != nil {
			return nil, nil, cli.Usagef("--%s: %v", list.flag, err)
		}
		*list.to = append(*list.to, entries...)
	}
	return fromLines, literal, nil
}

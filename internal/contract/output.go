package contract

import (
	"errors"
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
)

// OutputFile checks, on the file system, that the generated file of m may
// be written, and returns the path to write it to. dir is the directory
// that m.Output is relative to: the contract file's, or the package's.
//
// Parse checks the output's path as written; a path that stays in dir as
// text may still leave it through a symbolic link, and the file it names
// may be the user's. So the output's directory is resolved (the nearest
// existing ancestor through filepath.EvalSymlinks, then the directories
// still to be created) and must lie inside dir, resolved the same way;
// and a file already there must be a regular file with the
// generated-code marker ("// Code generated ... DO NOT EDIT." before the
// package clause, as go doc cmd/go defines it), whichever program wrote
// it. Anything else is refused: the generator never destroys a file it
// did not write.
//
// Refusals are returned as an ErrorList at m.OutputPos; failures to read
// the file system are plain errors.
func OutputFile(m *Model, dir string) (string, error) {
	root, err := resolveDir(dir)
	if err != nil {
		return "", fmt.Errorf("resolve the contract's directory: %w", err)
	}
	rel := filepath.FromSlash(m.Output)
	outDir, err := resolveDir(filepath.Join(dir, filepath.Dir(rel)))
	if err != nil {
		return "", fmt.Errorf("resolve the directory of output %q: %w", m.Output, err)
	}
	refuse := func(format string, args ...any) (string, error) {
		var list ErrorList
		list.add(m.OutputPos, format, args...)
		return "", list
	}
	if r, err := filepath.Rel(root, outDir); err != nil || !filepath.IsLocal(r) {
		return refuse("output %q must not leave the contract's directory (its directory resolves to %s through a symbolic link)",
			m.Output, outDir)
	}
	choose := "set output to another file"
	if m.DeclaredInGo {
		choose = "name another file with //theus:output"
	}
	path := filepath.Join(outDir, filepath.Base(rel))
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path, nil
	case err != nil:
		return "", err
	case fi.Mode()&fs.ModeSymlink != 0:
		return refuse("output %q is a symbolic link, not a regular file: theusgen does not replace it; remove it, or %s", m.Output, choose)
	case !fi.Mode().IsRegular():
		return refuse("output %q is not a regular file (%s): theusgen does not replace it; remove it, or %s", m.Output, fi.Mode().Type(), choose)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if !isGenerated(src) {
		return refuse("output %q exists and was not generated (it has no \"// Code generated ... DO NOT EDIT.\" line before its package clause): "+
			"theusgen does not overwrite it; move it, or %s", m.Output, choose)
	}
	return path, nil
}

// resolveDir returns dir with every symbolic link resolved, for a
// directory that may not exist yet: its nearest existing ancestor is
// resolved, and the rest, which MkdirAll will create, appended.
func resolveDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	var rest []string
	for {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			for i := len(rest) - 1; i >= 0; i-- {
				real = filepath.Join(real, rest[i])
			}
			return real, nil
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, fs.ErrNotExist) || parent == dir {
			return "", err
		}
		rest = append(rest, filepath.Base(dir))
		dir = parent
	}
}

// isGenerated reports whether the Go source src carries the
// generated-code marker before its package clause. A source whose package
// clause does not parse is not known to be generated.
func isGenerated(src []byte) bool {
	f, err := goparser.ParseFile(token.NewFileSet(), "", src, goparser.ParseComments|goparser.PackageClauseOnly)
	return err == nil && ast.IsGenerated(f)
}

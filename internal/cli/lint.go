package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/analysis/unitchecker"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/internal/lint"
)

// cmdLint checks contracts and the Go code of their processes.
//
// Which contracts: the one -f or -tags names, and the one each linted
// package's generated file names in its marker line. Which packages: the
// arguments (go list patterns); with none, the package of the -f/-tags
// contract's generated file, or "." when neither flag is given.
func cmdLint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf contractFlags
	fset := newFlagSet("lint", stderr, &cf)
	format := fset.String("format", "text", "output format: text, json, github or sarif")
	patterns, err := parseInterspersed(fset, args)
	if err != nil {
		return err
	}
	named := false
	fset.Visit(func(f *flag.Flag) { named = named || f.Name == "f" })
	if named && cf.tags != "" {
		return usageErr("lint: -f and -tags name two contracts; give one")
	}
	write, ok := formats[*format]
	if !ok {
		return usageErr("lint: unknown format %q (expected text, json, github or sarif)", *format)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	l := &linter{ctx: ctx, cwd: cwd, seen: map[string]bool{}}

	if named || cf.tags != "" {
		dir, err := l.lintContract(cf)
		if err != nil {
			return err
		}
		if len(patterns) == 0 && dir != "" && hasGoFiles(dir) {
			patterns = []string{asPattern(dir)}
		}
	} else if len(patterns) == 0 {
		patterns = []string{"."}
	}
	var loadErr error
	if len(patterns) > 0 {
		loadErr = l.lintPackages(patterns)
		if loadErr != nil && !errors.Is(loadErr, lint.ErrLoad) {
			return loadErr
		}
	}

	findings := lint.SortFindings(l.findings)
	var out bytes.Buffer
	if err := write(&out, findings); err != nil {
		return err
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return err
	}
	failed := false
	for _, f := range findings {
		failed = failed || f.Severity == lint.Error
	}
	switch {
	case loadErr != nil && failed:
		fmt.Fprintf(stderr, "theusgen: lint: %v\n", loadErr)
		return errFindings
	case loadErr != nil:
		return loadErr // exit 2: the code could not be checked
	case failed:
		return errFindings
	}
	return nil
}

// parseInterspersed parses flags that may come after the packages, as in
// `theusgen lint ./... --format sarif`, and returns the packages.
func parseInterspersed(fset *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageErr("%s: %v", fset.Name(), err)
		}
		args = fset.Args()
		if len(args) == 0 {
			return rest, nil
		}
		if args[0] == "--" {
			return append(rest, args[1:]...), nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

// linter accumulates the findings of one lint run.
type linter struct {
	ctx      context.Context
	cwd      string
	seen     map[string]bool // contracts linted, by absolute path or package directory
	findings []lint.Finding
}

// lintContract checks a contract and its generated file, and returns the
// directory of the generated file ("" when the contract has errors, or
// its output must not be written).
func (l *linter) lintContract(cf contractFlags) (string, error) {
	key := cf.file
	if cf.tags != "" {
		key = "tags:" + cf.tags
	}
	if abs, err := filepath.Abs(strings.TrimPrefix(key, "tags:")); err == nil {
		key = abs
	}
	if l.seen[key] {
		return "", nil
	}
	l.seen[key] = true
	m, err := parseContract(l.ctx, cf)
	if list, ok := lint.ContractErrors(err); ok {
		l.findings = append(l.findings, list...)
		return "", nil
	}
	if err != nil {
		return "", err
	}
	l.findings = append(l.findings, lint.CheckModel(m)...)
	o, err := render(m, cf)
	if list, ok := lint.ContractErrors(err); ok {
		l.findings = append(l.findings, list...)
		return "", nil
	}
	if err != nil {
		return "", err
	}
	old, err := os.ReadFile(o.target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if !bytes.Equal(old, o.data) {
		l.findings = append(l.findings, lint.StaleFinding(o.path))
	}
	return filepath.Dir(o.path), nil
}

// lintPackages runs the analyzers on the packages and lints the contract
// of every package that has a generated file.
func (l *linter) lintPackages(patterns []string) error {
	rep, err := lint.Analyze(l.ctx, l.cwd, patterns, lint.Analyzers())
	if err != nil {
		return err
	}
	for _, f := range rep.Findings {
		f.File = l.rel(f.File)
		l.findings = append(l.findings, f)
	}
	unexplained := l.explain(rep.Undefined)
	for _, p := range rep.Packages {
		if p.Generated == "" {
			continue
		}
		cf, ok := l.discover(p)
		if !ok {
			l.findings = append(l.findings, lint.Finding{
				File: l.rel(p.Generated), Line: 1, Col: 1, Code: lint.CodeContract, Severity: lint.Error,
				Message: fmt.Sprintf("cannot find %s, the contract this file was generated from: lint it with theusgen lint -f CONTRACT %s", p.Source, asPattern(l.rel(p.Dir))),
			})
			continue
		}
		if _, err := l.lintContract(cf); err != nil {
			return err
		}
	}
	if len(unexplained) > 0 {
		return fmt.Errorf("%w:\n%s", lint.ErrLoad, strings.Join(unexplained, "\n"))
	}
	return nil
}

// explain turns the compile errors of process code that uses what its
// contract does not declare into findings that name the contract entry
// (lint.Explain), and returns the compiler's messages of those it cannot
// explain.
func (l *linter) explain(undef []lint.Undefined) []string {
	var byGenerated [][]lint.Undefined // in order of first error
	index := map[string]int{}
	for _, u := range undef {
		i, ok := index[u.Package.Generated]
		if !ok {
			i = len(byGenerated)
			index[u.Package.Generated] = i
			byGenerated = append(byGenerated, nil)
		}
		byGenerated[i] = append(byGenerated[i], u)
	}
	var rest []string
	for _, us := range byGenerated {
		var m *contract.Model
		if cf, ok := l.discover(us[0].Package); ok {
			m, _ = parseContract(l.ctx, cf) // its errors are reported with the package's contract
		}
		if m == nil {
			for _, u := range us {
				rest = append(rest, u.Msg)
			}
			continue
		}
		found, unexplained := lint.Explain(m, us)
		for _, f := range found {
			f.File = l.rel(f.File)
			l.findings = append(l.findings, f)
		}
		for _, u := range unexplained {
			rest = append(rest, u.Msg)
		}
	}
	return rest
}

// discover finds the contract a package's generated file names: for
// struct tags (the marker names an import path) the package itself; for a
// YAML file, the file of that name in the package's directory, else in
// the nearest parent directory (up to the module root) whose contract's
// output is this generated file.
func (l *linter) discover(p lint.Package) (contractFlags, bool) {
	if !strings.HasSuffix(p.Source, ".yaml") && !strings.HasSuffix(p.Source, ".yml") {
		return contractFlags{tags: asPattern(l.rel(p.Dir))}, true
	}
	for dir := p.Dir; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, p.Source)
		if src, err := os.ReadFile(cand); err == nil {
			cf := contractFlags{file: l.rel(cand)}
			m, err := contract.Parse(cf.file, src)
			if err != nil || dir == p.Dir {
				return cf, true // its errors will be reported
			}
			if filepath.Join(dir, filepath.FromSlash(m.Output)) == filepath.Clean(p.Generated) {
				return cf, true
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil || filepath.Dir(dir) == dir {
			return contractFlags{}, false
		}
	}
}

// rel shows path relative to the working directory when it is below it.
func (l *linter) rel(path string) string {
	if r, err := filepath.Rel(l.cwd, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// asPattern turns a directory into a go list pattern.
func asPattern(dir string) string {
	if filepath.IsAbs(dir) || dir == "." || strings.HasPrefix(dir, "./") || strings.HasPrefix(dir, "../") {
		return dir
	}
	return "./" + filepath.ToSlash(dir)
}

func hasGoFiles(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			return true
		}
	}
	return false
}

// isVetTool reports whether theusgen was started by `go vet
// -vettool=$(which theusgen)`: the go command first asks for the tool's
// flags and version, then passes one JSON .cfg file per package.
func isVetTool(args []string) bool {
	if len(args) == 0 {
		return false
	}
	return args[0] == "-flags" || strings.HasPrefix(args[0], "-V=") || strings.HasSuffix(args[len(args)-1], ".cfg")
}

// vetTool runs the analyzers under the go vet protocol. unitchecker reads
// os.Args itself and exits with vet's own codes.
func vetTool() {
	unitchecker.Main(lint.Analyzers()...)
}

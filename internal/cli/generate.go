package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/internal/gen"
)

// output is the generated file: where it goes and what it holds.
type output struct {
	path   string // as shown to the user: the contract's directory joined with the output
	target string // where it is written: path with its directory's symbolic links resolved
	data   []byte
}

// build parses the contract, fills the defaults that depend on the file
// system and generates the file in memory. Contract errors, and an output
// that must not be written, are printed to stderr, one per line, and
// reported as errFindings.
func build(ctx context.Context, cf contractFlags, stderr io.Writer) (output, error) {
	m, err := loadContract(ctx, cf, stderr)
	if err != nil {
		return output{}, err
	}
	o, err := render(m, cf)
	return o, reportContract(err, stderr)
}

// render generates the file of a parsed contract in memory, once
// contract.OutputFile has said it may be written.
func render(m *contract.Model, cf contractFlags) (output, error) {
	dir := cf.dir()
	target, err := contract.OutputFile(m, dir)
	if err != nil {
		return output{}, err
	}
	if m.Package == "" {
		pkg, err := defaultPackage(filepath.Join(dir, filepath.FromSlash(m.Output)))
		if err != nil {
			return output{}, err
		}
		m.Package = pkg
	}
	files, err := gen.Generate(m)
	if err != nil {
		return output{}, fmt.Errorf("generate: %w", err)
	}
	data, ok := files[m.Output]
	if !ok || len(files) != 1 {
		return output{}, fmt.Errorf("generate: the generator returned %d files, want %s alone", len(files), m.Output)
	}
	return output{path: filepath.Join(dir, filepath.FromSlash(m.Output)), target: target, data: data}, nil
}

// defaultPackage is the package of the Go files beside the output (the
// generated file itself excepted), else the directory's name.
func defaultPackage(outPath string) (string, error) {
	dir := filepath.Dir(outPath)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") ||
			filepath.Join(dir, name) == filepath.Clean(outPath) {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, name), nil, parser.PackageClauseOnly)
		if err != nil {
			continue // a broken file says nothing reliable about the package
		}
		return f.Name.Name, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	name := filepath.Base(abs)
	if !token.IsIdentifier(name) || token.IsKeyword(name) {
		return "", fmt.Errorf("cannot name the package after directory %q: set `package:` in the contract", name)
	}
	return name, nil
}

// buildFromArgs parses the flags of command name and builds the output.
func buildFromArgs(ctx context.Context, name string, args []string, stderr io.Writer) (output, error) {
	var cf contractFlags
	flags := newFlagSet(name, stderr, &cf)
	if err := parseFlags(flags, args, &cf); err != nil {
		return output{}, err
	}
	return build(ctx, cf, stderr)
}

func cmdGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := buildFromArgs(ctx, "generate", args, stderr)
	if err != nil {
		return err
	}
	// Everything was generated in memory; only now touch the disk.
	return writeIfChanged(o.target, o.data)
}

// writeIfChanged writes data to path through a temporary file and a rename,
// so a reader never sees a half-written file, and leaves the file alone
// (modification time included) when it already holds data.
func writeIfChanged(path string, data []byte) error {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func cmdDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := buildFromArgs(ctx, "diff", args, stderr)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(o.target)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if d := diff.Diff(o.path+" (on disk)", old, o.path+" (generated)", o.data); d != nil {
		stdout.Write(d)
		fmt.Fprintln(stderr, "theusgen: generated code is stale: run theusgen generate")
		return errFindings
	}
	return nil
}

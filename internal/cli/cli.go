// Package cli implements the theusgen command: flags, commands, exit codes
// and output. cmd/theusgen only calls Run.
//
// Exit codes are decided here and nowhere else: 0 success, 1 a failure the
// command exists to report (contract errors, a stale generated file, lint
// findings), 2 a usage error or an unexpected failure (unreadable file,
// unwritable directory, a package that does not compile). The one
// exception is the go vet protocol (go vet -vettool=theusgen), whose exit
// codes belong to go vet: unitchecker decides them.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFindings = 1
	ExitUsage    = 2
)

// exitError carries an exit code with the message to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// findings is an error whose message has already been printed in full
// (e.g. the contract errors); Run only turns it into exit code 1.
var errFindings = errors.New("findings reported")

const usage = `theusgen turns a contracts.yaml, or Go struct tags, into typed Go code for the Theus engine.

Usage:
  theusgen generate [-f contracts.yaml]   write the generated file (only if its bytes changed)
  theusgen diff [-f contracts.yaml]       show how the generated file on disk differs; exit 1 if it does
  theusgen init [-package NAME] [dir]     write a starting contract, generate.go, a process stub and its test
  theusgen doc [-f contracts.yaml]        print Markdown about the contract, with a Mermaid graph
  theusgen lint [-f contracts.yaml] [--format text|json|github|sarif] [packages]
                                          check the contract and its processes' code (docs/lint.md)
  theusgen breaking --against FILE|git:REV [-f contracts.yaml] [--format ...] [--allow PATH]
                                          list the changes since an earlier contract that break
                                          stored state or topic consumers (docs/contracts.md)
  theusgen version                        print the module version

generate, diff, doc and lint take -tags DIR instead of -f to read the contract
from the struct tags of the Go package in DIR (e.g. -tags .).

theusgen is also a vet tool: go vet -vettool=$(which theusgen) ./... runs the
analyzers of process code.

Exit codes: 0 success, 1 contract errors, lint findings, breaking changes, a stale file or files init would overwrite, 2 usage errors.
`

// Run runs theusgen with args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errFindings):
		return ExitFindings
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	}
	fmt.Fprintf(stderr, "theusgen: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.code == ExitUsage {
			fmt.Fprint(stderr, "run 'theusgen help' for usage\n")
		}
		return ee.code
	}
	return ExitUsage
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageErr("no command")
	}
	if isVetTool(args) {
		vetTool() // does not return
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "generate":
		return cmdGenerate(ctx, rest, stdout, stderr)
	case "diff":
		return cmdDiff(ctx, rest, stdout, stderr)
	case "init":
		return cmdInit(ctx, rest, stdout, stderr)
	case "doc":
		return cmdDoc(ctx, rest, stdout, stderr)
	case "lint":
		return cmdLint(ctx, rest, stdout, stderr)
	case "breaking":
		return cmdBreaking(ctx, rest, stdout, stderr)
	case "version":
		if len(rest) > 0 {
			return usageErr("version takes no arguments")
		}
		fmt.Fprintf(stdout, "theusgen %s\n", version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageErr("unknown command %q", cmd)
}

// version returns the module version theusgen was built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if bi.Main.Path == "github.com/theus-go/theus" && bi.Main.Version != "" {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/theus-go/theus" {
			if d.Replace != nil {
				return d.Version + " (replaced)"
			}
			return d.Version
		}
	}
	return "(devel)"
}

// contractFlags are the flags that choose the contract.
type contractFlags struct {
	file string
	tags string
}

// dir is the directory that the contract's output is relative to: the
// contract file's, or the Go package's.
func (cf contractFlags) dir() string {
	if cf.tags != "" {
		return cf.tags
	}
	return filepath.Dir(cf.file)
}

func newFlagSet(name string, stderr io.Writer, cf *contractFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cf.file, "f", "contracts.yaml", "the contract file")
	fs.StringVar(&cf.tags, "tags", "", "read the contract from the struct tags of the Go package in this directory")
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string, cf *contractFlags) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usageErr("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	both := false
	fs.Visit(func(f *flag.Flag) { both = both || f.Name == "f" && cf.tags != "" })
	if both {
		return usageErr("%s: -f and -tags name two contracts; give one", fs.Name())
	}
	return nil
}

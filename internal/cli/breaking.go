package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/internal/lint"
)

// cmdBreaking compares the contract with an earlier one and reports the
// changes that break stored state or the consumers of a topic (see
// lint.Breaking). Exit 1 when any is not allowed.
func cmdBreaking(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf contractFlags
	fs := newFlagSet("breaking", stderr, &cf)
	against := fs.String("against", "", "the earlier contract: a file, or a git revision (git:REV, or REV when no such file exists) at which to read the contract file")
	format := fs.String("format", "text", "output format: text, json, github or sarif")
	var allow stringList
	fs.Var(&allow, "allow", "acknowledge the breaking changes at this path and below it (domain.orders, a topic name, ...); repeatable; adds to the contract's allow: list")
	if err := parseFlags(fs, args, &cf); err != nil {
		return err
	}
	if *against == "" {
		return usageErr("breaking: --against FILE or --against git:REV is required")
	}
	write, ok := breakingFormats[*format]
	if !ok {
		return usageErr("breaking: unknown format %q (expected text, json, github or sarif)", *format)
	}
	m, err := loadContract(ctx, cf, stderr)
	if err != nil {
		return err
	}
	old, err := earlierContract(ctx, cf, *against)
	if err != nil {
		return reportContract(err, stderr)
	}
	for _, a := range m.Allow {
		allow = append(allow, a.Path)
	}
	findings := lint.Breaking(old, m, allow)
	var out bytes.Buffer
	if err := write(&out, findings); err != nil {
		return err
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return err
	}
	for _, f := range findings {
		if f.Severity == lint.Error {
			return errFindings
		}
	}
	return nil
}

// earlierContract reads the contract to compare with: the file against,
// or the contract file at a git revision. Its positions name the file as
// given, or "REV:path" for a revision.
func earlierContract(ctx context.Context, cf contractFlags, against string) (*contract.Model, error) {
	rev, isGit := strings.CutPrefix(against, "git:")
	if !isGit {
		if _, err := os.Stat(against); err == nil {
			src, err := os.ReadFile(against)
			if err != nil {
				return nil, fmt.Errorf("read earlier contract: %w", err)
			}
			return contract.Parse(against, src)
		}
		rev = against
	}
	if cf.tags != "" {
		return nil, usageErr("breaking: --against a git revision needs a contract file (-f), not -tags")
	}
	dir, base := filepath.Dir(cf.file), filepath.Base(cf.file)
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "show", rev+":./"+base)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	src, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = err.Error()
		}
		if isGit {
			return nil, usageErr("breaking: read %s at %s: %s", cf.file, rev, msg)
		}
		return nil, usageErr("breaking: --against %s is neither a file nor a git revision holding %s (%s)", against, cf.file, msg)
	}
	// Parsed as the file itself, so that imports resolve from its
	// directory; positions then name the revision.
	m, err := contract.Parse(cf.file, src)
	if list, ok := err.(contract.ErrorList); ok {
		for _, e := range list {
			e.Pos.File = rev + ":" + e.Pos.File
		}
	}
	return m, err
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

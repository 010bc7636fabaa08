package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/templates"
)

// scaffold lists the files `theusgen init` writes, in the order it reports
// them, with what each is for. Each is the template templates/init/NAME.tmpl.
var scaffold = []struct{ name, what string }{
	{"contracts.yaml", "the contract: state, topics and processes"},
	{"generate.go", "runs theusgen on go generate"},
	{"process.go", "the processes, implementing the generated Processes"},
	{"process_test.go", "their unit tests, with the generated RunXxx"},
}

// toolPath is what a module adds with go get -tool to run theusgen.
const toolPath = "github.com/theus-go/theus/cmd/theusgen"

// cmdInit writes a working starting point into a directory: a contract, the
// go:generate line, a process stub and its test. It writes files only: the
// go command is the user's to run, and the next steps are printed.
//
// The go:generate line is `go tool theusgen generate`, with theusgen added
// to go.mod as a tool (go get -tool): the tool and the runtime that the
// generated code imports then come from one module version, pinned in
// go.mod, and `go generate` needs nothing installed. (`go run
// github.com/theus-go/theus/cmd/theusgen` would pin the version as well,
// but a plain `go get github.com/theus-go/theus` does not record the
// checksums of theusgen's own dependencies, so it fails until the user runs
// another go get.)
func cmdInit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("init", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprint(stderr, "usage: theusgen init [-package NAME] [dir]\n\n"+
			"Writes contracts.yaml, generate.go, process.go and process_test.go into dir\n"+
			"(default: the current directory), which is created if needed. Existing\n"+
			"files are never overwritten.\n\n")
		fset.PrintDefaults()
	}
	pkg := fset.String("package", "", "Go package name (default: from the directory's Go files, else go.mod's module path at a module root, else the directory's name)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("init: %v", err)
	}
	if fset.NArg() > 1 {
		return usageErr("init: unexpected argument %q (one directory at most)", fset.Arg(1))
	}
	dir := "."
	if fset.NArg() == 1 {
		dir = fset.Arg(0)
	}

	name := *pkg
	if name != "" {
		if !token.IsIdentifier(name) || name == "_" || name == "main" {
			return usageErr("init: -package %q is not a usable package name", name)
		}
	} else {
		var err error
		if name, err = scaffoldPackage(dir); err != nil {
			return err
		}
	}

	files, err := renderScaffold(name)
	if err != nil {
		return err
	}
	// All or nothing: refuse before writing anything.
	var existing []string
	for _, f := range scaffold {
		p := filepath.Join(dir, f.name)
		switch _, err := os.Lstat(p); {
		case err == nil:
			existing = append(existing, p)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	if len(existing) > 0 {
		verb := "exists"
		if len(existing) > 1 {
			verb = "exist"
		}
		return &exitError{code: ExitFindings, err: fmt.Errorf(
			"init: %s already %s; nothing was written (move it away, or init another directory)",
			strings.Join(existing, ", "), verb)}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeNew(dir, files); err != nil {
		return err
	}
	printNextSteps(stdout, dir, name)
	return nil
}

// renderScaffold executes the init templates for package name, in the
// order of scaffold.
func renderScaffold(name string) ([][]byte, error) {
	data := struct{ Package string }{name}
	out := make([][]byte, 0, len(scaffold))
	for _, f := range scaffold {
		tmpl, err := template.New(f.name).Option("missingkey=error").
			ParseFS(templates.FS, "init/"+f.name+templates.Suffix)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := tmpl.ExecuteTemplate(&b, f.name+templates.Suffix, data); err != nil {
			return nil, err
		}
		out = append(out, b.Bytes())
	}
	return out, nil
}

// writeNew creates the scaffold's files in dir. A file that appeared since
// the check is not overwritten (O_EXCL); on any failure the files already
// written are removed, so init leaves all of them or none.
func writeNew(dir string, data [][]byte) (err error) {
	var written []string
	defer func() {
		if err != nil {
			for _, p := range written {
				os.Remove(p)
			}
		}
	}()
	for i, f := range scaffold {
		p := filepath.Join(dir, f.name)
		fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		written = append(written, p)
		_, werr := fh.Write(data[i])
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return werr
		}
	}
	return nil
}

func printNextSteps(w io.Writer, dir, name string) {
	fmt.Fprintf(w, "Wrote package %s in %s:\n", name, dir)
	for _, f := range scaffold {
		fmt.Fprintf(w, "  %-16s %s\n", f.name, f.what)
	}
	fmt.Fprintln(w, "\nNext:")
	if filepath.Clean(dir) != "." {
		fmt.Fprintf(w, "  cd %s\n", dir)
	}
	if !inModule(dir) {
		fmt.Fprintf(w, "  go mod init example.com/%s\n", name)
	}
	fmt.Fprintf(w, "  go get -tool %s@latest\n", toolPath)
	fmt.Fprintln(w, "  go generate ./...")
	fmt.Fprintln(w, "  go test ./...")
}

// scaffoldPackage chooses the package name for dir: the package of the Go
// files already there (as generate would), else at a module root the last
// element of the module path, else the directory's name; the last two are
// reduced to lower-case letters, digits and underscores ("my-service" ->
// "myservice").
func scaffoldPackage(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(abs)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			return defaultPackage(filepath.Join(abs, contract.DefaultOutput))
		}
	}
	from := filepath.Base(abs)
	if mod := modulePath(filepath.Join(abs, "go.mod")); mod != "" {
		from = lastPathElem(mod)
	}
	name := packageName(from)
	if name == "" {
		return "", usageErr("init: cannot make a Go package name of %q: use -package NAME", from)
	}
	return name, nil
}

// packageName reduces s to a Go package name, or returns "".
func packageName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	name := strings.TrimLeft(b.String(), "0123456789_")
	if !token.IsIdentifier(name) || name == "main" {
		// A keyword, or nothing left; main would need a func main.
		return ""
	}
	return name
}

// lastPathElem is the element of a module path that names its package:
// the last, or the one before a major version suffix (example.com/shop/v2).
func lastPathElem(mod string) string {
	elems := strings.Split(mod, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		return elems[len(elems)-2]
	}
	return last
}

// modulePath returns the module path declared in the go.mod file at path,
// or "" when there is none.
func modulePath(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "//")
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "module" {
			continue
		}
		if p, err := strconv.Unquote(f[1]); err == nil {
			return p
		}
		return f[1]
	}
	return ""
}

// inModule reports whether dir or one of its parents holds a go.mod.
func inModule(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return true // say nothing rather than something wrong
	}
	for {
		if _, err := os.Stat(filepath.Join(abs, "go.mod")); err == nil {
			return true
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return false
		}
		abs = parent
	}
}

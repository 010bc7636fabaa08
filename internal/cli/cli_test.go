package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodContract = `version: 1
package: counter
state:
  domain:
    count: int
processes:
  bump:
    inputs: [domain.count]
    outputs: [domain.count]
`

func runIn(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	defer os.Chdir(wd)
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "contracts.yaml"), []byte(goodContract), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("version: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want int
	}{
		{nil, ExitUsage},
		{[]string{"nope"}, ExitUsage},
		{[]string{"generate", "-nope"}, ExitUsage},
		{[]string{"generate", "-f", "missing.yaml"}, ExitUsage},
		{[]string{"generate", "-tags", "."}, ExitUsage}, // no Go files
		{[]string{"generate", "-f", "contracts.yaml", "-tags", "."}, ExitUsage},
		{[]string{"diff"}, ExitFindings}, // nothing generated yet
		{[]string{"generate", "-f", "bad.yaml"}, ExitFindings},
		{[]string{"generate"}, ExitOK},
		{[]string{"diff"}, ExitOK},
		{[]string{"version"}, ExitOK},
		{[]string{"help"}, ExitOK},
	}
	for _, c := range cases {
		if code, _, stderr := runIn(t, dir, c.args...); code != c.want {
			t.Errorf("theusgen %s: exit %d, want %d (stderr %q)", strings.Join(c.args, " "), code, c.want, stderr)
		}
	}
}

// generate must not rewrite a file whose bytes would not change, so build
// tools that watch modification times stay quiet.
func TestGenerateLeavesCurrentFileAlone(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "contracts.yaml"), []byte(goodContract), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runIn(t, dir, "generate"); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "theus_gen.go")
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(out, past, past); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runIn(t, dir, "generate"); code != 0 {
		t.Fatalf("second generate: exit %d: %s", code, stderr)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(past) {
		t.Fatalf("an unchanged file was rewritten (mtime %v)", fi.ModTime())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestDefaultPackage(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "store")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// No Go files: the directory's name.
	if pkg, err := defaultPackage(filepath.Join(sub, "theus_gen.go")); err != nil || pkg != "store" {
		t.Fatalf("empty dir: %q, %v; want store", pkg, err)
	}
	// Go files: their package, tests and the output itself ignored.
	for name, src := range map[string]string{
		"a_test.go":    "package store_test\n",
		"theus_gen.go": "package stale\n",
		"impl.go":      "package inventory\n",
	} {
		if err := os.WriteFile(filepath.Join(sub, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if pkg, err := defaultPackage(filepath.Join(sub, "theus_gen.go")); err != nil || pkg != "inventory" {
		t.Fatalf("with Go files: %q, %v; want inventory", pkg, err)
	}
	bad := filepath.Join(dir, "my-service")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := defaultPackage(filepath.Join(bad, "theus_gen.go")); err == nil {
		t.Fatal("a directory name that is no identifier must be an error")
	}
}

// The exit codes of -tags are those of -f: 0, 1 for contract errors or a
// stale file, 2 for what is not a contract error.
func TestTagsExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/tags\n\ngo 1.26\n")
	writeFile(t, filepath.Join(dir, "state.go"), "package tags\n\ntype State struct {\n\tDomain struct {\n\t\tCount int `theus:\"count\"`\n\t} `theus:\"domain\"`\n}\n\n"+
		"//theus:process\ntype Bump struct {\n\tCount int `theus:\"in,out,path=domain.count\"`\n}\n")
	writeFile(t, filepath.Join(dir, "bad", "state.go"), "package bad\n\ntype State struct {\n\tDomain struct{} `theus:\"domian\"`\n}\n")
	writeFile(t, filepath.Join(dir, "empty", "README"), "no Go here\n")
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"diff", "-tags", "."}, ExitFindings}, // nothing generated yet
		{[]string{"generate", "-tags", "."}, ExitOK},
		{[]string{"diff", "-tags", "."}, ExitOK},
		{[]string{"doc", "-tags", "."}, ExitOK},
		{[]string{"generate", "-tags", "./bad"}, ExitFindings},
		{[]string{"diff", "-tags", "./bad"}, ExitFindings},
		{[]string{"generate", "-tags", "./empty"}, ExitUsage},
		{[]string{"generate", "-tags", "./missing"}, ExitUsage},
	}
	for _, c := range cases {
		if code, _, stderr := runIn(t, dir, c.args...); code != c.want {
			t.Errorf("theusgen %s: exit %d, want %d (stderr %q)", strings.Join(c.args, " "), code, c.want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad", "theus_gen.go")); err == nil {
		t.Error("generate wrote a file for a package with contract errors")
	}
}

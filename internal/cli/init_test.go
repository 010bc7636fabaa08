package cli

import (
	"bytes"
	"go/format"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/schema"
)

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInitWritesScaffold(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/shop/v2\n\ngo 1.26\n")
	code, stdout, stderr := runIn(t, dir, "init")
	if code != ExitOK {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Wrote package shop in .:", "go get -tool " + toolPath + "@latest", "go generate ./...", "go test ./..."} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "go mod init") || strings.Contains(stdout, "cd ") {
		t.Errorf("stdout has steps that are not needed here:\n%s", stdout)
	}
	for _, f := range scaffold {
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(f.name, ".go") {
			continue
		}
		if !bytes.HasPrefix(data, []byte("package shop\n")) {
			t.Errorf("%s does not start with package shop:\n%s", f.name, data)
		}
		if formatted, err := format.Source(data); err != nil || !bytes.Equal(formatted, data) {
			t.Errorf("%s is not gofmt'd (err %v):\n%s", f.name, err, data)
		}
	}

	src, err := os.ReadFile(filepath.Join(dir, "contracts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := contract.Parse("contracts.yaml", src)
	if err != nil {
		t.Fatalf("the scaffold's contract does not parse: %v", err)
	}
	if m.Package != "shop" {
		t.Errorf("contract package %q, want shop", m.Package)
	}
	if err := schema.ValidateYAML(src); err != nil {
		t.Errorf("the scaffold's contract does not validate against the schema: %v", err)
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "process.go"), "package mine\n")
	writeFile(t, filepath.Join(dir, "contracts.yaml"), "# mine\n")
	code, stdout, stderr := runIn(t, dir, "init")
	if code != ExitFindings {
		t.Errorf("exit %d, want %d", code, ExitFindings)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	want := "theusgen: init: contracts.yaml, process.go already exist; nothing was written"
	if !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr %q, want it to start with %q", stderr, want)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Errorf("init wrote files although it refused: %v", ents)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "process.go")); string(got) != "package mine\n" {
		t.Errorf("process.go changed: %q", got)
	}
}

func TestInitPackageName(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string // relative to the temp dir
		args  []string
		pkg   string // the package of process.go, or "" for a refusal
	}{
		{"directory name", nil, []string{"init", "my-Service.v2"}, "myservicev2"},
		{"module root", map[string]string{"svc/go.mod": "module \"example.com/x/inventory\" // quoted\n"}, []string{"init", "svc"}, "inventory"},
		{"module path ignored below the root", map[string]string{"go.mod": "module example.com/x/inventory\n"}, []string{"init", "billing"}, "billing"},
		{"Go files decide", map[string]string{"svc/main.go": "package main\n\nfunc main() {}\n", "svc/x_test.go": "package other\n"}, []string{"init", "svc"}, "main"},
		{"flag", nil, []string{"init", "-package", "orders", "123"}, "orders"},
		{"nothing usable", nil, []string{"init", "123"}, ""},
		{"keyword", nil, []string{"init", "func"}, ""},
		{"bad flag value", nil, []string{"init", "-package", "my-pkg", "x"}, ""},
		{"main without a func main", nil, []string{"init", "-package", "main", "x"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range c.files {
				writeFile(t, filepath.Join(dir, name), data)
			}
			code, _, stderr := runIn(t, dir, c.args...)
			target := filepath.Join(dir, c.args[len(c.args)-1])
			if c.pkg == "" {
				if code != ExitUsage {
					t.Errorf("exit %d, want %d (stderr %q)", code, ExitUsage, stderr)
				}
				if _, err := os.Stat(filepath.Join(target, "process.go")); err == nil {
					t.Error("init wrote files although it refused")
				}
				return
			}
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got, err := os.ReadFile(filepath.Join(target, "process.go"))
			if err != nil {
				t.Fatal(err)
			}
			if want := "package " + c.pkg + "\n"; !strings.HasPrefix(string(got), want) {
				t.Errorf("process.go starts %q, want %q", strings.SplitN(string(got), "\n", 2)[0], want)
			}
		})
	}
}

func TestInitUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"init", "a", "b"}, {"init", "-nope"}} {
		if code, _, stderr := runIn(t, dir, args...); code != ExitUsage {
			t.Errorf("theusgen %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), code, ExitUsage, stderr)
		}
	}
	if code, _, _ := runIn(t, dir, "init", "-h"); code != ExitOK {
		t.Errorf("init -h: exit %d, want 0", code)
	}
	// Outside any module, the steps start with go mod init.
	code, stdout, _ := runIn(t, dir, "init", "fresh")
	if code != ExitOK || !strings.Contains(stdout, "  cd fresh\n  go mod init example.com/fresh\n") {
		t.Errorf("exit %d, stdout:\n%s", code, stdout)
	}
}

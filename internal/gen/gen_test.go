package gen

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/theus-go/theus/internal/contract"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*/")

// goldenName is the expected output of a case, next to its contracts.yaml.
const goldenName = "theus_gen.go.golden"

// cases returns the names of the directories under testdata.
func cases(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no cases under testdata")
	}
	return names
}

// generate reads the contract of the case in dir and returns the one
// generated file. The contract is dir/contracts.yaml or, in a case that
// has none, the struct tags of its Go files.
func generate(t *testing.T, dir string) []byte {
	t.Helper()
	var m *contract.Model
	src, err := os.ReadFile(filepath.Join(dir, "contracts.yaml"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m, err = contract.LoadTags(context.Background(), dir)
	case err == nil:
		m, err = contract.Parse("contracts.yaml", src)
	}
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	files, err := Generate(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[m.Output] == nil {
		t.Fatalf("Generate returned %d files, want only %q", len(files), m.Output)
	}
	return files[m.Output]
}

func TestGolden(t *testing.T) {
	for _, name := range cases(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			got := generate(t, dir)
			if formatted, err := format.Source(got); err != nil || !bytes.Equal(formatted, got) {
				t.Errorf("the generated code is not gofmt'd (err %v)", err)
			}
			golden := filepath.Join(dir, goldenName)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs from the generated code (-want +got; go test -update rewrites it):\n%s", golden, diff)
			}
		})
	}
}

// TestQuickstart checks that the quickstart case is the root contract and
// that the committed example is what the generator makes of it.
func TestQuickstart(t *testing.T) {
	for _, pair := range [][2]string{
		{"../../contracts.yaml", "testdata/quickstart/contracts.yaml"},
		{"../../examples/quickstart/theus_gen.go", "testdata/quickstart/" + goldenName},
	} {
		a, errA := os.ReadFile(pair[0])
		b, errB := os.ReadFile(pair[1])
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s and %s differ; they must stay identical (run go generate ./examples/quickstart, then go test -update)", pair[0], pair[1])
		}
	}
}

func TestDeterministic(t *testing.T) {
	for _, name := range cases(t) {
		dir := filepath.Join("testdata", name)
		if a, b := generate(t, dir), generate(t, dir); !bytes.Equal(a, b) {
			t.Errorf("%s: two runs generated different code", name)
		}
	}
}

func TestGenerateNoPackage(t *testing.T) {
	if _, err := Generate(&contract.Model{Source: "contracts.yaml", Output: "theus_gen.go"}); err == nil {
		t.Error("Generate accepted a model without a package name")
	}
}

func TestPrivateName(t *testing.T) {
	for in, want := range map[string]string{
		"User":        "user",
		"MaxEmailLen": "maxEmailLen",
		"MemberID":    "memberID",
		"URL":         "url",
		"HTTPStatus":  "httpStatus",
		"ID":          "id",
		"V2":          "v2",
		"Type":        "theusType",
		"Func":        "theusFunc",
		"Tx":          "theusTx",
		"Run":         "theusRun",
		"Result":      "theusResult",
		"Writes":      "theusWrites",
	} {
		if got := privateName(in); got != want {
			t.Errorf("privateName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGoldenCompiles type-checks every golden with go vet in a module that
// uses this repository's runtime (with the Go files of a struct-tags case),
// and runs the tests that a case keeps next to its contract (*_test.go, e.g. the JSON encoders against
// encoding/json).
func TestGoldenCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	gomod := "module example.com/golden\n\ngo 1.26\n\nrequire github.com/theus-go/theus v0.0.0\n\n" +
		"replace github.com/theus-go/theus => " + root + "\n"
	write(t, filepath.Join(tmp, "go.mod"), []byte(gomod))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(tmp, "go.sum"), sum)
	var tested []string
	for _, name := range cases(t) {
		dir := filepath.Join("testdata", name)
		golden, err := os.ReadFile(filepath.Join(dir, goldenName))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(tmp, name, "theus_gen.go"), golden)
		// Tests, and for a struct-tags case the Go files of its contract.
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		tests, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(tmp, name, filepath.Base(f)), src)
		}
		if len(tests) > 0 {
			tested = append(tested, "./"+name)
		}
	}
	run := func(args ...string) {
		cmd := exec.Command(goCmd, args...)
		cmd.Dir = tmp
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("vet", "./...")
	if len(tested) > 0 {
		run(append([]string{"test", "-count=1"}, tested...)...)
	}
}

func write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateRefusesBadJSONName(t *testing.T) {
	m := &contract.Model{Source: "contracts.yaml", Package: "p", Output: "theus_gen.go", Types: []*contract.Struct{{
		Name: "T", GoName: "T",
		Fields: []*contract.Field{{Name: `a"b`, GoName: "AB", Type: &contract.Type{Kind: contract.Builtin, Name: "string"}}},
	}}}
	if _, err := Generate(m); err == nil {
		t.Error(`Generate accepted the field name a"b, which encoding/json would ignore as a tag`)
	}
}

// TestLocalNames checks that localNames holds every identifier that the
// generated code declares inside functions, by collecting them from the
// goldens: a name missing from the list could shadow an import alias.
func TestLocalNames(t *testing.T) {
	for _, name := range cases(t) {
		file := filepath.Join("testdata", name, goldenName)
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var idents []*ast.Ident
			switch n := n.(type) {
			case *ast.FuncType:
				for _, fl := range []*ast.FieldList{n.TypeParams, n.Params, n.Results} {
					if fl != nil {
						for _, fd := range fl.List {
							idents = append(idents, fd.Names...)
						}
					}
				}
			case *ast.FuncDecl:
				if n.Recv != nil {
					idents = append(idents, n.Recv.List[0].Names...)
				}
			case *ast.AssignStmt:
				if n.Tok == token.DEFINE {
					for _, l := range n.Lhs {
						idents = append(idents, l.(*ast.Ident))
					}
				}
			case *ast.RangeStmt:
				if n.Tok == token.DEFINE {
					for _, x := range []ast.Expr{n.Key, n.Value} {
						if id, ok := x.(*ast.Ident); ok {
							idents = append(idents, id)
						}
					}
				}
			case *ast.DeclStmt:
				for _, spec := range n.Decl.(*ast.GenDecl).Specs {
					switch spec := spec.(type) {
					case *ast.ValueSpec:
						idents = append(idents, spec.Names...)
					case *ast.TypeSpec:
						idents = append(idents, spec.Name)
					}
				}
			}
			for _, id := range idents {
				if id.Name != "_" && !localNames[id.Name] && !token.IsExported(id.Name) {
					t.Errorf("%s: local name %q is not in localNames", file, id.Name)
				}
			}
			return true
		})
	}
}

// TestQuickstartReadsInOrder checks that the quickstart's generated file
// reads top to bottom as its contract does: the types, the state, the
// views, the processes, and only then, below a comment that says so, what
// the engine needs. Each section starts with its comment, and every
// declaration of the section comes after it and before the next one.
func TestQuickstartReadsInOrder(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "quickstart", goldenName))
	if err != nil {
		t.Fatal(err)
	}
	sections := []struct {
		comment string
		decls   []string // in the order they must come
	}{
		{"// Types: ", []string{"type User struct", "type UserUpdated struct"}},
		{"// State: ", []string{"type State struct", "type DomainState struct", "type GlobalState struct", "type Snapshot struct", "type Patch struct"}},
		{"// Views: ", []string{"type UserView struct", "type UserUpdatedView struct"}},
		{"// Processes: ", []string{"type Processes interface", "type Engine struct", "func NewEngine(",
			"type (", "\tUpdateUserEmailArgs struct", "\tUpdateUserEmailIn struct", "\tUpdateUserEmailOut engine.Out",
			"\tUpdateUserEmailReceipt = engine.ReceiptOf[string]", "\tUpdateUserEmailEffects struct",
			"func (in UpdateUserEmailIn) User()", "func (o *UpdateUserEmailOut) SetUser(",
			"func (e *Engine) UpdateUserEmail(", "func RunUpdateUserEmail(",
			"\tRecordLoginArgs struct", "\tCurrentEmailArgs struct", "func RunCurrentEmail("}},
		{"// What the engine needs of contracts.yaml: ", []string{"var theusSchema =", "func theusRun(", "func theusCloneUser(", "func theusAppendUser("}},
	}
	text := string(src)
	last := 0
	for _, sec := range sections {
		i := strings.Index(text, "\n"+sec.comment)
		if i < last {
			t.Fatalf("section %q is missing or not after the previous one", sec.comment)
		}
		last = i
		for _, d := range sec.decls {
			j := strings.Index(text, "\n"+d)
			if j < last {
				t.Fatalf("%q is missing or not after %q in section %q", d, text[last+1:last+1+min(40, len(text)-last-1)], sec.comment)
			}
			last = j
		}
	}
}

// TestDocExcerpt checks that the excerpt of generated code in
// docs/contracts.md is the quickstart's generated code, as it is now.
func TestDocExcerpt(t *testing.T) {
	doc, err := os.ReadFile("../../docs/contracts.md")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "quickstart", goldenName))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "A process of the quickstart\nreads:\n\n```go\n")
	excerpt, _, closed := strings.Cut(rest, "```")
	if !ok || !closed || excerpt == "" {
		t.Fatal("docs/contracts.md has no excerpt of the quickstart's generated code")
	}
	if !strings.Contains(string(golden), excerpt) {
		t.Errorf("the excerpt in docs/contracts.md is not in the quickstart's generated code any more; copy it again from %s:\n%s", goldenName, excerpt)
	}
}

// A model the contract checks should have refused makes Generate fail
// with an error, not a panic: here a default of a type no check lets
// through.
func TestGenerateDoesNotPanicOnAnUncheckedModel(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "defaults", "contracts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := contract.Parse("contracts.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if m.Package == "" {
		m.Package = "p"
	}
	broken := false
	for _, st := range m.Types {
		for _, f := range st.Fields {
			if f.Default != nil {
				f.Default.Value, broken = struct{}{}, true
			}
		}
	}
	if !broken {
		t.Fatal("testdata/defaults declares no default")
	}
	if _, err := Generate(m); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("Generate = %v, want an internal error", err)
	}
}

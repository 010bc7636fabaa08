package schema

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/theus-go/theus/internal/contract"
)

// root is the repository's root, seen from this package's directory.
const root = ".."

// fixtures are the contracts that must be valid, whatever today's parser
// says of them: the goldens' inputs, the reference contract, the examples'
// contracts and the parser's valid fixtures.
var fixtures = []string{
	"internal/gen/testdata/*/contracts.yaml",
	"contracts.yaml",
	"examples/*/contracts.yaml",
	"internal/contract/testdata/valid*.yaml",
}

func TestFixturesValidate(t *testing.T) {
	n := 0
	for _, pattern := range fixtures {
		files, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("no file matches %s", pattern)
		}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			n++
			if err := ValidateYAML(src); err != nil {
				t.Errorf("%s does not validate against the schema:\n%v", rel(f), err)
			}
		}
	}
	t.Logf("%d fixtures validated", n)
}

// TestAcceptedContractsValidate validates every other contract in the
// repository that theusgen accepts: YAML files anywhere and the YAML files
// inside the CLI's txtar scripts. The ones theusgen refuses (the parser's
// bad fixtures, scripts about errors) are skipped: a schema cannot say
// everything the parser says, so it may accept some of them.
func TestAcceptedContractsValidate(t *testing.T) {
	type doc struct {
		name string
		path string // the file, from which the parser loads imported packages
		src  []byte
	}
	var docs []doc
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"):
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			docs = append(docs, doc{rel(path), path, src})
		case strings.HasSuffix(name, ".txtar"):
			ar, err := txtar.ParseFile(path)
			if err != nil {
				return err
			}
			for _, f := range ar.Files {
				if strings.HasSuffix(f.Name, ".yaml") || strings.HasSuffix(f.Name, ".yml") {
					docs = append(docs, doc{rel(path) + ":" + f.Name, path, f.Data})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, d := range docs {
		if _, err := contract.Parse(d.path, d.src); err != nil || !isContract(d.src) {
			continue
		}
		accepted++
		if err := ValidateYAML(d.src); err != nil {
			t.Errorf("theusgen accepts %s but the schema refuses it:\n%v", d.name, err)
		}
	}
	if accepted < 10 {
		t.Errorf("only %d accepted contracts found under %s; is the walk broken?", accepted, root)
	}
	t.Logf("%d of %d YAML files are contracts theusgen accepts; all validated", accepted, len(docs))
}

// isContract tells a contract from other YAML (CI configuration, say),
// which the parser would refuse anyway for its missing version.
func isContract(src []byte) bool {
	return strings.Contains(string(src), "version:")
}

// TestRejects checks that the schema refuses what theusgen refuses for the
// file's shape alone.
func TestRejects(t *testing.T) {
	const valid = `version: 1
types:
  User: {fields: {id: string, email: string}}
  Account: {fields: {id: string, balance: int64}}
state:
  domain:
    user: User
    accounts: {map: Account, key: string}
  global:
    max: int
topics:
  user.updated: {payload: User, key: id}
processes:
  p:
    inputs: [domain.user, global.max]
    outputs: [domain.user, domain.accounts]
    emits: [user.updated]
    errors: [invalid_email]
    rules:
      - {path: domain.user.email, regex: '^[^@]+@[^@]+$'}
      - {path: "domain.accounts[*].balance", min: 0, on_fail: warn}
  q:
    semantic: pure
    inputs: [domain.user]
    result: string
`
	if err := ValidateYAML([]byte(valid)); err != nil {
		t.Fatalf("the base document does not validate: %v", err)
	}
	for _, tc := range []struct {
		name, old, new string
		want           string // a fragment of the validation error
	}{
		{"unknown top-level key", "version: 1\n", "version: 1\nschema: 2\n", "schema"},
		{"version 2", "version: 1\n", "version: 2\n", "version"},
		{"version as a string", "version: 1\n", "version: \"1\"\n", "version"},
		{"missing version", "version: 1\n", "", "version"},
		{"bad semantic", "semantic: pure", "semantic: query", "semantic"},
		{"pure with outputs", "semantic: pure\n", "semantic: pure\n    outputs: [domain.user]\n", "outputs"},
		{"global output", "outputs: [domain.user, domain.accounts]", "outputs: [global.max]", "outputs"},
		{"unknown process key", "result: string", "returns: string", "returns"},
		{"pointer type", "user: User", "user: \"*User\"", "user"},
		{"collection without key", "{map: Account, key: string}", "{map: Account}", "accounts"},
		{"collection with a float key", "key: string}", "key: float64}", "accounts"},
		{"topic without payload", "{payload: User, key: id}", "{key: id}", "user.updated"},
		{"rule without a check", "min: 0, on_fail: warn", "on_fail: warn", "rules"},
		{"bad on_fail", "on_fail: warn", "on_fail: ignore", "on_fail"},
		{"bad regex", `regex: '^[^@]+@[^@]+$'`, `regex: '(['`, "regex"},
		{"negative max_len", "min: 0,", "max_len: -1,", "max_len"},
		{"keyword package", "version: 1\n", "version: 1\npackage: func\n", "package"},
		{"output outside", "version: 1\n", "version: 1\noutput: ../x.go\n", "output"},
		{"output ignored by go", "version: 1\n", "version: 1\noutput: gen/_x.go\n", "output"},
		{"output not Go", "version: 1\n", "version: 1\noutput: x.txt\n", "output"},
		{"global collection", "max: int", "max: {map: int, key: string}", "max"},
		{"required false", "min: 0,", "required: false,", "required"},
		{"[*] twice", `"domain.accounts[*].balance"`, `"domain.accounts[*].b[*]"`, "path"},
		{"error without a letter", "[invalid_email]", "[\"--\"]", "errors"},
		{"a list where a mapping belongs", "  User: {fields: {id: string, email: string}}", "  User: [id, email]", "User"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(valid, tc.old) {
				t.Fatalf("%q is not in the base document", tc.old)
			}
			src := strings.Replace(valid, tc.old, tc.new, 1)
			err := ValidateYAML([]byte(src))
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a validation error for:\n%s", err, src)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not mention %q:\n%v", tc.want, err)
			}
		})
	}
}

func TestRejectsEmpty(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "[]\n", "1\n"} {
		if err := ValidateYAML([]byte(src)); err == nil {
			t.Errorf("%q validated", src)
		}
	}
}

func rel(path string) string {
	r, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(r)
}

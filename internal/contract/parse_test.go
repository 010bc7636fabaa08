package contract

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err and testdata/badtags/*.err with the errors reported now")

const file = "contracts.yaml"

func at(line, col int) Pos { return Pos{File: file, Line: line, Col: col} }

func TestParseValid(t *testing.T) {
	src, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(file, src)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}

	str := func(expr string) *Type { return &Type{Kind: Builtin, Name: expr, Expr: expr} }
	money := &Import{Alias: "money", Path: "github.com/theus-go/theus/internal/contract/testdata/money", Pos: at(7, 3)}
	// What go/types says of money.Amount: its fields by their JSON names.
	amount := &Type{Kind: ImportedStruct, Expr: "struct{...}", Struct: &Struct{Fields: []*Field{
		{Name: "units", GoName: "Units", Type: str("int64")},
		{Name: "currency", GoName: "Currency", Type: str("string")},
	}}}
	user := &Struct{Name: "User", GoName: "User", Pos: at(10, 3)}
	user.Fields = []*Field{
		{Name: "id", GoName: "ID", Type: str("string"), Pos: at(11, 14)},
		{Name: "email", GoName: "Email", Type: str("string"), Pos: at(11, 26)},
		{Name: "verified", GoName: "Verified", Type: str("bool"), Pos: at(11, 41)},
		{Name: "tags", GoName: "Tags", Type: &Type{Kind: Slice, Elem: str("string"), Expr: "[]string"}, Pos: at(11, 57)},
	}
	account := &Struct{Name: "Account", GoName: "Account", Pos: at(12, 3)}
	account.Fields = []*Field{
		{Name: "id", GoName: "ID", Type: str("string"), Pos: at(13, 14)},
		{Name: "balance", GoName: "Balance", Type: str("int64"), Pos: at(13, 26)},
		{Name: "limit", GoName: "Limit", Type: &Type{Kind: Imported, Name: "Amount", Import: money, Expr: "money.Amount", Under: amount}, Pos: at(13, 42)},
	}
	updated := &Struct{Name: "UserUpdated", GoName: "UserUpdated", Pos: at(14, 3)}
	updated.Fields = []*Field{
		{Name: "id", GoName: "ID", Type: str("string"), Pos: at(15, 14)},
		{Name: "email", GoName: "Email", Type: str("string"), Pos: at(15, 26)},
	}
	tree := &Struct{Name: "Tree", GoName: "Tree", Pos: at(16, 3)}
	treeType := &Type{Kind: Named, Name: "Tree", Struct: tree, Expr: "Tree"}
	tree.Fields = []*Field{
		{Name: "children", GoName: "Children", Type: &Type{Kind: Slice, Elem: treeType, Expr: "[]Tree"}, Pos: at(18, 7)},
		{Name: "by_name", GoName: "ByName", Type: &Type{Kind: Map, Key: str("string"), Elem: treeType, Expr: "map[string]Tree"}, Pos: at(19, 7)},
	}
	userType := &Type{Kind: Named, Name: "User", Struct: user, Expr: "User"}
	accountType := &Type{Kind: Named, Name: "Account", Struct: account, Expr: "Account"}
	updatedType := &Type{Kind: Named, Name: "UserUpdated", Struct: updated, Expr: "UserUpdated"}

	// Domain first, although global is written first.
	stUser := &StateField{Zone: ZoneDomain, Name: "user", GoName: "User", Type: userType, Pos: at(25, 5)}
	stAccount := &StateField{Zone: ZoneDomain, Name: "account", GoName: "Account", Type: accountType, Pos: at(26, 5)}
	stMax := &StateField{Zone: ZoneGlobal, Name: "max_email_changes", GoName: "MaxEmailChanges", Type: str("int"), Pos: at(23, 5)}

	topicUpdated := &Topic{Name: "user.updated", GoName: "UserUpdated", Payload: updatedType, Key: updated.Fields[0], Pos: at(29, 3)}
	topicAudit := &Topic{Name: "audit", GoName: "Audit", Payload: updatedType, Pos: at(32, 3)}

	want := &Model{
		Source:    file,
		Package:   "shop",
		Output:    "gen/theus_gen.go",
		OutputPos: at(4, 1),
		Imports:   []*Import{money},
		Types:     []*Struct{user, account, updated, tree},
		State:     []*StateField{stUser, stAccount, stMax},
		Topics:    []*Topic{topicUpdated, topicAudit},
		Processes: []*Process{
			{
				Name:     "update_user_email",
				GoName:   "UpdateUserEmail",
				Doc:      "Changes a user's email and announces it.",
				Semantic: Effect,
				Args:     []*Field{{Name: "email", GoName: "Email", Type: str("string"), Pos: at(40, 12)}},
				Inputs: []*Path{
					{Text: "domain.user", Field: stUser, Type: userType, GoName: "User", Pos: at(41, 14)},
					{Text: "global.max_email_changes", Field: stMax, Type: str("int"), GoName: "MaxEmailChanges", Pos: at(41, 27)},
				},
				Outputs: []*Path{{Text: "domain.user", Field: stUser, Type: userType, GoName: "User", Pos: at(42, 15)}},
				Emits:   []*Topic{topicUpdated},
				Result:  str("string"),
				Pos:     at(36, 3),
				KeyPos: map[string]Pos{
					"doc": at(37, 5), "semantic": at(39, 5), "args": at(40, 5), "inputs": at(41, 5),
					"outputs": at(42, 5), "emits": at(43, 5), "result": at(44, 5),
				},
			},
			{
				Name:     "user_email",
				GoName:   "UserEmail",
				Semantic: Pure,
				Inputs: []*Path{{
					Text: "domain.user.email", Field: stUser, Sub: []*Field{user.Fields[1]},
					Type: str("string"), GoName: "UserEmail", Pos: at(47, 14),
				}},
				Result: str("string"),
				Pos:    at(45, 3),
				KeyPos: map[string]Pos{"semantic": at(46, 5), "inputs": at(47, 5), "result": at(48, 5)},
			},
			{
				Name:     "touch",
				GoName:   "Touch",
				Semantic: Effect, // the default
				Outputs: []*Path{
					{
						Text: "domain.user.verified", Field: stUser, Sub: []*Field{user.Fields[2]},
						Type: str("bool"), GoName: "UserVerified", Pos: at(51, 9),
					},
					{
						Text: "domain.account.balance", Field: stAccount, Sub: []*Field{account.Fields[1]},
						Type: str("int64"), GoName: "AccountBalance", Pos: at(52, 9),
					},
				},
				Pos:    at(49, 3),
				KeyPos: map[string]Pos{"outputs": at(50, 5)},
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse model mismatch (-want +got):\n%s", diff)
	}
	// Resolved references must be the declarations themselves, not copies:
	// the generator compares them by pointer.
	if got.Types[0].Fields[3].Type.Elem.Kind != Builtin || got.Topics[0].Key != got.Types[2].Fields[0] {
		t.Error("topic key is not the payload's field")
	}
	if got.Processes[0].Inputs[0].Field != got.State[0] || got.Processes[0].Emits[0] != got.Topics[0] {
		t.Error("paths or emits do not point at the declarations")
	}
}

// TestParseSmall covers valid corner cases that the full contract does not.
func TestParseSmall(t *testing.T) {
	tests := []struct {
		name, src string
		check     func(*testing.T, *Model)
	}{
		{"defaults", "version: 1\n", func(t *testing.T, m *Model) {
			if m.Package != "" || m.Output != DefaultOutput || m.Source != file {
				t.Errorf("got package %q, output %q, source %q", m.Package, m.Output, m.Source)
			}
		}},
		{"empty sections", "version: 1\nimports:\ntypes:\nstate:\n  domain:\ntopics: {}\nprocesses: {}\n", nil},
		{"integer forms of version", "version: 0x1\n", nil},
		{"process with nothing", "version: 1\nprocesses:\n  noop:\n", func(t *testing.T, m *Model) {
			if p := m.Processes[0]; p.Semantic != Effect || p.GoName != "Noop" {
				t.Errorf("got %+v", p)
			}
		}},
		{"type expressions", "version: 1\ntypes:\n  T:\n    fields:\n      a: ' map [ int64 ] [ ] map[string]byte '\n      b: rune\n", func(t *testing.T, m *Model) {
			if got := m.Types[0].Fields[0].Type.Expr; got != "map[int64][]map[string]byte" {
				t.Errorf("Expr = %q", got)
			}
		}},
		{"recursion through a map or a slice", "version: 1\ntypes:\n  A: {fields: {b: B}}\n  B: {fields: {as: '[]A', m: 'map[int]A'}}\n", nil},
		{"integer topic key", "version: 1\ntypes:\n  E: {fields: {n: uint16}}\ntopics:\n  e: {payload: E, key: n}\n", func(t *testing.T, m *Model) {
			if m.Topics[0].Key == nil || m.Topics[0].Key.Name != "n" {
				t.Errorf("key = %+v", m.Topics[0].Key)
			}
		}},
		{"guide", "version: 1\nprocesses:\n  g: {semantic: guide}\n", func(t *testing.T, m *Model) {
			if m.Processes[0].Semantic != Guide {
				t.Errorf("semantic = %q", m.Processes[0].Semantic)
			}
		}},
		{"byte order mark", "\ufeffversion: 1\n", nil},
		{"explicit document", "---\nversion: 1\n...\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(file, []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

// TestBadContracts checks every testdata/bad/CASE.yaml against the errors
// in CASE.err; go test -update rewrites the .err files.
func TestBadContracts(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d bad contracts, want at least 20", len(files))
	}
	for _, yamlFile := range files {
		name := strings.TrimSuffix(filepath.Base(yamlFile), ".yaml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(yamlFile)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(file, src)
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Parse returned error %v (%T), want an ErrorList", err, err)
			}
			if m != nil {
				t.Error("Parse returned a Model along with errors")
			}
			checkList(t, list)
			checkErrFile(t, strings.TrimSuffix(yamlFile, ".yaml")+".err", list.Error()+"\n")
		})
	}
}

// checkList checks what every ErrorList promises, whatever the input.
func checkList(t *testing.T, list ErrorList) {
	t.Helper()
	for i, e := range list {
		if e.Pos.File != file || e.Pos.Line < 1 || e.Pos.Col < 1 {
			t.Errorf("bad position %v in %q", e.Pos, e.Error())
		}
		if i > 0 && before(e.Pos, list[i-1].Pos) {
			t.Errorf("errors not sorted: %q after %q", e.Error(), list[i-1].Error())
		}
		// No Go type of the decoder may reach users.
		if strings.Contains(e.Msg, "!!") || strings.Contains(e.Msg, "yaml.") || strings.Contains(e.Msg, "unmarshal") {
			t.Errorf("decoder internals in %q", e.Error())
		}
	}
}

func TestErrorListError(t *testing.T) {
	list := ErrorList{
		{Pos: at(1, 1), Msg: "first"},
		{Pos: at(2, 3), Msg: "second"},
	}
	want := "contracts.yaml:1:1: first\ncontracts.yaml:2:3: second"
	if got := list.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	unsorted := ErrorList{list[1], list[0], {Pos: at(2, 3), Msg: "a"}, list[1]}
	if got, want := unsorted.sorted().Error(), "contracts.yaml:1:1: first\ncontracts.yaml:2:3: a\ncontracts.yaml:2:3: second"; got != want {
		t.Errorf("sorted() =\n%s\nwant\n%s", got, want)
	}
}

// FuzzParse feeds Parse the bad and valid contracts of testdata, mutated:
// whatever the input, Parse returns a Model or an ErrorList that keeps its
// promises, and never panics (the hints and suggestions read user text at
// positions the parser gives).
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range append(files, "testdata/valid.yaml") {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if !strings.Contains(string(src), "imports:") { // those run the go command
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if strings.Contains(string(src), "imports") {
			t.Skip("runs the go command")
		}
		m, err := Parse(file, src)
		var list ErrorList
		switch {
		case err == nil && m == nil:
			t.Fatal("no Model and no error")
		case err != nil && !errors.As(err, &list):
			t.Fatalf("error %v (%T), want an ErrorList", err, err)
		}
		for i, e := range list {
			if e.Pos.Line < 1 || e.Pos.Col < 1 || i > 0 && before(e.Pos, list[i-1].Pos) {
				t.Errorf("bad or unsorted position in %q", e.Error())
			}
		}
	})
}

// TestFieldDefaults checks that `default:` literals reach the model typed
// by the field's kind, and that a field without one has none.
func TestFieldDefaults(t *testing.T) {
	src := `version: 1
types:
  Order:
    fields:
      id: string
      note: {type: string, default: "none"}
      open: {type: bool, default: true}
      seats: {type: int8, default: -128}
      big: {type: uint64, default: 18446744073709551615}
      ratio: {type: float32, default: 0.5}
      plain: {type: int}
state:
  domain:
    orders: {map: Order, key: string}
`
	m, err := Parse("contracts.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": nil, "note": "none", "open": true, "seats": int64(-128), "big": uint64(18446744073709551615), "ratio": 0.5, "plain": nil}
	for _, f := range m.Types[0].Fields {
		var got any
		if f.Default != nil {
			got = f.Default.Value
		}
		if got != want[f.Name] {
			t.Errorf("%s: default %#v, want %#v", f.Name, got, want[f.Name])
		}
	}
	if d := m.Types[0].Fields[1].Default; d == nil || d.Pos != (Pos{File: "contracts.yaml", Line: 6, Col: 37}) {
		t.Errorf("note's default at %+v, want contracts.yaml:6:37", d)
	}
}

package lint

import (
	"slices"
	"strings"
	"testing"

	"github.com/theus-go/theus/internal/contract"
)

// TestExplain maps undefined generated names back to the contract entry
// that would declare them.
func TestExplain(t *testing.T) {
	src := `version: 1
types:
  User: {fields: {email: string, address: Address}}
  Address: {fields: {city: string}}
  Account: {fields: {balance: int64}}
  Ev: {fields: {id: string}}
state:
  domain:
    user: User
    accounts: {map: Account, key: string}
  global:
    limit: int
topics:
  user.moved: {payload: Ev}
processes:
  move:
    args: {to: string}
    inputs: [domain.user]
    emits: [user.moved]
  look:
    semantic: pure
    inputs: [domain.user]
`
	m, err := contract.Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		typ, name string
		want      string // "" when it stays a compile error
	}{
		{"MoveIn", "UserAddressCity", `process "move" does not read domain.user.address.city: add domain.user.address.city to its inputs: (c.yaml:18)`},
		{"MoveIn", "Limit", `process "move" does not read global.limit: add global.limit to its inputs: (c.yaml:18)`},
		{"MoveIn", "Accounts", `does not read domain.accounts: add domain.accounts to its inputs: (c.yaml:18)`},
		{"MoveOut", "SetUserAddressCity", `does not write domain.user.address.city: add outputs: [domain.user.address.city] to process "move" (c.yaml:16)`},
		{"MoveOut", "SetLimit", `global state is read-only in processes`},
		{"MoveOut", "Accounts", `does not write domain.accounts`},
		{"MoveOut", "PutAccounts", `does not write domain.accounts`},
		{"MoveOut", "SetAccounts", ""}, // a collection has no Set
		{"MoveOut", "EmitUserMoved", `process "move" emits user.moved (c.yaml:19), but the generated code is older`},
		{"MoveOut", "EmitUserGone", `the contract has no topic UserGone: declare it under topics: (e.g. user_gone)`},
		{"MoveOut", "SetResult", `process "move" has no result: add result: TYPE to process "move" (c.yaml:16)`},
		{"MoveArgs", "To", `process "move" has the argument to (c.yaml:17), but the generated code is older`},
		{"MoveArgs", "From", `process "move" has no argument From: add from: TYPE to its args: (c.yaml:17)`},
		{"LookOut", "EmitUserMoved", `(a pure process writes and emits nothing: make it semantic: effect)`},
		{"MoveIn", "Nope", ""},
		{"OtherIn", "User", ""},
	}
	for _, tt := range tests {
		u := Undefined{File: "p.go", Line: 1, Col: 1, Expr: "x." + tt.name, Type: tt.typ, Name: tt.name}
		found, rest := Explain(m, []Undefined{u})
		switch {
		case tt.want == "" && (len(found) != 0 || len(rest) != 1):
			t.Errorf("%s.%s: got %v, want it unexplained", tt.typ, tt.name, found)
		case tt.want != "" && (len(found) != 1 || !strings.Contains(found[0].Message, tt.want) || found[0].Code != CodeMismatch):
			t.Errorf("%s.%s: got %v, want a TC012 finding with %q", tt.typ, tt.name, found, tt.want)
		}
	}
}

// TestExplainOnce reports a name used in several places once, at its
// first use.
func TestExplainOnce(t *testing.T) {
	m, err := contract.Parse("c.yaml", []byte("version: 1\nstate: {domain: {n: int}}\nprocesses:\n  p: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	u := func(line int) Undefined {
		return Undefined{File: "p.go", Line: line, Col: 2, Expr: "in.N", Type: "PIn", Name: "N"}
	}
	found, _ := Explain(m, []Undefined{u(9), u(3), u(5)})
	if len(found) != 1 || found[0].Line != 3 || !strings.HasPrefix(found[0].Message, "in.N undefined (also at 5:2 and 9:2): ") {
		t.Errorf("got %+v", found)
	}
	if !slices.ContainsFunc(Rules, func(r Rule) bool { return r.Code == CodeMismatch }) {
		t.Error("TC012 has no rule")
	}
}

package contract

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const rulesSrc = `version: 1
types:
  Address:
    fields: {city: string}
  User:
    fields: {email: string, age: uint8, score: float32, tags: "[]string", address: Address, ok: bool}
state:
  domain:
    user: User
    count: int64
processes:
  update:
    outputs: [domain.user, domain.count]
    errors: [invalid_email, not_found]
    rules:
      - {path: domain.user.email, regex: '^[^@]+@[^@]+$', min_len: 3, max_len: 0x10}
      - {path: domain.user.age, min: 18, max: 1_20, one_of: [18, 0o31], on_fail: warn}
      - {path: domain.user.score, min: -1, max: 2.5e3, one_of: [1, .5]}
      - {path: domain.user.tags, max_len: 16, required: true, on_fail: reject}
      - {path: domain.user.address.city, one_of: ["a\"b", x]}
      - {path: domain.user.address, required: true}
      - {path: domain.user.ok, one_of: [true]}
      - {path: domain.count, min: -9223372036854775808}
  rename:
    outputs: [domain.user.email]
    errors: [not_found]
    rules:
      - {path: domain.user.email, required: true}
`

func TestParseEachRule(t *testing.T) {
	src := `version: 1
types:
  Account:
    fields: {id: string, balance: int64}
state:
  domain:
    accounts: {map: Account, key: string}
    limits: {map: int, key: int}
processes:
  transfer:
    outputs: [domain.accounts, domain.limits]
    rules:
      - {path: "domain.accounts[*].balance", min: 0}
      - {path: "domain.limits[*]", max: 10, on_fail: warn}
`
	m, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	pr := m.Processes[0]
	r0, r1 := pr.Rules[0], pr.Rules[1]
	if !r0.Each || r0.Path != pr.Outputs[0] || len(r0.Sub) != 1 || r0.Sub[0].Name != "balance" || r0.Type.Expr != "int64" {
		t.Errorf("rule 0 = %+v, want every entry's balance", r0)
	}
	if !r1.Each || r1.Path != pr.Outputs[1] || len(r1.Sub) != 0 || r1.Type.Expr != "int" || !r1.Warn {
		t.Errorf("rule 1 = %+v, want every entry of limits", r1)
	}
}

func TestParseRulesAndErrors(t *testing.T) {
	m, err := Parse(file, []byte(rulesSrc))
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	if len(m.Errors) != 2 || m.Errors[0].GoName != "ErrInvalidEmail" || m.Errors[1].GoName != "ErrNotFound" || m.Errors[1].Pos != at(14, 29) {
		t.Fatalf("Model.Errors = %+v", m.Errors)
	}
	up, rn := m.Processes[0], m.Processes[1]
	if len(up.Errors) != 2 || up.Errors[1] != m.Errors[1] || len(rn.Errors) != 1 || rn.Errors[0] != m.Errors[1] {
		t.Fatalf("processes do not share the ErrorDecls: %+v, %+v", up.Errors, rn.Errors)
	}

	type rule struct {
		Output string
		Sub    []string
		Type   string
		Warn   bool
		Checks []Check
	}
	var got []rule
	for _, pr := range m.Processes {
		for _, r := range pr.Rules {
			g := rule{Output: r.Path.Text, Type: r.Type.Expr, Warn: r.Warn}
			for _, f := range r.Sub {
				g.Sub = append(g.Sub, f.Name)
			}
			for _, c := range r.Checks {
				cc := *c
				cc.Pos = Pos{}
				g.Checks = append(g.Checks, cc)
			}
			got = append(got, g)
		}
	}
	want := []rule{
		{"domain.user", []string{"email"}, "string", false, []Check{{Kind: "regex", Regex: "^[^@]+@[^@]+$"}, {Kind: "min_len", Lit: "3"}, {Kind: "max_len", Lit: "16"}}},
		{"domain.user", []string{"age"}, "uint8", true, []Check{{Kind: "min", Lit: "18"}, {Kind: "max", Lit: "120"}, {Kind: "one_of", OneOf: []string{"18", "25"}}}},
		{"domain.user", []string{"score"}, "float32", false, []Check{{Kind: "min", Lit: "-1"}, {Kind: "max", Lit: "2500"}, {Kind: "one_of", OneOf: []string{"1", "0.5"}}}},
		{"domain.user", []string{"tags"}, "[]string", false, []Check{{Kind: "max_len", Lit: "16"}, {Kind: "required"}}},
		{"domain.user", []string{"address", "city"}, "string", false, []Check{{Kind: "one_of", OneOf: []string{`"a\"b"`, `"x"`}}}},
		{"domain.user", []string{"address"}, "Address", false, []Check{{Kind: "required"}}},
		{"domain.user", []string{"ok"}, "bool", false, []Check{{Kind: "one_of", OneOf: []string{"true"}}}},
		{"domain.count", nil, "int64", false, []Check{{Kind: "min", Lit: "-9223372036854775808"}}},
		{"domain.user.email", nil, "string", false, []Check{{Kind: "required"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if r := up.Rules[0]; r.Path != up.Outputs[0] || r.Text != "domain.user.email" || r.Pos != at(16, 9) || r.Checks[0].Pos != at(16, 42) {
		t.Errorf("rule 0 = %+v, want it on the output itself, with positions", r)
	}
}

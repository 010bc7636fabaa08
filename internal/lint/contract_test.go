package lint

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/theus-go/theus/internal/contract"
)

// TestContractErrorCodes parses the contract package's bad contracts and
// checks the code each error gets, so that a reworded parser message
// cannot lose its code unnoticed.
func TestContractErrorCodes(t *testing.T) {
	cases := map[string][]string{
		"pure_with_effects.yaml":   {CodePureEffects, CodePureEffects, CodeContract},
		"global_output.yaml":       {CodeGlobalOutput},
		"emits_unknown_topic.yaml": {CodeTopicUndeclared, CodeContract},
		"rule_not_output.yaml":     {CodeRuleNotOutput, CodeRuleNotOutput, CodeRuleNotOutput, CodeRuleNotOutput, CodeUnknownPath},
		"unknown_type.yaml":        {CodeUnknownType, CodeUnknownType, CodeUnknownType},
		"unknown_path_field.yaml":  {CodeUnknownPath, CodeUnknownPath, CodeUnknownPath, CodeUnknownPath, CodeUnknownPath},
		"unknown_path_zone.yaml":   {CodeUnknownPath, CodeUnknownPath, CodeUnknownPath, CodeUnknownPath},
		"topic_key.yaml":           {CodeTopicKey, CodeTopicKey, CodeTopicKey, CodeContract, CodeContract, CodeContract, CodeContract},
	}
	for name, want := range cases {
		path := filepath.Join("..", "contract", "testdata", "bad", name)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = contract.Parse("contracts.yaml", src)
		fs, ok := ContractErrors(err)
		if !ok {
			t.Fatalf("%s: Parse returned %v, want a contract.ErrorList", name, err)
		}
		var got []string
		for _, f := range fs {
			got = append(got, f.Code)
			if f.Severity != Error || f.Line == 0 {
				t.Errorf("%s: finding %+v: want an error with a position", name, f)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: codes %v, want %v\n%v", name, got, want, err)
		}
	}
}

func TestCheckModel(t *testing.T) {
	src := `version: 1
package: shop
types:
  User: {fields: {id: string}}
  Gone: {fields: {id: string}}
state:
  domain:
    user: User
    audit: "[]string"
  global:
    max: int
topics:
  user.updated: {payload: User, key: id}
  user.gone: {payload: Gone}
processes:
  rename:
    inputs: [domain.user.id, global.max]
    outputs: [domain.user]
    emits: [user.updated]
`
	m, err := contract.Parse("contracts.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := CheckModel(m)
	want := []Finding{
		{File: "contracts.yaml", Line: 14, Col: 3, Code: CodeTopicNotEmitted, Severity: Error,
			Message: `topic "user.gone" is emitted by no process: add it to a process's emits, or remove it`},
		{File: "contracts.yaml", Line: 9, Col: 5, Code: CodeUnusedState, Severity: Warning,
			Message: "state field domain.audit is read and written by no process: use it in a process's inputs or outputs, or remove it"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("CheckModel:\n got %+v\nwant %+v", got, want)
	}
}

func TestRulesCoverCodes(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules {
		if seen[r.Code] {
			t.Errorf("code %s listed twice", r.Code)
		}
		seen[r.Code] = true
	}
	for _, a := range Analyzers() {
		found := false
		for _, r := range Rules {
			found = found || r.Name == a.Name
		}
		if !found {
			t.Errorf("analyzer %s has no rule", a.Name)
		}
	}
}

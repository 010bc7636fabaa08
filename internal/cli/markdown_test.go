package cli

import (
	"strings"
	"testing"

	"github.com/theus-go/theus/internal/contract"
)

// The doc command's page is checked whole by cmd/theusgen's doc script;
// these are the cases a contract file cannot show yet or shows poorly.

func TestDocEmptyContract(t *testing.T) {
	var b strings.Builder
	if err := renderDoc(&b, &contract.Model{Source: "c.yaml"}, "c.yaml"); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{"# Contract `c.yaml`\n", "## Processes\n\nNone.\n", "## Topics\n\nNone.\n", "## State\n\nNone.\n", "```mermaid\ngraph LR\n```\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "## Types") {
		t.Errorf("a contract without types has a Types section:\n%s", got)
	}
}

func TestDocCollection(t *testing.T) {
	str := &contract.Type{Kind: contract.Builtin, Name: "string", Expr: "string"}
	acct := &contract.Type{Kind: contract.Named, Name: "Account", Expr: "Account"}
	f := &contract.StateField{Zone: contract.ZoneDomain, Name: "accounts", Collection: true,
		Type: &contract.Type{Kind: contract.Map, Key: str, Elem: acct, Expr: "map[string]Account"}}
	var b strings.Builder
	if err := renderDoc(&b, &contract.Model{Package: "bank", State: []*contract.StateField{f}}, "contracts.yaml"); err != nil {
		t.Fatal(err)
	}
	if want := "| `domain.accounts` | collection of `Account` by `string` |\n"; !strings.Contains(b.String(), want) {
		t.Errorf("page lacks %q:\n%s", want, b.String())
	}
}

func TestDocEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"a | b":               `a \| b`,
		"one\ntwo\n\nthree\n": "one two<br><br>three",
		"  x  ":               "x",
	} {
		if got := tableCell(in); got != want {
			t.Errorf("tableCell(%q) = %q, want %q", in, got, want)
		}
	}
	if got, want := mermaidLabel(`say "hi"`), `"say #quot;hi#quot;"`; got != want {
		t.Errorf("mermaidLabel = %q, want %q", got, want)
	}
	if got, want := codeList(nil), "—"; got != want {
		t.Errorf("codeList(nil) = %q, want %q", got, want)
	}
}

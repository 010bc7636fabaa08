package golangci_test

import (
	"testing"

	"github.com/golangci/plugin-module-register/register"

	_ "github.com/theus-go/theus/lint/golangci"
)

func TestPlugin(t *testing.T) {
	newPlugin, err := register.GetPlugin("theus")
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlugin(map[string]any{"disable": []any{"noclock"}})
	if err != nil {
		t.Fatal(err)
	}
	as, err := p.BuildAnalyzers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Name)
	}
	if len(as) != 5 || p.GetLoadMode() != register.LoadModeTypesInfo {
		t.Errorf("analyzers %v, load mode %q; want 5 without noclock, typesinfo", names, p.GetLoadMode())
	}
	for _, a := range as {
		if a.Name == "noclock" {
			t.Error("noclock is disabled but built")
		}
	}
	if _, err := newPlugin(map[string]any{"disable": []any{"nope"}}); err == nil {
		t.Error("an unknown analyzer in disable is accepted")
	}
	if _, err := newPlugin(map[string]any{"unknown": true}); err == nil {
		t.Error("an unknown setting is accepted")
	}
}

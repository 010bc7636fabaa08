// Package golangci is the golangci-lint module plugin of Theus: it adds
// the analyzers of `theusgen lint` (noio, noclock, norand, noglobalwrite,
// nogo, noescape) to a custom golangci-lint binary, as one linter named
// "theus".
//
// Build the binary with `golangci-lint custom` and this .custom-gcl.yml:
//
//	version: v2.15.0
//	plugins:
//	  - module: github.com/theus-go/theus
//	    import: github.com/theus-go/theus/lint/golangci
//	    version: v0.1.0 # the version of Theus your module uses
//
// and enable it in .golangci.yml:
//
//	version: "2"
//	linters:
//	  enable: [theus]
//	  settings:
//	    custom:
//	      theus:
//	        type: module
//	        description: Theus processes do no I/O and keep no inputs
//	        settings:
//	          disable: [noclock] # optional: analyzers to leave out
//
// The contract checks of `theusgen lint` (TC codes) read contracts.yaml,
// not Go code, and are not part of the plugin: run `theusgen lint` for
// them. docs/lint.md has the details.
package golangci

import (
	"fmt"
	"slices"

	"github.com/golangci/plugin-module-register/register"
	"golang.org/x/tools/go/analysis"

	"github.com/theus-go/theus/internal/lint"
)

func init() {
	register.Plugin("theus", New)
}

// Settings are the plugin's settings in .golangci.yml.
type Settings struct {
	// Disable names analyzers to leave out, e.g. ["noclock"].
	Disable []string `json:"disable"`
}

// Plugin is the golangci-lint plugin.
type Plugin struct {
	settings Settings
}

var _ register.LinterPlugin = (*Plugin)(nil)

// New returns the plugin for golangci-lint's raw settings.
func New(settings any) (register.LinterPlugin, error) {
	s, err := register.DecodeSettings[Settings](settings)
	if err != nil {
		return nil, err
	}
	for _, name := range s.Disable {
		if !slices.ContainsFunc(lint.Analyzers(), func(a *analysis.Analyzer) bool { return a.Name == name }) {
			return nil, fmt.Errorf("theus: unknown analyzer %q in disable", name)
		}
	}
	return &Plugin{settings: s}, nil
}

// BuildAnalyzers returns the enabled analyzers.
func (p *Plugin) BuildAnalyzers() ([]*analysis.Analyzer, error) {
	var out []*analysis.Analyzer
	for _, a := range lint.Analyzers() {
		if !slices.Contains(p.settings.Disable, a.Name) {
			out = append(out, a)
		}
	}
	return out, nil
}

// GetLoadMode says the analyzers need type information.
func (p *Plugin) GetLoadMode() string { return register.LoadModeTypesInfo }

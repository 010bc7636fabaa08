package processes_test

import (
	"slices"
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/theus-go/theus/internal/lint/passes/processes"
)

// TestRoots checks which methods are processes, and which functions they
// reach.
func TestRoots(t *testing.T) {
	// The // want comments of the testdata are for the concern analyzers:
	// this test reads the Result only.
	results := analysistest.Run(quiet{}, "../testdata", processes.Analyzer,
		"example.com/lintcases/nogo", "example.com/lintcases/handwritten", "example.com/lintcases/helpers")
	got := map[string][]string{}
	reached := map[string][]string{}
	for _, r := range results {
		res := r.Result.(*processes.Result)
		for _, f := range res.Roots {
			got[r.Pass.Pkg.Path()] = append(got[r.Pass.Pkg.Path()], f.Name())
		}
		for _, f := range res.Funcs {
			if f.Reached() {
				reached[r.Pass.Pkg.Path()] = append(reached[r.Pass.Pkg.Path()], f.Name())
			}
		}
	}
	// nogo implements shop.Processes, generated in another package.
	if want := []string{"app.Lookup", "app.Update"}; !slices.Equal(got["example.com/lintcases/nogo"], want) {
		t.Errorf("nogo roots = %v, want %v", got["example.com/lintcases/nogo"], want)
	}
	if want := []string{"app.Update", "fanOut", "app.Lookup"}; !slices.Equal(reached["example.com/lintcases/nogo"], want) {
		t.Errorf("nogo reached = %v, want %v (unreached is not)", reached["example.com/lintcases/nogo"], want)
	}
	for _, pkg := range []string{"example.com/lintcases/handwritten", "example.com/lintcases/helpers"} {
		if len(got[pkg]) > 0 || len(reached[pkg]) > 0 {
			t.Errorf("%s: roots %v, reached %v; want none", pkg, got[pkg], reached[pkg])
		}
	}
}

// quiet is an analysistest.Testing that ignores the expectations.
type quiet struct{}

func (quiet) Errorf(string, ...any) {}

package noio_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/theus-go/theus/internal/lint/passes/noio"
)

// Test checks the findings in a process package, the fact exported for a
// helper package of the module, and that a hand-written Processes
// interface does not make processes.
func Test(t *testing.T) {
	analysistest.Run(t, "../testdata", noio.Analyzer,
		"example.com/lintcases/noio", "example.com/lintcases/helpers", "example.com/lintcases/handwritten")
}

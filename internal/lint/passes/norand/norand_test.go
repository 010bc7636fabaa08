package norand_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/theus-go/theus/internal/lint/passes/norand"
)

func Test(t *testing.T) {
	analysistest.Run(t, "../testdata", norand.Analyzer, "example.com/lintcases/norand")
}

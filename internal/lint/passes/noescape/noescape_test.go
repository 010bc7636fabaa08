package noescape_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/theus-go/theus/internal/lint/passes/noescape"
)

func Test(t *testing.T) {
	analysistest.Run(t, "../testdata", noescape.Analyzer, "example.com/lintcases/noescape")
}

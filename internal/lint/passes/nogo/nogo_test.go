package nogo_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/theus-go/theus/internal/lint/passes/nogo"
)

func Test(t *testing.T) {
	analysistest.Run(t, "../testdata", nogo.Analyzer, "example.com/lintcases/nogo")
}

package noglobalwrite_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/theus-go/theus/internal/lint/passes/noglobalwrite"
)

func Test(t *testing.T) {
	analysistest.Run(t, "../testdata", noglobalwrite.Analyzer, "example.com/lintcases/noglobalwrite")
}

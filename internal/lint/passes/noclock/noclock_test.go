package noclock_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/theus-go/theus/internal/lint/passes/noclock"
)

func Test(t *testing.T) {
	analysistest.Run(t, "../testdata", noclock.Analyzer, "example.com/lintcases/noclock")
}

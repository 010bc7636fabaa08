package nogo

import (
	"go/ast"

	"golang.org/x/tools/go/analysis"

	"github.com/theus-go/theus/internal/lint/passes/processes"
)

// Code is the stable code of this analyzer's findings.
const Code = "TP005"

// Analyzer reports go statements in process code.
var Analyzer = &analysis.Analyzer{
	Name:      "nogo",
	Doc:       "report go statements in Theus process code",
	URL:       "https://pkg.go.dev/github.com/theus-go/theus/internal/lint/passes/nogo",
	Requires:  []*analysis.Analyzer{processes.Analyzer},
	Run:       run,
	FactTypes: []analysis.Fact{(*fact)(nil)},
}

// fact records that a function starts a goroutine, for its callers in
// other packages of the module.
type fact struct{ processes.Summary }

func (*fact) AFact() {}

const advice = "the commit would not wait for it, and a re-run would start another; " +
	"do the work inline, or leave background work to a consumer of an emitted topic"

func run(pass *analysis.Pass) (any, error) {
	return processes.Check(pass, processes.Concern{
		Code:    Code,
		Advice:  advice,
		NewFact: func() processes.SummaryFact { return new(fact) },
		Find: func(pass *analysis.Pass, f *processes.Func) []processes.Finding {
			var found []processes.Finding
			ast.Inspect(f.Decl.Body, func(n ast.Node) bool {
				if g, ok := n.(*ast.GoStmt); ok {
					found = append(found, processes.Finding{Pos: g.Go, What: "go statement starts a goroutine"})
				}
				return true
			})
			return found
		},
	})
}

package noclock

import (
	"go/token"
	"go/types"

	"golang.org/x/tools/go/analysis"

	"github.com/theus-go/theus/internal/lint/passes/processes"
)

// Code is the stable code of this analyzer's findings.
const Code = "TP002"

// Analyzer reports clock reads and timers in process code.
var Analyzer = &analysis.Analyzer{
	Name:      "noclock",
	Doc:       "report time.Now, time.Since, time.Until and timers in Theus process code",
	URL:       "https://pkg.go.dev/github.com/theus-go/theus/internal/lint/passes/noclock",
	Requires:  []*analysis.Analyzer{processes.Analyzer},
	Run:       run,
	FactTypes: []analysis.Fact{(*fact)(nil)},
}

// fact records that a function reads the clock, for its callers in other
// packages of the module.
type fact struct{ processes.Summary }

func (*fact) AFact() {}

// clock maps the functions of package time that the rule forbids to what
// they do.
var clock = map[string]string{
	"Now": "reads the clock", "Since": "reads the clock", "Until": "reads the clock",
	"Sleep": "waits on the clock", "After": "waits on the clock", "Tick": "waits on the clock",
	"AfterFunc": "starts a timer", "NewTimer": "starts a timer", "NewTicker": "starts a timer",
}

const advice = "a process must give the same result when the engine runs it again; " +
	"pass the time in as an argument (e.g. args: {now: time.Time}) set by the caller"

func run(pass *analysis.Pass) (any, error) {
	return processes.Check(pass, processes.Concern{
		Code:    Code,
		Advice:  advice,
		NewFact: func() processes.SummaryFact { return new(fact) },
		Find: func(pass *analysis.Pass, f *processes.Func) []processes.Finding {
			var found []processes.Finding
			processes.Uses(pass, f, func(pos token.Pos, obj types.Object) {
				fn, ok := obj.(*types.Func)
				if !ok || fn.Pkg().Path() != "time" || processes.RecvName(fn) != "" {
					return
				}
				if what := clock[fn.Name()]; what != "" {
					found = append(found, processes.Finding{Pos: pos, What: processes.Describe(fn) + " " + what})
				}
			})
			return found
		},
	})
}

package lint

import (
	"cmp"
	"slices"

	"golang.org/x/tools/go/analysis"

	"github.com/theus-go/theus/internal/lint/passes/noclock"
	"github.com/theus-go/theus/internal/lint/passes/noescape"
	"github.com/theus-go/theus/internal/lint/passes/noglobalwrite"
	"github.com/theus-go/theus/internal/lint/passes/nogo"
	"github.com/theus-go/theus/internal/lint/passes/noio"
	"github.com/theus-go/theus/internal/lint/passes/norand"
)

// Analyzers returns the analyzers of process code, in a fixed order. Each
// reports findings of one code.
func Analyzers() []*analysis.Analyzer {
	return []*analysis.Analyzer{
		noio.Analyzer,
		noclock.Analyzer,
		norand.Analyzer,
		noglobalwrite.Analyzer,
		nogo.Analyzer,
		noescape.Analyzer,
	}
}

// Severity is how much a finding matters: an error fails the lint run, a
// warning is reported only.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem at a position.
type Finding struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Col      int      `json:"col"`
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// Rule describes a code, for the SARIF rules table and docs/lint.md.
type Rule struct {
	Code     string
	Name     string
	Severity Severity
	Summary  string
}

// Rules lists every code lint reports, in code order.
var Rules = []Rule{
	{CodeContract, "contract-error", Error, "the contract does not parse or is invalid (any error not listed below)"},
	{CodeUnknownPath, "unknown-path", Error, "a path names no state field, or a field its type does not have"},
	{CodeUnknownType, "unknown-type", Error, "a type name is not declared, imported or built in"},
	{CodePureEffects, "pure-with-effects", Error, "a pure process declares outputs or emits topics"},
	{CodeGlobalOutput, "global-output", Error, "a global path is declared as an output"},
	{CodeTopicNotEmitted, "topic-not-emitted", Error, "a declared topic is emitted by no process"},
	{CodeTopicUndeclared, "topic-undeclared", Error, "a process emits a topic that is not declared"},
	{CodeRuleNotOutput, "rule-not-output", Error, "a rule's path is not an output of its process"},
	{CodeTopicKey, "topic-key", Error, "a topic's key is not a field of its payload, or not a string or integer"},
	{CodeUnusedState, "unused-state", Warning, "a state field that no process reads or writes"},
	{CodeStale, "stale-generated-code", Error, "the generated file differs from what the contract generates (theusgen diff)"},
	{CodeMismatch, "contract-mismatch", Error, "process code does not compile because it uses an input, output, topic or argument that its contract (or the generated code) does not declare"},
	{noio.Code, "noio", Error, "I/O in process code: files, environment, network, database, syscalls, stdout, logging"},
	{noclock.Code, "noclock", Error, "clock reads and timers in process code: time.Now, time.Since, time.Until, ..."},
	{norand.Code, "norand", Error, "randomness in process code: math/rand, math/rand/v2, crypto/rand"},
	{noglobalwrite.Code, "noglobalwrite", Error, "a write to a package-level variable (its fields, elements and entries included) in process code"},
	{nogo.Code, "nogo", Error, "a go statement in process code"},
	{noescape.Code, "noescape", Error, "an input view, slice or map of a process kept after the call returns"},
}

// SortFindings sorts findings by file, line, column, code and message and
// drops exact duplicates.
func SortFindings(fs []Finding) []Finding {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.Compact(fs)
}

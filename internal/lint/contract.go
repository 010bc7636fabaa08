package lint

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/theus-go/theus/internal/contract"
)

// Codes of the contract checks.
const (
	CodeContract        = "TC001"
	CodeUnknownPath     = "TC002"
	CodeUnknownType     = "TC003"
	CodePureEffects     = "TC004"
	CodeGlobalOutput    = "TC005"
	CodeTopicNotEmitted = "TC006"
	CodeTopicUndeclared = "TC007"
	CodeRuleNotOutput   = "TC008"
	CodeTopicKey        = "TC009"
	CodeUnusedState     = "TC010"
	CodeStale           = "TC011"
	CodeMismatch        = "TC012"
)

// errorCodes gives the contract parser's messages their codes. The parser
// reports these problems already (a contract with one of them generates
// nothing); lint only names them. internal/lint's tests parse the
// contract package's testdata so that a reworded message cannot lose its
// code unnoticed.
var errorCodes = []struct {
	code string
	re   *regexp.Regexp
}{
	{CodePureEffects, regexp.MustCompile(`^a pure process cannot (have outputs|emit topics)`)},
	{CodeGlobalOutput, regexp.MustCompile(`cannot be an output: global state is read-only`)},
	{CodeTopicUndeclared, regexp.MustCompile(`^unknown topic "`)},
	{CodeRuleNotOutput, regexp.MustCompile(`^rule path ".*" is not an output of process`)},
	{CodeTopicKey, regexp.MustCompile(`^key ".*" is not a field of payload type|^key field ".*" has type .*; a topic key must be`)},
	{CodeUnknownType, regexp.MustCompile(`^unknown type "`)},
	{CodeUnknownPath, regexp.MustCompile(`^unknown zone "|^unknown state field "|^".*" is not a field of type .* \(path "|^cannot select ".*" in path "|^path ".*" must name a state field|^invalid path "|^state field ".*" is in (domain|global), not`)},
}

// ContractErrors turns the errors of a contract that does not parse into
// findings, each with its code (TC001 when no more precise code fits).
func ContractErrors(err error) ([]Finding, bool) {
	var list contract.ErrorList
	if !errors.As(err, &list) {
		return nil, false
	}
	out := make([]Finding, 0, len(list))
	for _, e := range list {
		out = append(out, contractFinding(e.Pos, codeOf(e.Msg), Error, e.Msg))
	}
	return out, true
}

func codeOf(msg string) string {
	for _, c := range errorCodes {
		if c.re.MatchString(msg) {
			return c.code
		}
	}
	return CodeContract
}

func contractFinding(p contract.Pos, code string, sev Severity, msg string) Finding {
	return Finding{File: p.File, Line: p.Line, Col: p.Col, Code: code, Severity: sev, Message: msg}
}

// CheckModel reports what a valid contract can still get wrong: a topic
// that no process emits (its messages can never exist), and a state field
// that no process reads or writes (a warning: it may be set and read with
// CompareAndSwap and Snapshot only).
func CheckModel(m *contract.Model) []Finding {
	var out []Finding
	emitted := map[*contract.Topic]bool{}
	used := map[*contract.StateField]bool{}
	for _, p := range m.Processes {
		for _, t := range p.Emits {
			emitted[t] = true
		}
		for _, pa := range append(append([]*contract.Path(nil), p.Inputs...), p.Outputs...) {
			used[pa.Field] = true
		}
	}
	for _, t := range m.Topics {
		if !emitted[t] {
			out = append(out, contractFinding(t.Pos, CodeTopicNotEmitted, Error,
				fmt.Sprintf("topic %q is emitted by no process: add it to a process's emits, or remove it", t.Name)))
		}
	}
	for _, f := range m.State {
		if !used[f] {
			out = append(out, contractFinding(f.Pos, CodeUnusedState, Warning,
				fmt.Sprintf("state field %s.%s is read and written by no process: use it in a process's inputs or outputs, or remove it", f.Zone, f.Name)))
		}
	}
	return out
}

// StaleFinding reports that the generated file at path differs from what
// the contract at pos generates.
func StaleFinding(path string) Finding {
	return Finding{File: path, Line: 1, Col: 1, Code: CodeStale, Severity: Error,
		Message: "generated code is out of date with its contract: run theusgen generate (theusgen diff shows the difference)"}
}

// messageCode splits "[CODE] message" as the analyzers write it.
func messageCode(msg string) (code, rest string) {
	if strings.HasPrefix(msg, "[") {
		if i := strings.Index(msg, "] "); i > 0 {
			return msg[1:i], msg[i+2:]
		}
	}
	return "", msg
}

// Package lint checks what the types of the generated code cannot: that a
// contract is coherent, and that the Go code of its processes has no side
// effects, so the engine may run a process again after a conflict.
//
// Two kinds of checks share one Finding type and one set of stable codes
// (docs/lint.md lists them):
//
//   - contract checks (TC...), on a contract.Model or on the ErrorList of
//     a contract that does not parse: ContractErrors gives every parse
//     error its code, CheckModel adds what a valid model can still get
//     wrong (a topic no process emits, state no process uses); Explain
//     turns process code that does not compile because it uses what the
//     contract does not declare (out.EmitTicketSold undefined) into a
//     finding that names the missing contract entry (TC012);
//   - analyzers of process code (TP...), one golang.org/x/tools/go/analysis
//     Analyzer per concern under passes/: noio, noclock, norand,
//     noglobalwrite, nogo and noescape, all built on passes/processes,
//     which finds the methods implementing the generated Processes
//     interface and the code they reach.
//
// Analyze is the driver of `theusgen lint`: it loads the packages with
// golang.org/x/tools/go/packages, type-checks the packages of the linted
// module from source (all others come from export data, as for the
// compiler), and runs the analyzers over the module's packages in
// dependency order, passing facts between them. A package whose only
// compile errors are names undefined on generated types is reported in
// Report.Undefined for Explain, and not analyzed; any other compile error
// stops the run with ErrLoad. The same Analyzers run
// under `go vet -vettool` (see internal/cli) and as a golangci-lint module
// plugin (package lint/golangci).
package lint

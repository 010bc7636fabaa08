package noio

import (
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"

	"github.com/theus-go/theus/internal/lint/passes/processes"
)

// Code is the stable code of this analyzer's findings.
const Code = "TP001"

// Analyzer reports I/O in process code.
var Analyzer = &analysis.Analyzer{
	Name:      "noio",
	Doc:       "report I/O (files, environment, network, database, syscalls, stdout) in Theus process code",
	URL:       "https://pkg.go.dev/github.com/theus-go/theus/internal/lint/passes/noio",
	Requires:  []*analysis.Analyzer{processes.Analyzer},
	Run:       run,
	FactTypes: []analysis.Fact{(*fact)(nil)},
}

// fact records that a function does I/O, for its callers in other
// packages of the module.
type fact struct{ processes.Summary }

func (*fact) AFact() {}

const advice = "a process may run more than once and must do no I/O; " +
	"pass what it needs in as an argument or an input, and leave the I/O to the caller or to a consumer of an emitted topic"

func run(pass *analysis.Pass) (any, error) {
	return processes.Check(pass, processes.Concern{
		Code:    Code,
		Advice:  advice,
		Find:    find,
		NewFact: func() processes.SummaryFact { return new(fact) },
	})
}

func find(pass *analysis.Pass, f *processes.Func) []processes.Finding {
	var found []processes.Finding
	processes.Uses(pass, f, func(pos token.Pos, obj types.Object) {
		if what, adv := classify(obj); what != "" {
			found = append(found, processes.Finding{Pos: pos, What: processes.Describe(obj) + " " + what, Advice: adv})
		}
	})
	return found
}

// classify says what obj does when it does I/O, else "". adv is advice
// for this kind of call when the general one does not fit.
func classify(obj types.Object) (what, adv string) {
	pkg := obj.Pkg().Path()
	if v, ok := obj.(*types.Var); ok {
		if pkg == "os" && processes.IsPackageVar(v) && (v.Name() == "Stdin" || v.Name() == "Stdout" || v.Name() == "Stderr") {
			return "is the program's standard I/O", ""
		}
		return "", ""
	}
	fn := obj.(*types.Func)
	name, recv := fn.Name(), processes.RecvName(fn)
	switch {
	case pkg == "os":
		if recv == "" && osPure[name] {
			return "", ""
		}
		switch {
		case strings.Contains(name, "env") || strings.Contains(name, "Env") || name == "Environ":
			return "reads or changes the environment", "a process may run more than once and must do no I/O; pass configuration in as an argument or a global state value"
		case name == "Exit":
			return "ends the program", "return an error instead"
		}
		return "does file-system or process I/O", ""
	case pkg == "os/exec", pkg == "os/signal", pkg == "os/user", pkg == "syscall",
		strings.HasPrefix(pkg, "golang.org/x/sys/"), pkg == "net/rpc", pkg == "net/rpc/jsonrpc", pkg == "net/smtp":
		return "does system or network I/O", ""
	case pkg == "net":
		if netPure[name] || recv != "" && (netPureTypes[recv] || strings.HasSuffix(recv, "Error")) {
			return "", ""
		}
		return "does network I/O", ""
	case pkg == "net/http":
		if recv == "" && httpIO[name] || httpIOTypes[recv] || recv == "Request" && strings.HasPrefix(name, "Write") ||
			recv == "Response" && name == "Write" {
			return "does network I/O", ""
		}
	case pkg == "database/sql":
		if recv == "" && (name == "Open" || name == "OpenDB") || sqlTypes[recv] {
			return "talks to a database", ""
		}
	case pkg == "io/ioutil":
		if recv == "" && (strings.HasPrefix(name, "Read") && name != "ReadAll" || strings.HasPrefix(name, "Write") || strings.HasPrefix(name, "Temp")) {
			return "does file-system I/O", ""
		}
	case pkg == "path/filepath":
		if name == "Walk" || name == "WalkDir" || name == "Glob" || name == "Abs" || name == "EvalSymlinks" {
			return "reads the file system", ""
		}
	case pkg == "fmt":
		if name == "Print" || name == "Printf" || name == "Println" {
			return "writes to standard output", "a process may run more than once and must do no I/O; build the text with fmt.Sprintf and return it as the result, or print in the caller"
		}
	case pkg == "log", pkg == "log/slog":
		if recv == "" && logFuncs(pkg, name) {
			return "writes a log line", "a process may run more than once, so a log line could be written twice for one commit; return an error or a result and log in the caller"
		}
	}
	return "", ""
}

// osPure are the functions of os that do no I/O.
var osPure = map[string]bool{
	"IsExist": true, "IsNotExist": true, "IsPermission": true, "IsTimeout": true,
	"IsPathSeparator": true, "Expand": true, "NewSyscallError": true, "SameFile": true,
}

// netPure are the functions of net that parse or build values.
var netPure = map[string]bool{
	"ParseIP": true, "ParseCIDR": true, "ParseMAC": true, "IPv4": true, "IPv4Mask": true,
	"CIDRMask": true, "JoinHostPort": true, "SplitHostPort": true,
}

// netPureTypes are the types of net whose methods are pure.
var netPureTypes = map[string]bool{"IP": true, "IPMask": true, "IPNet": true, "HardwareAddr": true, "Flags": true}

// httpIO are the functions of net/http that send or serve requests.
var httpIO = map[string]bool{
	"Get": true, "Head": true, "Post": true, "PostForm": true, "ListenAndServe": true,
	"ListenAndServeTLS": true, "Serve": true, "ServeTLS": true, "ServeFile": true, "ServeFileFS": true,
	"ServeContent": true, "Error": true, "Redirect": true, "NotFound": true, "SetCookie": true,
}

// httpIOTypes are the types of net/http whose methods send or serve.
var httpIOTypes = map[string]bool{
	"Client": true, "Server": true, "Transport": true, "RoundTripper": true, "ResponseWriter": true,
	"ServeMux": true, "HandlerFunc": true, "Handler": true, "Flusher": true, "Hijacker": true, "ResponseController": true,
}

// sqlTypes are the types of database/sql whose methods talk to the database.
var sqlTypes = map[string]bool{"DB": true, "Tx": true, "Stmt": true, "Conn": true, "Rows": true, "Row": true}

func logFuncs(pkg, name string) bool {
	if pkg == "log" {
		return strings.HasPrefix(name, "Print") || strings.HasPrefix(name, "Fatal") ||
			strings.HasPrefix(name, "Panic") || name == "Output"
	}
	switch strings.TrimSuffix(name, "Context") {
	case "Debug", "Info", "Warn", "Error", "Log", "LogAttrs":
		return true
	}
	return false
}

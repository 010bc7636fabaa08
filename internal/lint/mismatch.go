package lint

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/theus-go/theus/internal/contract"
)

// Process code that does not compile because it uses what its contract
// does not declare: the generated names are the contract's vocabulary
// (in.MaxSeats for an input global.max_seats, out.SetSold for an output
// domain.sold, out.EmitTicketSold for a topic ticket.sold, in.Args.Seats
// for an argument seats), so an undefined one is read back through the
// model into the entry that would declare it.

// Explain returns, for the names of undef that m could declare, findings
// that say which entry of which process would declare them, and the rest
// (a typo in Go, say), which stay compile errors. A name used in several
// places is one finding, at its first use, with the others listed.
func Explain(m *contract.Model, undef []Undefined) ([]Finding, []Undefined) {
	type key struct{ typ, name string }
	var order []key
	uses := map[key][]Undefined{}
	for _, u := range undef {
		k := key{u.Type, u.Name}
		if uses[k] == nil {
			order = append(order, k)
		}
		uses[k] = append(uses[k], u)
	}
	var out []Finding
	var rest []Undefined
	for _, k := range order {
		us := uses[k]
		what := explain(m, us[0])
		if what == "" {
			rest = append(rest, us...)
			continue
		}
		slices.SortFunc(us, func(a, b Undefined) int {
			return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
		})
		var also []string
		for _, u := range us[1:] {
			at := fmt.Sprintf("%d:%d", u.Line, u.Col)
			if u.File != us[0].File {
				at = fmt.Sprintf("%s:%s", filepath.Base(u.File), at)
			}
			also = append(also, at)
		}
		msg := us[0].Expr + " undefined: " + what
		if len(also) > 0 {
			msg = us[0].Expr + " undefined (also at " + contract.AndList(also) + "): " + what
		}
		out = append(out, Finding{File: us[0].File, Line: us[0].Line, Col: us[0].Col, Code: CodeMismatch, Severity: Error, Message: msg})
	}
	return out, rest
}

// explain says which entry of which process of m would declare the name
// u uses, or "".
func explain(m *contract.Model, u Undefined) string {
	for _, pr := range m.Processes {
		switch u.Type {
		case pr.GoName + "In":
			return explainInput(m, pr, u.Name)
		case pr.GoName + "Out":
			return explainOutput(m, pr, u.Name)
		case pr.GoName + "Args":
			return explainArg(m, pr, u.Name)
		}
	}
	return ""
}

// regenerate ends a message about what the contract declares already.
const regenerate = "but the generated code is older: run theusgen generate"

func explainInput(m *contract.Model, pr *contract.Process, name string) string {
	paths := pathsNamed(m, name, func(*contract.StateField) bool { return true })
	if len(paths) == 0 {
		return ""
	}
	if pa := findPath(pr.Inputs, paths); pa != nil {
		if pa.GoName != name { // struct tags name it after the process's field
			return fmt.Sprintf("process %q reads %s as in.%s (%s)", pr.Name, pa.Text, pa.GoName, lineOf(pa.Pos))
		}
		return fmt.Sprintf("process %q reads %s (%s), %s", pr.Name, pa.Text, lineOf(pa.Pos), regenerate)
	}
	return fmt.Sprintf("process %q does not read %s: %s", pr.Name, oneOfPaths(paths), addPath(m, pr, "inputs", "in", paths))
}

func explainOutput(m *contract.Model, pr *contract.Process, name string) string {
	if topic, ok := strings.CutPrefix(name, "Emit"); ok && topic != "" {
		return explainEmit(m, pr, topic)
	}
	if name == "SetResult" {
		if pr.Result != nil {
			return fmt.Sprintf("process %q has a result (%s), %s", pr.Name, lineOf(posOr(pr.KeyPos["result"], pr.Pos)), regenerate)
		}
		return fmt.Sprintf("process %q has no result: %s", pr.Name, addKey(pr, "result", "result: TYPE"))
	}
	// Set<Path> writes a value; a collection is written entry by entry,
	// through <Path> (or Put<Path> and Delete<Path>, as on Patch).
	var paths []*contract.Path
	if v, ok := strings.CutPrefix(name, "Set"); ok {
		paths = pathsNamed(m, v, func(f *contract.StateField) bool { return !f.Collection })
	}
	if len(paths) == 0 {
		entry := strings.TrimPrefix(strings.TrimPrefix(name, "Put"), "Delete")
		paths = pathsNamed(m, entry, func(f *contract.StateField) bool { return f.Collection })
		paths = slices.DeleteFunc(paths, func(pa *contract.Path) bool { return len(pa.Sub) > 0 })
	}
	if len(paths) == 0 {
		return ""
	}
	if pa := findPath(pr.Outputs, paths); pa != nil {
		return fmt.Sprintf("process %q writes %s (%s), %s", pr.Name, pa.Text, lineOf(pa.Pos), regenerate)
	}
	paths = slices.DeleteFunc(paths, func(pa *contract.Path) bool { return pa.Field.Zone == contract.ZoneGlobal })
	if len(paths) == 0 {
		return "global state is read-only in processes (change it with CompareAndSwap); read it through in"
	}
	return fmt.Sprintf("process %q does not write %s: %s%s", pr.Name, oneOfPaths(paths), addPath(m, pr, "outputs", "out", paths), pureNote(pr))
}

// pureNote is what a message about a missing output or topic adds for a
// pure process, which may have neither.
func pureNote(pr *contract.Process) string {
	if pr.Semantic != contract.Pure {
		return ""
	}
	return " (a pure process writes and emits nothing: make it semantic: effect)"
}

func explainEmit(m *contract.Model, pr *contract.Process, goName string) string {
	i := slices.IndexFunc(m.Topics, func(t *contract.Topic) bool { return t.GoName == goName })
	if i < 0 {
		return fmt.Sprintf("the contract has no topic %s: declare it under topics: (e.g. %s), and add it to the emits of process %q",
			goName, contract.SnakeName(goName), pr.Name)
	}
	t := m.Topics[i]
	if slices.Contains(pr.Emits, t) {
		return fmt.Sprintf("process %q emits %s (%s), %s", pr.Name, t.Name, lineOf(posOr(pr.KeyPos["emits"], pr.Pos)), regenerate)
	}
	if m.DeclaredInGo {
		return fmt.Sprintf("process %q does not emit %s: add it to emits= of //theus:process (%s), then run theusgen generate%s",
			pr.Name, t.Name, lineOf(posOr(pr.KeyPos["emits"], pr.Pos)), pureNote(pr))
	}
	return fmt.Sprintf("process %q does not emit %s: %s%s", pr.Name, t.Name, addTo(pr, "emits", t.Name), pureNote(pr))
}

func explainArg(m *contract.Model, pr *contract.Process, name string) string {
	if i := slices.IndexFunc(pr.Args, func(a *contract.Field) bool { return a.GoName == name }); i >= 0 {
		return fmt.Sprintf("process %q has the argument %s (%s), %s", pr.Name, pr.Args[i].Name, lineOf(pr.Args[i].Pos), regenerate)
	}
	if m.DeclaredInGo {
		return fmt.Sprintf("process %q has no argument %s: add a field %s to the Args of %s (%s), then run theusgen generate",
			pr.Name, name, name, pr.GoName, lineOf(pr.Pos))
	}
	return fmt.Sprintf("process %q has no argument %s: %s", pr.Name, name,
		addKey(pr, "args", contract.SnakeName(name)+": TYPE"))
}

// addTo says to add entry to the list under key of pr, where that key is,
// or to add the key to pr.
func addTo(pr *contract.Process, key, entry string) string {
	if pos, ok := pr.KeyPos[key]; ok {
		return fmt.Sprintf("add %s to its %s: (%s), then run theusgen generate", entry, key, lineOf(pos))
	}
	return addKey(pr, key, key+": ["+entry+"]")
}

// addKey says to add what, an entry of key or the key itself, to pr.
func addKey(pr *contract.Process, key, what string) string {
	if pos, ok := pr.KeyPos[key]; ok {
		return fmt.Sprintf("add %s to its %s: (%s), then run theusgen generate", what, key, lineOf(pos))
	}
	return fmt.Sprintf("add %s to process %q (%s), then run theusgen generate", what, pr.Name, lineOf(pr.Pos))
}

// addPath says how to make one of paths an input (dir "in") or an output
// ("out") of pr.
func addPath(m *contract.Model, pr *contract.Process, key, dir string, paths []*contract.Path) string {
	if !m.DeclaredInGo {
		return addTo(pr, key, oneOfPaths(paths))
	}
	pa := paths[0]
	return fmt.Sprintf("add a field %s %s `theus:\"%s,path=%s\"` to %s (%s), then run theusgen generate",
		pa.GoName, pa.Type.Expr, dir, pa.Text, pr.GoName, lineOf(pr.Pos))
}

// pathsNamed returns the state paths whose flat Go name (the state
// field's and every sub-field's joined, as In accessors and Set methods
// are named) is name, below the state fields that keep accepts.
func pathsNamed(m *contract.Model, name string, keep func(*contract.StateField) bool) []*contract.Path {
	var out []*contract.Path
	var walk func(pa contract.Path, goName string)
	walk = func(pa contract.Path, goName string) {
		if goName == name {
			p := pa
			out = append(out, &p)
			return
		}
		if pa.Type == nil || pa.Type.Kind != contract.Named || !strings.HasPrefix(name, goName) {
			return
		}
		for _, f := range pa.Type.Struct.Fields {
			next := pa
			next.Text += "." + f.Name
			next.Sub = slices.Concat(pa.Sub, []*contract.Field{f})
			next.Type = f.Type
			walk(next, goName+f.GoName)
		}
	}
	for _, f := range m.State {
		if keep(f) {
			walk(contract.Path{Text: string(f.Zone) + "." + f.Name, Field: f, Type: f.Type, GoName: f.GoName}, f.GoName)
		}
	}
	for _, pa := range out {
		pa.GoName = name
	}
	return out
}

// findPath returns the path of list that is one of paths.
func findPath(list, paths []*contract.Path) *contract.Path {
	for _, pa := range list {
		if slices.ContainsFunc(paths, func(o *contract.Path) bool { return o.Text == pa.Text }) {
			return pa
		}
	}
	return nil
}

func oneOfPaths(paths []*contract.Path) string {
	texts := make([]string, len(paths))
	for i, pa := range paths {
		texts[i] = pa.Text
	}
	if len(texts) == 1 {
		return texts[0]
	}
	return "one of " + strings.Join(texts, ", ")
}

// lineOf is how a message names a place in the contract: file:line.
func lineOf(p contract.Pos) string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

func posOr(p, or contract.Pos) contract.Pos {
	if p.Line == 0 {
		return or
	}
	return p
}

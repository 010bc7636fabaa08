package contract

import (
	"fmt"
	"go/token"
	"slices"
)

// Go-name collisions. Contract names are converted with GoName, and the
// generated code adds names of its own (XView, XArgs, RunX, Engine, ...).
// Two contract names that convert to the same Go name, or a contract name
// that converts to a generated one, would not compile or would need a silent
// rename; both are contract errors naming the two sides.

// goDecl is one declaration in a Go namespace.
type goDecl struct {
	name string // the Go identifier
	desc string // what declares it, for messages: `state field "member_id"`
	pos  Pos    // zero for names reserved by the generated code
	// via is how a generated name is derived from a declared one ("View",
	// "Args", "Run", ...); "" for a declared name.
	via string
}

// reserved is a name that the generated code always declares.
func reserved(name, desc string) goDecl { return goDecl{name: name, desc: desc} }

// generatedTypes are the package-level names generated for every contract.
var generatedTypes = []string{"Engine", "Snapshot", "Patch", "Processes", "NewEngine"}

// stateTypes are generated for a YAML contract only: with struct tags the
// package declares State itself.
var stateTypes = []string{"State", "DomainState", "GlobalState"}

// engineMethods are the methods of the generated Engine besides one per
// process.
var engineMethods = []string{"Close", "Snapshot", "CompareAndSwap", "Store", "Watch", "History", "Sync"}

// checkNamespace reports every declaration whose name is already taken in
// decls. Each collision is reported once, at the later of the two positions,
// so the message does not depend on the order in which decls were built.
func (p *parser) checkNamespace(decls []goDecl) {
	slices.SortStableFunc(decls, func(a, b goDecl) int {
		switch {
		case before(a.pos, b.pos):
			return -1
		case before(b.pos, a.pos):
			return 1
		}
		return 0
	})
	taken := map[string]goDecl{}
	for _, d := range decls {
		if !token.IsIdentifier(d.name) {
			continue // reported where the name was read
		}
		other, dup := taken[d.name]
		switch {
		case !dup:
			taken[d.name] = d
		case d.via != "" && d.via == other.via:
			// Derived the same way from two names that collide: that
			// collision is reported, once.
		case other.pos.Line == 0:
			p.errs.add(d.pos, "%s is named %q in Go, which is reserved for %s", d.desc, d.name, other.desc)
		default:
			p.errs.add(d.pos, "%s collides with %s: both are named %q in Go (other at %s)",
				d.desc, other.desc, d.name, otherAt(other.pos, d.pos))
		}
	}
}

// processTypeSuffixes are appended to a process's Go name for its generated
// types.
var processTypeSuffixes = []string{"Args", "In", "Out", "Receipt", "Effects"}

func (p *parser) checkNames() {
	m := p.m

	// Package block: declared types, their views, the fixed generated
	// declarations, the per-process types and functions, and import aliases
	// (Go forbids a name in both the file and the package block).
	var pkg []goDecl
	generated := generatedTypes
	if !m.DeclaredInGo {
		generated = slices.Concat(stateTypes, generated)
	}
	for _, name := range generated {
		pkg = append(pkg, reserved(name, "the generated "+name))
	}
	for _, s := range m.Types {
		view := s.GoName + "View"
		if !m.DeclaredInGo { // else s is in p.scope
			pkg = append(pkg, goDecl{name: s.GoName, desc: fmt.Sprintf("type %q", s.Name), pos: s.Pos})
		}
		pkg = append(pkg, goDecl{name: view, desc: fmt.Sprintf("the view %s of type %q", view, s.Name), pos: s.Pos, via: "View"})
	}
	for _, pr := range m.Processes {
		for _, suffix := range processTypeSuffixes {
			name := pr.GoName + suffix
			desc := fmt.Sprintf("the generated type %s of process %q", name, pr.Name)
			pkg = append(pkg, goDecl{name: name, desc: desc, pos: pr.Pos, via: suffix})
		}
		run := "Run" + pr.GoName
		desc := fmt.Sprintf("the generated function %s of process %q", run, pr.Name)
		pkg = append(pkg, goDecl{name: run, desc: desc, pos: pr.Pos, via: "Run"})
	}
	for _, imp := range m.Imports {
		pkg = append(pkg, goDecl{name: imp.Alias, desc: fmt.Sprintf("import alias %q", imp.Alias), pos: imp.Pos})
	}
	pkg = append(pkg, p.errorNames()...)
	p.checkNamespace(append(pkg, p.scope...))

	// Fields of each struct, and the methods of its view.
	for _, s := range m.Types {
		decls := []goDecl{reserved("Clone", "the method Clone of "+s.GoName+"View")}
		for _, f := range s.Fields {
			decls = append(decls, goDecl{name: f.GoName, desc: fmt.Sprintf("field %q of type %q", f.Name, s.Name), pos: f.Pos})
		}
		p.checkNamespace(decls)
	}

	// State fields: one flat namespace for both zones (Snapshot, Patch and
	// In accessors do not say the zone).
	state := []goDecl{reserved("Version", "the method Version of Snapshot")}
	for _, f := range m.State {
		state = append(state, goDecl{name: f.GoName, desc: fmt.Sprintf("state field %q", f.Name), pos: f.Pos})
	}
	p.checkNamespace(state)

	var topics []goDecl
	for _, t := range m.Topics {
		topics = append(topics, goDecl{name: t.GoName, desc: fmt.Sprintf("topic %q", t.Name), pos: t.Pos})
	}
	p.checkNamespace(topics)

	// Processes are methods of Engine and of the Processes interface.
	var procs []goDecl
	for _, name := range engineMethods {
		procs = append(procs, reserved(name, "the method "+name+" of Engine"))
	}
	for _, pr := range m.Processes {
		procs = append(procs, goDecl{name: pr.GoName, desc: fmt.Sprintf("process %q", pr.Name), pos: pr.Pos})
	}
	p.checkNamespace(procs)

	for _, pr := range m.Processes {
		p.checkProcessNames(pr)
	}
}

func (p *parser) checkProcessNames(pr *Process) {
	var args []goDecl
	for _, a := range pr.Args {
		args = append(args, goDecl{name: a.GoName, desc: fmt.Sprintf("argument %q of process %q", a.Name, pr.Name), pos: a.Pos})
	}
	p.checkNamespace(args)

	// In: the Args field and one method per input.
	in := []goDecl{reserved("Args", "the field Args of "+pr.GoName+"In")}
	for _, pa := range pr.Inputs {
		in = append(in, goDecl{name: pa.GoName, desc: fmt.Sprintf("input %q", pa.Text), pos: pa.Pos})
	}
	p.checkNamespace(in)

	// Effects has a field per output, per emitted topic and Result; Out has
	// Set<output>, Emit<topic> and SetResult. Checking Effects covers both.
	effects := []goDecl{reserved("Result", "SetResult of "+pr.GoName+"Out and the field Result of "+pr.GoName+"Effects")}
	for _, pa := range pr.Outputs {
		effects = append(effects, goDecl{name: pa.GoName, desc: fmt.Sprintf("output %q", pa.Text), pos: pa.Pos})
	}
	for i, t := range pr.Emits {
		effects = append(effects, goDecl{name: t.GoName, desc: fmt.Sprintf("emitted topic %q", t.Name), pos: p.emitPos[pr][i]})
	}
	p.checkNamespace(effects)
}

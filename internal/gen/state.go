package gen

import (
	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// stateExpr is the selector of state field f below the State expression s:
// "s.s.Domain.User".
func stateExpr(s string, f *contract.StateField, sub []*contract.Field) string {
	e := s + "." + zoneGoName(f.Zone) + "." + f.GoName
	for _, sf := range sub {
		e += "." + sf.GoName
	}
	return e
}

// stateDecls declares State and its zones and Snapshot (out), and what
// the engine needs of them (private): the engine's form of the state, its
// deep copy, the index constants and theusSchema.
func (g *generator) stateDecls() (out, private []jen.Code) {
	var domain, global, internal, clone []jen.Code
	for _, f := range g.m.State {
		decl := jen.Id(f.GoName).Add(goType(f.Type))
		if f.Zone == contract.ZoneGlobal {
			global = append(global, decl)
		} else {
			domain = append(domain, decl)
		}
		if f.Collection {
			// Collections are immutable values: copies share them.
			internal = append(internal, jen.Id(f.GoName).Add(collType(f.Type)))
			continue
		}
		if f.Zone == contract.ZoneDomain {
			internal = append(internal, jen.Id(f.GoName).Add(goType(f.Type)))
		}
		if g.holdsRefs(f.Type) {
			clone = append(clone, jen.Id(stateExpr("c", f, nil)).Op("=").Add(g.cloneValue(f.Type, lv{expr: stateExpr("p", f, nil)})))
		}
	}
	if !g.m.DeclaredInGo { // else the package declares State
		out = append(out,
			doc("State is the engine's state, as declared in "+g.source+".").
				Type().Id("State").Struct(jen.Id("Domain").Id("DomainState"), jen.Id("Global").Id("GlobalState")),
			doc("DomainState is the business state: versioned, persisted, conflict-checked.").
				Type().Id("DomainState").Struct(domain...),
			doc("GlobalState is configuration: read-only inside processes, changed only with CompareAndSwap.").
				Type().Id("GlobalState").Add(structOf(global...)),
		)
	}
	if g.hasColl {
		private = append(private,
			doc("theusState is the engine's form of State: collections are engine.Collections, versioned per entry.").
				Type().Id("theusState").Struct(jen.Id("Domain").Id("theusDomainState"), jen.Id("Global").Id(g.globalType())),
			jen.Type().Id("theusDomainState").Struct(internal...),
		)
		if g.m.DeclaredInGo {
			// State.Global may be an anonymous struct, which the generated
			// code cannot name: the engine keeps a copy of its fields.
			private = append(private, jen.Type().Id("theusGlobalState").Add(structOf(global...)))
		}
		private = append(private, g.internalFunc())
	}
	private = append(private, cloneFuncDecl("theusCloneState", jen.Id(g.st), clone))
	snap := []jen.Code{
		doc("Snapshot is an immutable view of the state at one version: Version, and per state field a method that returns its value or a read-only view.").
			Type().Id("Snapshot").Struct(jen.Id("version").Uint64(), jen.Id("s").Op("*").Id(g.st)),
		jen.Func().Params(jen.Id("s").Id("Snapshot")).Id("Version").Params().Uint64().
			Add(oneLine(jen.Return(jen.Id("s.version")))),
	}
	for _, f := range g.m.State {
		snap = append(snap, g.accessor(jen.Id("s").Id("Snapshot"), "s.s", f.GoName, f, nil, f.Type, jen.Nil()))
	}
	out = append(out, list(snap))

	if len(g.paths) > 0 {
		defs := make([]jen.Code, len(g.paths))
		for i, p := range g.paths {
			defs[i] = jen.Id(p.konst).Op("=").Lit(i)
		}
		private = append(private, doc("Indexes of the state paths in theusSchema.Paths.").Const().Defs(defs...))
	}
	if len(g.m.Processes) > 0 {
		defs := make([]jen.Code, len(g.m.Processes))
		for i, p := range g.m.Processes {
			defs[i] = jen.Id(procConst(p)).Op("=").Lit(i)
		}
		private = append(private, doc("Indexes of the processes in theusSchema.Processes.").Const().Defs(defs...))
	}
	return out, append(private, g.schema())
}

func procConst(p *contract.Process) string { return "theusProc" + p.GoName }

// accessor declares the read-only accessor name of a state path on a
// Snapshot or an In (recv), whose State pointer is the selector s. A
// collection's view records the entries a process reads in tx (nil for a
// Snapshot). Accessors, like setters, carry no doc comment: their type's
// says what they are, and the body names the state field.
func (g *generator) accessor(recv *jen.Statement, s, name string, f *contract.StateField, sub []*contract.Field, t *contract.Type, tx jen.Code) jen.Code {
	text := string(f.Zone) + "." + f.Name
	for _, sf := range sub {
		text += "." + sf.Name
	}
	view := g.viewOf(t, lv{expr: stateExpr(s, f, sub)})
	if f.Collection && len(sub) == 0 {
		view = jen.Qual(enginePkg, "CollectionView").Call(
			jen.Id(stateExpr(s, f, nil)), tx, jen.Id(g.byText[text].konst), g.viewFunc(t.Elem))
	}
	return jen.Func().Params(recv).Id(name).Params().Add(viewType(t)).
		Add(oneLine(jen.Return(view)))
}

// collType is the engine.Collection type of a collection field of type t.
func collType(t *contract.Type) *jen.Statement {
	return jen.Qual(enginePkg, "Collection").Types(goType(t.Key), goType(t.Elem))
}

// cloneFuncOrNil is a func(*T) T deep-copying t, or nil when t holds no
// references.
func (g *generator) cloneFuncOrNil(t *contract.Type) *jen.Statement {
	if !g.holdsRefs(t) {
		return jen.Nil()
	}
	return g.cloneElemFunc(t)
}

// internalFunc declares theusInternal, which turns a State into the
// engine's form: a deep copy, with collections built from the maps.
func (g *generator) internalFunc() jen.Code {
	var domain []field
	for _, f := range g.m.State {
		if f.Zone != contract.ZoneDomain {
			continue
		}
		src := lv{expr: stateExpr("p", f, nil)}
		if f.Collection {
			domain = append(domain, field{f.GoName, jen.Qual(enginePkg, "NewCollection").Call(src.val(), g.cloneFuncOrNil(f.Type.Elem))})
		} else {
			domain = append(domain, field{f.GoName, g.cloneValue(f.Type, src)})
		}
	}
	global := jen.Id("p.Global")
	if g.m.DeclaredInGo {
		var fields []field
		for _, f := range g.m.State {
			if f.Zone == contract.ZoneGlobal {
				fields = append(fields, field{f.GoName, jen.Id(stateExpr("p", f, nil))})
			}
		}
		global = jen.Id("theusGlobalState").Add(keyedLines(fields...))
	}
	var fix []jen.Code
	for _, f := range g.m.State {
		if f.Zone == contract.ZoneGlobal && g.holdsRefs(f.Type) {
			fix = append(fix, jen.Id(stateExpr("s", f, nil)).Op("=").Add(g.cloneValue(f.Type, lv{expr: stateExpr("p", f, nil)})))
		}
	}
	body := []jen.Code{
		jen.Id("s").Op(":=").Op("&").Id("theusState").Add(keyedLines(
			field{"Domain", jen.Id("theusDomainState").Add(keyedLines(domain...))},
			field{"Global", global},
		)),
	}
	body = append(body, fix...)
	body = append(body, jen.Return(jen.Id("s")))
	return doc("theusInternal returns a deep copy of p in the engine's form.").
		Func().Id("theusInternal").Params(jen.Id("p").Op("*").Id("State")).Op("*").Id("theusState").Block(body...)
}

// globalType is the type of theusState.Global.
func (g *generator) globalType() string {
	if g.m.DeclaredInGo {
		return "theusGlobalState"
	}
	return "GlobalState"
}

func (g *generator) schema() jen.Code {
	fields := []field{{"Clone", jen.Id("theusCloneState")}}
	if len(g.paths) > 0 {
		texts := make([]jen.Code, len(g.paths))
		for i, p := range g.paths {
			texts[i] = jen.Lit(p.text)
		}
		fields = append(fields, field{"Paths", jen.Index().String().Values(texts...)})
	}
	if len(g.m.Processes) > 0 {
		specs := make([]jen.Code, len(g.m.Processes))
		for i, p := range g.m.Processes {
			spec := []field{{"Name", jen.Lit(p.Name)}, {"Args", jen.Parens(jen.Op("*").Id(p.GoName + "Args")).Parens(jen.Nil())}, {"Run", jen.Id(runFunc(i))}}
			if len(p.Rules) > 0 {
				spec = append(spec, field{"Rules", jen.Id(rulesFunc(p))})
			}
			if len(p.Inputs) > 0 {
				ins := make([]jen.Code, len(p.Inputs))
				for j, in := range p.Inputs {
					ins[j] = jen.Id(g.byText[in.Text].konst)
				}
				spec = append(spec, field{"Inputs", jen.Index().Int().Values(ins...)})
			}
			if len(p.Outputs) > 0 {
				outs := make([]jen.Code, len(p.Outputs))
				for j, o := range p.Outputs {
					outs[j] = jen.Id(g.byText[o.Text].konst)
				}
				spec = append(spec, field{"Outputs", jen.Index().Int().Values(outs...)})
			}
			if len(p.Emits) > 0 {
				topics := make([]jen.Code, len(p.Emits))
				for j, t := range p.Emits {
					topics[j] = jen.Lit(t.Name)
				}
				spec = append(spec, field{"Emits", jen.Index().String().Values(topics...)})
			}
			if p.Semantic == contract.Pure {
				spec = append(spec, field{"Pure", jen.True()})
			}
			if len(p.Errors) > 0 {
				spec = append(spec, field{"Errors", jen.Index().Error().Values(declaredErrors(p)...)})
			}
			specs[i] = keyed(spec...)
		}
		fields = append(fields, field{"Processes", jen.Index().Qual(enginePkg, "ProcessSpec").Custom(multiLine, specs...)})
	}
	if outs := g.outputs(); len(outs) > 0 {
		fields = append(fields, field{"Outputs", jen.Index().Qual(enginePkg, "Output").Types(jen.Id(g.st)).Custom(multiLine, outs...)})
	}
	// Schema.Collections is left out: the engine finds the collections,
	// and the versions of their entries, in Schema.State.
	if len(g.m.Invariants) > 0 {
		fields = append(fields, field{"Invariants", g.invariants()}, field{"CompileCheck", jen.Qual(celPkg, "Compiler")})
	}
	if len(g.m.State) > 0 {
		fields = append(fields, field{"State", g.stateFields()})
	}
	return jen.Var().Id("theusSchema").Op("=").Qual(enginePkg, "Schema").Types(jen.Id(g.st)).Add(keyedLines(fields...))
}

// outputs is the value of theusSchema.Outputs: for each path that a
// process writes, in the order of the paths, how the calls hold, check
// and apply its values (engine.SetterOutput, CollectionOutput), keyed by
// the path's index.
func (g *generator) outputs() []jen.Code {
	written := map[string]*contract.Path{}
	for _, p := range g.m.Processes {
		for _, o := range p.Outputs {
			written[o.Text] = o
		}
	}
	var out []jen.Code
	for _, sp := range g.paths {
		o := written[sp.text]
		if o == nil {
			continue
		}
		s := jen.Id("s").Op("*").Id(g.st)
		var desc jen.Code
		if o.Field.Collection && len(o.Sub) == 0 {
			coll := jen.Qual(enginePkg, "Collection").Types(goType(o.Type.Key), goType(o.Type.Elem))
			desc = jen.Qual(enginePkg, "CollectionOutput").Call(jen.Lit(o.Text),
				jen.Func().Params(s).Op("*").Add(coll).Add(oneLine(jen.Return(jen.Op("&").Id(stateExpr("s", o.Field, nil))))),
				g.validFuncOrNil(o.Type.Elem))
		} else {
			desc = jen.Qual(enginePkg, "SetterOutput").Call(jen.Lit(o.Text),
				jen.Func().Params(s, jen.Id("v").Op("*").Add(goType(o.Type))).Add(oneLine(jen.Id(stateExpr("s", o.Field, o.Sub)).Op("=").Op("*").Id("v"))),
				g.validFuncOrNil(o.Type))
		}
		out = append(out, jen.Id(sp.konst).Op(":").Add(desc))
	}
	return out
}

// engineDecls declares the Processes interface and Engine.
func (g *generator) engineDecls() []jen.Code {
	var methods []jen.Code
	for _, p := range g.m.Processes {
		// A process without a description needs no comment: its
		// name says it, and its types' comments name the process.
		d := jen.Null()
		if p.Doc != "" {
			d = doc(p.GoName + ": " + p.Doc)
		}
		methods = append(methods, d.Id(p.GoName).Params(
			jen.Id("ctx").Qual("context", "Context"),
			jen.Id("in").Id(p.GoName+"In"),
			jen.Id("out").Op("*").Id(p.GoName+"Out"),
		).Error())
	}
	engineRecv := func() *jen.Statement { return jen.Id("e").Op("*").Id("Engine") }
	out := []jen.Code{
		doc("Processes is implemented by the application: one method per process of " + g.source + ".").
			Type().Id("Processes").Interface(methods...),
		doc("Engine runs the processes of "+g.source+" and commits their outputs and messages atomically.").
			Type().Id("Engine").Struct(
			jen.Id("core").Op("*").Qual(enginePkg, "Engine").Types(jen.Id(g.st)),
			jen.Id("impl").Id("Processes"),
		),
		doc("NewEngine starts an engine. If the store holds data, its state is recovered and initial is ignored; without engine.WithStore the engine keeps everything in memory.").
			Func().Id("NewEngine").Params(
			jen.Id("ctx").Qual("context", "Context"),
			jen.Id("initial").Id("State"),
			jen.Id("impl").Id("Processes"),
			jen.Id("opts").Op("...").Qual(enginePkg, "Option"),
		).Params(jen.Op("*").Id("Engine"), jen.Error()).Block(
			jen.If(jen.Id("impl").Op("==").Nil()).Block(
				jen.Return(jen.Nil(), jen.Qual("errors", "New").Call(jen.Lit("theus: NewEngine: nil Processes"))),
			),
			jen.List(jen.Id("core"), jen.Id("err")).Op(":=").Qual(enginePkg, "New").Call(
				jen.Id("ctx"), jen.Op("&").Id("theusSchema"), g.toEngineState("initial"),
				jen.Append(
					jen.Index().Qual(enginePkg, "Option").Values(jen.Qual(enginePkg, "WithStore").Call(jen.Qual(memoryPkg, "New").Call())),
					jen.Id("opts").Op("..."),
				).Op("..."),
			),
			ifErrReturn(jen.Nil()),
			jen.Return(jen.Op("&").Id("Engine").Add(keyed(field{"core", jen.Id("core")}, field{"impl", jen.Id("impl")})), jen.Nil()),
		),
		doc("Snapshot returns the latest committed state.").
			Func().Params(engineRecv()).Id("Snapshot").Params().Id("Snapshot").Block(
			jen.List(jen.Id("v"), jen.Id("s")).Op(":=").Id("e.core").Dot("Snapshot").Call(),
			jen.Return(jen.Id("Snapshot").Add(keyed(field{"s", jen.Id("s")}, field{"version", jen.Id("v")}))),
		),
		doc("CompareAndSwap commits p as a new version unless a commit after version expected exists that the caller could have read: then it returns engine.ErrVersionMismatch. Commits still with the store that neither read nor wrote what p writes do not count (p commits after them), so expected may be a Snapshot's version under load. An empty patch only checks that expected is the durable version. A value of p that cannot be encoded is refused first, with an error naming its path.").
			Func().Params(engineRecv()).Id("CompareAndSwap").Params(
			jen.Id("ctx").Qual("context", "Context"),
			jen.Id("expected").Uint64(),
			jen.Id("p").Id("Patch"),
		).Params(jen.Uint64(), jen.Error()).Block(
			jen.Return(jen.Id("e.core").Dot("CompareAndSwapPatch").Call(jen.Id("ctx"), jen.Id("expected"), jen.Op("&").Id("p.p"))),
		),
		doc("Store returns the engine's store, for outbox.NewRelay.").
			Func().Params(engineRecv()).Id("Store").Params().Qual(enginePkg, "Store").Add(oneLine(
			jen.Return(jen.Id("e.core").Dot("Store").Call()),
		)),
		doc("Sync waits until the engine has applied every commit that was durable in its store when Sync was called, whichever engine made it (a store several engines share); on any other store it returns at once.").
			Func().Params(engineRecv()).Id("Sync").Params(jen.Id("ctx").Qual("context", "Context")).Error().Add(oneLine(
			jen.Return(jen.Id("e.core").Dot("Sync").Call(jen.Id("ctx"))),
		)),
		doc("Watch yields the commits after version from, in version order, as they become durable (see engine.Engine.Watch).").
			Func().Params(engineRecv()).Id("Watch").Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("from").Uint64()).
			Qual("iter", "Seq2").Types(jen.Qual(enginePkg, "Commit"), jen.Error()).Add(oneLine(
			jen.Return(jen.Id("e.core").Dot("Watch").Call(jen.Id("ctx"), jen.Id("from"))),
		)),
		doc("History returns the commits from version from to version to that the store still keeps, with the values they wrote (see engine.Engine.History).").
			Func().Params(engineRecv()).Id("History").Params(jen.Id("ctx").Qual("context", "Context"), jen.List(jen.Id("from"), jen.Id("to")).Uint64()).
			Params(jen.Index().Qual(enginePkg, "Commit"), jen.Error()).Add(oneLine(
			jen.Return(jen.Id("e.core").Dot("History").Call(jen.Id("ctx"), jen.Id("from"), jen.Id("to"))),
		)),
		doc("Close stops the engine. It does not close a store passed with engine.WithStore.").
			Func().Params(engineRecv()).Id("Close").Params().Error().Add(oneLine(
			jen.Return(jen.Id("e.core").Dot("Close").Call()),
		)),
	}
	return out
}

// toEngineState converts the State variable name to the engine's state
// type.
func (g *generator) toEngineState(name string) jen.Code {
	if g.hasColl {
		return jen.Op("*").Id("theusInternal").Call(jen.Op("&").Id(name))
	}
	return jen.Id(name)
}

// toEngineStatePtr is toEngineState's pointer: to the variable name itself
// when the state types are the same.
func (g *generator) toEngineStatePtr(name string) jen.Code {
	if g.hasColl {
		return jen.Id("theusInternal").Call(jen.Op("&").Id(name))
	}
	return jen.Op("&").Id(name)
}

// ifErrReturn is: if err != nil { return zero, err }.
func ifErrReturn(zero jen.Code) jen.Code {
	return jen.If(jen.Id("err").Op("!=").Nil()).Block(jen.Return(zero, jen.Id("err")))
}

// patchDecls declares Patch: an engine.Patch, which the engine checks and
// applies through Schema.State, and a one-line setter per state field.
func (g *generator) patchDecls() []jen.Code {
	out := []jen.Code{doc("Patch is a set of state changes for CompareAndSwap: SetX sets the state field X, PutX and DeleteX an entry of the collection X.").
		Type().Id("Patch").Add(structOf(jen.Id("p").Qual(enginePkg, "Patch")))}
	recv := func() *jen.Statement { return jen.Id("p").Op("*").Id("Patch") }
	for _, f := range g.m.State {
		text := string(f.Zone) + "." + f.Name
		konst := jen.Id(g.byText[text].konst)
		if f.Collection {
			// Entries are put and deleted one by one; their keys take
			// part in conflict checks.
			k, v := goType(f.Type.Key), goType(f.Type.Elem)
			out = append(out,
				jen.Func().Params(recv()).Id("Put"+f.GoName).Params(jen.Id("k").Add(k), jen.Id("v").Add(v)).Add(oneLine(
					jen.Id("p.p").Dot("Put").Call(konst.Clone(), jen.Id("k"), g.patchValue(f.Type.Elem)),
				)),
				jen.Func().Params(recv()).Id("Delete"+f.GoName).Params(jen.Id("k").Add(k.Clone())).Add(oneLine(
					jen.Id("p.p").Dot("Delete").Call(konst.Clone(), jen.Id("k")),
				)),
			)
			continue
		}
		out = append(out, jen.Func().Params(recv()).Id("Set"+f.GoName).Params(jen.Id("v").Add(goType(f.Type))).Add(oneLine(
			jen.Id("p.p").Dot("Set").Call(konst, g.patchValue(f.Type)),
		)))
	}
	return []jen.Code{list(out)}
}

// patchValue is a pointer to a deep copy of v, a value of type t, for an
// engine.Patch to keep.
func (g *generator) patchValue(t *contract.Type) jen.Code {
	switch t.Kind {
	case contract.Named, contract.Slice, contract.Map:
		return jen.New(g.cloneValue(t, lv{expr: "v"}))
	}
	return jen.Op("&").Id("v")
}

// guard references every state field and declared type, so that editing
// this file by hand instead of the contract breaks the build.
func (g *generator) guard() jen.Code {
	var body []jen.Code
	for _, f := range g.m.State {
		body = append(body, jen.Id("_").Op("=").Id(stateExpr("s", f, nil)))
	}
	for _, s := range g.m.Types {
		body = append(body, jen.Id("_").Op("=").Id(s.GoName).Values())
	}
	return doc("If this does not compile, the contract and this file disagree: re-run theusgen.").
		Var().Id("_").Op("=").Func().Params(jen.Id("s").Id("State")).Block(body...)
}

package gen

import (
	"slices"
	"strconv"

	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// processDecls declares one process: what its user reads and writes (out:
// Args, In and its accessors, Out and its setters and emitters, Receipt,
// Effects, the Engine method and RunX), what its calls need (private): the
// checks of its rules, and its case of theusRun (run), which calls the
// application's method with the call's arguments (engine.RunFunc). runtime/engine
// does the rest alike for every process: it holds the arguments and the
// outputs that a run sets (ProcessSpec.Args, Outputs, Schema.Outputs),
// checks and applies them.
func (g *generator) processDecls(p *contract.Process) (out, private []jen.Code, run jen.Code) {
	n := p.GoName
	args, in, outT, receipt, effects := n+"Args", n+"In", n+"Out", n+"Receipt", n+"Effects"
	argsPtr := jen.Op("*").Id(args)

	var argFields []jen.Code
	for _, a := range p.Args {
		argFields = append(argFields, jen.Id(a.GoName).Add(goType(a.Type)))
	}
	inFields := []jen.Code{jen.Id("Args").Id(args), jen.Id("s").Id(inState)}
	inInit := []field{{"Args", jen.Op("*").Id("a")}, {"s", jen.Id(inState).Values(jen.Dict{jen.Id("p"): jen.Id("s").Assert(jen.Op("*").Id(g.st))})}}
	if slices.ContainsFunc(p.Inputs, func(pa *contract.Path) bool { return pa.Field.Collection }) {
		// The views of a collection record the entries read, for the
		// conflict check.
		inFields = append(inFields, jen.Id("tx").Op("*").Qual(enginePkg, "Tx"))
		inInit = append(inInit, field{"tx", jen.Id("o").Dot("Tx").Call()})
	}
	var accessors []jen.Code
	for _, pa := range p.Inputs {
		accessors = append(accessors, g.accessor(jen.Id("in").Id(in), "in.s.p", pa.GoName, pa.Field, pa.Sub, pa.Type, jen.Id("in.tx")))
	}

	// The Out is a handle on one run of the call (engine.Out): output i of
	// the process is ProcessSpec.Outputs[i], which the runtime holds.
	outRecv := func() *jen.Statement { return jen.Id("o").Op("*").Id(outT) }
	asOut := func() *jen.Statement { return jen.Parens(jen.Op("*").Qual(enginePkg, "Out")).Parens(jen.Id("o")) }
	var setters, effFields []jen.Code
	for i, pa := range p.Outputs {
		if pa.Field.Collection && len(pa.Sub) == 0 {
			// A collection is written entry by entry through a writer.
			k, v := goType(pa.Type.Key), goType(pa.Type.Elem)
			setters = append(setters, jen.Func().Params(outRecv()).Id(pa.GoName).Params().Qual(enginePkg, "CollectionWriter").Types(k.Clone(), v.Clone()).Add(oneLine(
				jen.Return(jen.Qual(enginePkg, "OutputWriter").Types(k.Clone(), v.Clone()).Call(asOut(), jen.Lit(i), g.cloneFuncOrNil(pa.Type.Elem))),
			)))
			effFields = append(effFields, jen.Id(pa.GoName).Map(k.Clone()).Op("*").Add(v.Clone()))
			continue
		}
		setters = append(setters, jen.Func().Params(outRecv()).Id("Set"+pa.GoName).Params(jen.Id("v").Add(goType(pa.Type))).Add(oneLine(
			jen.Qual(enginePkg, "SetOutput").Call(asOut(), jen.Lit(i), g.cloneValue(pa.Type, lv{expr: "v"})),
		)))
		effFields = append(effFields, jen.Id(pa.GoName).Op("*").Add(goType(pa.Type)))
	}
	for _, t := range p.Emits {
		payload := jen.Id(t.Payload.Struct.GoName)
		setters = append(setters, jen.Func().Params(outRecv()).Id("Emit"+t.GoName).Params(jen.Id("p").Add(payload.Clone())).Add(oneLine(
			jen.Id(topicEmitter(t)).Call(asOut(), jen.Op("&").Id("p")),
		)))
		effFields = append(effFields, jen.Id(t.GoName).Index().Add(payload.Clone()))
	}
	receiptType := jen.Qual(enginePkg, "Receipt")
	call := jen.Qual(enginePkg, "Invoke")
	if p.Result != nil {
		setters = append(setters, jen.Func().Params(outRecv()).Id("SetResult").Params(jen.Id("v").Add(goType(p.Result))).Add(oneLine(
			jen.Qual(enginePkg, "SetResult").Call(asOut(), jen.Id("v")),
		)))
		receiptType = jen.Qual(enginePkg, "ReceiptOf").Types(goType(p.Result))
		call = jen.Qual(enginePkg, "InvokeResult").Types(goType(p.Result))
		effFields = append(effFields, jen.Id("Result").Add(goType(p.Result)))
	}
	// The process's types in one block, then their methods.
	out = append([]jen.Code{jen.Type().Defs(
		doc(args+" are the arguments of "+p.Name+".").Id(args).Add(structOf(argFields...)),
		doc(in+" is what "+p.Name+" reads: its arguments"+g.inputsText(p)+", valid during the call only (Clone what you keep).").
			Id(in).Struct(inFields...),
		doc(outT+" collects what "+p.Name+" "+outputsText(p)+". It is valid only during the call: using it afterwards panics.").
			Id(outT).Qual(enginePkg, "Out"),
		doc(receipt+" tells what a call of "+p.Name+" committed.").Id(receipt).Op("=").Add(receiptType),
		doc(effects+" is what one run of "+p.Name+" set and emitted (see Run"+n+").").Id(effects).Add(structOf(effFields...)),
	)}, list(accessors), list(setters))

	// The Engine method and RunX.
	engineDoc := n + " runs " + p.Name + " and commits its effects."
	if p.Semantic == contract.Pure {
		engineDoc = n + " runs " + p.Name + " on the latest snapshot; it commits nothing."
	}
	runState := g.toEngineStatePtr("s")
	// The runtime fills the effects, in the order of their fields
	// (engine.RunEffects).
	runBody := []jen.Code{
		jen.Id("err").Op("=").Qual(enginePkg, "RunEffects").Call(jen.Qual("context", "Background").Call(), jen.Op("&").Id("theusSchema"),
			jen.Id(procConst(p)), jen.Op("&").Id("impl"), jen.Op("&").Id("args"), runState, jen.Op("&").Id("eff")),
		jen.Return(jen.Id("eff"), jen.Id("err")),
	}
	out = append(out,
		doc(engineDoc).Func().Params(jen.Id("e").Op("*").Id("Engine")).Id(n).
			Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("args").Id(args)).
			Params(jen.Id(receipt), jen.Error()).Block(
			jen.Return(call.Call(jen.Id("ctx"), jen.Id("e.core"), jen.Id(procConst(p)), jen.Op("&").Id("e.impl"), jen.Id("args"))),
		),
		doc("Run"+n+" runs "+p.Name+" once on s, with no engine and nothing committed, and returns its effects. It never modifies s.").
			Func().Id("Run"+n).
			Params(jen.Id("impl").Id("Processes"), jen.Id("s").Id("State"), jen.Id("args").Id(args)).
			Params(jen.Id("eff").Id(effects), jen.Id("err").Error()).Block(runBody...),
	)

	// The case of theusRun that calls the application (engine.RunFunc).
	// impl is a *Processes: asserting a concrete type is cheaper than
	// asserting an interface.
	process := jen.Parens(jen.Op("*").Id("impl").Assert(jen.Op("*").Id("Processes"))).Dot(n).Call(jen.Id("ctx"), jen.Id(in).Add(keyed(inInit...)), jen.Parens(jen.Op("*").Id(outT)).Parens(jen.Id("o")))
	run = jen.Case(argsPtr.Clone()).Block(jen.Return(process))
	if rules := g.ruleChecks(p); len(rules) > 0 {
		private = append(private, g.rulesDecl(p, rules))
	}
	return out, append(append(private, g.regexpDecls(p)...), g.checkDecls(p)...), run
}

// runCases is how many processes one run function serves. One function
// for every process would be the fewest lines, but the compiler's memory
// for a type switch grows faster than its cases: at 1,000 processes, one
// switch costs 40-70 MB more than switches of 32 (docs/BENCHMARKS.md,
// "Generated code").
const runCases = 32

// runFunc names the engine.RunFunc of the i-th process of the contract:
// theusRun for the first runCases processes, theusRun2 for the next, ….
func runFunc(i int) string {
	if n := i/runCases + 1; n > 1 {
		return "theusRun" + strconv.Itoa(n)
	}
	return "theusRun"
}

// runDecl declares the engine.RunFunc name of the processes whose cases
// it is given: the type of the arguments tells which process to call.
// inState is the type of an In's snapshot (inStateDecl).
const inState = "theusIn"

// inStateDecl declares inState: the snapshot a process's In reads. Its
// array of no functions makes the Ins not comparable, so the compiler makes
// no equality function per process (comparing two Ins would compare
// snapshot pointers anyway): 7-8% less build time at 1,000 processes
// (docs/BENCHMARKS.md, "Generated code").
func (g *generator) inStateDecl() jen.Code {
	return doc(inState+" is the snapshot an In reads; its [0]func() makes the Ins not comparable.").Type().Id(inState).Struct(jen.Id("_").Index(jen.Lit(0)).Func().Params(), jen.Id("p").Op("*").Id(g.st))
}

func runDecl(name string, cases []jen.Code) jen.Code {
	return jen.Func().Id(name).Params(jen.Id("ctx").Qual("context", "Context"), jen.List(jen.Id("impl"), jen.Id("args"), jen.Id("s")).Any(), jen.Id("o").Op("*").Qual(enginePkg, "Out")).Error().Block(
		jen.Switch(jen.Id("a").Op(":=").Id("args").Assert(jen.Type())).Block(cases...),
		jen.Panic(jen.Lit("theus: "+name+": arguments of no process it serves")),
	)
}

// rulesFunc is the name of the engine.RulesFunc of p, which has rules.
func rulesFunc(p *contract.Process) string { return "theusRules" + p.GoName }

// oneLine is a block written on one line, { a; b }, which gofmt keeps so
// when it is short (a function body of at most five statements and a
// hundred columns with its header).
func oneLine(stmts ...jen.Code) *jen.Statement {
	return jen.Custom(jen.Options{Open: "{", Close: "}", Separator: ";"}, stmts...)
}

// topicEmitter is the name of the function that emits a message on topic
// t (see topicDecls).
func topicEmitter(t *contract.Topic) string { return "theusEmit" + t.GoName }

// topicDecls declares, for every topic that a process emits, the function
// that the Emit methods of the processes' Outs share: it encodes the
// payload with the engine's codec or the type's JSON encoder, straight into
// the call's slab (Tx.Scratch), and records the message; a RunX run also
// keeps a copy of the payload for the effects.
func (g *generator) topicDecls() []jen.Code {
	emitted := map[*contract.Topic]bool{}
	for _, p := range g.m.Processes {
		for _, t := range p.Emits {
			emitted[t] = true
		}
	}
	var out []jen.Code
	for _, t := range g.m.Topics {
		if !emitted[t] {
			continue
		}
		payload := t.Payload.Struct
		key := jen.Lit("")
		if t.Key != nil {
			key = jen.Id("p." + t.Key.GoName)
			if kind, _ := intKind(t.Key.Type); kind != "" {
				key = formatInt(t.Key.Type, key)
			}
		}
		out = append(out, doc(topicEmitter(t)+" emits p on topic "+t.Name+" in the run of o; a RunX run keeps a copy.").
			Func().Id(topicEmitter(t)).Params(
			jen.Id("o").Op("*").Qual(enginePkg, "Out"),
			jen.Id("p").Op("*").Id(payload.GoName),
		).Block(
			jen.If(jen.Id("tx").Op(":=").Id("o").Dot("Tx").Call(), jen.Id("tx").Dot("Codec").Call().Op("!=").Nil()).Block(
				jen.Id("tx").Dot("EmitValue").Call(jen.Lit(t.Name), key, jen.Op("*").Id("p")),
			).Else().Block(
				jen.List(jen.Id("b"), jen.Id("err")).Op(":=").Id(appendFuncName(payload)).Call(jen.Id("tx").Dot("Scratch").Call(), jen.Id("p")),
				jen.Id("tx").Dot("EmitEncoded").Call(jen.Lit(t.Name), key.Clone(), jen.Id("b"), jen.Id("err")),
			),
			jen.If(jen.Id("o").Dot("Keep").Call()).Block(
				jen.Id("o").Dot("Kept").Call(jen.Lit(t.Name), g.cloneValue(t.Payload, deref("p"))),
			),
		))
	}
	return out
}

// inputsText lists the inputs of p for the doc of its In: ", and read-only
// views of domain.user and global.limit" (empty without inputs).
func (g *generator) inputsText(p *contract.Process) string {
	if len(p.Inputs) == 0 {
		return ""
	}
	return ", and read-only views of " + pathsText(p.Inputs)
}

// outputsText says what the Out of p collects, for its doc: "writes
// (domain.user), emits (user.updated) and returns (SetResult)".
func outputsText(p *contract.Process) string {
	var parts []string
	if len(p.Outputs) > 0 {
		parts = append(parts, "writes ("+pathsText(p.Outputs)+")")
	}
	if len(p.Emits) > 0 {
		topics := make([]string, len(p.Emits))
		for i, t := range p.Emits {
			topics[i] = t.Name
		}
		parts = append(parts, "emits ("+contract.AndList(topics)+")")
	}
	if p.Result != nil {
		parts = append(parts, "returns (SetResult)")
	}
	if len(parts) == 0 {
		return "could write, emit or return: nothing, as it declares none of them"
	}
	return contract.AndList(parts)
}

// pathsText lists the texts of paths: "domain.user and global.limit".
func pathsText(paths []*contract.Path) string {
	texts := make([]string, len(paths))
	for i, pa := range paths {
		texts[i] = pa.Text
	}
	return contract.AndList(texts)
}

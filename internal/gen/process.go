package gen

import (
	"slices"

	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// processDecls declares one process: what its user reads and writes (out:
// Args, In and its accessors, Out and its setters and emitters, Receipt,
// Effects, the Engine method and RunX), and its call (private), the little that
// runtime/engine's Invocation does not do for every process alike: the
// call's arguments and outputs, its pool, and the Run and Apply methods of
// engine.Call.
func (g *generator) processDecls(p *contract.Process) (out, private []jen.Code) {
	n := p.GoName
	args, in, outT, receipt, effects := n+"Args", n+"In", n+"Out", n+"Receipt", n+"Effects"
	call, outputs, pool := "theusCall"+n, "theusOutputs"+n, "theusPool"+n

	var argFields []jen.Code
	for _, a := range p.Args {
		argFields = append(argFields, jen.Id(a.GoName).Add(goType(a.Type)))
	}
	inFields := []jen.Code{jen.Id("Args").Id(args), jen.Id("s").Op("*").Id(g.st)}
	inInit := []field{{"Args", jen.Id("c.args")}, {"s", jen.Id("s")}}
	if slices.ContainsFunc(p.Inputs, func(pa *contract.Path) bool { return pa.Field.Collection }) {
		// The views of a collection record the entries read, for the
		// conflict check.
		inFields = append(inFields, jen.Id("tx").Op("*").Qual(enginePkg, "Tx"))
		inInit = append(inInit, field{"tx", jen.Id("c").Dot("Tx").Call()})
	}
	out = []jen.Code{
		doc(args + " are the arguments of " + p.Name + ".").Type().Id(args).Add(structOf(argFields...)),
		doc(in + " is what " + p.Name + " reads: its arguments and read-only views of its inputs, valid during the call only (Clone what you keep).").
			Type().Id(in).Struct(inFields...),
	}
	for _, pa := range p.Inputs {
		out = append(out, g.accessor(jen.Id("in").Id(in), "in.s", pa.GoName, pa.Field, pa.Sub, pa.Type, jen.Id("in.tx")))
	}

	// The Out is a handle on one run of the call (engine.Out): what the
	// process sets goes to the call's outputs.
	outRecv := func() *jen.Statement { return jen.Id("o").Op("*").Id(outT) }
	live := jen.Id("c").Op(":=").Id("o").Dot("live").Call()
	var outFields, setters, applies []jen.Code
	effFields := []jen.Code{}
	var effs []field
	usesVersion := false // whether Apply needs the commit's version
	for _, pa := range p.Outputs {
		priv := privateName(pa.GoName)
		konst := jen.Id(g.byText[pa.Text].konst)
		if pa.Field.Collection && len(pa.Sub) == 0 {
			// A collection is written entry by entry through a writer; the
			// call keeps the pending writes.
			k, v := goType(pa.Type.Key), goType(pa.Type.Elem)
			outFields = append(outFields, jen.Id(priv).Index().Qual(enginePkg, "Pending").Types(k.Clone(), v.Clone()))
			setters = append(setters, doc(pa.GoName+" returns the writer of "+pa.Text+": Put and Delete entries.").
				Func().Params(outRecv()).Id(pa.GoName).Params().Qual(enginePkg, "CollectionWriter").Types(k.Clone(), v.Clone()).Block(
				live.Clone(),
				jen.Return(jen.Qual(enginePkg, "Writer").Call(
					jen.Op("&").Id("c.Invocation"), konst, jen.Op("&").Id("c.out."+priv), g.cloneFuncOrNil(pa.Type.Elem))),
			))
			applies = append(applies, jen.If(jen.Len(jen.Id("c.out."+priv)).Op(">").Lit(0)).Block(
				jen.Id(stateExpr("s", pa.Field, nil)).Op("=").Id(stateExpr("s", pa.Field, nil)).Dot("Apply").Call(jen.Id("v"), jen.Id("c.out."+priv))))
			effFields = append(effFields, jen.Id(pa.GoName).Map(k.Clone()).Op("*").Add(v.Clone()))
			effs = append(effs, field{pa.GoName, jen.Qual(enginePkg, "Last").Call(jen.Id("c.out." + priv))})
			usesVersion = true
			continue
		}
		outFields = append(outFields, jen.Id(priv).Add(goType(pa.Type)))
		setters = append(setters, doc("Set"+pa.GoName+" sets "+pa.Text+".").
			Func().Params(outRecv()).Id("Set"+pa.GoName).Params(jen.Id("v").Add(goType(pa.Type))).Block(
			live.Clone(),
			jen.Id("c.out."+priv).Op("=").Add(g.cloneValue(pa.Type, lv{expr: "v"})),
			jen.Id("c").Dot("Tx").Call().Dot("Write").Call(konst),
		))
		applies = append(applies, jen.If(jen.Id("c").Dot("Tx").Call().Dot("Written").Call(konst.Clone())).Block(
			jen.Id(stateExpr("s", pa.Field, pa.Sub)).Op("=").Id("c.out."+priv)))
		effFields = append(effFields, jen.Id(pa.GoName).Op("*").Add(goType(pa.Type)))
		effs = append(effs, field{pa.GoName, jen.Qual(enginePkg, "Written").Call(jen.Id("c").Dot("Tx").Call(), konst.Clone(), jen.Op("&").Id("c.out."+priv))})
	}
	for _, t := range p.Emits {
		priv := privateName(t.GoName)
		payload := jen.Id(t.Payload.Struct.GoName)
		outFields = append(outFields, jen.Id(priv).Index().Add(payload.Clone()))
		setters = append(setters, doc("Emit"+t.GoName+" emits a message on topic "+t.Name+".").
			Func().Params(outRecv()).Id("Emit"+t.GoName).Params(jen.Id("p").Add(payload.Clone())).Block(
			live.Clone(),
			jen.Id(topicEmitter(t)).Call(jen.Op("&").Id("c.Invocation"), jen.Op("&").Id("p"), jen.Op("&").Id("c.out."+priv)),
		))
		effFields = append(effFields, jen.Id(t.GoName).Index().Add(payload.Clone()))
		effs = append(effs, field{t.GoName, jen.Id("c.out." + priv)})
	}
	receiptFields := []jen.Code{jen.Id("Version").Uint64(), jen.Id("MessageIDs").Index().String()}
	receiptInit := []field{{"MessageIDs", jen.Id("r.MessageIDs")}, {"Version", jen.Id("r.Version")}}
	if p.Result != nil {
		outFields = append(outFields, jen.Id("result").Add(goType(p.Result)))
		setters = append(setters, doc("SetResult sets the value returned to the caller in "+receipt+".Result.").
			Func().Params(outRecv()).Id("SetResult").Params(jen.Id("v").Add(goType(p.Result))).Add(oneLine(
			jen.Id("o").Dot("live").Call().Dot("out").Dot("result").Op("=").Id("v"),
		)))
		receiptFields = append(receiptFields, jen.Id("Result").Add(goType(p.Result)))
		receiptInit = append(receiptInit, field{"Result", jen.Id("result")})
		effFields = append(effFields, jen.Id("Result").Add(goType(p.Result)))
		effs = append(effs, field{"Result", jen.Id("c.out.result")})
	}
	out = append(out, doc(outT+" collects what "+p.Name+" writes and emits. It is valid only during the call: using it afterwards panics.").
		Type().Id(outT).Qual(enginePkg, "Out"))
	out = append(out, setters...)
	out = append(out,
		jen.Func().Params(outRecv()).Id("live").Params().Op("*").Id(call).Add(oneLine(
			jen.Return(jen.Parens(jen.Op("*").Qual(enginePkg, "Out")).Parens(jen.Id("o")).Dot("Live").Call().Assert(jen.Op("*").Id(call))),
		)),
		doc(receipt+" tells what a call of "+p.Name+" committed.").Type().Id(receipt).Struct(receiptFields...),
		doc(effects+" is what one run of "+p.Name+" set and emitted (see Run"+n+").").Type().Id(effects).Add(structOf(effFields...)),
	)

	// The Engine method and RunX.
	engineDoc := n + " runs " + p.Name + " and commits its effects."
	if p.Semantic == contract.Pure {
		engineDoc = n + " runs " + p.Name + " on the latest snapshot; it commits nothing."
	}
	engineBody := []jen.Code{
		jen.Id("c").Op(":=").Id(pool).Dot("Get").Call().Assert(jen.Op("*").Id(call)),
		jen.List(jen.Id("c.impl"), jen.Id("c.args")).Op("=").List(jen.Id("e.impl"), jen.Id("args")),
		jen.List(jen.Id("r"), jen.Id("err")).Op(":=").Id("e.core").Dot("Exec").Call(jen.Id("ctx"), jen.Id(procConst(p)), jen.Id("c")),
	}
	if p.Result != nil {
		engineBody = append(engineBody, jen.Id("result").Op(":=").Id("c.out.result"))
	}
	// The call goes back to the pool holding nothing of this one.
	engineBody = append(engineBody,
		jen.Qual(enginePkg, "Finish").Call(jen.Op("&").Id("c.Invocation")),
		jen.List(jen.Id("c.impl"), jen.Id("c.args"), jen.Id("c.out")).Op("=").List(jen.Nil(), jen.Id(args).Values(), jen.Id(outputs).Values()),
		jen.Id(pool).Dot("Put").Call(jen.Id("c")),
		ifErrReturn(jen.Id(receipt).Values()),
		jen.Return(jen.Id(receipt).Add(keyed(receiptInit...)), jen.Nil()),
	)
	runState := jen.Op("&").Id("s")
	runBody := []jen.Code{
		jen.Id("c").Op(":=").Op("&").Id(call).Add(keyed(
			field{"Invocation", jen.Qual(enginePkg, "Invocation").Add(keyed(field{"Keep", jen.True()}))},
			field{"impl", jen.Id("impl")}, field{"args", jen.Id("args")})),
	}
	if g.hasColl {
		runState = jen.Op("&").Id("st")
		runBody = append(runBody, jen.Id("st").Op(":=").Add(g.toEngineState("s")))
	}
	runBody = append(runBody,
		jen.Id("err").Op(":=").Qual(enginePkg, "Run").Call(append([]jen.Code{
			jen.Qual("context", "Background").Call(), jen.Lit(p.Name), jen.Id("c"), runState}, declaredErrors(p)...)...),
		jen.Qual(enginePkg, "Finish").Call(jen.Op("&").Id("c.Invocation")),
		ifErrReturn(jen.Id(effects).Values()),
		jen.Return(jen.Id(effects).Add(keyed(effs...)), jen.Nil()),
	)
	out = append(out,
		doc(engineDoc).Func().Params(jen.Id("e").Op("*").Id("Engine")).Id(n).
			Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("args").Id(args)).
			Params(jen.Id(receipt), jen.Error()).Block(engineBody...),
		doc("Run"+n+" runs "+p.Name+" once on s, with no engine and nothing committed, and returns its effects. It never modifies s.").
			Func().Id("Run"+n).
			Params(jen.Id("impl").Id("Processes"), jen.Id("s").Id("State"), jen.Id("args").Id(args)).
			Params(jen.Id(effects), jen.Error()).Block(runBody...),
	)

	// The call.
	callRecv := func() *jen.Statement { return jen.Id("c").Op("*").Id(call) }
	version := jen.Id("_")
	if usesVersion {
		version = jen.Id("v")
	}
	process := jen.Id("c.impl").Dot(n).Call(jen.Id("ctx"), jen.Id(in).Add(keyed(inInit...)),
		jen.Parens(jen.Op("*").Id(outT)).Parens(jen.Qual(enginePkg, "Start").Call(jen.Op("&").Id("c.Invocation"), jen.Id("c"))))
	runStmts := []jen.Code{jen.Id("c.out").Op("=").Id(outputs).Values()}
	checks := g.outputChecks(p)
	if len(checks) > 0 {
		runStmts = append(runStmts,
			jen.If(jen.Id("err").Op(":=").Add(process), jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Id("err"))),
			jen.Id("c").Dot("checkOutputs").Call(),
			jen.Return(jen.Nil()),
		)
	} else {
		runStmts = append(runStmts, jen.Return(process))
	}
	private = append(private,
		doc(outputs+" is what a run of "+p.Name+" set and emitted.").Type().Id(outputs).Add(structOf(outFields...)),
		doc(call+" is a call of "+p.Name+"; calls are pooled.").Type().Id(call).Struct(
			jen.Qual(enginePkg, "Invocation"),
			jen.Id("impl").Id("Processes"),
			jen.Id("args").Id(args),
			jen.Id("out").Id(outputs),
		),
		jen.Var().Id(pool).Op("=").Qual("sync", "Pool").Values(jen.Dict{
			jen.Id("New"): jen.Func().Params().Any().Add(oneLine(jen.Return(jen.New(jen.Id(call))))),
		}),
		jen.Func().Params(callRecv()).Id("Run").Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("s").Op("*").Id(g.st)).Error().
			Block(runStmts...),
	)
	if len(checks) > 0 {
		private = append(private, doc("checkOutputs checks what the run of "+p.Name+" set: that each value can be encoded, then the rules.").
			Func().Params(callRecv()).Id("checkOutputs").Params().Block(append([]jen.Code{jen.Id("tx").Op(":=").Id("c").Dot("Tx").Call()}, checks...)...))
	}
	if len(applies) == 0 {
		private = append(private, jen.Func().Params(callRecv()).Id("Apply").Params(jen.Op("*").Id(g.st), jen.Uint64()).Block())
	} else {
		private = append(private, jen.Func().Params(callRecv()).Id("Apply").Params(jen.Id("s").Op("*").Id(g.st), version.Uint64()).Block(applies...))
	}
	return out, append(append(private, g.regexpDecls(p)...), g.checkDecls(p)...)
}

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
		out = append(out, doc(topicEmitter(t)+" emits p on topic "+t.Name+" in the run of c; a RunX run keeps a copy in kept.").
			Func().Id(topicEmitter(t)).Params(
			jen.Id("c").Op("*").Qual(enginePkg, "Invocation"),
			jen.Id("p").Op("*").Id(payload.GoName),
			jen.Id("kept").Op("*").Index().Id(payload.GoName),
		).Block(
			jen.If(jen.Id("tx").Op(":=").Id("c").Dot("Tx").Call(), jen.Id("tx").Dot("Codec").Call().Op("!=").Nil()).Block(
				jen.Id("tx").Dot("EmitValue").Call(jen.Lit(t.Name), key, jen.Op("*").Id("p")),
			).Else().Block(
				jen.List(jen.Id("b"), jen.Id("err")).Op(":=").Id(appendFuncName(payload)).Call(jen.Id("tx").Dot("Scratch").Call(), jen.Id("p")),
				jen.Id("tx").Dot("EmitEncoded").Call(jen.Lit(t.Name), key.Clone(), jen.Id("b"), jen.Id("err")),
			),
			jen.If(jen.Id("c.Keep")).Block(
				jen.Op("*").Id("kept").Op("=").Append(jen.Op("*").Id("kept"), g.cloneValue(t.Payload, deref("p"))),
			),
		))
	}
	return out
}

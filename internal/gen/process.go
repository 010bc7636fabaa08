package gen

import (
	"slices"

	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// processDecls declares one process: what its user reads and writes (out:
// Args, In and its accessors, Out and its setters and emitters, Receipt,
// Effects, the Engine method and RunX), and its call (private): the frame
// of engine.Take, which holds the call's arguments and outputs and runs
// and applies it; runtime/engine does the rest alike for every process.
func (g *generator) processDecls(p *contract.Process) (out, private []jen.Code) {
	n := p.GoName
	args, in, outT, receipt, effects := n+"Args", n+"In", n+"Out", n+"Receipt", n+"Effects"
	call := callType(p)

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
		inInit = append(inInit, field{"tx", jen.Id("o").Dot("Tx").Call()})
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
	// process sets goes to the call's frame, which o.set returns.
	outRecv := func() *jen.Statement { return jen.Id("o").Op("*").Id(outT) }
	set := func(k jen.Code) *jen.Statement { return jen.Id("o").Dot("set").Call(k) }
	asOut := func() *jen.Statement { return jen.Parens(jen.Op("*").Qual(enginePkg, "Out")).Parens(jen.Id("o")) }
	var frameFields, setters, applies []jen.Code
	var effFields []jen.Code
	var effs []field
	usesVersion, usesTx := false, false // what Apply and the effects need
	for _, pa := range p.Outputs {
		priv := privateName(pa.GoName)
		konst := jen.Id(g.byText[pa.Text].konst)
		if pa.Field.Collection && len(pa.Sub) == 0 {
			// A collection is written entry by entry through a writer; the
			// call keeps the pending writes.
			k, v := goType(pa.Type.Key), goType(pa.Type.Elem)
			frameFields = append(frameFields, jen.Id(priv).Index().Qual(enginePkg, "Pending").Types(k.Clone(), v.Clone()))
			setters = append(setters, doc(pa.GoName+" returns the writer of "+pa.Text+": Put and Delete entries.").
				Func().Params(outRecv()).Id(pa.GoName).Params().Qual(enginePkg, "CollectionWriter").Types(k.Clone(), v.Clone()).Add(oneLine(
				jen.Return(jen.Qual(enginePkg, "Writer").Call(asOut(), konst, jen.Op("&").Add(set(jen.Lit(-1))).Dot(priv), g.cloneFuncOrNil(pa.Type.Elem))),
			)))
			applies = append(applies, jen.If(jen.Len(jen.Id("c."+priv)).Op(">").Lit(0)).Block(
				jen.Id(stateExpr("s", pa.Field, nil)).Op("=").Id(stateExpr("s", pa.Field, nil)).Dot("Apply").Call(jen.Id("v"), jen.Id("c."+priv))))
			effFields = append(effFields, jen.Id(pa.GoName).Map(k.Clone()).Op("*").Add(v.Clone()))
			effs = append(effs, field{pa.GoName, jen.Qual(enginePkg, "Last").Call(jen.Id("c." + priv))})
			usesVersion = true
			continue
		}
		frameFields = append(frameFields, jen.Id(priv).Add(goType(pa.Type)))
		setters = append(setters, doc("Set"+pa.GoName+" sets "+pa.Text+".").
			Func().Params(outRecv()).Id("Set"+pa.GoName).Params(jen.Id("v").Add(goType(pa.Type))).Add(oneLine(
			set(konst).Dot(priv).Op("=").Add(g.cloneValue(pa.Type, lv{expr: "v"})),
		)))
		applies = append(applies, jen.If(jen.Id("tx").Dot("Written").Call(konst.Clone())).Block(
			jen.Id(stateExpr("s", pa.Field, pa.Sub)).Op("=").Id("c."+priv)))
		effFields = append(effFields, jen.Id(pa.GoName).Op("*").Add(goType(pa.Type)))
		effs = append(effs, field{pa.GoName, jen.Qual(enginePkg, "Written").Call(jen.Id("tx"), konst.Clone(), jen.Op("&").Id("c."+priv))})
		usesTx = true
	}
	for _, t := range p.Emits {
		priv := privateName(t.GoName)
		payload := jen.Id(t.Payload.Struct.GoName)
		frameFields = append(frameFields, jen.Id(priv).Index().Add(payload.Clone()))
		setters = append(setters, doc("Emit"+t.GoName+" emits a message on topic "+t.Name+".").
			Func().Params(outRecv()).Id("Emit"+t.GoName).Params(jen.Id("p").Add(payload.Clone())).Add(oneLine(
			jen.Id(topicEmitter(t)).Call(asOut(), jen.Op("&").Id("p"), jen.Op("&").Add(set(jen.Lit(-1))).Dot(priv)),
		)))
		effFields = append(effFields, jen.Id(t.GoName).Index().Add(payload.Clone()))
		effs = append(effs, field{t.GoName, jen.Id("c." + priv)})
	}
	receiptType := jen.Qual(enginePkg, "Receipt")
	exec := jen.Id("c").Dot("Exec").Call(jen.Id("ctx"))
	if p.Result != nil {
		frameFields = append(frameFields, jen.Id("result").Add(goType(p.Result)))
		setters = append(setters, doc("SetResult sets the value returned to the caller in "+receipt+".Result.").
			Func().Params(outRecv()).Id("SetResult").Params(jen.Id("v").Add(goType(p.Result))).Add(oneLine(
			set(jen.Lit(-1)).Dot("result").Op("=").Id("v"),
		)))
		receiptType = jen.Qual(enginePkg, "ReceiptOf").Types(goType(p.Result))
		exec = jen.Qual(enginePkg, "ExecResult").Call(jen.Id("ctx"), jen.Id("c"), jen.Op("&").Id("f").Dot("result"))
		effFields = append(effFields, jen.Id("Result").Add(goType(p.Result)))
		effs = append(effs, field{"Result", jen.Id("c.result")})
	}
	out = append(out, doc(outT+" collects what "+p.Name+" writes and emits. It is valid only during the call: using it afterwards panics.").
		Type().Id(outT).Qual(enginePkg, "Out"))
	out = append(out, setters...)
	if len(setters) > 0 {
		out = append(out, jen.Func().Params(outRecv()).Id("set").Params(jen.Id("path").Int()).Op("*").Id(call).Add(oneLine(
			jen.Return(asOut().Dot("Set").Call(jen.Id("path")).Assert(jen.Op("*").Id(call))),
		)))
	}
	out = append(out,
		doc(receipt+" tells what a call of "+p.Name+" committed.").Type().Id(receipt).Op("=").Add(receiptType),
		doc(effects+" is what one run of "+p.Name+" set and emitted (see Run"+n+").").Type().Id(effects).Add(structOf(effFields...)),
	)

	// The Engine method and RunX.
	engineDoc := n + " runs " + p.Name + " and commits its effects."
	if p.Semantic == contract.Pure {
		engineDoc = n + " runs " + p.Name + " on the latest snapshot; it commits nothing."
	}
	runState := jen.Op("&").Id("s")
	runBody := []jen.Code{jen.Id("c").Op(":=").Op("&").Id(call).Add(keyed(field{"impl", jen.Id("impl")}, field{"args", jen.Id("args")}))}
	if g.hasColl {
		runState = jen.Op("&").Id("st")
		runBody = append(runBody, jen.Id("st").Op(":=").Add(g.toEngineState("s")))
	}
	txVar := jen.Id("_")
	if usesTx {
		txVar = jen.Id("tx")
	}
	runBody = append(runBody,
		jen.List(txVar, jen.Id("err")).Op(":=").Qual(enginePkg, "RunFrame").Call(append([]jen.Code{
			jen.Qual("context", "Background").Call(), jen.Lit(p.Name), jen.Id("c"), runState}, declaredErrors(p)...)...),
		ifErrReturn(jen.Id(effects).Values()),
		jen.Return(jen.Id(effects).Add(keyed(effs...)), jen.Nil()),
	)
	out = append(out,
		doc(engineDoc).Func().Params(jen.Id("e").Op("*").Id("Engine")).Id(n).
			Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("args").Id(args)).
			Params(jen.Id(receipt), jen.Error()).Block(
			jen.Id("c").Op(":=").Qual(enginePkg, "Take").Call(jen.Id("e.core"), jen.Id(procConst(p))),
			jen.Id("f").Op(":=").Id("c").Dot("Frame").Call().Assert(jen.Op("*").Id(call)),
			jen.List(jen.Id("f.impl"), jen.Id("f.args")).Op("=").List(jen.Id("e.impl"), jen.Id("args")),
			jen.Return(exec),
		),
		doc("Run"+n+" runs "+p.Name+" once on s, with no engine and nothing committed, and returns its effects. It never modifies s.").
			Func().Id("Run"+n).
			Params(jen.Id("impl").Id("Processes"), jen.Id("s").Id("State"), jen.Id("args").Id(args)).
			Params(jen.Id(effects), jen.Error()).Block(runBody...),
	)

	// The frame.
	callRecv := func() *jen.Statement { return jen.Id("c").Op("*").Id(call) }
	version := jen.Id("_")
	if usesVersion {
		version = jen.Id("v")
	}
	process := jen.Id("c.impl").Dot(n).Call(jen.Id("ctx"), jen.Id(in).Add(keyed(inInit...)), jen.Parens(jen.Op("*").Id(outT)).Parens(jen.Id("o")))
	runStmts := []jen.Code{}
	if len(frameFields) > 0 {
		runStmts = append(runStmts, jen.Op("*").Id("c").Op("=").Id(call).Add(keyed(field{"impl", jen.Id("c.impl")}, field{"args", jen.Id("c.args")})))
	}
	checks := g.outputChecks(p)
	if len(checks) > 0 {
		runStmts = append(runStmts,
			jen.If(jen.Id("err").Op(":=").Add(process), jen.Id("err").Op("!=").Nil()).Block(jen.Return(jen.Id("err"))),
			jen.Id("tx").Op(":=").Id("o").Dot("Tx").Call(),
		)
		runStmts = append(append(runStmts, checks...), jen.Return(jen.Nil()))
	} else {
		runStmts = append(runStmts, jen.Return(process))
	}
	frameFields = append([]jen.Code{jen.Id("impl").Id("Processes"), jen.Id("args").Id(args)}, frameFields...)
	private = append(private,
		doc(call+" is the frame of a call of "+p.Name+": its arguments and what its last run set and emitted.").
			Type().Id(call).Struct(frameFields...),
		jen.Func().Params(callRecv()).Id("Run").Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("s").Op("*").Id(g.st), jen.Id("o").Op("*").Qual(enginePkg, "Out")).Error().
			Block(runStmts...),
	)
	if len(applies) == 0 {
		private = append(private, jen.Func().Params(callRecv()).Id("Apply").Params(jen.Op("*").Id(g.st), jen.Op("*").Qual(enginePkg, "Tx"), jen.Uint64()).Block())
	} else {
		private = append(private, jen.Func().Params(callRecv()).Id("Apply").Params(jen.Id("s").Op("*").Id(g.st), jen.Id("tx").Op("*").Qual(enginePkg, "Tx"), version.Uint64()).Block(applies...))
	}
	return out, append(append(private, g.regexpDecls(p)...), g.checkDecls(p)...)
}

// callType is the name of the frame type of p's calls.
func callType(p *contract.Process) string { return "theusCall" + p.GoName }

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
		out = append(out, doc(topicEmitter(t)+" emits p on topic "+t.Name+" in the run of o; a RunX run keeps a copy in kept.").
			Func().Id(topicEmitter(t)).Params(
			jen.Id("o").Op("*").Qual(enginePkg, "Out"),
			jen.Id("p").Op("*").Id(payload.GoName),
			jen.Id("kept").Op("*").Index().Id(payload.GoName),
		).Block(
			jen.If(jen.Id("tx").Op(":=").Id("o").Dot("Tx").Call(), jen.Id("tx").Dot("Codec").Call().Op("!=").Nil()).Block(
				jen.Id("tx").Dot("EmitValue").Call(jen.Lit(t.Name), key, jen.Op("*").Id("p")),
			).Else().Block(
				jen.List(jen.Id("b"), jen.Id("err")).Op(":=").Id(appendFuncName(payload)).Call(jen.Id("tx").Dot("Scratch").Call(), jen.Id("p")),
				jen.Id("tx").Dot("EmitEncoded").Call(jen.Lit(t.Name), key.Clone(), jen.Id("b"), jen.Id("err")),
			),
			jen.If(jen.Id("o").Dot("Keep").Call()).Block(
				jen.Op("*").Id("kept").Op("=").Append(jen.Op("*").Id("kept"), g.cloneValue(t.Payload, deref("p"))),
			),
		))
	}
	return out
}

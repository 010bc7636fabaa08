package gen

import (
	"slices"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// processDecls declares the types and functions of one process.
func (g *generator) processDecls(p *contract.Process) []jen.Code {
	n := p.GoName
	args, in, outT, receipt, effects := n+"Args", n+"In", n+"Out", n+"Receipt", n+"Effects"
	call := "theusCall" + n

	var argFields []jen.Code
	for _, a := range p.Args {
		argFields = append(argFields, jen.Id(a.GoName).Add(goType(a.Type)))
	}
	inFields := []jen.Code{jen.Id("Args").Id(args), jen.Id("s").Op("*").Id(g.st)}
	readsColl := slices.ContainsFunc(p.Inputs, func(pa *contract.Path) bool { return pa.Field.Collection })
	if readsColl {
		inFields = append(inFields, jen.Id("tx").Op("*").Qual(enginePkg, "Tx")) // records the entries read
	}
	out := []jen.Code{
		doc(args + " are the arguments of " + p.Name + ".").Type().Id(args).Struct(argFields...),
		doc(in + " is what " + p.Name + " reads: its arguments and read-only views of its inputs, valid during the call only (Clone what you keep).").
			Type().Id(in).Struct(inFields...),
	}
	for _, pa := range p.Inputs {
		out = append(out, g.accessor(jen.Id("in").Id(in), "in.s", pa.GoName, pa.Field, pa.Sub, pa.Type, jen.Id("in.tx")))
	}

	// Out is a handle on the call: the values it sets live in the call's
	// outputs, which a pooled call reuses. The generation check makes a
	// handle kept past its call panic instead of writing into another call.
	outputs := "theusOutputs" + n
	var outFields []jen.Code
	var setters, applies, effFields, effSets []jen.Code
	usesVersion := false // whether Apply needs the commit's version
	effInit := []field{}
	outRecv := func() *jen.Statement { return jen.Id("o").Op("*").Id(outT) }
	for _, pa := range p.Outputs {
		priv := privateName(pa.GoName)
		konst := g.byText[pa.Text].konst
		if pa.Field.Collection && len(pa.Sub) == 0 {
			// A collection is written entry by entry through a writer; the
			// call keeps the pending writes.
			k, v := goType(pa.Type.Key), goType(pa.Type.Elem)
			outFields = append(outFields, jen.Id(priv).Index().Qual(enginePkg, "Pending").Types(k.Clone(), v.Clone()))
			setters = append(setters, doc(pa.GoName+" returns the writer of "+pa.Text+": Put and Delete entries.").
				Func().Params(outRecv()).Id(pa.GoName).Params().Qual(enginePkg, "CollectionWriter").Types(k.Clone(), v.Clone()).Block(
				jen.Id("c").Op(":=").Id("o").Dot("live").Call(),
				jen.Return(jen.Qual(enginePkg, "NewCollectionWriter").Call(
					jen.Op("&").Id("c.tx"), jen.Id(konst), jen.Op("&").Id("c.out."+priv),
					g.cloneFuncOrNil(pa.Type.Elem), jen.Op("&").Id("c.gen"), jen.Id("c.gen"))),
			))
			applies = append(applies, jen.If(jen.Len(jen.Id("c.out."+priv)).Op(">").Lit(0)).Block(
				jen.Id(stateExpr("s", pa.Field, nil)).Op("=").Id(stateExpr("s", pa.Field, nil)).Dot("Apply").Call(jen.Id("v"), jen.Id("c.out."+priv))))
			effFields = append(effFields, jen.Id(pa.GoName).Map(k.Clone()).Op("*").Add(v.Clone()))
			effInit = append(effInit, field{pa.GoName, jen.Qual(enginePkg, "Last").Call(jen.Id("c.out." + priv))})
			usesVersion = true
			continue
		}
		outFields = append(outFields, jen.Id(priv).Add(goType(pa.Type)))
		setters = append(setters, doc("Set"+pa.GoName+" sets "+pa.Text+".").
			Func().Params(outRecv()).Id("Set"+pa.GoName).Params(jen.Id("v").Add(goType(pa.Type))).Block(
			jen.Id("c").Op(":=").Id("o").Dot("live").Call(),
			jen.Id("c.out."+priv).Op("=").Add(g.cloneValue(pa.Type, lv{expr: "v"})),
			jen.Id("c.tx").Dot("Write").Call(jen.Id(konst)),
		))
		written := jen.Id("c.tx").Dot("Written").Call(jen.Id(konst))
		applies = append(applies, jen.If(written.Clone()).Block(
			jen.Id(stateExpr("s", pa.Field, pa.Sub)).Op("=").Id("c.out."+priv)))
		effFields = append(effFields, jen.Id(pa.GoName).Op("*").Add(goType(pa.Type)))
		effSets = append(effSets, jen.If(written).Block(
			jen.Id("v").Op(":=").Id("c.out."+priv),
			jen.Id("eff."+pa.GoName).Op("=").Op("&").Id("v"),
		))
	}
	for _, t := range p.Emits {
		priv := privateName(t.GoName)
		payload := t.Payload.Struct
		outFields = append(outFields, jen.Id(priv).Index().Id(payload.GoName))
		setters = append(setters, g.emitter(outRecv(), t, priv))
		effFields = append(effFields, jen.Id(t.GoName).Index().Id(payload.GoName))
		effInit = append(effInit, field{t.GoName, jen.Id("c.out." + priv)})
	}
	receiptFields := []jen.Code{jen.Id("Version").Uint64(), jen.Id("MessageIDs").Index().String()}
	receiptInit := []field{{"MessageIDs", jen.Id("r.MessageIDs")}, {"Version", jen.Id("r.Version")}}
	if p.Result != nil {
		outFields = append(outFields, jen.Id("result").Add(goType(p.Result)))
		setters = append(setters, doc("SetResult sets the value returned to the caller in "+receipt+".Result.").
			Func().Params(outRecv()).Id("SetResult").Params(jen.Id("v").Add(goType(p.Result))).Block(
			jen.Id("o").Dot("live").Call().Dot("out").Dot("result").Op("=").Id("v"),
		))
		receiptFields = append(receiptFields, jen.Id("Result").Add(goType(p.Result)))
		receiptInit = append(receiptInit, field{"Result", jen.Id("result")})
		effFields = append(effFields, jen.Id("Result").Add(goType(p.Result)))
		effInit = append(effInit, field{"Result", jen.Id("c.out.result")})
	}
	outHandle := []jen.Code{jen.Id("c").Op("*").Id(call), jen.Id("gen").Uint64()}
	out = append(out,
		doc(outT+" collects what "+p.Name+" writes and emits. It is valid only during the call: using it afterwards panics.").
			Type().Id(outT).Struct(outHandle...),
		jen.Func().Params(jen.Id("o").Op("*").Id(outT)).Id("live").Params().Op("*").Id(call).Block(
			jen.If(jen.Id("o.c").Op("==").Nil().Op("||").Id("o.c.gen").Op("!=").Id("o.gen")).Block(
				jen.Panic(jen.Lit("theus: "+outT+" used after its call returned")),
			),
			jen.Return(jen.Id("o.c")),
		),
	)
	out = append(out, setters...)
	out = append(out,
		doc(receipt+" tells what a call of "+p.Name+" committed.").Type().Id(receipt).Struct(receiptFields...),
		doc(effects+" is what one run of "+p.Name+" set and emitted (see Run"+n+").").Type().Id(effects).Struct(effFields...),
	)

	// The engine.Call implementation. Calls made by the Engine come from a
	// pool, so a commit allocates only what outlives it.
	callRecv := func() *jen.Statement { return jen.Id("c").Op("*").Id(call) }
	stateParam := func() *jen.Statement { return jen.Id("s").Op("*").Id(g.st) }
	version := jen.Id("_")
	if usesVersion {
		version = jen.Id("v")
	}
	runPrologue := []jen.Code{jen.Id("c.gen").Op("++"), jen.Id("c.in.s").Op("=").Id("s")}
	if readsColl {
		runPrologue = append(runPrologue, jen.Id("c.in.tx").Op("=").Op("&").Id("c.tx"))
	}
	pool := "theusPool" + n
	// runBatch is how many runs a call allocates at a time (see below).
	const runBatch = 16
	callFields := []jen.Code{
		jen.Id("tx").Qual(enginePkg, "Tx"),
		jen.Id("gen").Uint64(),
		jen.Id("impl").Id("Processes"),
		jen.Id("in").Id(in),
		jen.Id("run").Bool(),
		jen.Id("out").Id(outputs),
	}
	// A run of a process that commits takes its Out, together with the
	// room for its receipt's message ID, from a batch of runBatch that the
	// call allocates when it has used the last one up: a commit on the
	// memory store then allocates nothing but for these batches and its
	// share of the call's slab (payloads and IDs). Each run in a batch is
	// used once, so that an Out kept past its call can be told apart. A
	// pure process's run allocates its Out alone.
	outLit := func() *jen.Statement {
		return jen.Id(outT).Add(keyed(field{"c", jen.Id("c")}, field{"gen", jen.Id("c.gen")}))
	}
	newOut := jen.Op("&").Add(outLit())
	receiptID := []jen.Code{jen.Return(jen.Nil())}
	releaseCur := []jen.Code{}
	var runDecl []jen.Code
	if p.Semantic != contract.Pure {
		runT := "theusRun" + n
		runDecl = append(runDecl, doc(runT+" is what one run of "+p.Name+" uses once: its Out, and room for the message ID of the receipt of the run's commit. Calls allocate them "+strconv.Itoa(runBatch)+" at a time.").
			Type().Id(runT).Struct(
			jen.Id("out").Id(outT),
			jen.Id("id").Index(jen.Lit(1)).String(),
		))
		callFields = append(callFields, jen.Id("cur").Op("*").Id(runT), jen.Id("runs").Index().Id(runT))
		runPrologue = append(runPrologue,
			jen.If(jen.Len(jen.Id("c.runs")).Op("==").Lit(0)).Block(
				jen.Id("c.runs").Op("=").Make(jen.Index().Id(runT), jen.Lit(runBatch)),
			),
			jen.List(jen.Id("c.cur"), jen.Id("c.runs")).Op("=").List(jen.Op("&").Id("c.runs").Index(jen.Lit(0)), jen.Id("c.runs").Index(jen.Lit(1), jen.Empty())),
			jen.Id("c.cur.out").Op("=").Add(outLit()),
		)
		newOut = jen.Op("&").Id("c.cur.out")
		receiptID = []jen.Code{
			jen.If(jen.Id("c.cur").Op("==").Nil()).Block(jen.Return(jen.Nil())),
			jen.Return(jen.Op("&").Id("c.cur.id")),
		}
		releaseCur = append(releaseCur, jen.Id("c.cur").Op("=").Nil())
	}
	out = append(out, runDecl...)
	out = append(out,
		jen.Type().Id(call).Struct(callFields...),
		doc(outputs+" holds what one run of "+p.Name+" set and emitted.").Type().Id(outputs).Struct(outFields...),
		jen.Var().Id(pool).Op("=").Qual("sync", "Pool").Values(jen.Dict{
			jen.Id("New"): jen.Func().Params().Any().Block(jen.Return(jen.New(jen.Id(call)))),
		}),
		jen.Func().Params(callRecv()).Id("Tx").Params().Op("*").Qual(enginePkg, "Tx").Block(
			jen.Return(jen.Op("&").Id("c.tx")),
		),
		jen.Func().Params(callRecv()).Id("Run").Params(jen.Id("ctx").Qual("context", "Context"), stateParam()).Error().Block(
			append(runPrologue, jen.Id("c.out").Op("=").Id(outputs).Values(),
				runTail(p, jen.Id("c.impl").Dot(n).Call(jen.Id("ctx"), jen.Id("c.in"), newOut)))...,
		),
		jen.Func().Params(callRecv()).Id("Apply").Params(stateParam(), version.Uint64()).Block(applies...),
		jen.Func().Params(callRecv()).Id("ReceiptID").Params().Op("*").Index(jen.Lit(1)).String().Block(receiptID...),
		// release ends the call: Outs handed out become stale, and the
		// call goes back to the pool. The Tx is not cleared here: the
		// engine resets it before the next run, and zeroing its buffers on
		// every call costs more than the references it would drop.
		jen.Func().Params(callRecv()).Id("release").Params().Block(append(append([]jen.Code{
			jen.Id("c.gen").Op("++"),
			jen.List(jen.Id("c.impl"), jen.Id("c.in"), jen.Id("c.out")).Op("=").List(jen.Nil(), jen.Id(in).Values(), jen.Id(outputs).Values()),
		}, releaseCur...),
			jen.Id(pool).Dot("Put").Call(jen.Id("c")),
		)...),
	)
	out = append(out, g.checkDecls(p)...)

	// The Engine method and RunX.
	engineDoc := n + " runs " + p.Name + " and commits its effects."
	if p.Semantic == contract.Pure {
		engineDoc = n + " runs " + p.Name + " on the latest snapshot; it commits nothing."
	}
	newCall := func(extra ...field) *jen.Statement {
		return jen.Op("&").Id(call).Add(keyed(append(extra, field{"in", jen.Id(in).Add(keyed(field{"Args", jen.Id("args")}))})...))
	}
	runState := jen.Op("&").Id("s")
	var convert []jen.Code
	if g.hasColl {
		runState = jen.Op("&").Id("st")
		convert = append(convert, jen.Id("st").Op(":=").Add(g.toEngineState("s")))
	}
	runBody := append([]jen.Code{
		jen.Id("c").Op(":=").Add(newCall(field{"impl", jen.Id("impl")}, field{"run", jen.True()})),
	}, convert...)
	runBody = append(runBody,
		jen.If(
			jen.Id("err").Op(":=").Qual(enginePkg, "Run").Call(append([]jen.Code{
				jen.Qual("context", "Background").Call(), jen.Lit(p.Name), jen.Id("c"), runState}, declaredErrors(p)...)...),
			jen.Id("err").Op("!=").Nil(),
		).Block(jen.Return(jen.Id(effects).Values(), jen.Id("err"))),
		jen.Id("eff").Op(":=").Id(effects).Add(keyed(effInit...)),
	)
	runBody = append(runBody, effSets...)
	engineBody := []jen.Code{
		jen.Id("c").Op(":=").Id(pool).Dot("Get").Call().Assert(jen.Op("*").Id(call)),
		jen.List(jen.Id("c.impl"), jen.Id("c.in")).Op("=").List(jen.Id("e.impl"), jen.Id(in).Add(keyed(field{"Args", jen.Id("args")}))),
		jen.List(jen.Id("r"), jen.Id("err")).Op(":=").Id("e.core").Dot("Exec").Call(jen.Id("ctx"), jen.Id(procConst(p)), jen.Id("c")),
	}
	if p.Result != nil {
		engineBody = append(engineBody, jen.Id("result").Op(":=").Id("c.out.result"))
	}
	engineBody = append(engineBody,
		jen.Id("c").Dot("release").Call(),
		ifErrReturn(jen.Id(receipt).Values()),
		jen.Return(jen.Id(receipt).Add(keyed(receiptInit...)), jen.Nil()),
	)
	runBody = append(runBody, jen.Return(jen.Id("eff"), jen.Nil()))
	out = append(out,
		doc(engineDoc).Func().Params(jen.Id("e").Op("*").Id("Engine")).Id(n).
			Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("args").Id(args)).
			Params(jen.Id(receipt), jen.Error()).Block(
			engineBody...,
		),
		doc("Run"+n+" runs "+p.Name+" once on s, with no engine and nothing committed, and returns its effects. It never modifies s.").
			Func().Id("Run"+n).
			Params(jen.Id("impl").Id("Processes"), jen.Id("s").Id("State"), jen.Id("args").Id(args)).
			Params(jen.Id(effects), jen.Error()).Block(runBody...),
	)
	return out
}

// emitter declares Emit<Topic> on an Out: it encodes the payload with the
// engine's codec or the generated JSON encoder and records the message; a
// RunX run also keeps a copy of the payload for the Effects.
func (g *generator) emitter(recv *jen.Statement, t *contract.Topic, priv string) jen.Code {
	payload := t.Payload.Struct
	key := jen.Lit("")
	if t.Key != nil {
		key = jen.Id("p." + t.Key.GoName)
		if kind, _ := intKind(t.Key.Type); kind != "" {
			key = formatInt(t.Key.Type, key)
		}
	}
	errFormat := "theus: encode " + strings.ReplaceAll(t.Name, "%", "%%") + ": %w"
	fail := jen.If(jen.Id("err").Op("!=").Nil()).Block(
		jen.Id("c.tx").Dot("Fail").Call(jen.Qual("fmt", "Errorf").Call(jen.Lit(errFormat), jen.Id("err"))),
		jen.Return(),
	)
	return doc("Emit"+t.GoName+" emits a message on topic "+t.Name+".").
		Func().Params(recv).Id("Emit"+t.GoName).Params(jen.Id("p").Id(payload.GoName)).Block(
		jen.Id("c").Op(":=").Id("o").Dot("live").Call(),
		jen.If(
			jen.Id("codec").Op(":=").Id("c.tx").Dot("Codec").Call(),
			jen.Id("codec").Op("!=").Nil(),
		).Block(
			jen.List(jen.Id("b"), jen.Id("err")).Op(":=").Id("codec").Dot("Marshal").Call(jen.Id("p")),
			fail,
			jen.Id("c.tx").Dot("Emit").Call(jen.Lit(t.Name), key, jen.Id("b")),
		).Else().Block(
			// The payload is encoded straight into the call's slab and
			// stays there, immutable (Tx.Scratch, Tx.EmitScratch).
			jen.List(jen.Id("b"), jen.Id("err")).Op(":=").Id(appendFuncName(payload)).Call(
				jen.Id("c.tx").Dot("Scratch").Call(), jen.Op("&").Id("p")),
			fail.Clone(),
			jen.Id("c.tx").Dot("EmitScratch").Call(jen.Lit(t.Name), key.Clone(), jen.Id("b")),
		),
		jen.If(jen.Id("c.run")).Block(
			jen.Id("c.out."+priv).Op("=").Append(jen.Id("c.out."+priv), g.cloneValue(t.Payload, lv{expr: "p"})),
		),
	)
}

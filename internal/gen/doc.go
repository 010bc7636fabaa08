// Package gen turns a validated contract Model into Go source: the file that
// `theusgen generate` writes next to the contract.
//
// Generate works in memory and returns every file it would write, keyed by
// its path relative to the contract's directory; the caller decides whether
// and how to write them, and `theusgen diff` compares the same map with
// what is on disk. The output depends only on the Model: declarations come
// in the order of the contract, nothing iterates a map unsorted, and there
// is no timestamp or version stamp, so generating twice gives the same
// bytes.
//
// The code is built with jennifer and formatted with go/format only. Import
// names are registered up front (the runtime packages under their package
// names, contract imports under their contract alias, or theusX when the
// alias x is also a local name of the generated code, which would shadow
// it), and the import block
// is split into the standard library group and the others, as gofmt users
// write it by hand.
//
// # What the generated file holds
//
// The file reads as the contract's vocabulary first, in this order, each
// part under a comment that names it: the types, the state, the views,
// the processes; what the engine needs of the contract comes last.
//
// For each type under `types:`: the struct (fields tagged with their
// contract name for encoding/json), a read-only XView with one getter per
// field and Clone, and a deep-copy function. Types reachable from a topic
// payload or a state value also get an append-style JSON encoder built on
// runtime/jsonenc; its output is byte for byte what encoding/json.Marshal
// gives for the struct, so consumers cannot tell whether the engine had a
// codec. A builtin type's element encoder is runtime/jsonenc's (ElemInt,
// ElemString, …); any other type that is not declared ([]string,
// map[string]User) gets its encoder once, as theusAppend_X, however many
// fields use it. The
// encoders follow the contract, not the methods of the Go types: a
// MarshalJSON method added to a generated struct by hand is not called
// (use engine.WithCodec for a custom encoding); imported types are encoded
// with encoding/json and so keep theirs.
//
// For the state: State with its two zones (both always declared, possibly
// empty), Snapshot with one flat accessor per state field, Patch for
// CompareAndSwap, the Schema that the runtime engine works from, and the
// typed Engine. For each process: XArgs, XIn (read-only accessors for the
// declared inputs only; not comparable, since its snapshot, a theusIn, holds
// a [0]func(), which spares the compiler an equality function per process),
// XOut (setters for the declared outputs, typed emitters, SetResult),
// XReceipt (engine.Receipt, or engine.ReceiptOf the result's type), XEffects
// (these five in one type block), the Engine method and RunX; then, with the
// machinery, a case of theusRun, the engine.RunFunc of the contract's first
// 32 processes (theusRun2 serves the next 32, and so on: see runCases),
// which calls the application's method of the process whose arguments it is
// given (and theusRulesX for a process with rules). One-line accessors and
// setters have no doc comment: their type's doc says what they read or
// write. Everything else a call needs (the arguments, pooled reuse, the Out
// handles that go stale when their run ends, the outputs a run sets, their
// checks and their application to the state, the room for the receipt's
// message ID, the receipt) is engine.FrameCall's, the same for every
// process, driven by theusSchema.Outputs (one engine.SetterOutput or
// CollectionOutput per path that processes write); a setter is a call of
// engine.SetOutput, and the Engine method and RunX are one and two
// statements that hand the arguments to engine.Invoke and engine.RunEffects
// (which fills XEffects by reflection, in the order of its fields): the
// generated file grows with the contract's names, not with machinery. Only
// declared types that hold slices or maps get a deep copy (theusCloneX); any
// other is copied by assignment. XOut is an engine.Out. For each topic that
// a process emits: one theusEmitX, which encodes the payload (with the
// engine's codec or the JSON encoder) and records the message, shared by the
// Emit methods of the processes. For each domain error: one ErrX sentinel
// (engine.DomainError), shared by the processes that declare it. Once a
// process returned nil, its call checks that the values set can be encoded
// (with the theusValidX functions of check.go, given to the Output of the
// path), then the rules: theusRulesX, the ProcessSpec.Rules of the process
// (rules.go). Patch is an engine.Patch with a one-line setter per state
// field: the engine checks its values (Engine.CompareAndSwapPatch) and
// applies them through Schema.State.
//
// The generator is linear in the contract: what it derives per type
// (whether it holds references, whether its values may fail to encode,
// its encoder) is computed once and kept.
//
// Views never hand out memory of the snapshot that a caller could modify:
// slices and maps are shown through engine.SliceView and engine.MapView,
// structs through their views. Types from `imports:` are opaque to the
// generated code: they are read, stored and encoded (with encoding/json)
// as plain values, so an imported type that holds references (a slice, a
// map, a struct with such fields) is shared between the snapshot and what
// a getter returns, and must be treated as read-only by convention. Only
// their fingerprints look inside them, at what contract.Type.Under says a
// store keeps of them.
//
// The fingerprint of each state field's type (engine.ValueField,
// engine.CollectionField) is what a durable store compares to detect
// schema drift, so its format is kept: see fingerprint.
//
// A Model read from Go struct tags (DeclaredInGo) gives the same file
// without the declarations that the package makes itself: State, its
// zones and the structs of Types. When the state has collections, the
// engine's form of the state then keeps a copy of the global zone's fields
// (theusGlobalState), since State.Global may be an anonymous struct that
// the generated code cannot name. The marker line names the package's
// import path.
//
// Every package-level name that the generated code declares for itself
// starts with "theus", so that it cannot clash with the user's code in the
// same package; unexported struct fields that would be a Go keyword or
// collide with a field of the generated code get the same prefix.
package gen

// Package contract turns a Theus contract into a Model, the single
// description of state, topics and processes that the code generator and the
// linters work from.
//
// A contract is read in three steps. The YAML source is decoded into
// yaml.Node trees, never into Go values, so that every node keeps its
// position and no message ever mentions a Go type of the decoder. The nodes
// are then checked against the schema (known keys, node kinds, type
// expressions, paths) and resolved into a Model: every type name, path and
// topic refers to the declaration it names. The types of other packages
// that the contract names are read with go/types, from the packages as the
// module holding the contract sees them: what state cannot hold is refused
// at any depth, and what a durable store keeps of them is described in
// Type.Under. Finally the Model as a whole is validated: structs that
// contain themselves by value, and Go names that collide once contract
// names are converted with GoName or that collide with names the generated
// code declares itself.
//
// Errors are not returned one at a time. Parse reports every error of the
// file in an ErrorList, one "file:line:col: message" line each, sorted by
// position, so that a user fixes a contract in one round trip. A file-level
// error (an empty file, a missing version) is at 1:1, a duplicate key is
// reported at its second occurrence, and a YAML syntax error is reported at
// the line and column where the problem is, which yaml.v3 does not say
// (see syntaxError), with a hint for the usual causes (see syntaxHint).
//
// A message about a name that resolves to nothing suggests the closest
// declared name ("did you mean"). An error that follows from an earlier
// one is not reported: see the parser type for how. The Model is returned only when there is no error, so the
// generator may assume it is valid.
//
// # Struct tags
//
// LoadTags reads the same contract from a Go package (SPEC §3): a State
// struct whose Domain and Global fields, tagged theus:"domain" and
// theus:"global", hold the state fields (theus:"name" or
// theus:"name,collection"); //theus:topic name=T key=F on payload structs;
// //theus:process semantic=S emits=A,B errors=X,Y on process structs, whose
// Args field holds the arguments, whose Result field is the result, and
// whose other fields are tagged theus:"in,out,path=zone.field"; and
// //theus:rule {YAML flow mapping} for rules, //theus:output FILE.go for
// the output. The types of the package are read with go/types, not
// generated (Model.DeclaredInGo), and a struct field's contract name is the
// name encoding/json gives it. The loader builds the Model with the same
// parser as Parse: it hands paths, topic and error names and rules to the
// parser as YAML nodes placed at their Go positions, so both sources are
// checked by one set of rules with one set of messages. Errors carry the
// position of the tag option or directive, in files named relative to the
// directory given to LoadTags.
//
// # The output file
//
// Parse and LoadTags check the output's name as written: a Go file, in the
// contract's directory tree. Before anything is written, OutputFile checks
// it against the file system: with symbolic links resolved the file stays
// in that tree, and a file already there is a generated one (the
// "// Code generated ... DO NOT EDIT." line of go doc cmd/go). A user's
// file is never overwritten.
package contract

package contract

import "fmt"

// Pos is a position in a contract source: a YAML file or, for struct tags, a
// Go file. Line and Col are 1-based.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Model is a validated contract. Every slice is in a deterministic order (the
// order of declaration in the source), and every reference is resolved: the
// generator may assume that names are valid Go identifiers, that types exist
// and that no two generated names collide.
type Model struct {
	// Source is the contract file as given on the command line (used in the
	// generated marker line and in messages); for struct tags, the import
	// path of the Go package.
	Source string
	// Package is the Go package name of the generated file.
	Package string
	// Output is the generated file's path, relative to the directory of Source.
	Output string
	// OutputPos is where Output is declared: the output key, the
	// //theus:output directive or, when the contract sets none, the start
	// of the contract (for struct tags, its first tag or directive).
	OutputPos Pos

	Imports   []*Import
	Types     []*Struct
	State     []*StateField // both zones, domain first, in declaration order
	Topics    []*Topic
	Processes []*Process
	// Invariants are the rules of `state.invariants:`: checks that every
	// commit writing their path must keep, whichever process or
	// CompareAndSwap wrote it. Their Path is the top-level state field.
	Invariants []*Rule
	// Errors holds every domain error any process declares, once each, in
	// order of first declaration. Processes share the sentinels.
	Errors []*ErrorDecl

	// Allow lists the changes `theusgen breaking` is told are deliberate
	// (`allow:`): state paths or topics, each acknowledging the breaking
	// changes at it and below it.
	Allow []*Allow

	// DeclaredInGo is set when the contract was read from Go struct tags
	// (LoadTags): the package declares State, its zones and every struct of
	// Types itself, so the generated file declares none of them. Each zone
	// of State holds exactly the StateFields of that zone, and each struct
	// exactly its Fields, so the generated code can still copy them.
	DeclaredInGo bool
}

// Allow is an entry of `allow:`.
type Allow struct {
	Path string // e.g. "domain.orders", "order.placed"
	Pos  Pos
}

// ErrorDecl is a domain error name from a process's `errors:`.
type ErrorDecl struct {
	Name   string // e.g. "invalid_email"
	GoName string // the sentinel, e.g. "ErrInvalidEmail"
	Pos    Pos    // first declaration
}

// Import is an entry of `imports:`: alias -> Go import path.
type Import struct {
	Alias string
	Path  string
	Pos   Pos
}

// Struct is a type declared under `types:`, generated as a Go struct; or,
// for struct tags, a struct type of the Go package, which declares it.
type Struct struct {
	Name   string // contract name, e.g. "User"
	GoName string // Go identifier, e.g. "User"
	Fields []*Field
	Pos    Pos
}

// Field is a field of a declared struct, or a process argument.
type Field struct {
	// Name is the contract name, e.g. "member_id", and the JSON name. For
	// struct tags it is the name encoding/json gives the Go field.
	Name   string
	GoName string // e.g. "MemberID"
	Type   *Type
	Pos    Pos
	// Default is the value a stored or received value that lacks the
	// field decodes with (`default:`), or nil for the zero value. Only
	// fields of declared structs with a builtin scalar type have one.
	Default *Default
}

// Default is a field's `default:`, checked against the field's type.
type Default struct {
	// Value is a string, bool, int64 (signed integer kinds), uint64
	// (unsigned ones) or float64 (float kinds), within the type's range.
	Value any
	Pos   Pos
}

// TypeKind classifies a Type.
type TypeKind int

const (
	// Builtin is a Go predeclared basic type: bool, string, int*, uint*,
	// float*, byte, rune.
	Builtin TypeKind = iota
	// Slice is []Elem.
	Slice
	// Map is map[Key]Elem.
	Map
	// Named is a struct declared under `types:`.
	Named
	// Imported is alias.Name from `imports:` (or, with struct tags, a type
	// of another package), a named type of another Go package. The
	// generated code treats it as an opaque value; Under describes what a
	// durable store keeps of it.
	Imported
	// ImportedStruct is a struct of another package as encoding/json
	// writes it, found only in the Under of an Imported type (or in an
	// ImportedStruct): Struct lists its fields by their JSON names
	// (Field.GoName is the Go name); Struct.Name is empty.
	ImportedStruct
)

// Type is a resolved type expression.
type Type struct {
	Kind TypeKind
	// Name is the builtin name (Builtin), the contract type name (Named) or
	// the type name inside its package (Imported).
	Name   string
	Elem   *Type   // Slice, Map
	Key    *Type   // Map
	Struct *Struct // Named
	Import *Import // Imported
	// Expr is the type as written in the contract, e.g. "[]string".
	Expr string
	// Under is, for an Imported type, its underlying type read with
	// go/types: a Builtin, Slice, Map or ImportedStruct whose parts may be
	// Imported types in turn (a type met inside itself is the same *Type,
	// so Under graphs may have cycles). It is nil for time.Time and
	// time.Duration, which are stored as they encode themselves. Types of
	// other packages nested in Under have an Import that the contract does
	// not declare (its Alias is the package's name, Pos is zero).
	Under *Type
}

// Zone is a state zone.
type Zone string

const (
	ZoneDomain Zone = "domain"
	ZoneGlobal Zone = "global"
)

// StateField is a top-level field of a zone, e.g. domain.user.
type StateField struct {
	Zone   Zone
	Name   string // e.g. "user"
	GoName string // e.g. "User"
	// Type is the field's type; for a collection it is the Map type
	// map[Key]Elem.
	Type *Type
	// Collection is set for `{map: T, key: K}`: a map versioned per entry,
	// read through engine.MapView and written entry by entry.
	Collection bool
	Pos        Pos
}

// Path is a dotted state path used as a process input or output:
// zone.field[.sub...] where each sub-element names a field of a declared
// struct.
type Path struct {
	Text  string      // e.g. "domain.user.email"
	Field *StateField // the top-level state field
	// Sub is the chain of struct fields below Field, empty for the field itself.
	Sub []*Field
	// Type is the type at the end of the path.
	Type *Type
	// GoName is the flat accessor name: the Go names of the state field and
	// every sub-field joined, e.g. "UserEmail" for domain.user.email. With
	// struct tags it is the name of the process struct's field instead.
	GoName string
	Pos    Pos
}

// Topic is an outbox topic.
type Topic struct {
	Name    string // e.g. "user.updated"
	GoName  string // e.g. "UserUpdated"
	Payload *Type  // always Kind == Named
	// Key is the payload field that orders and partitions messages; nil when
	// the topic has no key (all its messages share the key "").
	Key *Field
	Pos Pos
}

// Semantic is a process semantic.
type Semantic string

const (
	Pure   Semantic = "pure"
	Effect Semantic = "effect"
	Guide  Semantic = "guide"
)

// Process is a declared process.
type Process struct {
	Name     string // e.g. "update_user_email"
	GoName   string // e.g. "UpdateUserEmail"
	Doc      string
	Semantic Semantic
	Args     []*Field
	Inputs   []*Path
	Outputs  []*Path
	Emits    []*Topic
	Result   *Type // nil when the process returns no result
	Errors   []*ErrorDecl
	Rules    []*Rule
	Pos      Pos
	// KeyPos is where each key of the process is written ("inputs",
	// "emits", ...), for messages that say where an entry belongs; an
	// absent key has none. From struct tags only "emits" has one: the
	// emits= option of //theus:process.
	KeyPos map[string]Pos
}

// Rule is an entry of a process's `rules:`: checks on one output path,
// run on the outputs before commit; or an entry of `state.invariants:`.
type Rule struct {
	// Text is the path as written, e.g. "domain.accounts[*].balance".
	Text string
	// Path is the output the rule belongs to (one of Process.Outputs): the
	// path itself, an output above it, or for a [*] rule the collection.
	// For an invariant it is the top-level state field.
	Path *Path
	// Each is set for [*] rules: the checks apply to every entry of the
	// collection that the commit writes, at Sub below the entry.
	Each bool
	// Sub is the chain of struct fields from the output's value (for a [*]
	// rule, from each entry) to the checked value; empty for the value
	// itself.
	Sub []*Field
	// Type is the type of the checked value.
	Type   *Type
	Checks []*Check
	// Warn is set for on_fail: warn (log and count, commit anyway);
	// otherwise a failed check rejects the commit.
	Warn bool
	// Message is the rule's `message:`, for the error of a broken check.
	Message string
	Pos     Pos
}

// Check is one condition of a Rule.
type Check struct {
	Kind string // "min", "max", "min_len", "max_len", "regex", "one_of", "required", "check"
	// Lit is the value as a Go literal of the checked type (min, max) or an
	// int (min_len, max_len); Regex is the pattern (regex); OneOf holds Go
	// literals of the checked type (one_of).
	// Expr is the CEL expression of a check (type-checked against the
	// contract's types: `self` is the checked value, `args` the call's
	// arguments).
	Lit   string
	Regex string
	OneOf []string
	Expr  string
	Pos   Pos
}

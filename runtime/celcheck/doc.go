// Package celcheck compiles and evaluates the CEL checks of a contract: the
// `check:` expressions of process rules and of state invariants.
//
// An expression sees `self`, the value at the rule's path (for a `[*]`
// path, the entry or the field below it), and in process rules `args`, the
// call's arguments. Structs are objects whose fields have their contract
// (JSON) names; integers are int or uint, floats double, slices lists, maps
// maps, time.Time timestamps and time.Duration durations. The functions are
// CEL's standard library with cross-type numeric comparisons (`self.age >=
// 18` for a uint8 field), the strings extension (`self.email.lowerAscii()`,
// `split`, `trim`, …) and the math extension (`math.greatest`, …).
//
// theusgen type-checks every expression against the contract's types
// (Compile with Types it builds from the contract); the runtime compiles
// it again, once per engine or per process, against the Go types
// generated from the same contract (TypeOf), and evaluates it on the
// values a commit writes, reading them in place by reflection.
package celcheck

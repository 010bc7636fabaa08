// Package noescape defines an Analyzer that reports references to a
// process's input kept after the process returns.
//
// # Analyzer noescape
//
// noescape: report inputs of Theus processes that outlive the call (code TP006)
//
// A process reads its inputs through views of an immutable snapshot, and
// its arguments belong to the caller. The views, slices and maps it is
// given are valid for the call only: kept afterwards, they pin an old
// snapshot and let later code observe (or, for argument slices and maps,
// change) what the process was given. Out, the writer a process gets, is
// dead once the process returns, too.
//
// The analyzer follows the values derived from a process's parameters (in
// and out; values read from them that hold references: views, slices,
// maps, pointers, funcs, and closures that capture them; the parameters
// of a func literal handed to a call on them, as slices.SortFunc hands
// its comparison the elements; a Clone() is a copy and is not followed)
// and reports when one is kept where it outlives the call:
//
//   - in a package-level variable, or in a field, element or entry of one;
//   - in a field, element or entry of the receiver (the Processes
//     implementation lives across calls);
//   - in either of those through a local variable that points into it
//     (s := p.state; s.last = v, or for _, b := range p.boxes);
//   - sent on a channel;
//   - stored in a closure that is itself kept in one of those places;
//   - passed to a function of the module, a method of the receiver
//     included, that keeps it in one of those places, or in a field of a
//     value that one of them holds (found through a summary of every
//     function's parameters, also across packages of the module).
//
// A field set on a copy (a local struct, a receiver or parameter passed
// by value) dies with the call and is not reported; an entry of a map or
// slice that the copy shares is.
//
// Keep a copy instead: a view's Clone() for the data, slices.Clone or
// maps.Clone for argument slices and maps; or pass what others need on
// through out (an output or an emitted topic).
package noescape

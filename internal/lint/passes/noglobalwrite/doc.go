// Package noglobalwrite defines an Analyzer that reports writes to
// package-level variables in process code.
//
// # Analyzer noglobalwrite
//
// noglobalwrite: report writes to package variables in the code of Theus processes (code TP004)
//
// Everything a process changes must be one of its declared outputs: the
// engine commits outputs atomically, checks them for conflicts and throws
// them away when the process fails or is run again. A package-level
// variable is none of that: a write to it survives a failed or repeated
// run, and races with the other processes the engine runs at the same
// time.
//
// Reported, in a process and in every function of its module it calls:
// assigning a package variable (of any package), writing a field, an
// element or a map entry of one (also through a local variable that holds
// its map, slice or pointer), ++ and --, delete, clear and copy into one,
// taking its address, calling a pointer method on it (mu.Lock(),
// counter.Add(1), buf.WriteString(s)), and sending on a package-level
// channel. Reading package variables (configuration, compiled regular
// expressions, lookup tables) is fine.
//
// Keep the data in the state: declare it as an output and set it with the
// Out's setters; a cache belongs to the caller.
package noglobalwrite

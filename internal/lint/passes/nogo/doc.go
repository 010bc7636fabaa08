// Package nogo defines an Analyzer that reports go statements in process
// code.
//
// # Analyzer nogo
//
// nogo: report goroutines started by the code of Theus processes (code TP005)
//
// The engine commits a process's outputs when the process returns. A
// goroutine it started may still run then, and after a re-run there are
// two of them: it can only do work that the commit does not contain. A go
// statement in a process, or in any function of its module that it calls,
// is reported.
//
// Do the work inline: a process is short and reads only a snapshot. Work
// that must happen in the background belongs to a consumer of an emitted
// topic.
package nogo

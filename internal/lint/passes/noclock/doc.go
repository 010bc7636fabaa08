// Package noclock defines an Analyzer that reports reads of the clock in
// process code.
//
// # Analyzer noclock
//
// noclock: report clock reads and timers in the code of Theus processes (code TP002)
//
// A process must compute the same outputs from the same snapshot and
// arguments: the engine may run it again after a conflict, and RunXxx in a
// test must see what production sees. time.Now, time.Since and time.Until
// read the clock; time.Sleep, time.After, time.Tick, time.AfterFunc,
// time.NewTimer and time.NewTicker wait on it. All are reported in a
// process and in every function of its module that it calls.
//
// Pass the time in as an argument (args: {now: time.Time}), set by the
// caller before the call; durations and time arithmetic on values the
// process was given are fine.
package noclock

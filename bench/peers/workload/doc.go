// Package workload is the peer benchmark's workload and its measurement,
// shared by every implementation binary of bench/peers/cmd, so that each
// binary is a System and a one-line main (Main).
//
// # The workload
//
// The users table holds Config.Users users (default 10,000), UserID(0) to
// UserID(n-1). A business transaction (Tx) updates one user picked at
// random (its counter +1, its email and updated_at set) and emits one
// Event, about 200 bytes of JSON keyed by the user's ID, in the same
// durable commit. Config.C producer goroutines commit transactions back to
// back. A relay delivers committed events to an in-process channel
// (capacity ChannelBuffer); one consumer goroutine reads it, decodes each
// event and checks it.
//
// Every transaction has a unique ID (from 1), carried by its event with
// the time its commit started (Clock, monotonic). Before anything is
// measured, each run commits one warm-up transaction (ID 0) whose event
// the consumer ignores: it pays what only a first commit pays.
//
// # Modes
//
//   - Relay running (-relay=true, the default): the relay and the consumer
//     start, the warm-up event's delivery shows they run, then producers
//     commit for -duration (or -n transactions). The window lasts from the
//     producers' start to the last delivery.
//   - Relay not running (-relay=false): producers only; the window ends
//     with the last commit. Nothing is delivered.
//   - Drain (-prefill N): producers commit N transactions with no relay
//     running; then the relay starts, and the window lasts from its start
//     to the delivery of the whole backlog.
//
// # Figures (Result)
//
//   - commit_tps: commits / (the last commit's return − the producers'
//     start).
//   - relay_mps: distinct events delivered / (last delivery − producers'
//     start); drain_mps: the same from the relay's start, in drain mode.
//   - ack p50/p99: the latency a producer sees, commit start to the commit
//     returned (durably); e2e p50/p99: commit start to the consumer's
//     receipt, over distinct events. Percentiles are exact: every sample is
//     kept and the nearest-rank percentile read from the sorted samples.
//     In drain mode e2e includes the time an event waited in the backlog.
//   - duplicates: events received again; lost: commits − distinct events
//     received, read once the consumer has them all or once the relay has
//     delivered nothing new for -wait (a slow relay is waited for). Both
//     are counted only when a relay runs.
//   - client_cpu_s: user + system CPU of the process in the window
//     (getrusage); server_cpu_s: for server-based implementations, the
//     growth in the window of user + system CPU of every process named
//     "postgres" on the machine (/proc/<pid>/stat, in 10 ms ticks), 0 for
//     embedded ones. On a server that other clients use, their work is
//     counted too.
//   - cpu_us_per_msg: (client + server CPU) / distinct events delivered, or
//     / commits when no relay ran.
//
// Figures a mode does not measure are 0. The process prints its Result as
// one JSON line on stdout and nothing else there.
package workload

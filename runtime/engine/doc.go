// Package engine runs Theus processes on immutable snapshots and commits
// their outputs and outbox messages atomically. It depends only on the
// standard library.
//
// Most users never name this package's Engine: theusgen generates a typed
// Engine that wraps it, with one method per process. What they do use from
// here are the options (WithStore, WithRetry, WithStrictCAS, WithLogger,
// WithMetrics, WithCodec, WithHeaders), the errors, and the read-only
// views SliceView and MapView. Metrics and headers are hooks: package
// runtime/metrics implements Metrics for Prometheus, and
// runtime/otelheaders gives WithHeaders the caller's W3C traceparent, so
// this package needs neither.
//
// # A call
//
// A call of a process goes through these steps:
//
//  1. Load the latest snapshot. Snapshots are immutable: nothing a process
//     or a reader receives can change one. Readers (Snapshot) and pure
//     processes get the latest published one, which is durable. A process
//     that commits gets the latest sequenced one, which may still be with
//     the store: its own commit is sequenced after it and cannot become
//     durable before it, so it conflicts far less often with commits that
//     are only waiting for their sync. If the store fails that snapshot's
//     group, the snapshot is marked lost and the call runs again on the
//     recovered state; an error the process returns is held back until the
//     snapshot it ran on is durable, so a caller is never told anything
//     decided on state that a store failure takes back.
//  2. Run the process on it. The process reads its declared inputs through
//     read-only views, sets its declared outputs and emits messages; all of
//     it is recorded in a Tx, nothing is visible to anyone else. A process
//     that returns an error or panics ends the call with nothing committed
//     (a panic becomes a *PanicError matching ErrPanic). Generated code
//     then checks the contract's rules on what the process set: a broken
//     rule with on_fail: reject ends the call with a *RuleError; one with
//     on_fail: warn is logged and counted once the call commits.
//  3. Validate. Under the engine's lock, every input path the process
//     declared is checked against the last write of that path, of its
//     ancestors and of its descendants ("domain.user" conflicts with writes
//     of "domain.user.email" and the other way round). If any was written
//     after the snapshot, the run is discarded and the process runs again
//     on a fresh snapshot, after an exponential backoff with jitter. With
//     WithStrictCAS any newer version is a conflict.
//  4. Sequence. The commit gets the next version; its outputs are applied
//     to a shallow copy of the state (copy-on-write: untouched values are
//     shared, which is safe because they are never modified); its messages
//     get their ID, KeySeq, Version and CreatedAt. CreatedAt is a reading
//     of the wall clock that a goroutine of the engine refreshes every
//     millisecond while commits come in (reading the clock costs 50–100 ns
//     on virtual machines, a third of a commit); the goroutine stops after
//     10 ms without commits and on Close. WithClock replaces it.
//     Before the commit is sequenced, the state invariants whose paths it
//     writes (Schema.Invariants) are checked on that copy, for every
//     commit, CompareAndSwap included: a broken one with on_fail: reject
//     refuses the commit with a *RuleError (Invariant set) and the copy is
//     dropped, the version unused (invariants.go).
//  5. Persist. The first caller that finds no flush under way hands every
//     sequenced commit to the Store in one Commit call (group commit), so
//     concurrent callers share one transaction and one sync. The commits
//     sequenced while that group is with the store are handed over, group
//     after group, by a goroutine of the engine that runs while any is
//     pending: each caller waits for its own group only, and the store gets
//     the next group without waiting for a caller to be scheduled. On a
//     SharedStore (PostgreSQL), whose time per group is mostly a round
//     trip and a flush, a group first waits while calls of processes that
//     commit are inside the engine but not yet pending (the callers of the
//     group that just settled usually call again at once), for at most half
//     the store's time for the last group and 1 ms, so that 8 callers make
//     groups of 8 rather than two alternating groups of 4. A local store's
//     groups do not wait: it works on the CPUs the callers need.
//  6. Publish. Once the store has made a group durable, its last snapshot
//     is published and the callers get their receipts. A reader never sees
//     a version the store could lose.
//
// # Snapshot memory
//
// With the memory store (memory.New() itself, not a type embedding it) the
// engine reuses the memory of snapshots no one can see any more, so that a
// commit allocates nothing of its own: calls hold a reference on the
// snapshot they run on until Exec returns, Snapshot hands out a reference
// it never drops, and a snapshot is reused only once a later one replaced
// it and every reference is gone (recycle.go). A process must therefore
// not keep its input views past its return, as it must not keep its Out:
// Clone what it needs later.
//
// If the store fails a group (Commit returns an error, or panics: the
// engine recovers the panic and reports it as a *PanicError inside the
// *StoreError), every commit of the group and every commit sequenced after
// it (they were validated against the group) fails with a *StoreError
// matching ErrStore, and the engine goes back to the last
// durable version; versions and KeySeqs are reused, so history has no gaps.
//
// # Bounded waiting
//
// After the attempts set by WithRetry, a call takes an exclusive turn: it
// runs once more, on the latest sequenced snapshot, while other calls'
// commits wait to be sequenced (those already sequenced go on being
// persisted), and commits without a possible conflict. A hot process
// therefore cannot starve a slow one. Cancelling the caller's
// context stops the retries; a commit already sequenced completes.
//
// # Generated calls
//
// What a call of a generated process needs besides the process's own
// arguments and outputs is here, once, rather than in every generated
// file: Invocation, which each generated call embeds (its Tx, the Out
// handles of its runs, allocated sixteen at a time and never reused, and
// the room for its receipt's message ID), Start and Finish, Out (what each
// generated XOut type is made of), Tx.EmitValue and Tx.EmitEncoded for
// emitters, Output (SetterOutput, ValueOutput, CollectionOutput: how a call holds,
// checks and applies the values of a path that processes write),
// SetOutput, OutputWriter and SetResult for the setters, and
// RunEffects for RunX's effects, and Patch with
// Engine.CompareAndSwapPatch for a generated Patch. None of
// it is generic over the process: a generic type instantiated once per
// process costs the compiler about as much as the code it would replace,
// for every process of a contract.
//
// The same holds per type of value: the compiler makes a generic type's
// methods for each type of value it is instantiated with (pointers
// included), used or not. So the state codec (ValueField, CollectionField)
// sees values as any or as unsafe pointers with a reflect.Type, a
// Collection is a B+tree of untyped items (its key type alone is a type
// parameter of the tree, the codec and the decoder) with no methods
// (CollectionGet, CollectionLen, CollectionAll, CollectionApply and
// CollectionMap are functions, compiled only where called), and a MapView
// reads an untyped source, and walks it with an untyped cursor, through
// its view function: per type of value, only MapView's three methods and
// one-line constructors (NewCollection, CollectionView, CollectionField)
// are compiled.
//
// And per state type: every package of generated code instantiates
// Engine, FrameCall, Schema and the rest with its own State, and the
// compiler would make their code again in each of those packages. So the
// engine proper is not generic: it holds states as unsafe pointers and
// reaches the State type only through a few functions New makes once
// (allocate a snapshot, copy, clone, convert to and from a *S), and the
// generic types and functions are shells of a line or two around it.
//
// # CompareAndSwap
//
// CompareAndSwap commits a change made outside processes (a generated
// Patch) unless a commit after the version the caller expected exists that
// the caller could have read, that is, a durable one. Commits still with
// the store make it wait only if they wrote or read what the change writes;
// see Engine.CompareAndSwap for the exact rule.
//
// # Stores
//
// A Store persists commits and recovers them: runtime/store/memory keeps
// them in memory, runtime/store/sqlite in a durable SQLite file. Every
// store also implements outbox.Store, so the value given to WithStore is
// the one a Relay reads.
//
// A durable store does not know the generated state type. The engine gives
// it a StateCodec, built from Schema.State (generated from the contract),
// in Store.Recover: with it the store encodes the top-level fields and the
// collection entries each commit wrote (JSON, or the codec of WithCodec),
// rebuilds the state at recovery (each collection in one bulk build), and
// compares each field's type fingerprint with the one it stored. It
// encodes inside Store.Commit, for a whole group, so generated code checks
// beforehand (CheckValue, CheckEntries) that what a call or a Patch sets
// can be encoded: a value that cannot fails its own call, never the group.
//
// # Evolving contracts and configuration
//
// Every durable store compares the stored types with the contract's the
// same way, with CompareFields (and CompareTypes below it): changes that
// stored values can follow (a struct field added or removed, an integer
// widened, a state field added or removed) are accepted and recorded by
// the next commit; the others are refused, unless a migration (Migrate,
// WithMigrations) converts the stored values, once, on recovery.
//
// A store that holds data ignores the initial state, globals included:
// WithGlobals applies configuration at start as one ordinary commit of the
// global fields that changed, and none when nothing did.
package engine

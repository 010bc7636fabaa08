// Package sqlite is the durable embedded store: an engine.Store and an
// outbox.Store in one SQLite file (modernc.org/sqlite, pure Go, no cgo).
//
//	st, err := sqlite.Open(ctx, "data/app.db")
//	defer st.Close() // after the relay and the engine have stopped
//	eng, err := NewEngine(ctx, initial, app{}, engine.WithStore(st))
//	relay := outbox.NewRelay(st, sink, outbox.WithMaxAttempts(10))
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: Commit returns only
// once SQLite has synced the write-ahead log, so a commit whose receipt a
// caller got survives a crash of the process or of the machine. The engine
// hands Commit every commit pending when its group leader starts (group
// commit); all of them go into one transaction and one sync, everything or
// nothing. A failure anywhere in Commit rolls the transaction back and the
// engine fails the whole group.
//
// # Layout
//
//   - theus_meta: layout version, value encoding ("json" or the codec's
//     type), last committed version.
//   - theus_fields: one row per top-level state field: its type
//     fingerprint and, for a plain field, its encoded value.
//   - theus_entries: one row per collection entry.
//   - theus_messages: the outbox, with state pending, delivered or parked,
//     attempts, last_error and delivered_at.
//   - theus_key_seqs: the last KeySeq per (topic, key).
//
// The state tables hold the latest state, updated in every commit's
// transaction: a commit rewrites the top-level fields it wrote (a write of
// domain.user.email re-encodes domain.user) and upserts or deletes the
// collection entries it wrote. This is a checkpoint that is always
// current, so there is no separate checkpoint to take and no log of changes
// to replay or prune: recovery reads one row per field and per entry, and
// its time depends on the size of the state, never on the length of the
// history. The first commit to an empty store writes the whole state,
// including initial values no commit wrote.
//
// # Schema drift
//
// Every field row records the field's type fingerprint, generated from the
// contract (e.g. "User{id string, email string, tags []string}"). Recover
// compares them with the engine's: a field whose type changed, a field the
// contract no longer declares, or a plain field that became a collection
// (or the other way round) makes Recover fail with a *DriftError naming
// each path; a field the contract added starts at its zero value. Any
// change of a stored type counts, even one JSON could absorb (a new struct
// field): migrate explicitly.
//
// # Outbox
//
// Undelivered returns pending messages in commit order, except those of a
// (topic, key) that has a parked message. The store implements
// outbox.Parking (attempts are counted in the database, so they survive
// restarts; Parked, Replay, Skip) and outbox.Pruner (delivered messages
// are deleted after WithRetention, in batches).
package sqlite

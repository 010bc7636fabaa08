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
// engine fails the whole group. When COMMIT itself fails because the file
// system is full, nothing of the group was written (the store checks) and
// commits go on once there is room; after any other failure of COMMIT the
// group may be on disk, and the store refuses to write until the process
// restarts.
//
// # Commit log and checkpoints
//
// A commit only appends: the group's messages to theus_outbox, and one row
// to theus_log holding the state values the group changed (every plain
// field it wrote, re-encoded whole, e.g. domain.user for a write of
// domain.user.email; every collection entry it wrote or deleted), each once,
// as it is after the group's last commit. Appending touches a few pages at
// the end of two B-trees, where updating the state in place would dirty a
// random page per entry written.
//
// A checkpoint writes a snapshot of the whole state at some version V to
// theus_snapshot, then, in one small transaction, records V as the
// checkpoint and deletes the log rows up to V and the previous snapshot.
// Recovery reads the snapshot and replays the log after it: each field and
// entry is decoded once, from its latest value. A checkpoint interrupted
// at any point (a crash, an error, Close) leaves the previous one in
// effect. The store checkpoints in the background (WithCheckpointEvery):
// the snapshot is encoded from the engine's immutable state of version V
// beside the commits, and written a megabyte per transaction; Checkpoint
// does it on demand. The first commit to an empty store writes the
// snapshot in its own transaction, including the initial values no commit
// wrote.
//
// # Layout
//
//   - theus_meta: layout version, value encoding ("json" or the codec's
//     type), the version of the checkpoint in effect, the incarnation.
//   - theus_fields: one row per top-level state field: its path, type
//     fingerprint and whether it is a collection (schema drift).
//   - theus_snapshot: the snapshot of the checkpoint in effect, in rows of
//     about a megabyte; theus_log: one row per commit group after it, and
//     before it for WithHistoryRetention, with each commit's version,
//     time, process, writes and message IDs (History). Both
//     hold change sets (changes.go): a table of paths, then changes (set a
//     field, put or delete an entry) with values as the engine's StateCodec
//     encodes them.
//   - theus_meta also holds the relay's cursor and the last message whose
//     KeySeq is folded into theus_key_seqs.
//   - theus_outbox: every message from its commit until retention prunes
//     it: its state (see Outbox), attempts, last_error, and delivered_at
//     for one delivered apart from the cursor. theus_acks: when the cursor
//     passed each value. The view theus_messages shows every message with
//     its state as a reader means it (pending, parked, delivered) and
//     when it was delivered.
//   - theus_key_seqs: the last KeySeq per (topic, key), up to the last
//     message folded: checkpoints and Prune fold what the store committed
//     since.
//
// A store of layout 1 (state tables updated in place by every commit) or
// 2 (delivered messages moved to a table of their own by every ack) is
// upgraded when opened.
//
// # Backup and restore
//
// Backup writes a consistent copy of a running store to one file; Restore
// puts such a copy in place of a stopped store, as a new incarnation (see
// Store.Incarnation), so that the message IDs and KeySeqs the restored
// store hands out again are not taken for ones consumers saw. Copying a
// backup into place by hand keeps the old incarnation: don't.
//
// # Schema drift
//
// Every field row records the field's type fingerprint, generated from the
// contract (e.g. "User{id string, email string, tags []string}"). Recover
// compares them with the engine's, field by field (engine.CompareFields).
// Compatible changes are accepted: a struct field added (zero value) or
// removed (ignored, with a warning in Recovered.Warnings), an integer
// widened, a state field added (zero value) or removed (ignored, with a
// warning). The new types are recorded in the transaction of the next
// commit, so until then the file opens with the previous contract as well.
// A breaking change (a type changed, an integer narrowed, a key type
// changed, a collection turned into a plain field or back) makes Recover
// fail with a *DriftError naming each path and its reason, unless the
// engine has a migration for the path (engine.Migrate): Recover then
// converts the stored values as it reads them and writes the state again
// as a checkpoint, with the new types recorded, in one transaction.
//
// # Outbox
//
// Commits append messages to theus_outbox, and nothing moves them after
// that. The relay's cursor, a message ID, settles every pending message up
// to it: those are delivered. An ack of what Undelivered returned, from
// its first message on, only moves the cursor (a row of theus_meta and one
// of theus_acks), however many messages it covers; a message acked after
// an earlier one that is still undelivered (its key failed) is marked
// delivered on its own. Acks wait in memory, where Undelivered honours
// them, for the next commit group's transaction to write them, or for
// WithAckInterval; they are not synced on their own. An ack lost in a
// crash or a power cut only makes its messages be delivered again. A message that fails MaxAttempts times is parked; the
// later messages of its (topic, key) are held (the cursor passes them
// without delivering them) until Replay or Skip makes them ready again.
// Undelivered returns the pending messages after the cursor and the ready
// ones, in commit order, except those a parked message of their key
// holds back. The store implements outbox.Parking (attempts are counted
// in the database, so they survive restarts; Parked, Replay, Skip) and
// outbox.Pruner (delivered messages are deleted after WithRetention, in
// batches, once their KeySeqs are folded).
//
// Once a relay reads a store whose engine commits to it, the store keeps
// the messages of the latest commit groups in memory (up to 4,096), and
// Undelivered returns them from there, without a read transaction, while
// the relay keeps up and no message is parked, held or ready. Anything
// else (a backlog, a failure, an ack out of order, a failed commit) makes
// it read the file, and so does anything parked, held or ready, whoever
// replays or skips it (cmd/theus, from another process).
package sqlite

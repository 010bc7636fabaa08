// Package postgres is the Theus store on PostgreSQL (pgx/v5): a durable
// engine.Store, and an outbox.Store for a relay, that any number of engine
// instances share, in different processes and machines.
//
//	st, err := postgres.Open(ctx, "postgres://app:secret@db:5432/app?pool_max_conns=8",
//		postgres.WithSchema("theus"))
//	defer st.Close() // after the relay and the engine have stopped
//	eng, err := NewEngine(ctx, initial, app{}, engine.WithStore(st))
//	relay := outbox.NewRelay(st, sink, outbox.WithMaxAttempts(10))
//
// Each engine runs on a Store of its own (Recover claims it; a second
// engine on one Store gets ErrInUse). Engines share a state when their
// Stores open the same database and schema: every Store is an instance.
//
// # One history for every instance
//
// Every commit group is one PostgreSQL transaction, which first locks the
// schema's head row: groups of all instances are serialised by
// PostgreSQL, and versions are dense across them. A group is one round
// trip: BEGIN, a move of the head by the group's size, a read of the
// commits of other instances after the group's base (the version the
// engine numbered it after), the writes and COMMIT, in one pipeline, so
// the head row is held for the server's work and the WAL flush only. The
// read aborts the transaction if one of those commits overlaps the
// group's footprint (engine.Footprint: what its commits read and wrote,
// and the keys of their messages); else the group's log rows, state
// values and messages are written numbered after those commits (their
// message IDs too; KeySeqs and values are what they would be anyway),
// and the engine applies the others' commits and numbers its group after
// them as the database has it. An instance whose groups have met no other
// instance's commit for a while leaves the read out: its move of the head
// aborts the transaction unless the head is at the group's base, and the
// group goes again with the read. A group that an overlap aborted has
// written nothing: it takes the path the next few groups of its instance
// take too: BEGIN, the head row's lock (SELECT … FOR UPDATE) and a read
// of the log after the group's base, in one round trip; it hands the
// others' commits to the engine (engine.SharedStore's rebase), which
// applies them, drops its own commits that read what they wrote (their
// callers run again) and numbers the rest after them; the writes and
// COMMIT follow in a second round trip. Either way the transaction writes, for each commit, a row of the
// log, the state values the group left, its messages and the KeySeqs of
// their keys, moves the head and notifies the other instances (NOTIFY on
// the channel <schema>_commits, delivered at COMMIT) if any listens: every
// Store that listens registers in theus_listeners and renews its
// registration every 10 seconds, and a group notifies only while a
// registration of another Store is less than 30 seconds old, so an
// instance alone, with its relay in the same process, sends no
// notification. A listener registers in a transaction that first waits
// for the group that holds the head row (SELECT … FOR SHARE) and then
// reads the log, so it misses no commit; one whose registration expired
// (its process stalled) registers again the same way. An idle
// instance listens on that channel, on a connection of its own, and
// applies the others' commits within milliseconds (Follow), from the
// notification itself when the group's log rows fit in its payload
// (sealed with a key kept in theus_meta; see WithNotifyValues) and the
// group was numbered as its engine sent it, else from the log; it also
// polls
// (WithPollInterval), in case the listening connection was lost, and
// listens again with backoff. engine.Engine.Sync waits until an instance
// has applied every commit durable when it was called.
//
// # Durability and unknown outcomes
//
// A commit returns once PostgreSQL has committed its transaction (with the
// server's synchronous_commit setting: keep it on). A failure before
// COMMIT rolls back the whole group; a pooled connection that turns out
// broken before anything was written (or, for a group in one round trip,
// sent) is replaced and the group tried again. When COMMIT itself fails in a way that leaves its outcome in
// doubt (the connection broke, the server restarted or failed over), the
// store does not guess (DESIGN.md, invariant 11): it ends the backend that
// ran the transaction if it still runs, waits for the head row, and looks
// for the group's token, which every log row of the group carries. The
// callers get their receipts if it is there, engine.ErrStore if it is not.
// It retries that read with backoff until it knows; if the store is
// closed first, the error wraps ErrUnknownOutcome. A group committed in
// one round trip after other instances' commits that its engine then
// cannot apply (an instance of another contract on the schema) is in the
// database, yet its callers get an error wrapping ErrCommittedUnapplied;
// the engine's next groups take the head row's lock, and fail with
// nothing written, until it can apply them.
//
// An instance paused while its group holds the head row (a long GC pause,
// a stopped process) holds up the others: the store's sessions run with
// idle_in_transaction_session_timeout = 10s (unless the DSN sets it), after
// which PostgreSQL ends such a session; its group fails, and is resolved
// as not committed.
//
// # Layout
//
// In the schema (WithSchema, default "theus"; created if needed):
//
//   - theus_meta: the layout version (Open upgrades an earlier layout in a
//     transaction, under an advisory lock, and refuses a later one), the
//     incarnation, the encoding of values.
//   - theus_head: one row, the last version: the row every commit locks.
//   - theus_fields: a row per top-level state field, with its type
//     fingerprint (compatible changes are accepted, breaking ones refused with
//     a DriftError; docs/contracts.md, "Evolving a contract"), and the value of
//     a plain field; theus_entries: a row per collection entry. Each value
//     carries the version that wrote it, as the engine's StateCodec
//     encodes it (JSON by default).
//   - theus_log: a row per commit: version, group token, process, time,
//     writes, the values it left, the KeySeqs and IDs of its messages. It
//     is what other instances catch up from and what History reads; Prune
//     deletes rows older than WithHistoryRetention (default 7 days), never
//     the head's.
//   - theus_key_seqs: the last KeySeq per (topic, key).
//   - theus_outbox: the messages, pending, parked or delivered (with
//     delivered_at), each with its partition; a pending message at or
//     before its partition's ack cursor is delivered too. Prune deletes
//     delivered ones after WithRetention.
//   - theus_leases: a row per partition (their count is in theus_meta):
//     holder, expiry and fencing token of its relay's lease, and the
//     partition's ack cursor (acked_version, acked_idx, acked_at);
//     theus_relays: a row per running relay, with the expiry of its
//     last beat and the key of the advisory lock it holds while it
//     runs; theus_ack_marks: where the cursors were at each Prune,
//     to prune what they passed after the retention.
//   - theus_listeners: a row per Store listening for commits, with the
//     expiry of its registration.
//
// Recover reads the head, the fields, the entries and the KeySeqs in one
// repeatable-read transaction: its time grows with the state, not with the
// history. The first commit to an empty schema writes the whole state,
// the initial values no commit wrote included; instances must start from
// the same initial state.
//
// # The outbox and the relay fleet
//
// The relay reads pending messages in commit order, leaving out the keys
// that have a parked message. It acks by moving a cursor per partition:
// it reads each partition it holds after the partition's cursor (one
// index range per partition, merged in commit order), and an ack of what
// it read, without a gap from the first, moves the cursor, one row per
// partition, instead of updating every message. Messages acked out of
// such a run (after a failed one of another key, or in a partition that
// had a parked message when it was read) are marked delivered one by
// one, so the cursor never passes a message that is not delivered and a
// parked message is always after it: Replay makes it pending where the
// relay reads. Any number of relays share
// a schema, each on a Store of its own (a second relay on one Store gets
// outbox.ErrRelayRunning). The key space is split into partitions
// (WithPartitions, fixed when the schema is created and kept in
// theus_meta): a message's partition is a hash of its (topic, key). A
// relay holds leases on partitions (theus_leases: holder, expiry on the
// database's clock, and a fencing token that grows at every take-over),
// renews them every third of WithRelayLease, takes over expired ones (and
// those of a relay whose process died: each relay holds a session-level
// advisory lock while it runs, gone with its sessions), and
// moves towards its fair share of the partitions as relays come and go
// (theus_relays), giving a partition back only when none of its messages
// is in flight. It reads only the partitions it holds; every ack and
// every recorded failure (which may park) locks the leases it relies on
// and checks their tokens in the same statement, so a relay that lost a
// lease (paused, partitioned, killed) writes nothing: the call fails with
// ErrLeaseLost (outbox.ErrFenced), and the relay ends its round.
// Per-(topic, key) order holds across relays and hand-overs; the only
// messages delivered twice are those an old holder had sent and not
// acked (FleetStats counts leases, take-overs and refused writes). An
// ack does not wait for its WAL to reach the disk: the next synchronous
// commit, or the WAL writer, syncs it along, and a crash of the server
// before then makes its messages be delivered again.
//
// A relay is woken by every instance's commits, by Enqueue, Replay, Skip
// and hand-overs (LISTEN/NOTIFY), and polls only as a backstop. Replay and
// Skip work from any Store, whichever relay holds the key.
//
// # Enqueue from the user's transaction
//
// Enqueue (the default schema) and Store.Enqueue add messages inside the
// caller's own pgx.Tx or *sql.Tx, as one new version of the history: IDs
// and dense KeySeqs are assigned in that transaction, which holds the
// head row until it ends, so nothing is visible unless it commits and a
// key's messages are numbered in commit order. It is one statement: one
// round trip once prepared on the connection.
//
// The DSN's password appears in no error and no log line of the store.
package postgres

package postgres

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/wire"
)

// Every commit group notifies the schema's channel (NOTIFY, delivered when
// the transaction commits) while a Store other than its own listens
// (listeners.go). A Store listens on a connection of its own once
// Follow or Notify is first called, and closes its changed channel at
// every notification, at every commit of its own, and when the listening
// connection is (re)established, since notifications sent while it was
// down are lost. Waiters poll as well (WithPollInterval), as the backstop.
//
// A notification carries the group's commits themselves when they fit
// (notice): the log rows the transaction wrote, so that an idle instance
// applies them without reading the log, one round trip fewer between a
// commit and its version on every instance. That is as safe as reading
// the rows: PostgreSQL delivers a notification only once its transaction
// has committed and is visible to other sessions, so never sooner than a
// query of the log would return the rows (with synchronous_commit on,
// after the commit is flushed, and replicated under synchronous
// replication); the payload is built from the same bytes as the log rows,
// in the transaction that writes them. Since any role that can connect may
// NOTIFY on the channel, the rows are sealed (AES-GCM, with the versions
// as associated data) with a key that the store keeps in theus_meta: a
// payload that does not open is ignored. Follow still applies only a dense run
// of versions right after the last one applied (usable); a gap, a payload
// that did not fit or did not decode, a reconnection of the listener or
// the poll make it read the log instead.

// followBatch is how many commits Follow reads per query.
const followBatch = 1000

// changes returns a channel closed at the next commit of any instance
// (as far as notifications tell), starting the listener if needed.
func (s *Store) changes() <-chan struct{} {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if !s.listenOn {
		select {
		case <-s.closed:
		default:
			s.listenOn = true
			ctx, cancel := context.WithCancel(context.Background())
			s.stop = cancel
			s.wg.Add(1)
			go s.listen(ctx)
		}
	}
	return s.changed
}

// wake closes the changed channel.
func (s *Store) wake() {
	s.lmu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.lmu.Unlock()
}

// listen holds a connection that LISTENs to the schema's channel until
// ctx ends, reconnecting with backoff.
func (s *Store) listen(ctx context.Context) {
	defer s.wg.Done()
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.opts.logger.Warn("postgres: listen for commits; reconnecting", "err", redact(err, s.secret...), "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	if err := s.register(ctx); err != nil {
		return err
	}
	beat, stop := context.WithCancel(ctx)
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		s.every(beat, listenerBeat, "renew the listener's registration", s.renew)
	}()
	defer func() {
		stop()
		<-beating
	}()
	s.heard.lost() // what was committed while nobody listened
	s.wake()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.heard.add(n.Payload)
		s.wake()
	}
}

// Follow implements engine.SharedStore. It hands apply every commit after
// version from, this Store's own included (the engine skips those it has
// applied), in version order, at most followBatch at a time, as soon as a
// notification or the poll (WithPollInterval) tells of them: from the
// notifications' payloads when they hold every commit after from that
// notifications told of (usable), else from the log. When apply returns
// a version below the last one it was given (its engine was committing),
// Follow asks again after a short delay; apply(nil) only returns the
// engine's version. It retries errors of the
// database with backoff, and returns nil when ctx ends.
func (s *Store) Follow(ctx context.Context, from uint64, apply func([]engine.Remote) uint64) error {
	if s.codec == nil {
		return s.errorf("follow", errNoCodec)
	}
	backoff := time.Duration(0)
	readLog := true // at first, after the poll, and when the payloads do not do
	for ctx.Err() == nil {
		changed := s.changes()
		// This Store's own commits are not notified to it (listeners.go):
		// the engine's version tells how far they reach, so that the
		// payloads of the next commits of others make a run after them.
		from = max(from, apply(nil))
		var others []engine.Remote
		if !s.opts.notifyValues {
			readLog = true // see WithNotifyValues
		}
		if !readLog {
			var ok bool
			if others, ok = s.heard.next(s, from); !ok {
				readLog = true
			}
		}
		if readLog {
			s.heard.reading()
			// The log alone, one query: groups commit in version order
			// (the head row serialises them), so whatever snapshot the
			// query reads holds a prefix of the versions.
			var err error
			others, err = s.readRemotes(ctx, s.pool, from, 1<<63-1, followBatch)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				backoff = min(max(2*backoff, 10*time.Millisecond), 5*time.Second)
				s.opts.logger.Warn("postgres: read other instances' commits; retrying", "err", redact(err, s.secret...), "in", backoff)
				if !sleep(ctx, backoff) {
					return nil
				}
				continue
			}
		}
		readLog = false
		if len(others) > 0 {
			last := others[len(others)-1].Version
			applied := apply(others)
			from = max(from, applied)
			if applied < last {
				// The engine was committing: its commit applies them,
				// or it will take them in a moment.
				backoff = min(max(2*backoff, time.Millisecond), 50*time.Millisecond)
				if !sleep(ctx, backoff) {
					return nil
				}
				readLog = true
				continue
			}
			backoff = 0
			if len(others) >= followBatch {
				readLog = true
				continue
			}
		}
		backoff = 0
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(s.opts.poll):
			readLog = true
		}
	}
	return nil
}

// maxNotice is the size of the longest notification payload: PostgreSQL
// refuses 8000 bytes or more (its default build).
const maxNotice = 7999

// initNotices reads the key that seals notifications' payloads, creating
// it with the store. tx holds the store's advisory lock (init).
func (s *Store) initNotices(ctx context.Context, tx pgx.Tx) error {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+s.schema+`.theus_meta (name, value) VALUES ('notify_key', $1)
		ON CONFLICT (name) DO NOTHING`, hex.EncodeToString(key[:])); err != nil {
		return err
	}
	var stored string
	if err := tx.QueryRow(ctx, `SELECT value FROM `+s.schema+`.theus_meta WHERE name = 'notify_key'`).Scan(&stored); err != nil {
		return err
	}
	k, err := hex.DecodeString(stored)
	if err != nil || len(k) != 32 {
		return errors.New("theus_meta: notify_key is not 32 bytes in hex")
	}
	s.seal, err = newSeal(k)
	return err
}

func newSeal(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// notice returns the payload of the notification of a group's commits,
// given its log rows' columns (batch): "last", the last version, or, when
// the commits fit and WithNotifyValues allows, "last first sealed":
// sealed is base64 of a nonce and the rows sealed with s.seal, "last
// first" being associated data. Each row: process, at (uvarint), writes,
// vals, key_seqs and ids, each length-prefixed as encode.go writes them.
func (s *Store) notice(versions []int64, procs []string, ats []int64, writes, vals, keySeqs, ids [][]byte) string {
	last := strconv.FormatInt(versions[len(versions)-1], 10)
	if !s.opts.notifyValues || s.seal == nil {
		return last
	}
	head := last + " " + strconv.FormatInt(versions[0], 10)
	over := s.seal.NonceSize() + s.seal.Overhead()
	fits := func(n int) bool { return len(head)+1+base64.RawStdEncoding.EncodedLen(over+n) <= maxNotice }
	size := 0
	for j := range versions {
		size += len(procs[j]) + len(writes[j]) + len(vals[j]) + len(keySeqs[j]) + len(ids[j])
	}
	if !fits(size) {
		return last // larger still with the lengths
	}
	buf := make([]byte, s.seal.NonceSize(), s.seal.NonceSize()+size+len(versions)*6*binary.MaxVarintLen32+s.seal.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return last
	}
	raw := buf[len(buf):]
	for j := range versions {
		raw = appendStr(raw, procs[j])
		raw = binary.AppendUvarint(raw, uint64(ats[j]))
		raw = appendBytes(raw, writes[j])
		raw = appendBytes(raw, vals[j])
		raw = appendBytes(raw, keySeqs[j])
		raw = appendBytes(raw, ids[j])
	}
	if !fits(len(raw)) {
		return last
	}
	sealed := s.seal.Seal(buf, buf[:s.seal.NonceSize()], raw, []byte(head))
	return head + " " + base64.RawStdEncoding.EncodeToString(sealed)
}

// heard keeps what the notifications told: the payloads of the latest
// ones, until Follow takes them, and the highest version any named.
type heard struct {
	mu sync.Mutex
	// notes are the latest payloads, at most maxNotes: a Store no engine
	// follows (a relay's) keeps no more.
	notes []note
	// hint is the highest version a notification named.
	hint uint64
	// blind is set when commits may have gone unheard (the listener
	// connected again): the log must be read.
	blind bool
	// used counts the commits taken from payloads (tests).
	used atomic.Uint64
}

// note is a notification that carried its commits.
type note struct {
	first, last uint64
	body        string // base64 of the rows (notice)
}

const maxNotes = 64

var errBadNotice = errors.New("malformed notification payload")

// add records a notification's payload: a version, then, if it carries
// them, the first version and the commits. A payload it cannot read
// makes it blind.
func (h *heard) add(payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := strings.SplitN(payload, " ", 3)
	last, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		h.blind = true
		return
	}
	h.hint = max(h.hint, last)
	if len(f) != 3 {
		return
	}
	first, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || first == 0 || first > last {
		h.blind = true
		return
	}
	if len(h.notes) == maxNotes {
		h.notes = h.notes[1:]
	}
	h.notes = append(h.notes, note{first: first, last: last, body: f[2]})
}

// lost records that notifications may have been lost.
func (h *heard) lost() {
	h.mu.Lock()
	h.blind = true
	h.mu.Unlock()
}

// reading records that Follow reads the log: it sees what was lost.
func (h *heard) reading() {
	h.mu.Lock()
	h.blind = false
	h.mu.Unlock()
}

// next returns the commits after version from that the payloads carry,
// with ok set when they are usable: they are every commit after from that
// notifications told of. Else the log must be read (ok false).
//
// usable is the rule for what an instance may apply from notifications
// (invariants 9 and 10 of DESIGN.md): a dense run of versions right after
// the last one applied, each from a committed transaction's own payload.
// A version is never applied before every version below it is; a commit
// whose payload did not come (too large, lost with the listener's
// connection) stops the run, and the log is read instead.
func (h *heard) next(s *Store, from uint64) ([]engine.Remote, bool) {
	h.mu.Lock()
	// Forget what is applied.
	keep := h.notes[:0]
	for _, n := range h.notes {
		if n.last > from {
			keep = append(keep, n)
		}
	}
	clear(h.notes[len(keep):])
	h.notes = keep
	var run []note
	at := from
	for found := true; found; {
		found = false
		for _, n := range h.notes {
			if n.first <= at+1 && n.last > at {
				run, at, found = append(run, n), n.last, true
				break
			}
		}
	}
	ok := !h.blind && at >= h.hint
	h.mu.Unlock()
	if !ok {
		return nil, false
	}
	var out []engine.Remote
	for _, n := range run {
		rs, err := s.noteRemotes(n)
		if err != nil {
			s.opts.logger.Warn("postgres: a commit notification does not decode; reading the log", "versions", fmt.Sprintf("%d-%d", n.first, n.last), "err", err)
			return nil, false
		}
		for _, r := range rs {
			if r.Version > from {
				out = append(out, r)
			}
		}
	}
	h.used.Add(uint64(len(out)))
	return out, true
}

// noteRemotes opens and decodes the commits of a notification.
func (s *Store) noteRemotes(n note) ([]engine.Remote, error) {
	if s.seal == nil {
		return nil, errBadNotice
	}
	sealed, err := base64.RawStdEncoding.DecodeString(n.body)
	if err != nil || len(sealed) < s.seal.NonceSize() {
		return nil, fmt.Errorf("%w: not base64 of a sealed payload", errBadNotice)
	}
	head := strconv.FormatUint(n.last, 10) + " " + strconv.FormatUint(n.first, 10)
	ns := s.seal.NonceSize()
	raw, err := s.seal.Open(sealed[ns:ns], sealed[:ns], sealed[ns:], []byte(head))
	if err != nil {
		return nil, fmt.Errorf("%w: it does not open with the store's key", errBadNotice)
	}
	r := wire.NewReader(raw, errBadNotice)
	out := make([]engine.Remote, 0, n.last-n.first+1)
	for v := n.first; v <= n.last; v++ {
		proc := r.Bytes()
		at := r.Uvarint()
		writes, vals, keySeqs, ids := r.Bytes(), r.Bytes(), r.Bytes(), r.Bytes()
		if r.Err() != nil {
			return nil, r.Err()
		}
		rm, err := s.remote(v, string(proc), int64(at), writes, vals, keySeqs, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, rm)
	}
	if r.More() {
		return nil, fmt.Errorf("%w: %d bytes after version %d", errBadNotice, r.Len(), n.last)
	}
	return out, nil
}

// remote decodes the commit at version from its log row's columns (or a
// notification's copy of them), as the engine receives other engines'
// commits. The values' data is copied: the columns may be reused.
func (s *Store) remote(version uint64, process string, at int64, writes, vals, keySeqs, ids []byte) (engine.Remote, error) {
	r := engine.Remote{Version: version, Process: process, Time: time.Unix(0, at)}
	var err error
	if r.Writes, err = readWrites(writes); err != nil {
		return r, fmt.Errorf("log row of version %d: %w", version, err)
	}
	if r.MessageIDs, err = readIDs(ids); err != nil {
		return r, fmt.Errorf("log row of version %d: %w", version, err)
	}
	if r.KeySeqs, err = readKeySeqs(keySeqs); err != nil {
		return r, fmt.Errorf("log row of version %d: %w", version, err)
	}
	infos := s.codec.Fields()
	err = readVals(vals, func(v value) error {
		i := s.codec.Field(v.path)
		if i < 0 || infos[i].Path != v.path || infos[i].Collection != (v.kind != valField) {
			return fmt.Errorf("version %d writes %s, which the contract does not declare as such", version, v.path)
		}
		rv := engine.RemoteValue{Field: i, Key: v.key}
		if v.kind != valDeleted {
			rv.Data = append([]byte(nil), v.data...)
		}
		r.Values = append(r.Values, rv)
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("log row of version %d: %w", version, err)
	}
	return r, nil
}

// sleep waits d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Head implements engine.SharedStore: the last durable version, whichever
// instance committed it.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	var head int64
	if err := s.pool.QueryRow(ctx, s.q.head).Scan(&head); err != nil {
		return 0, s.errorf("head", err)
	}
	return uint64(head), nil
}

// Notify implements outbox.Store: the channel is closed at the next
// commit of any instance on the store's schema (LISTEN/NOTIFY), at the
// next Replay or Skip of this Store, and when the store reconnects its
// listening connection.
func (s *Store) Notify() <-chan struct{} { return s.changes() }

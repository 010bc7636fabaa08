package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/engine"
)

// Every commit notifies the schema's channel (NOTIFY, delivered when the
// transaction commits). A Store listens on a connection of its own once
// Follow or Notify is first called, and closes its changed channel at
// every notification, at every commit of its own, and when the listening
// connection is (re)established, since notifications sent while it was
// down are lost. Waiters poll as well (WithPollInterval), as the backstop.

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
	s.wake() // what was committed while nobody listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.wake()
	}
}

// Follow implements engine.SharedStore. It hands apply every commit after
// version from, this Store's own included (the engine skips those it has
// applied), in version order, at most followBatch at a time, as soon as a
// notification or the poll (WithPollInterval) tells of them. When apply
// returns a version below the last one it was given (its engine was
// committing), Follow asks again after a short delay. It retries errors
// of the database with backoff, and returns nil when ctx ends.
func (s *Store) Follow(ctx context.Context, from uint64, apply func([]engine.Remote) uint64) error {
	if s.codec == nil {
		return s.errorf("follow", errNoCodec)
	}
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		changed := s.changes()
		// The log alone, one query: groups commit in version order (the
		// head row serialises them), so whatever snapshot the query reads
		// holds a prefix of the versions.
		others, err := s.readRemotes(ctx, s.pool, from, 1<<63-1, followBatch)
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
				continue
			}
			backoff = 0
			if len(others) == followBatch {
				continue
			}
		}
		backoff = 0
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(s.opts.poll):
		}
	}
	return nil
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

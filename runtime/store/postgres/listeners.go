package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// A commit group notifies the schema's channel only when a Store other
// than its own listens (the notify statements, newQueries): an instance
// alone, with its relay in the same process, pays for no notification
// (the server's signal and delivery to its own listener, the client's
// reading of it) and, once a group found nobody to notify, builds no
// sealed payload (batch). A Store that listens registers in
// theus_listeners and beats every listenerBeat; a registration that has
// not been renewed for listenerTTL (its process died or stalled) no
// longer counts.
//
// No notification is missed at registration: the registering transaction
// takes the head row's lock first (FOR SHARE), so a group that holds the
// head row commits before the registration does, and the listener then
// reads the log (heard.lost), which holds that group; a group that takes
// the head row afterwards sees the registration in the statement that
// notifies, which runs after it took the head row. A beat that finds its
// registration gone or expired registers again the same way.
const (
	listenerTTL  = 30 * time.Second
	listenerBeat = listenerTTL / 3
)

// register records this Store's listener in theus_listeners (see above),
// and deletes the registrations that expired. The listening connection
// must be listening already.
func (s *Store) register(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM `+s.schema+`.theus_head WHERE id = 1 FOR SHARE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+s.schema+`.theus_listeners WHERE expires < clock_timestamp()`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+s.schema+`.theus_listeners (id, expires)
			VALUES ($1, clock_timestamp() + make_interval(secs => $2))
			ON CONFLICT (id) DO UPDATE SET expires = excluded.expires`, s.listener, listenerTTL.Seconds())
		return err
	})
}

// renew moves this Store's registration's expiry on. If the registration
// expired or is gone, it registers again and reports that notifications
// may have been missed meanwhile (heard.lost).
func (s *Store) renew(ctx context.Context) error {
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.schema+`.theus_listeners SET expires = clock_timestamp() + make_interval(secs => $2)
		WHERE id = $1 AND expires > clock_timestamp()`, s.listener, listenerTTL.Seconds())
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	if err := s.register(ctx); err != nil {
		return err
	}
	s.heard.lost()
	s.wake()
	return nil
}

// unregister deletes this Store's registration, if it listened, so that
// the other instances stop notifying at once rather than after
// listenerTTL. Close calls it; a failure only delays that.
func (s *Store) unregister() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = s.pool.Exec(ctx, `DELETE FROM `+s.schema+`.theus_listeners WHERE id = $1`, s.listener)
}

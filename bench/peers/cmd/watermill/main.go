// Command watermill runs the peer benchmark's workload on Watermill's
// transactional outbox on PostgreSQL, as Watermill documents it:
//
//   - a producer opens a database/sql transaction (the pgx stdlib driver),
//     runs UPDATE users … RETURNING counter, and publishes the event
//     through a watermill-sql Publisher bound to that transaction and
//     wrapped by the forwarder's Publisher (which puts it in an envelope
//     naming its destination topic), then commits;
//   - the forwarder component (watermill/components/forwarder) reads the
//     envelopes with a watermill-sql Subscriber and publishes each to its
//     topic on an in-process GoChannel pub/sub, which the consumer
//     subscribes to.
//
// watermill-sql runs with its PostgreSQL schema and offsets adapters at
// their defaults (a batch of 100 per query) but for the table names (a
// schema of its own) and the poll interval, -poll (default 1ms, where
// Watermill's default is 1s). PostgreSQL runs at its defaults
// (synchronous_commit=on). Flags: bench/peers/README.md.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/theus-go/theus/bench/peers/internal/pgsetup"
	"github.com/theus-go/theus/bench/peers/workload"
)

const (
	schema = "peers_watermill"
	// topic is the events' destination topic on the GoChannel; the
	// envelopes travel through PostgreSQL on the forwarder's topic.
	topic        = "user_updated"
	forwardTopic = "forwarded"

	updateUser = `UPDATE peers_watermill.users SET counter = counter + 1, email = $2, updated_at = $3
		WHERE id = $1 RETURNING counter`
)

var (
	logger  = watermill.NopLogger{} // stdout carries the result line only
	schemas = wsql.DefaultPostgreSQLSchema{
		GenerateMessagesTableName: func(topic string) string { return schema + ".messages_" + topic },
	}
	offsets = wsql.DefaultPostgreSQLOffsetsAdapter{
		GenerateMessagesOffsetsTableName: func(topic string) string { return schema + ".offsets_" + topic },
	}
)

var impl = workload.Impl{Name: "watermill", Server: true, Open: open}

func main() { workload.Main(impl) }

type system struct {
	db  *sql.DB
	sub *wsql.Subscriber
}

func open(ctx context.Context, cfg workload.Config) (workload.System, error) {
	if err := pgsetup.Reset(ctx, cfg.DSN, schema, cfg.Users); err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		return nil, err
	}
	n := pgsetup.PoolSize(cfg.C)
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n) // the default, 2, would close and reopen connections under load
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db), wsql.SubscriberConfig{
		SchemaAdapter:  schemas,
		OffsetsAdapter: offsets,
		PollInterval:   cfg.Poll,
	}, logger)
	if err == nil {
		// The producers' publishers are bound to transactions, which
		// cannot create tables: the subscriber creates them.
		err = sub.SubscribeInitialize(forwardTopic)
	}
	if err == nil {
		err = openAll(ctx, db, n)
	}
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return &system{db: db, sub: sub}, nil
}

// openAll opens n connections of db, so that none is opened while the
// clock runs.
func openAll(ctx context.Context, db *sql.DB, n int) error {
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	return nil
}

func (s *system) Commit(ctx context.Context, t *workload.Tx) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit: a no-op
	var counter int64
	if err := tx.QueryRowContext(ctx, updateUser, t.User, t.Email, t.UpdatedAt).Scan(&counter); err != nil {
		return fmt.Errorf("update user %s: %w", t.User, err)
	}
	payload, err := json.Marshal(t.Event(counter))
	if err != nil {
		return err
	}
	pub, err := wsql.NewPublisher(wsql.TxFromStdSQL(tx), wsql.PublisherConfig{SchemaAdapter: schemas}, logger)
	if err != nil {
		return err
	}
	fwd := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: forwardTopic})
	if err := fwd.Publish(topic, message.NewMessage(watermill.NewUUID(), payload)); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return tx.Commit()
}

// StartRelay runs the forwarder from the SQL subscriber to a GoChannel, and
// the consumer on its subscription. The forwarder closes the subscriber
// when it stops: a system relays once.
func (s *system) StartRelay(ctx context.Context, recv func([]byte)) (<-chan error, error) {
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: workload.ChannelBuffer}, logger)
	msgs, err := pubsub.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	fwd, err := forwarder.NewForwarder(s.sub, pubsub, logger, forwarder.Config{ForwarderTopic: forwardTopic})
	if err != nil {
		return nil, errors.Join(err, pubsub.Close())
	}
	ran := make(chan error, 1)
	go func() { ran <- fwd.Run(ctx) }()
	select {
	case <-fwd.Running():
	case err := <-ran:
		return nil, errors.Join(fmt.Errorf("forwarder: %w", err), pubsub.Close())
	}
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for m := range msgs {
			recv(m.Payload)
			m.Ack()
		}
	}()
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		err := errors.Join(fwd.Close(), <-ran, pubsub.Close())
		<-consumed
		done <- err
	}()
	return done, nil
}

func (s *system) Close() error {
	return errors.Join(s.sub.Close(), s.db.Close())
}

// Package theusbench is the peer benchmark's workload on Theus: the
// contract (contracts.yaml), its generated code, the process, and the
// workload.System that the theus-sqlite, theus-memory and theus-postgres
// binaries run on their store.
package theusbench

//go:generate go -C ../../.. run ./cmd/theusgen generate -f bench/peers/theusbench/contracts.yaml

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/bench/peers/workload"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
	"github.com/theus-go/theus/runtime/store/memory"
	"github.com/theus-go/theus/runtime/store/postgres"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// app implements the generated Processes.
type app struct{}

func (app) UpdateUser(_ context.Context, in UpdateUserIn, out *UpdateUserOut) error {
	v, ok := in.Users().Get(in.Args.ID)
	if !ok {
		return ErrNoSuchUser
	}
	u := v.Clone()
	u.Counter++
	u.Email = in.Args.Email
	u.UpdatedAt = in.Args.UpdatedAt
	out.Users().Put(u.ID, u)
	out.EmitUserUpdated(UserUpdated{
		ID: u.ID, Tx: in.Args.Tx, StartNs: in.Args.StartNs, Email: u.Email,
		Counter: u.Counter, UpdatedAt: u.UpdatedAt, Note: workload.Note,
	})
	return nil
}

// SQLite is Theus on the SQLite store (runtime/store/sqlite) at its
// defaults: WAL, synchronous=FULL. The file lives in a new directory
// under Config.Dir, removed after the run.
var SQLite = workload.Impl{Name: "theus-sqlite", Open: openSQLite}

// Memory is Theus on the memory store (runtime/store/memory): the engine
// and the relay without I/O.
var Memory = workload.Impl{Name: "theus-memory", Open: func(ctx context.Context, cfg workload.Config) (workload.System, error) {
	return Open(ctx, cfg, memory.New(), nil)
}}

// PostgresSchema is the schema of theus-postgres, dropped before each run.
const PostgresSchema = "peers_theus"

// Postgres is Theus on the PostgreSQL store (runtime/store/postgres) at
// its defaults, in schema peers_theus, dropped and created again for each
// run: one engine instance, its pool at the store's default size, the
// server at its defaults (synchronous_commit=on).
var Postgres = workload.Impl{Name: "theus-postgres", Server: true, Open: openPostgres}

func openPostgres(ctx context.Context, cfg workload.Config) (workload.System, error) {
	conn, err := pgx.Connect(ctx, cfg.DSN)
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+PostgresSchema+` CASCADE`)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	st, err := postgres.Open(ctx, cfg.DSN, postgres.WithSchema(PostgresSchema))
	if err != nil {
		return nil, err
	}
	sys, err := Open(ctx, cfg, st, st.Close)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return sys, nil
}

func openSQLite(ctx context.Context, cfg workload.Config) (workload.System, error) {
	dir, err := os.MkdirTemp(cfg.Dir, "theus-sqlite-")
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "theus.db"))
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	closeStore := func() error { return errors.Join(st.Close(), os.RemoveAll(dir)) }
	sys, err := Open(ctx, cfg, st, closeStore)
	if err != nil {
		return nil, errors.Join(err, closeStore())
	}
	return sys, nil
}

// System is the workload on a Theus engine over one store.
type System struct {
	eng        *Engine
	closeStore func() error
}

// Open starts an engine on st, which must be empty, with cfg.Users users.
// closeStore, if not nil, is called by Close after the engine is closed.
func Open(ctx context.Context, cfg workload.Config, st engine.Store, closeStore func() error) (*System, error) {
	users := make(map[string]User, cfg.Users)
	for i := range cfg.Users {
		id := workload.UserID(i)
		users[id] = User{ID: id, Email: workload.InitialEmail(id)}
	}
	eng, err := NewEngine(ctx, State{Domain: DomainState{Users: users}}, app{}, engine.WithStore(st))
	if err != nil {
		return nil, err
	}
	return &System{eng: eng, closeStore: closeStore}, nil
}

func (s *System) Commit(ctx context.Context, tx *workload.Tx) error {
	_, err := s.eng.UpdateUser(ctx, UpdateUserArgs{
		ID: tx.User, Tx: tx.ID, StartNs: tx.StartNS, Email: tx.Email, UpdatedAt: tx.UpdatedAt,
	})
	return err
}

// StartRelay runs Theus's relay with its defaults, from the engine's store
// to the channel.
func (s *System) StartRelay(ctx context.Context, recv func([]byte)) (<-chan error, error) {
	return workload.Pipe(ctx, recv, func(ctx context.Context, out chan<- []byte) error {
		send := sink.Func(func(ctx context.Context, m outbox.Message) error {
			select {
			case out <- m.Payload: // payloads are immutable: no copy
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		return outbox.NewRelay(s.eng.Store(), send).Run(ctx)
	}), nil
}

func (s *System) Close() error {
	err := s.eng.Close()
	if s.closeStore != nil {
		if cerr := s.closeStore(); err == nil {
			err = cerr
		}
	}
	return err
}

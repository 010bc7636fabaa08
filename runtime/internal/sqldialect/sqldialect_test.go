package sqldialect

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
)

type pgErr string

func (e pgErr) Error() string    { return "pg " + string(e) }
func (e pgErr) SQLState() string { return string(e) }

type liteErr int

func (e liteErr) Error() string { return fmt.Sprint("sqlite ", int(e)) }
func (e liteErr) Code() int     { return int(e) }

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		d    Dialect
		err  error
		want Class
	}{
		{Postgres, pgErr("23505"), Permanent},
		{Postgres, fmt.Errorf("wrapped: %w", pgErr("22021")), Permanent},
		{Postgres, pgErr("42P01"), Permanent}, // undefined table
		{Postgres, pgErr("42601"), Permanent}, // syntax error
		{Postgres, pgErr("42501"), Permanent}, // insufficient privilege
		{Postgres, pgErr("42804"), Permanent}, // datatype mismatch
		{Postgres, pgErr("3F000"), Permanent}, // no such schema
		{Postgres, fmt.Errorf("failed to encode args[3]: %w", errors.New("unable to encode 1 into binary format for uuid")), Permanent},
		{SQLite, fmt.Errorf("failed to encode args[3]: %w", errors.New("x")), Transient}, // pgx's text means nothing elsewhere
		{Postgres, pgErr("08006"), Unavailable},
		{Postgres, pgErr("28P01"), Unavailable},
		{Postgres, pgErr("3D000"), Unavailable},
		{Postgres, pgErr("53100"), Unavailable},
		{Postgres, pgErr("57P01"), Unavailable},
		{Postgres, pgErr("40001"), Transient},
		{Postgres, pgErr("40P01"), Transient},
		{SQLite, liteErr(19), Permanent},
		{SQLite, liteErr(19 | 2<<8), Permanent}, // extended CHECK code
		{SQLite, liteErr(1), Permanent},         // ERROR: syntax, no such table or column
		{SQLite, liteErr(23), Permanent},        // AUTH
		{SQLite, liteErr(8), Unavailable},       // READONLY
		{SQLite, liteErr(13), Unavailable},
		{SQLite, liteErr(5), Transient},
		{Postgres, liteErr(19), Transient}, // Code() only means something for SQLite
		{Postgres, driver.ErrBadConn, Unavailable},
		{Postgres, fmt.Errorf("x: %w", syscall.ECONNREFUSED), Unavailable},
		{Postgres, &net.OpError{Op: "dial", Err: errors.New("no route")}, Unavailable},
		{SQLite, errors.New("boom"), Transient},
	} {
		if got := Classify(c.d, c.err); got != c.want {
			t.Errorf("Classify(%v, %v) = %v, want %v", c.d, c.err, got, c.want)
		}
	}
}

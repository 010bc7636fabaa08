// Package sqldialect holds what the SQL-backed sink and dedup share: the
// placeholder dialects, their detection from a *sql.DB, table-name
// validation and quoting, and error classification.
package sqldialect

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"syscall"
)

// Dialect is the SQL flavour: the placeholder style and column types.
type Dialect int

const (
	// Auto detects the dialect from the database's driver.
	Auto Dialect = iota
	// SQLite uses ? placeholders (modernc.org/sqlite, mattn/go-sqlite3).
	SQLite
	// Postgres uses $1, $2... placeholders (pgx/v5/stdlib, lib/pq).
	Postgres
)

func (d Dialect) String() string {
	switch d {
	case Auto:
		return "auto"
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// Resolve returns d, or the dialect of db's driver when d is Auto. A
// driver it does not know is an error.
func Resolve(db *sql.DB, d Dialect) (Dialect, error) {
	switch d {
	case SQLite, Postgres:
		return d, nil
	case Auto:
	default:
		return 0, fmt.Errorf("unknown dialect %v", d)
	}
	t := reflect.TypeOf(db.Driver())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	p := strings.ToLower(t.PkgPath() + "." + t.Name())
	switch {
	case strings.Contains(p, "sqlite"):
		return SQLite, nil
	case strings.Contains(p, "pgx"), strings.Contains(p, "lib/pq"), strings.Contains(p, "postgres"):
		return Postgres, nil
	}
	return 0, fmt.Errorf("cannot tell the dialect of driver %s; set it with WithDialect", p)
}

// Placeholder returns the i-th (1-based) bind parameter.
func (d Dialect) Placeholder(i int) string {
	if d == Postgres {
		return "$" + strconv.Itoa(i)
	}
	return "?"
}

// ValidTable reports whether name is an identifier [A-Za-z_][A-Za-z0-9_]*,
// optionally qualified by a schema with one dot ("schema.table").
func ValidTable(name string) error {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return fmt.Errorf("invalid table name %q: at most one dot (schema.table)", name)
	}
	for _, p := range parts {
		if !validIdent(p) {
			return fmt.Errorf("invalid table name %q: each part must match [A-Za-z_][A-Za-z0-9_]*", name)
		}
	}
	return nil
}

// QuoteTable returns name quoted for d part by part ("schema"."table"), so
// that a reserved word such as order or select names a table instead of
// breaking the statement. For Postgres the name is lower-cased first, as
// Postgres folds a name given unquoted: a name ValidTable accepts means
// the same table quoted as it did unquoted. A quote inside a part is
// doubled, so any name yields one identifier per part.
func (d Dialect) QuoteTable(name string) string {
	if d == Postgres {
		name = strings.ToLower(name)
	}
	var b strings.Builder
	for i, part := range strings.Split(name, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(part, `"`, `""`))
		b.WriteByte('"')
	}
	return b.String()
}

func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Class is how a failed statement should be treated.
type Class int

const (
	// Transient: retry, and count the attempt.
	Transient Class = iota
	// Permanent: retrying cannot make the statement succeed: the data is
	// refused (constraint, bad value), or the table as it is cannot take
	// the row (missing, lacking a column or the unique id ON CONFLICT
	// needs, a column of another type, no privilege). Someone must change
	// the data or the table.
	Permanent
	// Unavailable: the database is the problem, not the statement
	// (connection lost or refused, shutting down, out of resources, disk
	// full, read-only, corrupt): it may come back on its own.
	Unavailable
)

// Classify sorts err. The statements are fixed text with bound values of
// fixed types, so an error of the statement itself or of the table will
// come back on every retry until the table is changed.
//
//   - Postgres (an error with SQLState(), as pgx's *pgconn.PgError):
//     class 22 (data exception), 23 (integrity constraint), 42 (syntax,
//     undefined table or column, no matching ON CONFLICT key, datatype
//     mismatch, insufficient privilege), 3F (no such schema) and 0A
//     (feature not supported) are Permanent; class 08 (connection), 28
//     (authorization), 3D (no such database), 53 (insufficient
//     resources), 57P01-57P03 (shutdown, cannot connect now) are
//     Unavailable; the rest (40 serialization or deadlock, ...)
//     Transient. pgx refuses before sending a value it cannot encode for
//     the column's type (a column of another type), with no SQLSTATE:
//     Permanent too.
//   - SQLite (an error with Code() int, as modernc.org/sqlite's *Error),
//     by primary result code: CONSTRAINT, TOOBIG, MISMATCH, RANGE, ERROR
//     (syntax error, no such table or column, no matching ON CONFLICT
//     key) and AUTH are Permanent; PERM, READONLY, IOERR, CORRUPT, FULL,
//     CANTOPEN, NOTADB are Unavailable; BUSY, LOCKED and the rest
//     Transient.
//   - driver.ErrBadConn, sql.ErrConnDone, network errors and
//     ECONNREFUSED/ECONNRESET are Unavailable.
//   - Anything else is Transient.
func Classify(d Dialect, err error) Class {
	if err == nil {
		return Transient
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		s := st.SQLState()
		switch {
		case strings.HasPrefix(s, "22"), strings.HasPrefix(s, "23"), strings.HasPrefix(s, "42"),
			strings.HasPrefix(s, "3F"), strings.HasPrefix(s, "0A"):
			return Permanent
		case strings.HasPrefix(s, "08"), strings.HasPrefix(s, "28"), strings.HasPrefix(s, "3D"),
			strings.HasPrefix(s, "53"), s == "57P01", s == "57P02", s == "57P03":
			return Unavailable
		}
		return Transient
	}
	if d == Postgres && pgxEncodeError(err) {
		return Permanent
	}
	var cd interface{ Code() int }
	if d == SQLite && errors.As(err, &cd) {
		switch cd.Code() & 0xff {
		case 19, 18, 20, 25, 1, 23: // CONSTRAINT, TOOBIG, MISMATCH, RANGE, ERROR, AUTH
			return Permanent
		case 3, 8, 10, 11, 13, 14, 26: // PERM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, NOTADB
			return Unavailable
		}
		return Transient
	}
	var ne net.Error
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &ne) {
		return Unavailable
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return Unavailable
	}
	return Transient
}

// pgxEncodeError reports whether err is pgx's refusal to encode an
// argument for its parameter's type, e.g. "failed to encode args[3]:
// unable to encode 1 into binary format for uuid (OID 2950): ...". pgx
// gives it no type of its own; its text is the one pgx's own tests check.
func pgxEncodeError(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if strings.HasPrefix(err.Error(), "failed to encode args[") {
			return true
		}
	}
	return false
}

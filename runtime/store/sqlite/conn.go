package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// writeConn runs the commit and checkpoint transactions on the write
// connection below database/sql, with statements prepared once per
// connection. database/sql would spend, per statement, a goroutine in the
// driver watching the transaction's context, and converting and checking
// every argument; a commit's own work is a few microseconds of SQLite.
// Other writes (acks, parking, pruning) go through database/sql on the
// same connection.
type writeConn struct {
	dc    any // the driver connection the statements were prepared on
	stmts map[string]driver.Stmt
	args  []driver.NamedValue
}

// onWriteConn calls f with the write connection, waiting for it as long as
// ctx allows.
func (s *Store) onWriteConn(ctx context.Context, f func(*writeConn) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		if s.wc.dc != dc {
			// A new connection (database/sql replaced a broken one): the
			// old statements went with the old one.
			s.wc = writeConn{dc: dc, stmts: make(map[string]driver.Stmt), args: s.wc.args}
		}
		return f(&s.wc)
	})
}

// prepare returns the statement q, prepared on the connection once.
func (c *writeConn) prepare(q string) (driver.Stmt, error) {
	if st := c.stmts[q]; st != nil {
		return st, nil
	}
	p, ok := c.dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("driver connection %T cannot prepare statements", c.dc)
	}
	st, err := p.PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	c.stmts[q] = st
	return st, nil
}

// named returns args as the driver's arguments, in c.args, which the
// next call reuses.
func (c *writeConn) named(args []any) []driver.NamedValue {
	named := c.args[:0]
	for i, a := range args {
		named = append(named, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	c.args = named
	return named
}

// exec runs q with args (int64, string, []byte or nil values).
func (c *writeConn) exec(q string, args ...any) (driver.Result, error) {
	st, err := c.prepare(q)
	if err != nil {
		return nil, err
	}
	ex, ok := st.(driver.StmtExecContext)
	if !ok {
		return nil, fmt.Errorf("driver statement %T cannot execute with a context", st)
	}
	// Never interrupted, so that no statement starts a goroutine to watch
	// a context: a transaction is short (a commit group, or a megabyte of
	// a snapshot), and contexts are checked between transactions.
	res, err := ex.ExecContext(context.Background(), c.named(args))
	clear(c.args)
	c.args = c.args[:0]
	return res, err
}

// query runs q with args; the caller closes the rows.
func (c *writeConn) query(q string, args []any) (driver.Rows, error) {
	st, err := c.prepare(q)
	if err != nil {
		return nil, err
	}
	qc, ok := st.(driver.StmtQueryContext)
	if !ok {
		return nil, fmt.Errorf("driver statement %T cannot query with a context", st)
	}
	rows, err := qc.QueryContext(context.Background(), c.named(args))
	clear(c.args)
	c.args = c.args[:0]
	return rows, err
}

// queryRow runs q with args and scans its one row's columns into dst
// (*string or *int64).
func (c *writeConn) queryRow(q string, args []any, dst ...any) error {
	rows, err := c.query(q, args)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(vals); err != nil {
		return err
	}
	for i, d := range dst {
		switch d := d.(type) {
		case *string:
			switch v := vals[i].(type) {
			case string:
				*d = v
			case []byte:
				*d = string(v)
			case nil:
				*d = ""
			default:
				return fmt.Errorf("column %d is %T, not text", i, v)
			}
		case *int64:
			v, ok := vals[i].(int64)
			if !ok && vals[i] != nil {
				return fmt.Errorf("column %d is %T, not an integer", i, vals[i])
			}
			*d = v
		}
	}
	return nil
}

// close finalizes the statements.
func (c *writeConn) close() error {
	var errs []error
	for _, st := range c.stmts {
		errs = append(errs, st.Close())
	}
	c.stmts = nil
	return errors.Join(errs...)
}

// closeWriteConn finalizes the statements of the write connection, so
// that closing it closes the file.
func (s *Store) closeWriteConn() error {
	return s.onWriteConn(context.Background(), func(c *writeConn) error { return c.close() })
}

// writeTx runs f in a transaction (BEGIN IMMEDIATE) on the write
// connection and commits it, calling the fault hook at before (the
// transaction is open), at sync (everything is written, nothing
// committed) and at after (committed: its error counts as one of COMMIT).
// A failure of COMMIT itself is a *commitError.
func (s *Store) writeTx(ctx context.Context, before, sync, after Step, f func(*writeConn) error) error {
	return s.onWriteConn(ctx, func(c *writeConn) (err error) {
		if _, err := c.exec(`BEGIN IMMEDIATE`); err != nil {
			return err
		}
		committed := false
		defer func() {
			if !committed {
				// After an error, a failed COMMIT (which may leave the
				// transaction open; an error here only says it was not),
				// or a panic on its way up (a codec's): the write
				// connection must not stay inside the transaction.
				c.exec(`ROLLBACK`)
			}
		}()
		if err := s.fault(before); err != nil {
			return err
		}
		if err := f(c); err != nil {
			return err
		}
		if err := s.fault(sync); err != nil {
			return err
		}
		if _, err := c.exec(`COMMIT`); err != nil {
			return &commitError{err}
		}
		committed = true
		if err := s.fault(after); err != nil {
			return &commitError{err}
		}
		return nil
	})
}

// commitError is a failure of COMMIT itself: see settle.
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// maxBatchRows is the most rows one batch statement covers: 128 messages
// of 9 columns stay well under SQLite's 32,766 parameters.
const maxBatchRows = 128

// batch is one statement over a variable number of rows (a multi-row
// INSERT), in versions for every power of two up to maxBatchRows: n rows
// take as many executions as n has bits set (plus n/128), instead of one
// per row, without preparing a statement for every n.
type batch struct {
	cols int
	sql  []string // sql[k] covers 1<<k rows
}

// newBatch builds the statements that build returns for its argument, the
// placeholders of that many rows: "(?, ?), (?, ?)".
func newBatch(cols int, build func(rows string) string) *batch {
	b := &batch{cols: cols}
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	for k := 0; 1<<k <= maxBatchRows; k++ {
		b.sql = append(b.sql, build(row+strings.Repeat(", "+row, 1<<k-1)))
	}
	return b
}

// exec runs the statement on c over args, cols values per row.
func (b *batch) exec(c *writeConn, args []any) error {
	for rows := len(args) / b.cols; rows > 0; {
		k := bits.Len(uint(min(rows, maxBatchRows))) - 1
		n := 1 << k
		if _, err := c.exec(b.sql[k], args[:n*b.cols]...); err != nil {
			return err
		}
		args, rows = args[n*b.cols:], rows-n
	}
	return nil
}

// insertMessages is the batch that appends messages to the outbox.
var insertMessages = newBatch(9, func(rows string) string {
	return `INSERT INTO theus_outbox (id, version, idx, topic, key, key_seq, payload, headers, created_at) VALUES ` + rows
})

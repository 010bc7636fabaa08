package sqlite

import (
	"context"
	"database/sql"
	"math/bits"
	"strings"
)

// maxBatchRows is the most rows one batch statement covers: 128 messages
// of 9 columns stay well under SQLite's 32,766 parameters.
const maxBatchRows = 128

// batch is one statement over a variable number of rows (a multi-row
// INSERT, a DELETE ... IN (VALUES ...)), prepared once for every power of
// two up to maxBatchRows: n rows take as many executions as n has bits set
// (or n/128 more), instead of one per row, without preparing a statement
// for every n.
type batch struct {
	cols  int
	stmts []*sql.Stmt // stmts[k] covers 1<<k rows
}

// prepareBatch prepares the statement that build returns for its
// argument, the placeholders of that many rows: "(?, ?), (?, ?)".
func prepareBatch(ctx context.Context, db *sql.DB, cols int, build func(rows string) string) (*batch, error) {
	b := &batch{cols: cols}
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	for k := 0; 1<<k <= maxBatchRows; k++ {
		st, err := db.PrepareContext(ctx, build(row+strings.Repeat(", "+row, 1<<k-1)))
		if err != nil {
			b.close()
			return nil, err
		}
		b.stmts = append(b.stmts, st)
	}
	return b, nil
}

// exec runs the statement in tx over args, cols values per row.
func (b *batch) exec(ctx context.Context, tx *sql.Tx, args []any) error {
	for rows := len(args) / b.cols; rows > 0; {
		k := bits.Len(uint(min(rows, maxBatchRows))) - 1
		n := 1 << k
		if _, err := tx.StmtContext(ctx, b.stmts[k]).ExecContext(ctx, args[:n*b.cols]...); err != nil {
			return err
		}
		args, rows = args[n*b.cols:], rows-n
	}
	return nil
}

func (b *batch) close() {
	for _, st := range b.stmts {
		st.Close()
	}
}

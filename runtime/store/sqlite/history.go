package sqlite

import (
	"github.com/theus-go/theus/runtime/internal/wire"

	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/theus-go/theus/runtime/engine"
)

// The history of commits. Each row of theus_log (a commit group) also
// holds, in its commits column, what History tells of each commit of the
// group (uvarints and lengths as in the change sets):
//
//	format   byte: commitsFormat
//	commits  until the end, each:
//	           version  uvarint
//	           time     uvarint, Unix nanoseconds
//	           process  len, bytes ("" for CompareAndSwap)
//	           nwrites  uvarint, then each: path (len, bytes), key (len,
//	                    bytes), deleted (byte 0 or 1)
//	           nids     uvarint, then each message ID (len, bytes)
//
// and its at column the time of the group's last commit. Log rows stay
// after the checkpoint that folds them into its snapshot, for
// WithHistoryRetention, and checkpoints delete those older than that.

const commitsFormat = 1

// appendCommits appends the commits column of a group of recs to b.
func appendCommits(b []byte, recs []*engine.Record) []byte {
	b = append(b, commitsFormat)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, r := range recs {
		b = binary.AppendUvarint(b, r.Version)
		b = binary.AppendUvarint(b, uint64(r.Time.UnixNano()))
		str(r.Process)
		b = binary.AppendUvarint(b, uint64(len(r.Writes)))
		for _, w := range r.Writes {
			str(w.Path)
			str(w.Key)
			if w.Deleted {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
		b = binary.AppendUvarint(b, uint64(len(r.Messages)))
		for i := range r.Messages {
			str(r.Messages[i].ID)
		}
	}
	return b
}

// readCommits calls f with each commit of a commits column.
func readCommits(data []byte, f func(engine.Commit)) error {
	if len(data) == 0 || data[0] != commitsFormat {
		return fmt.Errorf("%w: unknown format of commits", errBadChangeSet)
	}
	r := wire.NewReader(data[1:], errBadChangeSet)
	for r.More() {
		var c engine.Commit
		c.Version = r.Uvarint()
		c.Time = time.Unix(0, int64(r.Uvarint()))
		c.Process = string(r.Bytes())
		for range r.Uvarint() {
			w := engine.Write{Path: string(r.Bytes()), Key: string(r.Bytes())}
			if del := r.Byte(); del == 1 {
				w.Deleted = true
			}
			c.Writes = append(c.Writes, w)
		}
		for range r.Uvarint() {
			c.MessageIDs = append(c.MessageIDs, string(r.Bytes()))
		}
		if r.Err() == nil {
			f(c)
		}
	}
	return r.Err()
}

var _ engine.HistoryReader = (*Store)(nil)

// History implements engine.HistoryReader: the commits from version from
// to version to that the store still holds (WithHistoryRetention), in
// order, with the values each wrote as its commit group left them (the
// value of a path or an entry that a later commit of the same group
// wrote again is that later commit's). Commits made before the store's
// layout kept history (layout 2 and older) have none.
func (s *Store) History(ctx context.Context, from, to uint64) ([]engine.Commit, error) {
	var out []engine.Commit
	to = min(to, math.MaxInt64)
	// A row holds the commits first..version; the last row to read is the
	// first whose version reaches to (or the last row), so that the read
	// is a range of the primary key, not every row after from.
	err := s.query(ctx, `SELECT data, commits FROM theus_log
		WHERE version >= ? AND version <= coalesce((SELECT min(version) FROM theus_log WHERE version >= ?), ?)
			AND first <= ? AND commits IS NOT NULL ORDER BY version`, func(rows *sql.Rows) error {
		var data, commits []byte
		if err := rows.Scan(&data, &commits); err != nil {
			return err
		}
		// The group's values, by field and entry.
		type at struct{ path, key string }
		values := map[at][]byte{}
		err := readChanges(data, func(c change) error {
			v := c.value
			if c.kind == deleteEntry {
				v = nil
			}
			values[at{c.path, c.key}] = v
			return nil
		})
		if err != nil {
			return err
		}
		return readCommits(commits, func(c engine.Commit) {
			if c.Version < from || c.Version > to {
				return
			}
			seen := map[at]bool{}
			for _, w := range c.Writes {
				path := topLevel(w.Path)
				k := at{path, w.Key}
				if seen[k] {
					continue
				}
				seen[k] = true
				if v, ok := values[k]; ok {
					c.Values = append(c.Values, engine.Value{Path: path, Key: w.Key, Data: v})
				}
			}
			out = append(out, c)
		})
	}, int64(from), int64(to), int64(to), int64(to))
	if err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	return out, nil
}

// topLevel returns the top-level field a state path is or lies below: its
// zone and field ("domain.user" of "domain.user.email").
func topLevel(path string) string {
	if i := strings.IndexByte(path, '.'); i >= 0 {
		if j := strings.IndexByte(path[i+1:], '.'); j >= 0 {
			return path[:i+1+j]
		}
	}
	return path
}

package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/theus-go/theus/runtime/engine"
)

// snapshotChunk is the size at which a snapshot is cut into another row
// of theus_snapshot: a background checkpoint writes one row per
// transaction, so that commits wait for the write connection for a
// millisecond or so at a time.
const snapshotChunk = 1 << 20

// snapshotWriter cuts a snapshot into change sets of about snapshotChunk
// bytes, each holding every path, and hands each to flush.
type snapshotWriter struct {
	paths []string
	flush func(data []byte) error
	cs    changeSet
	n     int // changes in cs
	size  int64
}

func (w *snapshotWriter) add(p int, kind changeKind, key string, value []byte) error {
	if w.n == 0 {
		w.cs.reset(len(w.paths))
		for _, path := range w.paths {
			w.cs.addPath(path)
		}
	}
	w.cs.add(p, kind, key, value)
	w.n++
	if len(w.cs.b) >= snapshotChunk {
		return w.close()
	}
	return nil
}

// close flushes what is left.
func (w *snapshotWriter) close() error {
	if w.n == 0 {
		return nil
	}
	w.n = 0
	w.size += int64(len(w.cs.b))
	return w.flush(w.cs.b)
}

// encodeState writes the whole state, a Record.State, to w: every plain
// field and every collection entry, in the codec's field order.
func encodeState(codec engine.StateCodec, state any, w *snapshotWriter) error {
	var buf []byte
	for i, f := range codec.Fields() {
		if !f.Collection {
			var err error
			if buf, err = codec.AppendField(buf[:0], state, i); err != nil {
				return err
			}
			if err := w.add(i, setField, "", buf); err != nil {
				return err
			}
			continue
		}
		err := codec.EncodeEntries(state, i, func(key string, data []byte) error {
			return w.add(i, putEntry, key, data)
		})
		if err != nil {
			return err
		}
	}
	return w.close()
}

// codecPaths returns the paths of the codec's fields, in its order.
func codecPaths(codec engine.StateCodec) []string {
	var paths []string
	for _, f := range codec.Fields() {
		paths = append(paths, f.Path)
	}
	return paths
}

// Checkpoint writes a checkpoint now: a snapshot of the state at the last
// committed version, after which the log before it is deleted and a
// restart reads the snapshot with nothing to replay. The snapshot is
// written in transactions of about a megabyte, interleaved with commits,
// and takes effect in a last, small one; ctx stops it, and a checkpoint
// stopped or failed leaves the previous one in effect. Checkpoint does
// nothing before the engine has recovered the store, when the last
// checkpoint is current, or between a compatible change of the contract
// and the first commit after it (which records the new types).
//
// The store checkpoints by itself (WithCheckpointEvery); call Checkpoint
// before copying the file, or to measure.
func (s *Store) Checkpoint(ctx context.Context) error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.cmu.Lock()
	version, state, codec := s.version, s.last, s.codec
	logBytes := s.logBytes.Load()
	broken := s.broken
	// Until the first commit after a contract change records the new
	// types, the file stays as the previous contract wrote it (see
	// Store.pending): a snapshot would write the new form.
	pending := s.pendingFields()
	s.cmu.Unlock()
	if pending {
		return nil
	}
	if broken != nil {
		return fmt.Errorf("sqlite: checkpoint: %w", refusal(broken))
	}
	prev := s.checkpoint.Load()
	if codec == nil || state == nil || version <= prev {
		return nil
	}
	if s.foldDue() {
		if err := s.fold(ctx); err != nil {
			return fmt.Errorf("sqlite: checkpoint: %w", err)
		}
	}
	w := snapshotWriter{paths: codecPaths(codec)}
	first := true
	w.flush = func(data []byte) error {
		step := noStep
		if first {
			step = CheckpointBeforeWrite
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return s.writeTx(ctx, step, noStep, noStep, func(c *writeConn) error {
			if first {
				// Rows of a checkpoint that was stopped before it took
				// effect.
				if _, err := c.exec(`DELETE FROM theus_snapshot WHERE version <> ?`, int64(prev)); err != nil {
					return err
				}
				first = false
			}
			_, err := c.exec(insertSnapshot, int64(version), data)
			return err
		})
	}
	err := encodeState(codec, state, &w)
	if err == nil {
		err = s.writeTx(ctx, noStep, CheckpointBeforeSync, noStep, func(c *writeConn) error {
			if _, err := c.exec(setCheckpoint, strconv.FormatUint(version, 10)); err != nil {
				return err
			}
			if _, err := c.exec(`DELETE FROM theus_snapshot WHERE version <> ?`, int64(version)); err != nil {
				return err
			}
			// The history: the log rows the snapshot folds in, once they
			// are older than WithHistoryRetention.
			if s.opts.history < 0 {
				return nil
			}
			cutoff := s.opts.now().Add(-s.opts.history).UnixNano()
			_, err := c.exec(`DELETE FROM theus_log WHERE version <= ? AND (at IS NULL OR at < ?)`, int64(version), cutoff)
			return err
		})
	}
	if err != nil {
		s.cmu.Lock()
		err = s.settle(ctx, err, func(_, checkpoint uint64) bool { return checkpoint == prev })
		s.cmu.Unlock()
		return fmt.Errorf("sqlite: checkpoint at version %d: %w", version, err)
	}
	s.checkpoint.Store(version)
	s.logBytes.Add(-logBytes)
	s.snapBytes.Store(w.size)
	return nil
}

// checkpointDue tells whether the log has grown enough for a checkpoint
// (see WithCheckpointEvery). s.cmu is held.
func (s *Store) checkpointDue() bool {
	every := s.opts.checkpointEvery
	return every > 0 && s.version-s.checkpoint.Load() >= uint64(every) && s.logBytes.Load() >= s.snapBytes.Load()
}

// checkpointer writes the checkpoints that commits ask for, in the
// background, so that no caller of Commit waits for one: encoding the
// snapshot runs beside the commits, and writing it takes the write
// connection a megabyte at a time.
type checkpointer struct {
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// trigger asks for a checkpoint; a request already pending absorbs it.
func (c *checkpointer) trigger() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// startCheckpointer starts the goroutine that Close stops.
func (s *Store) startCheckpointer() {
	ctx, cancel := context.WithCancel(context.Background())
	s.ckpt = &checkpointer{wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go s.runCheckpoints(ctx)
}

func (s *Store) runCheckpoints(ctx context.Context) {
	defer close(s.ckpt.done)
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.ckpt.wake:
		}
		// A request made while the last checkpoint ran may be stale.
		s.cmu.Lock()
		due := s.checkpointDue()
		s.cmu.Unlock()
		if !due {
			continue
		}
		err := s.Checkpoint(ctx)
		if err == nil || ctx.Err() != nil {
			backoff = time.Second
			continue
		}
		// Commits go on without checkpoints; only the log, and the time a
		// restart takes, grow. Retry later rather than at every commit.
		s.opts.logger.Error("sqlite: background checkpoint failed; retrying", slog.Any("err", err), slog.Duration("in", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// stop stops the checkpointer and waits for it: a checkpoint under way is
// interrupted, and the previous one stays in effect.
func (c *checkpointer) stop() {
	c.once.Do(func() {
		c.cancel()
		<-c.done
	})
}

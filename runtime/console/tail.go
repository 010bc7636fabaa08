package console

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"strconv"
	"time"

	"github.com/theus-go/theus/runtime/engine"
)

// TailEvent is the JSON of one event of /tail/events.
type TailEvent struct {
	Version    uint64    `json:"version"`
	Process    string    `json:"process"`
	Time       time.Time `json:"time"`
	Writes     []string  `json:"writes"`
	MessageIDs []string  `json:"message_ids"`
}

// NewTailEvent describes c.
func NewTailEvent(c engine.Commit) TailEvent {
	e := TailEvent{Version: c.Version, Process: c.Process, Time: c.Time, MessageIDs: c.MessageIDs}
	for _, w := range c.Writes {
		e.Writes = append(e.Writes, WriteString(w))
	}
	return e
}

// WriteString formats a write as the pages show it: path, path[key],
// path[key] deleted.
func WriteString(w engine.Write) string {
	s := w.Path
	if w.Key != "" {
		s += "[" + strconv.Quote(w.Key) + "]"
	}
	if w.Deleted {
		s += " (deleted)"
	}
	return s
}

// Follow yields the commits of st after version from as they are made:
// through watch when it is not nil, else by polling st's history every
// poll. It is what the live tail and `theus watch` read.
func Follow(ctx context.Context, st any, watch WatchFunc, poll time.Duration, from uint64) iter.Seq2[engine.Commit, error] {
	if watch != nil {
		return watch(ctx, from)
	}
	return func(yield func(engine.Commit, error) bool) {
		hr, ok1 := st.(engine.HistoryReader)
		head, ok2 := st.(HeadReader)
		if !ok1 || !ok2 {
			yield(engine.Commit{}, fmt.Errorf("%w: no history to follow", errUnsupported))
			return
		}
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			v, err := head.Head(ctx)
			if err != nil {
				if ctx.Err() == nil {
					yield(engine.Commit{}, err)
				}
				return
			}
			for from < v {
				cs, err := hr.History(ctx, from+1, min(v, from+1000))
				if err != nil {
					if ctx.Err() == nil {
						yield(engine.Commit{}, err)
					}
					return
				}
				if len(cs) == 0 {
					from = min(v, from+1000)
					continue
				}
				for _, c := range cs {
					c.Values = nil
					if !yield(c, nil) {
						return
					}
					from = c.Version
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
}

func (h *Handler) tail(w http.ResponseWriter, r *http.Request) {
	rows, _, err := History(r.Context(), h.store, HistoryFilter{}, 0, 20)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	var from uint64
	if len(rows) > 0 {
		from = rows[0].Version
	} else if hd, ok := h.store.(HeadReader); ok {
		if from, err = hd.Head(r.Context()); err != nil {
			h.fail(w, r, http.StatusInternalServerError, err)
			return
		}
	}
	h.render(w, r, http.StatusOK, "tail", "Live tail", struct {
		Rows []Row
		From uint64
	}{rows, from})
}

// tailEvents streams the commits after ?from= as Server-Sent Events: one
// "commit" event (a TailEvent) each, and an "error" event before it ends
// on an error.
func (h *Handler) tailEvents(w http.ResponseWriter, r *http.Request) {
	from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		from, err = strconv.ParseUint(id, 10, 64)
	}
	if err != nil {
		http.Error(w, "from: not a version", http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	rc.Flush()
	for c, err := range Follow(r.Context(), h.store, h.opts.watch, h.opts.poll, from) {
		if err != nil {
			msg, _ := json.Marshal(err.Error())
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", msg)
			rc.Flush()
			return
		}
		b, _ := json.Marshal(NewTailEvent(c))
		if _, err := fmt.Fprintf(w, "id: %d\nevent: commit\ndata: %s\n\n", c.Version, b); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

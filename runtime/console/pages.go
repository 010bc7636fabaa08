package console

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// page is what every template gets.
type page struct {
	Title    string
	Base     string
	Nav      string
	ReadOnly bool
	CSRF     string
	Token    bool // the action token is asked for
	Now      time.Time
	Data     any
	Flash    string
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	p := page{Title: title, Base: h.opts.base, Nav: name, ReadOnly: h.opts.readOnly, CSRF: h.csrf,
		Token: h.opts.token != "", Now: time.Now(), Data: data, Flash: r.URL.Query().Get("done")}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.opts.logger.Error("console: render", "page", name, "err", err)
		http.Error(w, "console: render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail renders an error page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		h.opts.logger.Error("console", "path", r.URL.Path, "err", err)
	}
	h.render(w, r, status, "error", http.StatusText(status), err.Error())
}

var errUnsupported = errors.New("this store does not support it")

// overview

type overviewData struct {
	Stats     *outbox.StoreStats
	Topics    []outbox.TopicStats
	Head      uint64
	HasHead   bool
	Unsupport []string
	Relays    []relayView // by holder; nil when the store's relays do not lease
	Free      int         // partitions no live lease covers
	Relay     *relayRate  // the in-process relay (WithRelayStats); nil without one
}

// relayRate is the in-process relay's counters and its delivery rate.
type relayRate struct {
	outbox.RelayStats
	// PerSecond is the delivery rate since the previous sample at least
	// rateWindow before; HasRate is false until there is one.
	PerSecond float64
	HasRate   bool
}

// rateWindow is the shortest time between the two samples of a rate.
const rateWindow = time.Second

// rateSample is a relay's delivered count at an instant.
type rateSample struct {
	at        time.Time
	delivered uint64
}

// relayRate samples the in-process relay and computes its rate against
// the last sample at least rateWindow old, which it then replaces.
func (h *Handler) relayRate(now time.Time) *relayRate {
	if h.opts.relay == nil {
		return nil
	}
	r := &relayRate{RelayStats: h.opts.relay()}
	h.rateMu.Lock()
	defer h.rateMu.Unlock()
	prev := h.rateAt
	if prev.at.IsZero() || now.Sub(prev.at) >= rateWindow {
		if !prev.at.IsZero() && r.Delivered >= prev.delivered {
			r.PerSecond, r.HasRate = float64(r.Delivered-prev.delivered)/now.Sub(prev.at).Seconds(), true
			h.rate, h.rateOK = r.PerSecond, true
		}
		h.rateAt = rateSample{at: now, delivered: r.Delivered}
	} else if h.rateOK {
		r.PerSecond, r.HasRate = h.rate, true
	}
	return r
}

// relayView is a relay of a fleet and the partitions it leases.
type relayView struct {
	Holder     string
	Partitions []int
	Expires    time.Time // the earliest expiry of its leases
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var d overviewData
	// The per-topic figures add up to the store's: one count of the
	// pending messages, not two, on a store that gives both.
	if s, ok := h.store.(outbox.Inspector); ok {
		ts, err := s.TopicStats(ctx)
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		d.Topics = ts
		var st outbox.StoreStats
		for _, t := range ts {
			st.Pending += t.Pending
			st.Parked += t.Parked
			st.ParkedKeys += t.ParkedKeys
			if !t.OldestPending.IsZero() && (st.OldestPending.IsZero() || t.OldestPending.Before(st.OldestPending)) {
				st.OldestPending = t.OldestPending
			}
		}
		d.Stats = &st
	} else {
		d.Unsupport = append(d.Unsupport, "figures per topic (outbox.Inspector)")
		if s, ok := h.store.(outbox.StatsReader); ok {
			st, err := s.Stats(ctx)
			if err != nil {
				h.fail(w, r, http.StatusInternalServerError, err)
				return
			}
			d.Stats = &st
		} else {
			d.Unsupport = append(d.Unsupport, "outbox figures (outbox.StatsReader)")
		}
	}
	if s, ok := h.store.(HeadReader); ok {
		v, err := s.Head(ctx)
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		d.Head, d.HasHead = v, true
	}
	if s, ok := h.store.(outbox.LeaseReader); ok {
		ls, err := s.Leases(ctx)
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		d.Relays, d.Free = relays(ls, time.Now())
	}
	d.Relay = h.relayRate(h.now())
	h.render(w, r, http.StatusOK, "overview", "Overview", d)
}

// relays groups leases by holder; the free ones (no holder, or expired)
// it counts.
func relays(ls []outbox.RelayLease, now time.Time) (out []relayView, free int) {
	at := map[string]int{}
	for _, l := range ls {
		if l.Holder == "" || !l.Expires.After(now) {
			free++
			continue
		}
		i, ok := at[l.Holder]
		if !ok {
			i = len(out)
			at[l.Holder] = i
			out = append(out, relayView{Holder: l.Holder, Expires: l.Expires})
		}
		out[i].Partitions = append(out[i].Partitions, l.Partition)
		if l.Expires.Before(out[i].Expires) {
			out[i].Expires = l.Expires
		}
	}
	return out, free
}

// parked keys

// ParkedKey is a (topic, key) held back by parked messages: the first
// of them, and how many there are.
type ParkedKey struct {
	Topic, Key string
	First      outbox.ParkedMessage
	Count      int
}

// ParkedKeys returns the parked keys of st (an outbox.Parking), in the
// commit order of their first parked message.
func ParkedKeys(ctx context.Context, st any) ([]ParkedKey, error) {
	p, ok := st.(outbox.Parking)
	if !ok {
		return nil, errUnsupported
	}
	ms, err := p.Parked(ctx)
	if err != nil {
		return nil, err
	}
	var out []ParkedKey
	at := map[outbox.TopicKey]int{}
	for _, m := range ms {
		tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
		if i, ok := at[tk]; ok {
			out[i].Count++
			continue
		}
		at[tk] = len(out)
		out = append(out, ParkedKey{Topic: m.Topic, Key: m.Key, First: m, Count: 1})
	}
	return out, nil
}

func (h *Handler) parked(w http.ResponseWriter, r *http.Request) {
	ks, err := ParkedKeys(r.Context(), h.store)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	h.render(w, r, http.StatusOK, "parked", "Parked keys", ks)
}

func statusOf(err error) int {
	if errors.Is(err, errUnsupported) {
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func (h *Handler) findKey(ctx context.Context, topic, key string) (*ParkedKey, error) {
	ks, err := ParkedKeys(ctx, h.store)
	if err != nil {
		return nil, err
	}
	for i := range ks {
		if ks[i].Topic == topic && ks[i].Key == key {
			return &ks[i], nil
		}
	}
	return nil, nil
}

func (h *Handler) confirmReplay(w http.ResponseWriter, r *http.Request) {
	if h.opts.readOnly {
		h.fail(w, r, http.StatusForbidden, fmt.Errorf("%w: the console is read-only", ErrForbidden))
		return
	}
	q := r.URL.Query()
	k, err := h.findKey(r.Context(), q.Get("topic"), q.Get("key"))
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	if k == nil {
		h.fail(w, r, http.StatusNotFound, fmt.Errorf("no parked message for topic %q key %q", q.Get("topic"), q.Get("key")))
		return
	}
	h.render(w, r, http.StatusOK, "replay", "Replay "+k.Topic+" "+k.Key, k)
}

func (h *Handler) replay(w http.ResponseWriter, r *http.Request) {
	if err := h.allowAction(r); err != nil {
		h.fail(w, r, http.StatusForbidden, fmt.Errorf("%w: %v", ErrForbidden, err))
		return
	}
	p, ok := h.store.(outbox.Parking)
	if !ok {
		h.fail(w, r, http.StatusNotImplemented, errUnsupported)
		return
	}
	topic, key := r.PostFormValue("topic"), r.PostFormValue("key")
	n, err := p.Replay(r.Context(), topic, key)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	h.opts.logger.Info("console: replayed", "topic", topic, "key", key, "messages", n)
	done := fmt.Sprintf("Replayed %d message(s) of %s %q.", n, topic, key)
	http.Redirect(w, r, h.opts.base+"/parked?done="+url.QueryEscape(done), http.StatusSeeOther)
}

func (h *Handler) confirmSkip(w http.ResponseWriter, r *http.Request) {
	if h.opts.readOnly {
		h.fail(w, r, http.StatusForbidden, fmt.Errorf("%w: the console is read-only", ErrForbidden))
		return
	}
	id := r.URL.Query().Get("id")
	ks, err := ParkedKeys(r.Context(), h.store)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	for _, k := range ks {
		if k.First.ID == id {
			h.render(w, r, http.StatusOK, "skip", "Skip "+id, k)
			return
		}
	}
	h.fail(w, r, http.StatusNotFound, fmt.Errorf("message %q is not the first parked message of a key", id))
}

func (h *Handler) skip(w http.ResponseWriter, r *http.Request) {
	if err := h.allowAction(r); err != nil {
		h.fail(w, r, http.StatusForbidden, fmt.Errorf("%w: %v", ErrForbidden, err))
		return
	}
	p, ok := h.store.(outbox.Parking)
	if !ok {
		h.fail(w, r, http.StatusNotImplemented, errUnsupported)
		return
	}
	id := r.PostFormValue("id")
	if err := p.Skip(r.Context(), id); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, outbox.ErrNotParked) {
			status = http.StatusConflict
		}
		h.fail(w, r, status, err)
		return
	}
	h.opts.logger.Info("console: skipped", "id", id)
	http.Redirect(w, r, h.opts.base+"/parked?done="+url.QueryEscape("Skipped message "+id+"."), http.StatusSeeOther)
}

// history

// HistoryFilter selects commits.
type HistoryFilter struct {
	Process, Topic, Key string
	// From and To bound the versions (0: no bound).
	From, To uint64
}

// Row is a commit of the history with its messages, as the console and
// cmd/theus show it.
type Row struct {
	engine.Commit
	// Messages are the commit's messages the store still holds, with their
	// delivery state (empty when the store is no outbox.Inspector).
	Messages []outbox.MessageStatus
}

// scanWindow and scanLimit bound the versions one history page reads, so
// that a filter few commits match answers quickly (about 20 ms a window
// on SQLite with 1,000,000 commits) and links to the next versions to search.
const (
	scanWindow = 500
	scanLimit  = 2_000
)

// History returns up to limit commits of st matching f, newest first,
// starting at version before-1 (before 0: the head), and the version to
// continue at (0 when there is nothing older). It reads at most scanLimit
// versions.
func History(ctx context.Context, st any, f HistoryFilter, before uint64, limit int) (rows []Row, next uint64, err error) {
	hr, ok := st.(engine.HistoryReader)
	if !ok {
		return nil, 0, errUnsupported
	}
	hi := uint64(math.MaxUint64)
	if f.To > 0 {
		hi = f.To
	}
	if before > 0 {
		hi = min(hi, before-1)
	}
	if head, ok := st.(HeadReader); ok {
		v, err := head.Head(ctx)
		if err != nil {
			return nil, 0, err
		}
		hi = min(hi, v)
	} else if hi == math.MaxUint64 {
		return nil, 0, fmt.Errorf("%w: no head version (give a version range)", errUnsupported)
	}
	lo := max(f.From, 1)
	insp, _ := st.(outbox.Inspector)
	scanned := uint64(0)
	for hi >= lo && len(rows) < limit {
		if scanned >= scanLimit {
			return rows, hi + 1, nil
		}
		wlo := max(lo, hi-min(hi, scanWindow-1))
		cs, err := hr.History(ctx, wlo, hi)
		if err != nil {
			return nil, 0, err
		}
		scanned += hi - wlo + 1
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.MessageIDs...)
		}
		byID := map[string]outbox.MessageStatus{}
		if insp != nil && len(ids) > 0 {
			ms, err := insp.Messages(ctx, ids)
			if err != nil {
				return nil, 0, err
			}
			for _, m := range ms {
				byID[m.ID] = m
			}
		}
		for i := len(cs) - 1; i >= 0; i-- {
			c := cs[i]
			if f.Process != "" && c.Process != f.Process {
				continue
			}
			row := Row{Commit: c}
			match := f.Topic == "" && f.Key == ""
			for _, id := range c.MessageIDs {
				m, ok := byID[id]
				if !ok {
					continue
				}
				row.Messages = append(row.Messages, m)
				if (f.Topic == "" || m.Topic == f.Topic) && (f.Key == "" || m.Key == f.Key) {
					match = true
				}
			}
			if !match {
				continue
			}
			rows = append(rows, row)
			if len(rows) == limit {
				if c.Version > lo {
					next = c.Version
				}
				return rows, next, nil
			}
		}
		if wlo == lo {
			break
		}
		hi = wlo - 1
	}
	return rows, 0, nil
}

type historyData struct {
	Filter   HistoryFilter
	Rows     []Row
	Next     template.URL // query of the older page, "" when none
	Searched uint64       // the oldest version this page searched, when Next is set
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := HistoryFilter{Process: q.Get("process"), Topic: q.Get("topic"), Key: q.Get("key")}
	var err error
	var before uint64
	for _, p := range []struct {
		name string
		dst  *uint64
	}{{"from", &f.From}, {"to", &f.To}, {"before", &before}} {
		if s := q.Get(p.name); s != "" {
			if *p.dst, err = strconv.ParseUint(s, 10, 64); err != nil {
				h.fail(w, r, http.StatusBadRequest, fmt.Errorf("%s: not a version: %q", p.name, s))
				return
			}
		}
	}
	rows, next, err := History(r.Context(), h.store, f, before, h.opts.pageSize)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	d := historyData{Filter: f, Rows: rows}
	if next > 0 {
		nq := url.Values{}
		for _, k := range []string{"process", "topic", "key", "from", "to"} {
			if v := q.Get(k); v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("before", strconv.FormatUint(next, 10))
		d.Next = template.URL(nq.Encode()) // url.Values.Encode escapes every value
		d.Searched = next
	}
	h.render(w, r, http.StatusOK, "history", "History", d)
}

// one commit

type commitData struct {
	Commit   engine.Commit
	Values   []valueView
	Messages []outbox.MessageStatus
	Missing  []string // message IDs the store no longer holds
}

type valueView struct {
	Path, Key string
	Deleted   bool
	Text      string
}

// Pretty returns data indented when it is JSON, else as text.
func Pretty(data []byte) string {
	var b bytes.Buffer
	if json.Valid(data) && json.Indent(&b, data, "", "  ") == nil {
		return b.String()
	}
	return string(data)
}

func (h *Handler) commit(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
	if err != nil || v == 0 {
		h.fail(w, r, http.StatusBadRequest, fmt.Errorf("not a version: %q", r.PathValue("version")))
		return
	}
	hr, ok := h.store.(engine.HistoryReader)
	if !ok {
		h.fail(w, r, http.StatusNotImplemented, errUnsupported)
		return
	}
	cs, err := hr.History(r.Context(), v, v)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if len(cs) == 0 || cs[0].Version != v {
		h.fail(w, r, http.StatusNotFound, fmt.Errorf("the store holds no commit %d (never made, or older than its history retention)", v))
		return
	}
	d := commitData{Commit: cs[0]}
	for _, val := range cs[0].Values {
		d.Values = append(d.Values, valueView{Path: val.Path, Key: val.Key, Deleted: val.Data == nil, Text: Pretty(val.Data)})
	}
	if insp, ok := h.store.(outbox.Inspector); ok && len(cs[0].MessageIDs) > 0 {
		ms, err := insp.Messages(r.Context(), cs[0].MessageIDs)
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		have := map[string]bool{}
		for _, m := range ms {
			have[m.ID] = true
		}
		for _, id := range cs[0].MessageIDs {
			if !have[id] {
				d.Missing = append(d.Missing, id)
			}
		}
		slices.SortFunc(ms, func(a, b outbox.MessageStatus) int { return cmp.Compare(a.ID, b.ID) })
		d.Messages = ms
	}
	h.render(w, r, http.StatusOK, "commit", fmt.Sprintf("Commit %d", v), d)
}

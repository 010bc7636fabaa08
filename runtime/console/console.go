package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"html/template"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// HeadReader is implemented by stores that tell their last durable
// version (the SQLite and PostgreSQL stores): the history page starts
// there.
type HeadReader interface {
	Head(ctx context.Context) (uint64, error)
}

// WatchFunc yields the commits after version from as they are made, as
// engine.Engine.Watch does.
type WatchFunc func(ctx context.Context, from uint64) iter.Seq2[engine.Commit, error]

// Option configures a Handler.
type Option func(*options)

type options struct {
	readOnly bool
	base     string
	token    string
	watch    WatchFunc
	poll     time.Duration
	logger   *slog.Logger
	pageSize int
	relay    func() outbox.RelayStats
}

// WithRelayStats shows the counters of a relay that runs in the same
// process (pass its Stats method) on the overview, with its delivery rate:
// the messages it delivered per second between two views of the overview
// at least a second apart. Without it the console, which reads the store,
// cannot tell a rate (runtime/metrics exports theus_deliveries_total for
// dashboards).
func WithRelayStats(stats func() outbox.RelayStats) Option {
	return func(o *options) { o.relay = stats }
}

// ReadOnly makes the console refuse actions (Replay, Skip) with 403
// Forbidden and hide their buttons.
func ReadOnly() Option { return func(o *options) { o.readOnly = true } }

// WithBasePath sets the path the handler is mounted at (after
// http.StripPrefix), which its links start with, e.g. "/console".
func WithBasePath(p string) Option {
	return func(o *options) { o.base = strings.TrimSuffix(p, "/") }
}

// WithActionToken requires actions to carry this token (the confirmation
// page asks for it, or an "Authorization: Bearer" header), on top of the
// CSRF checks: for a console reachable by others than its operators.
func WithActionToken(token string) Option { return func(o *options) { o.token = token } }

// WithWatch makes the live tail follow the engine's commits
// (engine.Engine.Watch) instead of polling the store's history.
func WithWatch(w WatchFunc) Option { return func(o *options) { o.watch = w } }

// WithPollInterval sets how often the live tail polls the store when it
// has no WatchFunc (default one second).
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithLogger logs the store errors the pages report.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithPageSize sets how many commits a history page shows (default 50).
func WithPageSize(n int) Option { return func(o *options) { o.pageSize = max(n, 1) } }

// Handler is the console: an http.Handler.
type Handler struct {
	store outbox.Store
	opts  options
	csrf  string
	mux   *http.ServeMux
	pages map[string]*template.Template

	rateMu sync.Mutex
	rateAt rateSample // the in-process relay's last sample (WithRelayStats)
	rate   float64    // the last rate computed, shown until the next one
	rateOK bool
	now    func() time.Time // time.Now; tests set it
}

// ErrForbidden is the error of an action refused: read-only mode, a bad
// CSRF token or action token, or a request from another origin.
var ErrForbidden = errors.New("console: action refused")

// New returns a console on st.
func New(st outbox.Store, opts ...Option) (*Handler, error) {
	if st == nil {
		return nil, errors.New("console: nil store")
	}
	h := &Handler{store: st, now: time.Now, opts: options{poll: time.Second, logger: slog.New(slog.DiscardHandler), pageSize: 50}}
	for _, o := range opts {
		o(&h.opts)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	h.csrf = hex.EncodeToString(b[:])
	h.pages = map[string]*template.Template{}
	for name, t := range pages {
		c, err := t.Clone()
		if err != nil {
			return nil, err
		}
		h.pages[name] = c.Funcs(template.FuncMap{"base": func() string { return h.opts.base }})
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.overview)
	m.HandleFunc("GET /parked", h.parked)
	m.HandleFunc("GET /replay", h.confirmReplay)
	m.HandleFunc("POST /replay", h.replay)
	m.HandleFunc("GET /skip", h.confirmSkip)
	m.HandleFunc("POST /skip", h.skip)
	m.HandleFunc("GET /history", h.history)
	m.HandleFunc("GET /commits/{version}", h.commit)
	m.HandleFunc("GET /tail", h.tail)
	m.HandleFunc("GET /tail/events", h.tailEvents)
	h.mux = m
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.mux.ServeHTTP(w, r)
}

// allowAction checks an action's request: not read-only, same origin,
// the CSRF token, and the action token when there is one.
func (h *Handler) allowAction(r *http.Request) error {
	if h.opts.readOnly {
		return errors.New("the console is read-only")
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return errors.New("cross-site request")
	}
	if o := r.Header.Get("Origin"); o != "" {
		if !sameHost(o, r.Host) {
			return errors.New("request from another origin")
		}
	} else if ref := r.Header.Get("Referer"); ref != "" && !sameHost(ref, r.Host) {
		return errors.New("request from another origin")
	}
	if !equal(r.PostFormValue("csrf"), h.csrf) {
		return errors.New("missing or wrong CSRF token: reload the page")
	}
	if h.opts.token != "" {
		tok := r.PostFormValue("token")
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			tok = b
		}
		if !equal(tok, h.opts.token) {
			return errors.New("missing or wrong action token")
		}
	}
	return nil
}

func sameHost(u, host string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Host != "" && strings.EqualFold(p.Host, host)
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

package console_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/console"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// store is what the tests need of a store.
type store interface {
	engine.Store
	outbox.Store
	outbox.Parking
	outbox.Inspector
}

// fixture is a bank on a store with a parked key, and a console on it.
type fixture struct {
	st     store
	eng    *bank.Engine
	srv    *httptest.Server
	parked outbox.Message // the first message of the parked key
	evil   string         // an owner name with markup
}

const evil = `<script>alert("x")</script>`

// stores runs f on SQLite, and on PostgreSQL when it is reachable.
func stores(t *testing.T, f func(t *testing.T, open func(t *testing.T) store)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, func(t *testing.T) store {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bank.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, func(t *testing.T) store { return openPostgres(t) })
	})
}

func openPostgres(t *testing.T) store {
	t.Helper()
	st, _ := openPostgresSchema(t)
	return st
}

// openPostgresSchema opens a store in a schema of the test's own, and
// returns the schema's name.
func openPostgresSchema(t *testing.T) (store, string) {
	t.Helper()
	db := servicetest.Postgres(t) // skips loudly when unreachable
	var b [6]byte
	rand.Read(b[:])
	schema := "theus_console_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	dsn := servicetest.Addr("THEUS_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	st, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, schema
}

func newFixture(t *testing.T, st store, opts ...console.Option) *fixture {
	t.Helper()
	ctx := context.Background()
	eng, err := bank.NewEngine(ctx, bank.State{}, bank.Bank{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	for i, owner := range []string{"ann", evil} {
		if _, err := eng.OpenAccount(ctx, bank.OpenAccountArgs{ID: fmt.Sprintf("acc-%d", i), Owner: owner, Initial: 100}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-0", To: "acc-1", Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := st.Undelivered(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var first outbox.Message
	var acked []string
	for _, m := range msgs {
		if m.Topic == "transfer.completed" && first.ID == "" {
			first = m
		} else if m.Topic == "account.opened" {
			acked = append(acked, m.ID)
		}
	}
	if err := st.Ack(ctx, acked); err != nil {
		t.Fatal(err)
	}
	if parked, err := st.Failed(ctx, first.ID, "receiver said 400: "+evil, true, 0); !parked || err != nil {
		t.Fatalf("Failed = %v, %v", parked, err)
	}
	h, err := console.New(st, append([]console.Option{console.WithWatch(eng.Watch)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{st: st, eng: eng, srv: srv, parked: first}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := noRedirect.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends form with the Origin of the console unless origin is set.
func (f *fixture) post(t *testing.T, path string, form url.Values, origin string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin == "" {
		origin = f.srv.URL
	}
	req.Header.Set("Origin", origin)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads the CSRF token from a confirmation page.
func csrf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", body)
	}
	return m[1]
}

func parkedCount(t *testing.T, st store) int {
	t.Helper()
	ps, err := st.Parked(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(ps)
}

func TestPages(t *testing.T) {
	stores(t, func(t *testing.T, open func(t *testing.T) store) {
		f := newFixture(t, open(t))
		replayQ := "/replay?" + url.Values{"topic": {f.parked.Topic}, "key": {f.parked.Key}}.Encode()
		for _, c := range []struct {
			path   string
			status int
			want   []string
		}{
			{"/", 200, []string{"transfer.completed", "Parked keys", "Head version"}},
			{"/parked", 200, []string{f.parked.ID, "receiver said 400", "Replay", "Skip"}},
			{"/history", 200, []string{"open_account", "transfer", "/commits/5"}},
			{fmt.Sprintf("/commits/%d", f.parked.Version), 200, []string{f.parked.ID, "parked", "domain.accounts", "acc-0"}},
			{"/commits/1", 200, []string{"account.opened", "delivered", "ann"}},
			{"/tail", 200, []string{"EventSource", "transfer"}},
			{replayQ, 200, []string{"csrf", f.parked.Key}},
			{"/skip?id=" + f.parked.ID, 200, []string{"csrf", "without sending it"}},
			{"/commits/999", 404, []string{"no commit 999"}},
			{"/commits/x", 400, nil},
			{"/history?from=x", 400, nil},
			{"/replay?topic=nope&key=nope", 404, nil},
			{"/skip?id=nope", 404, nil},
			{"/nope", 404, nil},
		} {
			status, body := f.get(t, c.path)
			if status != c.status {
				t.Errorf("GET %s = %d, want %d\n%s", c.path, status, c.status, body)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: no %q in\n%s", c.path, w, body)
				}
			}
		}
	})
}

// Stored values, payloads and errors are text, never markup.
func TestEscapesStoredValues(t *testing.T) {
	stores(t, func(t *testing.T, open func(t *testing.T) store) {
		f := newFixture(t, open(t))
		for _, p := range []string{"/parked", "/commits/2", "/commits/3", "/history", "/tail", "/skip?id=" + f.parked.ID} {
			_, body := f.get(t, p)
			if strings.Contains(body, `<script>alert`) {
				t.Errorf("GET %s renders stored markup as markup:\n%s", p, body)
			}
			if p != "/parked" && !strings.HasPrefix(p, "/skip") {
				continue // JSON values hold it as \u003c, not as markup
			}
			if !strings.Contains(body, `&lt;script&gt;alert`) {
				t.Errorf("GET %s does not show the stored markup as text", p)
			}
		}
	})
}

func TestReplayThroughConfirmation(t *testing.T) {
	stores(t, func(t *testing.T, open func(t *testing.T) store) {
		f := newFixture(t, open(t))
		_, page := f.get(t, "/replay?"+url.Values{"topic": {f.parked.Topic}, "key": {f.parked.Key}}.Encode())
		form := url.Values{"csrf": {csrf(t, page)}, "topic": {f.parked.Topic}, "key": {f.parked.Key}}
		status, hdr, body := f.post(t, "/replay", form, "")
		if status != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/parked?done=") {
			t.Fatalf("POST /replay = %d %q\n%s", status, hdr.Get("Location"), body)
		}
		if n := parkedCount(t, f.st); n != 0 {
			t.Fatalf("%d parked after replay", n)
		}
		msgs, err := f.st.Undelivered(context.Background(), 100)
		if err != nil || len(msgs) != 3 || msgs[0].ID != f.parked.ID {
			t.Fatalf("after replay: %d undelivered (%v), want 3 from %s", len(msgs), err, f.parked.ID)
		}
		_, body = f.get(t, hdr.Get("Location"))
		if !strings.Contains(body, "Replayed 1 message(s)") || !strings.Contains(body, "No parked keys") {
			t.Errorf("parked page after replay:\n%s", body)
		}
	})
}

func TestSkipThroughConfirmation(t *testing.T) {
	stores(t, func(t *testing.T, open func(t *testing.T) store) {
		f := newFixture(t, open(t))
		_, page := f.get(t, "/skip?id="+f.parked.ID)
		status, _, body := f.post(t, "/skip", url.Values{"csrf": {csrf(t, page)}, "id": {f.parked.ID}}, "")
		if status != http.StatusSeeOther {
			t.Fatalf("POST /skip = %d\n%s", status, body)
		}
		ms, err := f.st.Messages(context.Background(), []string{f.parked.ID})
		if err != nil || len(ms) != 1 || ms[0].State != outbox.StateDelivered {
			t.Fatalf("skipped message: %+v, %v; want delivered", ms, err)
		}
		msgs, _ := f.st.Undelivered(context.Background(), 100)
		if len(msgs) != 2 {
			t.Fatalf("%d undelivered after skip, want the key's 2 later ones", len(msgs))
		}
		// Skipping it again: not parked any more.
		status, _, _ = f.post(t, "/skip", url.Values{"csrf": {csrf(t, page)}, "id": {f.parked.ID}}, "")
		if status != http.StatusConflict {
			t.Errorf("second skip = %d, want 409", status)
		}
	})
}

// Actions without the CSRF token, with a wrong one, or from another
// origin are refused and change nothing.
func TestCSRFRefused(t *testing.T) {
	stores(t, func(t *testing.T, open func(t *testing.T) store) {
		f := newFixture(t, open(t))
		_, page := f.get(t, "/skip?id="+f.parked.ID)
		good := csrf(t, page)
		for _, c := range []struct {
			name, path string
			form       url.Values
			origin     string
		}{
			{"no token", "/skip", url.Values{"id": {f.parked.ID}}, ""},
			{"wrong token", "/skip", url.Values{"id": {f.parked.ID}, "csrf": {strings.Repeat("0", len(good))}}, ""},
			{"other origin", "/skip", url.Values{"id": {f.parked.ID}, "csrf": {good}}, "https://evil.example"},
			{"replay no token", "/replay", url.Values{"topic": {f.parked.Topic}, "key": {f.parked.Key}}, ""},
			{"replay other origin", "/replay", url.Values{"topic": {f.parked.Topic}, "key": {f.parked.Key}, "csrf": {good}}, "http://evil.example"},
		} {
			status, _, body := f.post(t, c.path, c.form, c.origin)
			if status != http.StatusForbidden {
				t.Errorf("%s: POST %s = %d, want 403\n%s", c.name, c.path, status, body)
			}
		}
		if n := parkedCount(t, f.st); n != 1 {
			t.Fatalf("%d parked after refused actions, want 1", n)
		}
		// A console's token is its own.
		h2, _ := console.New(f.st)
		srv2 := httptest.NewServer(h2)
		defer srv2.Close()
		req, _ := http.NewRequest("POST", srv2.URL+"/skip", strings.NewReader(url.Values{"id": {f.parked.ID}, "csrf": {good}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("another console's token: %d, want 403", resp.StatusCode)
		}
	})
}

func TestReadOnlyRefusesActions(t *testing.T) {
	stores(t, func(t *testing.T, open func(t *testing.T) store) {
		f := newFixture(t, open(t), console.ReadOnly())
		if _, body := f.get(t, "/parked"); strings.Contains(body, "/replay?") || !strings.Contains(body, f.parked.ID) {
			t.Errorf("read-only parked page offers actions or misses the key:\n%s", body)
		}
		for _, p := range []string{"/skip?id=" + f.parked.ID, "/replay?topic=" + f.parked.Topic + "&key=" + f.parked.Key} {
			if status, _ := f.get(t, p); status != http.StatusForbidden {
				t.Errorf("GET %s = %d, want 403", p, status)
			}
		}
		// Even with a valid token from a writable console on the same store.
		h, _ := console.New(f.st)
		srv := httptest.NewServer(h)
		defer srv.Close()
		resp, _ := http.Get(srv.URL + "/skip?id=" + f.parked.ID)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tok := csrf(t, string(b))
		for _, form := range []url.Values{{"id": {f.parked.ID}, "csrf": {tok}}, {"id": {f.parked.ID}}} {
			if status, _, _ := f.post(t, "/skip", form, ""); status != http.StatusForbidden {
				t.Errorf("read-only POST /skip = %d, want 403", status)
			}
		}
		if status, _, _ := f.post(t, "/replay", url.Values{"topic": {f.parked.Topic}, "key": {f.parked.Key}}, ""); status != http.StatusForbidden {
			t.Errorf("read-only POST /replay = %d, want 403", status)
		}
		if n := parkedCount(t, f.st); n != 1 {
			t.Fatalf("%d parked, want 1", n)
		}
	})
}

func TestActionToken(t *testing.T) {
	stores(t, func(t *testing.T, open func(t *testing.T) store) {
		f := newFixture(t, open(t), console.WithActionToken("op-secret"))
		_, page := f.get(t, "/skip?id="+f.parked.ID)
		if !strings.Contains(page, `name="token"`) {
			t.Fatal("the confirmation page asks for no action token")
		}
		form := url.Values{"csrf": {csrf(t, page)}, "id": {f.parked.ID}}
		if status, _, _ := f.post(t, "/skip", form, ""); status != http.StatusForbidden {
			t.Errorf("without the action token: %d, want 403", status)
		}
		form.Set("token", "wrong")
		if status, _, _ := f.post(t, "/skip", form, ""); status != http.StatusForbidden {
			t.Errorf("with a wrong action token: %d, want 403", status)
		}
		form.Set("token", "op-secret")
		if status, _, body := f.post(t, "/skip", form, ""); status != http.StatusSeeOther {
			t.Errorf("with the action token: %d, want 303\n%s", status, body)
		}
	})
}

var versionRE = regexp.MustCompile(`href="/commits/(\d+)">`)

func versions(body string) []string {
	var out []string
	for _, m := range versionRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestHistoryFilters(t *testing.T) {
	stores(t, func(t *testing.T, open func(t *testing.T) store) {
		f := newFixture(t, open(t))
		// Commits: 1, 2 open_account; 3, 4, 5 transfer.
		for _, c := range []struct {
			query string
			want  string
		}{
			{"", "5 4 3 2 1"},
			{"process=open_account", "2 1"},
			{"process=transfer", "5 4 3"},
			{"topic=account.opened", "2 1"},
			{"topic=transfer.completed&key=acc-0", "5 4 3"},
			{"topic=transfer.completed&key=acc-1", ""},
			{"key=acc-1", "2"},
			{"from=2&to=4", "4 3 2"},
			{"process=transfer&from=4", "5 4"},
			{"to=1", "1"},
		} {
			_, body := f.get(t, "/history?"+c.query)
			if got := strings.Join(versions(body), " "); got != c.want {
				t.Errorf("/history?%s lists %q, want %q", c.query, got, c.want)
			}
		}
	})
}

// Pages of the history follow each other with keyset links.
func TestHistoryPages(t *testing.T) {
	f := newFixture(t, openSQLite(t), console.WithPageSize(2))
	var got []string
	next := "/history"
	for next != "" && len(got) < 10 {
		_, body := f.get(t, next)
		got = append(got, versions(body)...)
		next = ""
		if m := regexp.MustCompile(`id="older" href="([^"]+)"`).FindStringSubmatch(body); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if s := strings.Join(got, " "); s != "5 4 3 2 1" {
		t.Fatalf("pages list %q", s)
	}
}

func openSQLite(t *testing.T) store {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bank.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The live tail streams the commits made after the page was loaded, from
// the engine's Watch, or by polling the store without it.
func TestTailEvents(t *testing.T) {
	for _, watch := range []bool{true, false} {
		t.Run(fmt.Sprint("watch=", watch), func(t *testing.T) {
			st := openSQLite(t)
			var opts []console.Option
			if !watch {
				opts = append(opts, console.WithWatch(nil), console.WithPollInterval(10*time.Millisecond))
			}
			f := newFixture(t, st, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/tail/events?from=4", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("Content-Type %q", ct)
			}
			go func() {
				f.eng.Transfer(ctx, bank.TransferArgs{From: "acc-1", To: "acc-0", Amount: 2})
			}()
			sc := bufio.NewScanner(resp.Body)
			var seen []uint64
			for sc.Scan() && len(seen) < 2 {
				if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					var e console.TailEvent
					if err := json.Unmarshal([]byte(d), &e); err != nil {
						t.Fatalf("event %q: %v", d, err)
					}
					seen = append(seen, e.Version)
					if e.Version == 6 && (e.Process != "transfer" || len(e.MessageIDs) != 1) {
						t.Errorf("event of commit 6: %+v", e)
					}
				}
			}
			if fmt.Sprint(seen) != "[5 6]" {
				t.Fatalf("tail gave versions %v, want [5 6] (err %v)", seen, sc.Err())
			}
		})
	}
}

func itoa(v uint64) string { return fmt.Sprint(v) }

func depositArgs() bank.DepositArgs { return bank.DepositArgs{ID: "acc-0", Amount: 5} }

// A filter that few commits match reads a bounded number of versions per
// page, and links to the next ones to search.
func TestHistoryScanContinues(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for range 375 {
				if _, err := f.eng.Deposit(ctx, bank.DepositArgs{ID: fmt.Sprintf("acc-%d", w%2), Amount: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// 3005 commits: open_account made 1 and 2 only.
	_, body := f.get(t, "/history?process=open_account")
	if got := versions(body); len(got) != 0 || !strings.Contains(body, "searched down to version 1006") {
		t.Fatalf("first page lists %v; want none and a link to search on from 1006\n%s", got, body)
	}
	m := regexp.MustCompile(`id="older" href="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no link to older commits")
	}
	_, body = f.get(t, strings.ReplaceAll(m[1], "&amp;", "&"))
	if got := strings.Join(versions(body), " "); got != "2 1" || strings.Contains(body, `id="older"`) {
		t.Fatalf("second page lists %q (or links further)\n%s", got, body)
	}
}

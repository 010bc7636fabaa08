package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/store/sqlite"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// seeded returns the path of a seeded SQLite store and its parked ID.
func seeded(t *testing.T) (path, parked string) {
	path = filepath.Join(t.TempDir(), "bank.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := &fakeTS{t: t, env: map[string]string{}}
	seedStore(ts, st)
	return path, ts.env["PARKED_ID"]
}

// serveURL starts `theus serve args` and returns the console's URL; the
// server stops when the test ends.
func serveURL(t *testing.T, args ...string) string {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errw lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), &out, &errw) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, errw.String())
		}
	})
	re := regexp.MustCompile(`theus console on (http://\S+)`)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return strings.TrimSuffix(m[1], "/")
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no URL: %q %q", out.String(), errw.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, u string) (int, string) {
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// skipVia confirms and posts a Skip on the console at base, with token
// when not empty, and returns the status of the POST.
func skipVia(t *testing.T, base, id, token string) int {
	_, page := get(t, base+"/skip?id="+id)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no confirmation form:\n%s", page)
	}
	form := url.Values{"csrf": {m[1]}, "id": {id}}
	if token != "" {
		form.Set("token", token)
	}
	req, _ := http.NewRequest("POST", base+"/skip", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// serve on the loopback: the console, actions without a token.
func TestServeLoopback(t *testing.T) {
	path, id := seeded(t)
	base := serveURL(t, "-addr", "127.0.0.1:0", "sqlite:"+path)
	if status, body := get(t, base+"/parked"); status != 200 || !strings.Contains(body, id) {
		t.Fatalf("GET /parked = %d\n%s", status, body)
	}
	if status := skipVia(t, base, id, ""); status != http.StatusSeeOther {
		t.Fatalf("skip = %d, want 303", status)
	}
}

// serve elsewhere: actions need the token.
func TestServeElsewhereNeedsToken(t *testing.T) {
	path, id := seeded(t)
	t.Setenv("THEUS_CONSOLE_TOKEN", "op-secret")
	base := serveURL(t, "-addr", "0.0.0.0:0", "sqlite:"+path)
	if status := skipVia(t, base, id, ""); status != http.StatusForbidden {
		t.Fatalf("skip without the token = %d, want 403", status)
	}
	if status := skipVia(t, base, id, "op-secret"); status != http.StatusSeeOther {
		t.Fatalf("skip with the token = %d, want 303", status)
	}
}

// fakeTS seeds outside a script.
type fakeTS struct {
	t   *testing.T
	env map[string]string
}

func (f *fakeTS) Check(err error) {
	if err != nil {
		f.t.Fatal(err)
	}
}
func (f *fakeTS) Setenv(k, v string) { f.env[k] = v }

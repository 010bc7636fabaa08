package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
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

// -console serves the console during the run and after it, until
// interrupted, with the run's commits in its history.
func TestQuickstartConsole(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	type result struct {
		s   summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := run(ctx, config{workers: 2, updates: 20, logins: 10, timeout: time.Minute, direct: true,
			data: t.TempDir(), console: "127.0.0.1:0"}, &out)
		done <- result{s, err}
	}()
	re := regexp.MustCompile(`console: +(http://\S+) \(serving until interrupted\)`)
	var url string
	for deadline := time.Now().Add(time.Minute); url == ""; {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case r := <-done:
			t.Fatalf("run returned before serving: %+v, %v\n%s", r.s, r.err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no console URL in\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for path, want := range map[string]string{"": "Pending messages", "history": "update_user_email", "parked": "No parked keys"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s%s = %d, want 200 with %q\n%s", url, path, resp.StatusCode, want, b)
		}
	}
	cancel()
	r := <-done
	if r.err != nil || r.s.Lost != 0 {
		t.Fatalf("run: %+v, %v", r.s, r.err)
	}
}

package console_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/console"
	"github.com/theus-go/theus/runtime/outbox"
)

// The overview shows the in-process relay's counters and its delivery
// rate between two views at least a second apart; a view sooner than that
// shows the last rate again.
func TestOverviewShowsTheRelaysRate(t *testing.T) {
	var stats outbox.RelayStats
	h, err := console.New(rawStore{}, console.WithRelayStats(func() outbox.RelayStats { return stats }))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	console.SetClock(h, func() time.Time { return now })
	rate := regexp.MustCompile(`<td id="rate">([^<]*)</td>`)
	view := func() string {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET / = %d\n%s", rec.Code, rec.Body)
		}
		m := rate.FindStringSubmatch(rec.Body.String())
		if m == nil {
			t.Fatalf("no rate on the overview:\n%s", rec.Body)
		}
		return m[1]
	}
	stats.Delivered = 100
	if got := view(); got != "shown from the next view, a second or more from now" {
		t.Fatalf("first view: rate %q, want none yet", got)
	}
	now, stats.Delivered = now.Add(2*time.Second), 600
	if got := view(); got != "250.0 messages/s" {
		t.Fatalf("two seconds and 500 messages later: rate %q, want 250.0 messages/s", got)
	}
	now, stats.Delivered = now.Add(100*time.Millisecond), 700
	if got := view(); got != "250.0 messages/s" {
		t.Fatalf("a tenth of a second later: rate %q, want the last rate again", got)
	}
	now, stats.Delivered = now.Add(time.Second), 700
	if got := view(); got != "90.9 messages/s" {
		t.Fatalf("1.1 s after the last sample, 100 more: rate %q, want 90.9 messages/s (100 in 1.1 s)", got)
	}
}

// Without WithRelayStats the overview has no relay table.
func TestOverviewWithoutARelayShowsNoRate(t *testing.T) {
	h, err := console.New(rawStore{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if regexp.MustCompile(`id="rate"`).MatchString(rec.Body.String()) {
		t.Fatalf("a rate without a relay:\n%s", rec.Body)
	}
}

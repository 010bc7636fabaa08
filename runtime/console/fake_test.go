package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/console"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// rawStore holds one commit whose value and message hold markup as is, as
// a store with a codec that does not escape it may keep them.
type rawStore struct{}

const raw = `{"owner":"<script>alert(1)</script>"}`

func (rawStore) Undelivered(context.Context, int) ([]outbox.Message, error) { return nil, nil }
func (rawStore) Ack(context.Context, []string) error                        { return nil }
func (rawStore) Notify() <-chan struct{}                                    { return nil }
func (rawStore) Head(context.Context) (uint64, error)                       { return 1, nil }
func (rawStore) History(_ context.Context, from, to uint64) ([]engine.Commit, error) {
	if from > 1 || to < 1 {
		return nil, nil
	}
	return []engine.Commit{{Version: 1, Process: "p<i>", Time: time.Unix(1, 0),
		Writes:     []engine.Write{{Path: "domain.users", Key: "<b>k</b>"}},
		MessageIDs: []string{"m1"},
		Values:     []engine.Value{{Path: "domain.users", Key: "<b>k</b>", Data: []byte(raw)}}}}, nil
}
func (rawStore) TopicStats(context.Context) ([]outbox.TopicStats, error) {
	return []outbox.TopicStats{{Topic: "t<script>", Pending: 1}}, nil
}
func (rawStore) Messages(context.Context, []string) ([]outbox.MessageStatus, error) {
	return []outbox.MessageStatus{{Message: outbox.Message{ID: "m1", Topic: "t<script>", Key: "<b>k</b>", Payload: []byte(raw)},
		State: outbox.StatePending, LastError: "<script>x</script>"}}, nil
}

func TestEscapesRawValues(t *testing.T) {
	h, err := console.New(rawStore{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/history", "/commits/1", "/tail"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d\n%s", p, rec.Code, body)
			continue
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<script>x") || strings.Contains(body, "<b>k") || strings.Contains(body, "t<script>") {
			t.Errorf("GET %s renders stored markup as markup:\n%s", p, body)
		}
		if !strings.Contains(body, "&lt;") {
			t.Errorf("GET %s shows no escaped markup:\n%s", p, body)
		}
	}
	// Pages whose interface the store lacks say so.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/parked", nil))
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("GET /parked on a store without Parking = %d, want 501", rec.Code)
	}
}

package webhook

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/theus-go/theus/runtime/internal/relaybench"
	"github.com/theus-go/theus/runtime/outbox"
)

// BenchmarkRelayDrain: a relay draining the outbox into a local HTTP
// receiver that reads the body and answers 204.
func BenchmarkRelayDrain(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, batch := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var s *Sink
			relaybench.Drain(b, batch, func() outbox.Sink {
				var err error
				if s, err = New(srv.URL, []byte("bench-secret")); err != nil {
					b.Fatal(err)
				}
				return s
			}, func() { s.Close() })
		})
	}
}

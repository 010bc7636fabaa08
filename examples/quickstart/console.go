package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/theus-go/theus/runtime/console"
	"github.com/theus-go/theus/runtime/outbox"
)

// startConsole serves the operator's console (runtime/console) on the
// engine's store at http://addr/console/ until stop is called. Bound to
// an address other than the loopback, it is read-only unless
// THEUS_CONSOLE_TOKEN gives a token that Replay and Skip must carry. The
// overview shows relayStats, the counters of the demo's relay.
func startConsole(addr string, eng *Engine, relayStats func() outbox.RelayStats) (url string, stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("-console %q: %w", addr, err)
	}
	opts := []console.Option{console.WithBasePath("/console"), console.WithWatch(eng.Watch), console.WithRelayStats(relayStats)}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		if tok := os.Getenv("THEUS_CONSOLE_TOKEN"); tok != "" {
			opts = append(opts, console.WithActionToken(tok))
		} else {
			opts = append(opts, console.ReadOnly())
		}
	}
	h, err := console.New(eng.Store(), opts...)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", h))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "quickstart: console:", err)
		}
	}()
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx) // ends the live tails' streams too: their requests' contexts
		srv.Close()
		<-done
	}
	a := ln.Addr().(*net.TCPAddr)
	host = a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("http://%s/console/", net.JoinHostPort(host, fmt.Sprint(a.Port))), stop, nil
}

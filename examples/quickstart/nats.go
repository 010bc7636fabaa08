package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/natsjs"
)

// The stream the relay publishes to and the durable consumer that reads it.
const (
	streamName   = "THEUS_QUICKSTART"
	subjectTmpl  = "theus.quickstart.{topic}"
	streamFilter = "theus.quickstart.>"
	durableName  = "quickstart"
	fetchBatch   = 256
)

// natsLink is the demo's path through NATS JetStream: the relay publishes
// with natsjs, and a durable pull consumer fetches the messages, decodes
// them with natsjs.Decode and hands them to the consumer's Send (its log,
// dedup and counters), acking a batch only after its log write is synced.
// With no URL it starts an embedded nats-server with JetStream storing in
// storeDir, or in a temp dir removed at the end when storeDir is "". The
// demo keeps the store dir in its data directory: a message the stream
// acked (so the relay marked it delivered) but the consumer had not yet
// read when the process was killed must still be in the stream on the
// next run, or it would be lost (a temp dir lost 71 such messages to a
// kill -9). What the earlier run committed and left undelivered reaches
// the stream through the relay; what comes twice is dropped by the
// consumer's log.
type natsLink struct {
	sink   *natsjs.Sink
	where  string
	srv    *server.Server // nil: external server
	dir    string         // the embedded server's store dir
	nc     *nats.Conn
	stream jetstream.Stream

	processed atomic.Uint64 // stream sequence of the last message handed to the consumer
	stop      chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	err       error // the fetch loop's fatal error
}

// startNATS connects to url, or to an embedded server when url is "",
// creates the stream and the durable consumer, and starts feeding cons.
func startNATS(ctx context.Context, url, storeDir string, cons *consumer) (*natsLink, error) {
	l := &natsLink{stop: make(chan struct{}), done: make(chan struct{})}
	if url == "" {
		dir := storeDir
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "theus-quickstart-nats-"); err != nil {
				return nil, err
			}
			l.dir = dir // removed at the end
		}
		srv, err := server.NewServer(&server.Options{
			Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir,
			NoLog: true, NoSigs: true,
		})
		if err != nil {
			l.shutdown()
			return nil, fmt.Errorf("nats-server: %w", err)
		}
		srv.Start()
		l.srv = srv
		if !srv.ReadyForConnections(10 * time.Second) {
			l.shutdown()
			return nil, errors.New("embedded nats-server not ready within 10s")
		}
		url = srv.ClientURL()
		l.where = fmt.Sprintf("embedded nats-server %s, JetStream in %s", url, dir)
	} else {
		l.where = "nats-server " + url
	}
	nc, err := nats.Connect(url, nats.Name("theus-quickstart"), nats.MaxReconnects(-1))
	if err != nil {
		l.shutdown()
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	l.nc = nc
	js, err := jetstream.New(nc)
	if err == nil {
		l.sink, err = natsjs.New(js, natsjs.WithSubjectTemplate(subjectTmpl))
	}
	if err == nil {
		l.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: streamName, Subjects: []string{streamFilter}, Storage: jetstream.FileStorage,
		})
	}
	var c jetstream.Consumer
	if err == nil {
		c, err = l.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: durableName, AckPolicy: jetstream.AckAllPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy, MaxAckPending: 4 * fetchBatch,
		})
	}
	if err != nil {
		l.shutdown()
		return nil, err
	}
	if info, err := c.Info(ctx); err == nil {
		l.processed.Store(info.AckFloor.Stream) // an external server's durable resumes
	}
	go l.fetchLoop(ctx, c, cons)
	return l, nil
}

// fetchLoop fetches batches until stopped, feeding cons.
func (l *natsLink) fetchLoop(ctx context.Context, c jetstream.Consumer, cons *consumer) {
	defer close(l.done)
	fail := func(err error) {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
	}
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		b, err := c.Fetch(fetchBatch, jetstream.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			time.Sleep(50 * time.Millisecond) // broker away: try again
			continue
		}
		var (
			last  jetstream.Msg
			batch []outbox.Message
		)
		for m := range b.Messages() {
			om, err := natsjs.Decode(m.Subject(), m.Headers(), m.Data())
			if err != nil {
				fail(err)
				return
			}
			batch = append(batch, om)
			last = m
		}
		if last == nil {
			continue
		}
		if _, err := cons.Send(ctx, batch); err != nil {
			fail(fmt.Errorf("consumer: %w", err)) // not acked: comes again next run
			return
		}
		if err := last.Ack(); err != nil {
			continue // redelivered later, dropped by the dedup
		}
		if md, err := last.Metadata(); err == nil {
			l.processed.Store(md.Sequence.Stream)
		}
	}
}

// waitConsumed waits until the consumer has been handed every message in
// the stream, until deadline.
func (l *natsLink) waitConsumed(ctx context.Context, deadline time.Time) error {
	for {
		l.mu.Lock()
		err := l.err
		l.mu.Unlock()
		if err != nil {
			return err
		}
		info, err := l.stream.Info(ctx)
		if err == nil && l.processed.Load() >= info.State.LastSeq {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil // the summary reports what is missing
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// close stops the fetch loop, the connection and the embedded server, and
// removes its store dir.
func (l *natsLink) close() {
	close(l.stop)
	<-l.done
	l.shutdown()
}

func (l *natsLink) shutdown() {
	if l.nc != nil {
		l.nc.Close()
	}
	if l.srv != nil {
		l.srv.Shutdown()
		l.srv.WaitForShutdown()
	}
	if l.dir != "" {
		os.RemoveAll(l.dir)
	}
}

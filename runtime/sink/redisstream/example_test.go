package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/redisstream"
)

// consumeGroup is a consumer of a stream the sink appends to: it reads as
// member consumer of group (created at the start of the stream if it does
// not exist), drops duplicates with d, hands fresh messages to handle and
// acknowledges each entry after it was handled. It returns when ctx ends
// or when handle returns an error (the entry stays pending, to be read
// again by XAUTOCLAIM or after a restart).
//
// A consumer whose effects must survive a restart keeps what d knows with
// them, in one transaction: package outbox/dedupsql.
func consumeGroup(ctx context.Context, rdb *redis.Client, stream, group, consumer string,
	d *outbox.Dedup, handle func(outbox.Message) error) error {
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return err
	}
	for {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: 100, Block: time.Second,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue // nothing new within Block
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range res[0].Messages {
			m, err := redisstream.Decode(e)
			if err != nil {
				return err // not an entry of the sink: look at it by hand
			}
			fresh, gap := d.Observe(m)
			if gap != 0 {
				log.Printf("%s %q: %d messages missing before KeySeq %d", m.Topic, m.Key, gap, m.KeySeq)
			}
			if fresh {
				if err := handle(m); err != nil {
					return err
				}
			}
			if err := rdb.XAck(ctx, stream, group, e.ID).Err(); err != nil {
				return err
			}
		}
	}
}

// A consumer group reads what the relay appended; outbox.Dedup drops the
// duplicates a relay restart appends again.
func Example_consumerGroup() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := outbox.NewDedup()
	err := consumeGroup(ctx, rdb, "account.opened", "billing", "billing-1", d, func(m outbox.Message) error {
		fmt.Printf("%s %s #%d: %s\n", m.Topic, m.Key, m.KeySeq, m.Payload)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}

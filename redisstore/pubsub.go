package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/keyward/apikeys"
)

var _ apikeys.Invalidator = (*Store)(nil)

// channel is where key changes are published: "<namespace>changes". Redis
// pub/sub is cluster-wide (a PUBLISH on any node reaches subscribers on
// every node), so this works on Cluster as on a single node.
func (s *Store) channel() string { return s.ns + "changes" }

// Publish implements apikeys.Invalidator: it announces that the key with
// the id changed, to every Manager subscribed on this namespace.
func (s *Store) Publish(ctx context.Context, id uuid.UUID) error {
	if err := s.rdb.Publish(ctx, s.channel(), id.String()).Err(); err != nil {
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	return nil
}

// How Subscribe waits: a receive that sees nothing for pingEvery sends a
// PING, so a connection that died silently is noticed; after an error it
// retries with a backoff up to maxBackoff.
const (
	pingEvery  = 15 * time.Second
	maxBackoff = 5 * time.Second
)

// Subscribe implements apikeys.Invalidator. It calls onReset when the
// subscription is confirmed, whenever it fails and whenever go-redis
// re-establishes it, since changes published in between were missed. It
// returns nil when ctx is done.
func (s *Store) Subscribe(ctx context.Context, onChange func(uuid.UUID), onReset func()) error {
	ps := s.rdb.Subscribe(ctx, s.channel())
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // unblocks Receive
	defer func() {
		stop()
		_ = ps.Close()
	}()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if err = ps.Ping(ctx); err == nil {
					continue // idle but alive
				}
			}
			onReset() // the connection failed: changes may be missed
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue // the next Receive reconnects and resubscribes
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				onReset() // (re)subscribed: forget what may have been missed
			}
		case *redis.Message:
			if id, err := uuid.Parse(m.Payload); err == nil {
				onChange(id)
			}
		}
	}
	return nil
}

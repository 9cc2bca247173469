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

// How Subscribe retries: after a failed subscription it waits a backoff
// that doubles from minBackoff up to maxBackoff, and starts again from
// minBackoff once a subscription has stayed up for maxBackoff.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// errSilent ends a subscription that answered nothing, not even a PING,
// for two ping intervals.
var errSilent = errors.New("no message and no reply to PING")

// Subscribe implements apikeys.Invalidator. It holds one subscription at a
// time, each on a PubSub (a connection) of its own, and checks that it is
// alive (see Config.PingInterval). It calls onReset each time a
// subscription is confirmed, since changes published before were missed;
// when a subscription is lost, at once; and after each failed attempt to
// subscribe again, so that while it is down the cache holds nothing older
// than the backoff (at most 5s). Losses are logged to Config.Logger. It
// returns nil when ctx is done, and never earlier.
//
// Establishing a subscription is bounded by the client's DialTimeout and
// ReadTimeout (or, with ContextTimeoutEnabled, by two ping intervals); a
// client with ReadTimeout -1 can hang on a Redis that accepts connections
// and never answers.
func (s *Store) Subscribe(ctx context.Context, onChange func(uuid.UUID), onReset func()) error {
	var (
		backoff  = minBackoff
		downAt   time.Time // when the subscription was lost; zero while it is up
		attempts int       // failed attempts since downAt
	)
	for ctx.Err() == nil {
		var upAt time.Time
		err := s.listen(ctx, onChange, func() {
			upAt = time.Now()
			onReset() // (re)subscribed: forget what may have been missed
			if !downAt.IsZero() {
				s.log.Info("redisstore: invalidation subscription restored",
					"channel", s.channel(), "down_for", time.Since(downAt).Round(time.Millisecond), "attempts", attempts)
				downAt, attempts = time.Time{}, 0
			}
		})
		if ctx.Err() != nil {
			break
		}
		onReset() // changes published until the next subscription are missed
		attempts++
		if !upAt.IsZero() || attempts == 1 {
			if !upAt.IsZero() && time.Since(upAt) >= maxBackoff {
				backoff = minBackoff
			}
			downAt = time.Now()
			s.log.Warn("redisstore: invalidation subscription lost; the cache is flushed and it subscribes again",
				"channel", s.channel(), "err", err)
		} else {
			s.log.Debug("redisstore: invalidation subscription: attempt failed",
				"channel", s.channel(), "attempt", attempts, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return nil
}

// listen subscribes on a new PubSub and delivers its messages until it
// fails, is silent for two ping intervals, or ctx is done; it closes the
// PubSub before it returns. It calls onConfirmed when Redis confirms the
// subscription. It returns why the subscription ended (nil when ctx is
// done).
func (s *Store) listen(ctx context.Context, onChange func(uuid.UUID), onConfirmed func()) error {
	// No channel yet, so that subscribing below reports its error.
	ps := s.rdb.Subscribe(ctx)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // unblocks Receive
	defer func() {
		stop()
		_ = ps.Close()
	}()
	bounded := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, 2*s.pingInterval)
	}
	sctx, cancel := bounded()
	err := ps.Subscribe(sctx, s.channel())
	cancel()
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	silent := 0 // receives in a row that timed out
	for {
		// Reading is bounded by the timeout; the context bounds the
		// reconnection go-redis may attempt in between.
		rctx, cancel := bounded()
		msg, err := ps.ReceiveTimeout(rctx, s.pingInterval)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !isTimeout(err) {
				return fmt.Errorf("receive: %w", err)
			}
			if silent++; silent >= 2 {
				return fmt.Errorf("%w for %v", errSilent, 2*s.pingInterval)
			}
			pctx, cancel := bounded()
			err := ps.Ping(pctx) // only sends: the PONG comes through Receive
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("ping: %w", err)
			}
			continue
		}
		silent = 0 // anything at all shows the connection alive
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.channel() {
				onConfirmed()
			}
		case *redis.Message:
			if id, err := uuid.Parse(m.Payload); err == nil {
				onChange(id)
			}
		}
	}
}

// isTimeout reports whether err is a read that timed out or a deadline
// that passed, as opposed to a failed connection.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
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

// Why listen ends a subscription that has not failed outright.
var (
	// errSilent: nothing arrived, not even the PONG to a PING, for two
	// ping intervals: the connection is dead, whatever TCP says.
	errSilent = errors.New("no message and no reply to PING")
	// errDeaf: the connection answers, but a heartbeat published through
	// the client did not arrive within two ping intervals: the
	// subscription is on a server the client no longer publishes to (a
	// master demoted by a failover, before Sentinel reconfigures it).
	errDeaf = errors.New("a heartbeat published through the client did not arrive")
	// errNoHeartbeat: Redis refused the subscription to the heartbeat
	// channel (an ACL that allows only the changes channel).
	errNoHeartbeat = errors.New("the heartbeat channel is refused")
)

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
		backoff   = minBackoff
		downAt    time.Time // when the subscription was lost; zero while it is up
		attempts  int       // failed attempts since downAt
		heartbeat = true    // off once Redis refuses its channel
	)
	for ctx.Err() == nil {
		var upAt time.Time
		err := s.listen(ctx, heartbeat, onChange, func() {
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
		if errors.Is(err, errNoHeartbeat) {
			// The subscription worked; the next one resets when confirmed.
			heartbeat = false
			s.log.Warn("redisstore: invalidation subscription: heartbeats are off, PING alone checks it; "+
				"allow the heartbeat channels in the ACL to notice a subscription left on a demoted master",
				"channel", s.channel(), "heartbeat_channels", s.channel()+":heartbeat:*", "err", err)
			continue
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
// fails, is silent or deaf (errSilent, errDeaf), or ctx is done; it closes
// the PubSub before it returns. It calls onConfirmed when Redis confirms
// the subscription. It returns why the subscription ended (nil when ctx is
// done).
//
// Every ping interval it sends a PING on the subscription's connection and
// publishes a heartbeat, through the client, to a channel of its own that
// it subscribes to as well: the PING shows that the connection carries
// something, the heartbeat that what the client publishes reaches it.
func (s *Store) listen(ctx context.Context, heartbeat bool, onChange func(uuid.UUID), onConfirmed func()) error {
	ch, hb := s.channel(), s.channel()+":heartbeat:"+uuid.NewString()
	// No channel yet, so that subscribing below reports its error.
	ps := s.rdb.Subscribe(ctx)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // unblocks Receive
	defer func() {
		stop()
		_ = ps.Close()
	}()
	interval := s.pingInterval
	bounded := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, 2*interval)
	}
	sctx, cancel := bounded()
	err := ps.Subscribe(sctx, ch)
	cancel()
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}

	var (
		now   = time.Now()
		heard = now               // when anything last arrived
		next  = now.Add(interval) // when to probe next
		// The heartbeat: its channel is subscribed to once the changes
		// channel is confirmed (in a command of its own, so that an ACL
		// refusing it refuses nothing else), and a heartbeat is published
		// only once that is confirmed (so that it cannot be missed), one
		// at a time, with a sequence number as its payload. sent is when
		// heartbeat seq was published, zero when none is awaited; a
		// failed publish is not awaited (the PING still checks the
		// connection).
		hbAsked    bool
		hbReady    bool
		seq        uint64
		sent       time.Time
		publishing bool
		failed     = make(chan uint64, 1) // seq of a finished publish; 0 when it succeeded
	)
	for {
		now = time.Now()
		select {
		case n := <-failed:
			publishing = false
			if n == seq {
				sent = time.Time{}
			}
		default:
		}
		if now.Sub(heard) >= 2*interval {
			return fmt.Errorf("%w for %v", errSilent, 2*interval)
		}
		if !sent.IsZero() && now.Sub(sent) >= 2*interval {
			return fmt.Errorf("%w within %v", errDeaf, 2*interval)
		}
		if !now.Before(next) {
			next = now.Add(interval)
			pctx, cancel := bounded()
			err := ps.Ping(pctx) // only sends: the PONG comes through Receive
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("ping: %w", err)
			}
			if hbReady && !publishing && sent.IsZero() {
				// In the background, so that a hung publishing connection
				// cannot hold the checks up.
				seq++
				sent, publishing = now, true
				go func(n uint64) {
					pctx, cancel := context.WithTimeout(ctx, interval)
					defer cancel()
					if err := s.rdb.Publish(pctx, hb, strconv.FormatUint(n, 10)).Err(); err == nil {
						n = 0
					}
					failed <- n
				}(seq)
			}
		}
		wait := earliest(next, heard.Add(2*interval))
		if !sent.IsZero() {
			wait = earliest(wait, sent.Add(2*interval))
		}
		// Reading is bounded by the timeout; the context bounds the
		// reconnection go-redis may attempt in between.
		rctx, cancel := context.WithDeadline(ctx, wait.Add(interval))
		msg, err := ps.ReceiveTimeout(rctx, max(time.Until(wait), time.Millisecond))
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		var refused redis.Error
		switch {
		case err == nil:
		case isTimeout(err):
			continue
		case hbAsked && !hbReady && errors.As(err, &refused):
			return fmt.Errorf("%w: %w", errNoHeartbeat, err)
		default:
			return fmt.Errorf("receive: %w", err)
		}
		heard = time.Now() // anything at all shows the connection alive
		switch m := msg.(type) {
		case *redis.Subscription:
			switch {
			case m.Kind == "subscribe" && m.Channel == ch:
				onConfirmed()
				if heartbeat && !hbAsked {
					hbAsked = true
					sctx, cancel := bounded()
					err := ps.Subscribe(sctx, hb)
					cancel()
					if err != nil {
						return fmt.Errorf("subscribe: %w", err)
					}
				}
			case m.Kind == "subscribe" && m.Channel == hb:
				hbReady = true
			}
		case *redis.Message:
			if m.Channel == hb {
				if m.Payload == strconv.FormatUint(seq, 10) {
					sent = time.Time{}
				}
			} else if id, err := uuid.Parse(m.Payload); err == nil {
				onChange(id)
			}
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// isTimeout reports whether err is a read that timed out or a deadline
// that passed, as opposed to a failed connection.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

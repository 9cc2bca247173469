package apikeys

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
)

// CacheConfig turns on the Manager's verification cache, which keeps what
// Authorize reads from the store (never a key value: the digest and the
// key's properties) so that repeated requests need no store round trip.
//
// Revocation bounds: a change made through a Manager drops the key from
// that Manager's cache at once. Other Managers sharing the store drop it
// when their Invalidator delivers the change (redisstore: Redis pub/sub,
// typically within a millisecond), and in any case within TTL. Stores
// without notifications (memstore, sqlstore) rely on the TTL alone.
type CacheConfig struct {
	// Size bounds the number of cached keys. Default 100,000. When full, a
	// random entry is evicted (entries also expire by TTL), which keeps
	// reads lock-free of writes.
	Size int
	// TTL bounds how long a key stays cached, and so how long another
	// instance without notifications may accept a key after it was
	// deleted or changed. Default 30s.
	TTL time.Duration
	// NegativeTTL is how long "no such key" is cached, so that a flood of
	// well-formed but unknown keys does not reach the store. Default 5s;
	// at most TTL.
	NegativeTTL time.Duration
}

// Invalidator carries "this key changed" between Managers that share a
// store, so that their caches drop changed and revoked keys at once.
// redisstore.Store implements it with Redis pub/sub.
type Invalidator interface {
	// Publish tells every subscriber, this process included, that the key
	// with the id changed or was deleted.
	Publish(ctx context.Context, id uuid.UUID) error

	// Subscribe delivers published ids to onChange until ctx is done, and
	// then returns. It calls onReset whenever notifications may have been
	// missed: when the subscription is first established, when it drops,
	// and when it is established again. The Manager flushes its cache on
	// each onReset. It retries by itself after errors.
	Subscribe(ctx context.Context, onChange func(uuid.UUID), onReset func()) error
}

const cacheShards = 64

// cache is the verification cache: shards of id -> immutable record, each
// with a generation that every invalidation bumps, so that a store read
// that began before an invalidation can never put its stale result back.
type cache struct {
	shards           [cacheShards]cacheShard
	perShard         int
	ttl, negativeTTL time.Duration
}

type cacheShard struct {
	mu      sync.RWMutex
	gen     uint64
	entries map[uuid.UUID]cacheEntry
	_       [32]byte // keep shards' locks off each other's cache lines
}

type cacheEntry struct {
	rec   *Record // nil: no such key; never modified once cached
	until time.Time
}

func newCache(c CacheConfig) (*cache, error) {
	if c.Size == 0 {
		c.Size = 100_000
	}
	if c.TTL == 0 {
		c.TTL = 30 * time.Second
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = min(5*time.Second, c.TTL)
	}
	if c.Size < 0 || c.TTL < 0 || c.NegativeTTL < 0 || c.NegativeTTL > c.TTL {
		return nil, errors.New("apikeys: New: Cache needs Size, TTL and NegativeTTL >= 0, and NegativeTTL <= TTL")
	}
	ch := &cache{perShard: max(1, c.Size/cacheShards), ttl: c.TTL, negativeTTL: c.NegativeTTL}
	for i := range ch.shards {
		ch.shards[i].entries = make(map[uuid.UUID]cacheEntry)
	}
	return ch, nil
}

// shard picks by the id's last byte, which is random in a UUIDv7.
func (c *cache) shard(id uuid.UUID) *cacheShard { return &c.shards[id[15]%cacheShards] }

// get returns the cached entry for id, if fresh at now.
func (c *cache) get(id uuid.UUID, now time.Time) (cacheEntry, bool) {
	s := c.shard(id)
	s.mu.RLock()
	e, ok := s.entries[id]
	s.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return cacheEntry{}, false
	}
	return e, true
}

// generation is read before a store read whose result may be cached.
func (c *cache) generation(id uuid.UUID) uint64 {
	s := c.shard(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}

// put caches rec (nil: no such key) unless the shard was invalidated since
// gen was read.
func (c *cache) put(id uuid.UUID, rec *Record, gen uint64, now time.Time) {
	ttl := c.ttl
	if rec == nil {
		ttl = c.negativeTTL
	}
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if _, ok := s.entries[id]; !ok && len(s.entries) >= c.perShard {
		for victim := range s.entries { // map order is random
			delete(s.entries, victim)
			break
		}
	}
	s.entries[id] = cacheEntry{rec: rec, until: now.Add(ttl)}
}

func (c *cache) invalidate(id uuid.UUID) {
	s := c.shard(id)
	s.mu.Lock()
	s.gen++
	delete(s.entries, id)
	s.mu.Unlock()
}

func (c *cache) flush() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.gen++
		clear(s.entries)
		s.mu.Unlock()
	}
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}

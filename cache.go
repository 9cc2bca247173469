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
// In every field, zero means the documented default; a negative value is
// an error from New, except NegativeSize, where it turns negative caching
// off.
//
// Revocation bounds: a change made through a Manager drops the key from
// that Manager's cache at once. Other Managers sharing the store drop it
// when their Invalidator delivers the change (redisstore: Redis pub/sub,
// typically within a millisecond; sqlstore: PostgreSQL LISTEN/NOTIFY,
// about as fast, or a change log MySQL and SQLite instances poll, within
// its PollInterval), and in any case within TTL. A lost notification
// channel resets (flushes) the cache. memstore needs none: it lives in one
// process.
//
// Forged keys: the key format's checksum is public, so anyone can make
// well-formed keys with random ids. Each costs one store read, and its
// "no such key" is cached apart from real keys, in NegativeSize entries of
// its own: a flood of forged keys can only evict other "no such key"
// entries, never a cached real key.
//
// The cache has 64 shards, and Size and NegativeSize are divided among
// them, rounded up: a bound below 64 holds up to 64 entries.
type CacheConfig struct {
	// Size bounds the number of cached keys (entries for keys that exist).
	// Default 100,000. When full, a random entry is evicted (entries also
	// expire by TTL), which keeps reads lock-free of writes. "No such key"
	// entries do not count against Size: see NegativeSize.
	Size int
	// TTL bounds how long a key stays cached, and so how long another
	// instance without notifications may accept a key after it was
	// deleted or changed. Default 30s.
	TTL time.Duration
	// NegativeTTL is how long "no such key" is cached, so that a client
	// that keeps presenting the same unknown key (a deleted key, a retry
	// loop) does not reach the store on every request. Default 5s; at
	// most TTL.
	NegativeTTL time.Duration
	// NegativeSize bounds the number of cached "no such key" entries,
	// separately from Size: when full, a random "no such key" entry is
	// evicted, never a real key. Default Size/10 (10,000 with the default
	// Size). Negative entries only save store reads for unknown keys that
	// are presented again within NegativeTTL; distinct forged keys miss
	// every time whatever the bound, so a small one loses nothing against
	// a flood, and it keeps what a flood can fill to a tenth of the
	// cache's memory. Negative turns negative caching off: every unknown
	// key is then a store read (real keys are still cached).
	NegativeSize int
}

// Invalidator carries "this key changed" between Managers that share a
// store, so that their caches drop changed and revoked keys at once.
// redisstore.Store and sqlstore.Store implement it.
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
// Records and "no such key" live in separate maps with separate bounds,
// so that filling one never evicts from the other.
type cache struct {
	shards           [cacheShards]cacheShard
	perShard         int // bound of each shard's pos
	negPerShard      int // bound of each shard's neg; 0: negative caching off
	ttl, negativeTTL time.Duration
}

type cacheShard struct {
	mu  sync.RWMutex
	gen uint64                   // guards both maps
	pos map[uuid.UUID]cacheEntry // keys that exist; rec != nil
	neg map[uuid.UUID]cacheEntry // "no such key"; rec == nil
	_   [32]byte                 // keep shards' locks off each other's cache lines
}

type cacheEntry struct {
	rec   *Shared // nil: no such key
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
	if c.NegativeSize == 0 {
		c.NegativeSize = max(1, c.Size/10)
	}
	ch := &cache{perShard: max(1, c.Size/cacheShards), ttl: c.TTL, negativeTTL: c.NegativeTTL}
	if c.NegativeSize > 0 {
		ch.negPerShard = max(1, c.NegativeSize/cacheShards)
	}
	for i := range ch.shards {
		ch.shards[i].pos = make(map[uuid.UUID]cacheEntry)
		ch.shards[i].neg = make(map[uuid.UUID]cacheEntry)
	}
	return ch, nil
}

// shard picks by the id's last byte, which is random in a UUIDv7.
func (c *cache) shard(id uuid.UUID) *cacheShard { return &c.shards[id[15]%cacheShards] }

// get returns the cached entry for id, if fresh at now.
func (c *cache) get(id uuid.UUID, now time.Time) (cacheEntry, bool) {
	s := c.shard(id)
	s.mu.RLock()
	e, ok := s.pos[id]
	if !ok {
		e, ok = s.neg[id]
	}
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
// gen was read. A record only ever evicts a record, and "no such key" only
// ever evicts "no such key".
func (c *cache) put(id uuid.UUID, rec *Shared, gen uint64, now time.Time) {
	ttl, bound := c.ttl, c.perShard
	if rec == nil {
		ttl, bound = c.negativeTTL, c.negPerShard
	}
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	into, other := s.pos, s.neg
	if rec == nil {
		into, other = s.neg, s.pos
	}
	// An id is in one map at most. Dropping an entry is always safe (it
	// costs a store read), so the other kind's (expired) entry goes even
	// when this result is not cached.
	delete(other, id)
	if s.gen != gen || bound == 0 {
		return
	}
	if _, ok := into[id]; !ok && len(into) >= bound {
		for victim := range into { // map order is random
			delete(into, victim)
			break
		}
	}
	into[id] = cacheEntry{rec: rec, until: now.Add(ttl)}
}

func (c *cache) invalidate(id uuid.UUID) {
	s := c.shard(id)
	s.mu.Lock()
	s.gen++
	delete(s.pos, id)
	delete(s.neg, id)
	s.mu.Unlock()
}

func (c *cache) flush() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.gen++
		clear(s.pos)
		clear(s.neg)
		s.mu.Unlock()
	}
}

// len returns how many entries the cache holds, of both kinds.
func (c *cache) len() int {
	pos, neg := c.lens()
	return pos + neg
}

// lens returns how many records and how many "no such key" entries the
// cache holds.
func (c *cache) lens() (pos, neg int) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		pos += len(s.pos)
		neg += len(s.neg)
		s.mu.RUnlock()
	}
	return pos, neg
}

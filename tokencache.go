package apikeys

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// maxTokenCacheBytes bounds the cache of verified tokens, counting each
// token's text and about 200 bytes for its entry: 16 MiB, some 30,000
// tokens of a typical 500 bytes. Only tokens whose signature verified are
// cached, so only minted tokens fill it; a full cache evicts at random,
// which costs an evicted token one more signature check, never a wrong
// answer.
const maxTokenCacheBytes = 16 << 20

// tokenEntryOverhead is what an entry costs beyond the token's text.
const tokenEntryOverhead = 200

// verifiedToken is what a token's signature vouches for.
type verifiedToken struct {
	parent     uuid.UUID
	expires    time.Time
	origins    []string
	assistants []string
	transient  bool
	scopes     []string
}

// tokenCache keeps verified tokens until they expire, so that a token
// used again costs a map lookup rather than an Ed25519 verification. The
// parent key is read (or taken from the key cache) on every request
// whatever this cache says, so revoking the parent stops its tokens.
type tokenCache struct {
	mu    sync.RWMutex
	m     map[string]*verifiedToken
	bytes int
}

func newTokenCache() *tokenCache {
	return &tokenCache{m: make(map[string]*verifiedToken)}
}

func (c *tokenCache) get(raw string, now time.Time) (*verifiedToken, bool) {
	c.mu.RLock()
	v, ok := c.m[raw]
	c.mu.RUnlock()
	if !ok || !now.Before(v.expires) {
		return nil, false
	}
	return v, true
}

// put caches v. When the cache is full it drops expired tokens and then,
// if that is not enough, tokens at random (Go's map order), down to seven
// eighths of its bound, so that the sweep runs at most once per eighth of
// the cache's worth of new tokens.
func (c *tokenCache) put(raw string, v *verifiedToken, now time.Time) {
	size := len(raw) + tokenEntryOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[raw]; ok {
		return
	}
	if c.bytes+size > maxTokenCacheBytes {
		low := maxTokenCacheBytes - maxTokenCacheBytes/8
		for k, e := range c.m {
			if !now.Before(e.expires) {
				c.drop(k)
			}
		}
		for k := range c.m {
			if c.bytes+size <= low {
				break
			}
			c.drop(k)
		}
	}
	c.m[raw] = v
	c.bytes += size
}

func (c *tokenCache) drop(raw string) {
	delete(c.m, raw)
	c.bytes -= len(raw) + tokenEntryOverhead
}

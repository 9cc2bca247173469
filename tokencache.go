package apikeys

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// maxCachedTokens bounds the cache of verified tokens. Only tokens whose
// signature verified are cached, so only holders of a private key (who can
// mint them) can fill it, and a full cache costs a signature check per
// request, not a wrong answer.
const maxCachedTokens = 10_000

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
	mu sync.RWMutex
	m  map[string]*verifiedToken
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

// put caches v; when the cache is full it first drops expired tokens,
// and caches nothing if that frees no room.
func (c *tokenCache) put(raw string, v *verifiedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedTokens {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedTokens {
			return
		}
	}
	c.m[raw] = v
}

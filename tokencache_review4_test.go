package apikeys

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestReview4TokenCacheFullOfLiveTokens: the verified-token cache refuses
// new entries while it is full of live ones. Whoever can get
// tokens minted (a backend that mints one per page view, for any visitor)
// fills it with tokens that live for up to MaxTokenTTL; from then on no
// other user's token is cached, so every request with one costs an Ed25519
// verification, and every such verification also scans the whole map under
// the cache's write lock (put), blocking every token lookup meanwhile. A
// full cache should evict (any entry, or the soonest to expire), not
// refuse.
func TestReview4TokenCacheFullOfLiveTokens(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		filler time.Duration // the filler tokens' remaining lifetime
	}{
		{"filled with tokens live for an hour", time.Hour},
		{"filled with tokens live for a minute", time.Minute},
		{"control: filled with expired tokens", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newTokenCache()
			flood := &verifiedToken{parent: uuid.New(), expires: now.Add(tt.filler)}
			for i := range maxTokenCacheBytes/tokenEntryOverhead + 1 { // more than fit
				c.put("flood."+strconv.Itoa(i)+".sig", flood, now)
			}
			mine := &verifiedToken{parent: uuid.New(), expires: now.Add(10 * time.Minute)}
			c.put("mine.token.sig", mine, now)
			if _, ok := c.get("mine.token.sig", now); !ok {
				t.Fatalf("another user's verified token is not cached: every use of it will be verified again")
			}
		})
	}
}

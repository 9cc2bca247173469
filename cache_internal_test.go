package apikeys

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	c, err := newCache(CacheConfig{Size: 2 * cacheShards})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for range 5000 {
		c.put(uuid.Must(uuid.NewV7()), &Record{}, 0, now)
	}
	if n := c.len(); n > 2*cacheShards || n < cacheShards {
		t.Fatalf("cache holds %d entries, bound %d", n, 2*cacheShards)
	}
	c.flush()
	if n := c.len(); n != 0 {
		t.Fatalf("after flush the cache holds %d entries", n)
	}
}

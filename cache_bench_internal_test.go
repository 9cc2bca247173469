package apikeys

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// BenchmarkCacheGet measures the cache's read path alone, for a cached
// key and for a cached "no such key", with the cache holding 1,000 of
// each: it must stay allocation-free and take no write lock.
func BenchmarkCacheGet(b *testing.B) {
	c, err := newCache(CacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	pos, neg := make([]uuid.UUID, 1000), make([]uuid.UUID, 1000)
	for i := range pos {
		pos[i], neg[i] = uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
		c.put(pos[i], &Shared{}, 0, now)
		c.put(neg[i], nil, 0, now)
	}
	for _, v := range []struct {
		name string
		ids  []uuid.UUID
		want bool // a record, not "no such key"
	}{{"positive", pos, true}, {"negative", neg, false}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					e, ok := c.get(v.ids[i%len(v.ids)], now)
					if !ok || (e.rec != nil) != v.want {
						b.Fatal("miss")
					}
					i++
				}
			})
		})
	}
}

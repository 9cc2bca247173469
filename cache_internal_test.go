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
		c.put(uuid.Must(uuid.NewV7()), &Shared{}, 0, now)
	}
	if n := c.len(); n > 2*cacheShards || n < cacheShards {
		t.Fatalf("cache holds %d entries, bound %d", n, 2*cacheShards)
	}
	c.flush()
	if n := c.len(); n != 0 {
		t.Fatalf("after flush the cache holds %d entries", n)
	}
}

// TestCacheKindsBoundedApart: "no such key" entries and records have
// bounds of their own, and filling either never evicts the other.
func TestCacheKindsBoundedApart(t *testing.T) {
	t.Parallel()
	const size, negSize = 4 * cacheShards, 2 * cacheShards
	c, err := newCache(CacheConfig{Size: size, NegativeSize: negSize})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var real []uuid.UUID
	for range 50 * size {
		id := uuid.New()
		c.put(id, &Shared{}, 0, now)
		real = append(real, id)
	}
	pos, _ := c.lens()
	if pos > size || pos < size/2 {
		t.Fatalf("cache holds %d records, bound %d", pos, size)
	}
	var kept []uuid.UUID
	for _, id := range real {
		if e, ok := c.get(id, now); ok && e.rec != nil {
			kept = append(kept, id)
		}
	}
	if len(kept) != pos {
		t.Fatalf("%d records found, %d held", len(kept), pos)
	}

	for range 50 * size {
		c.put(uuid.New(), nil, 0, now)
	}
	if p, neg := c.lens(); p != pos || neg > negSize || neg < negSize/2 {
		t.Fatalf("after a flood of unknown ids: %d records (was %d), %d negatives (bound %d)", p, pos, neg, negSize)
	}
	for _, id := range kept {
		if e, ok := c.get(id, now); !ok || e.rec == nil {
			t.Fatal("an unknown id evicted a record")
		}
	}

	_, neg := c.lens()
	for range 50 * size {
		c.put(uuid.New(), &Shared{}, 0, now)
	}
	if _, n := c.lens(); n != neg {
		t.Fatalf("records evicted negatives: %d before, %d after", neg, n)
	}
}

// TestCacheNegativeDefaults: NegativeSize defaults to a tenth of Size,
// and a negative NegativeSize caches no "no such key" at all.
func TestCacheNegativeDefaults(t *testing.T) {
	t.Parallel()
	c, err := newCache(CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 10_000 / cacheShards; c.negPerShard != want {
		t.Fatalf("default negatives per shard %d, want %d", c.negPerShard, want)
	}
	c, err = newCache(CacheConfig{Size: 64_000})
	if err != nil {
		t.Fatal(err)
	}
	if want := 6_400 / cacheShards; c.negPerShard != want {
		t.Fatalf("negatives per shard %d for Size 64,000, want %d", c.negPerShard, want)
	}

	c, err = newCache(CacheConfig{NegativeSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	id := uuid.New()
	c.put(id, &Shared{}, 0, now.Add(-time.Hour)) // an expired record
	c.put(id, nil, 0, now)
	if _, ok := c.get(id, now); ok {
		t.Fatal("negative caching is off, yet an unknown id was cached")
	}
	if pos, neg := c.lens(); pos != 0 || neg != 0 {
		t.Fatalf("cache holds %d records and %d negatives; the expired record should be gone", pos, neg)
	}
}

// TestCacheGenerationGuardsBothKinds: a read that began before an
// invalidation puts back neither a record nor a "no such key".
func TestCacheGenerationGuardsBothKinds(t *testing.T) {
	t.Parallel()
	c, err := newCache(CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, rec := range map[string]*Shared{"record": {}, "no such key": nil} {
		id := uuid.New()
		gen := c.generation(id)
		c.invalidate(id)
		c.put(id, rec, gen, now)
		if _, ok := c.get(id, now); ok {
			t.Fatalf("%s: a stale read was cached", name)
		}
		c.put(id, rec, c.generation(id), now)
		if e, ok := c.get(id, now); !ok || e.rec != rec {
			t.Fatalf("%s: a current read was not cached", name)
		}
		c.invalidate(id)
		if _, ok := c.get(id, now); ok {
			t.Fatalf("%s: invalidate left the entry", name)
		}
	}
}

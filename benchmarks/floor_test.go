package benchmarks_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// Issue 17: Authorize against the floor, a hand-written check that does
// only what any key check of this kind must.

// floorRecord is what the hand-written check keeps per key.
type floorRecord struct {
	origins, assistants []string
}

// floorCheck is the hand-written baseline: SHA-256 of the key (into a
// stack buffer: no allocation), one map lookup, and the same origin and
// assistant checks Authorize makes (exact matches; the request's origin is
// the first entry, its assistant the last). It is what a careful
// programmer would write, not slowed down: 0 allocations.
func floorCheck(m map[[32]byte]*floorRecord, key, origin, assistant string) bool {
	var buf [128]byte
	rec := m[sha256.Sum256(buf[:copy(buf[:], key)])]
	if rec == nil {
		return false
	}
	ok := false
	for _, o := range rec.origins {
		if o == origin {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, a := range rec.assistants {
		if a == assistant {
			return true
		}
	}
	return false
}

// floorKey creates, through m, the key of the floor benchmarks: every
// restriction that does not spend (origins, assistants, transient,
// scopes, addresses, an expiry), and returns it with a request it admits.
func floorKey(b *testing.B, m *apikeys.Manager) (apikeys.NewKey, apikeys.Request) {
	b.Helper()
	nk, err := m.Create(context.Background(), apikeys.CreateParams{
		Type: apikeys.Public, Name: "web", UserID: "bench",
		AllowedOrigins:     []string{"https://app.example.com", "https://*.example.org"},
		AllowedAssistants:  []string{"asst-1", "asst-2", "asst-3"},
		TransientAssistant: true,
		Scopes:             []string{"assistants:read", "calls:*"},
		AllowedIPs:         []string{"10.0.0.0/8", "192.0.2.0/24"},
		ExpiresAt:          time.Now().Add(24 * time.Hour),
	})
	if err != nil {
		b.Fatal(err)
	}
	return nk, apikeys.Request{
		Origin: "https://app.example.com", AssistantID: "asst-3", Transient: true,
		Scopes: []string{"calls:write"}, ClientIP: netip.MustParseAddr("192.0.2.7"),
	}
}

// floorSizes: 1,000 and 100,000 keys always; 1,000,000 with
// APIKEYS_BENCH_BIG=1 (its setup takes some seconds and about 1 GB).
func floorSizes() []int {
	if os.Getenv("APIKEYS_BENCH_BIG") != "" {
		return []int{1_000, 100_000, 1_000_000}
	}
	return []int{1_000, 100_000}
}

// floorBaseline is the baseline's map of n keys, the real key among them.
func floorBaseline(n int, nk apikeys.NewKey) map[[32]byte]*floorRecord {
	m := make(map[[32]byte]*floorRecord, n)
	for i := range n - 1 {
		m[sha256.Sum256(fmt.Appendf(nil, "ak_pk_%072d", i))] = &floorRecord{}
	}
	m[sha256.Sum256([]byte(nk.Value))] = &floorRecord{origins: nk.AllowedOrigins, assistants: nk.AllowedAssistants}
	return m
}

// floorBatch is how many calls of one side run between two clock reads:
// enough that reading the clock is noise.
const floorBatch = 64

// interleave runs the sides alternately, floorBatch calls each per round,
// and reports each side's mean ns per call and its ratio to the first
// side (the baseline). It reports each side's allocations per call too,
// measured before the timed loop.
func interleave(b *testing.B, names []string, sides []func()) {
	allocs := make([]float64, len(sides))
	for i, f := range sides {
		allocs[i] = testing.AllocsPerRun(1000, f)
	}
	spent := make([]time.Duration, len(sides))
	runtime.GC()
	b.ResetTimer()
	for b.Loop() {
		for i, f := range sides {
			t0 := time.Now()
			for range floorBatch {
				f()
			}
			spent[i] += time.Since(t0)
		}
	}
	calls := float64(b.N) * floorBatch
	for i := range sides {
		b.ReportMetric(float64(spent[i].Nanoseconds())/calls, names[i]+"-ns")
		b.ReportMetric(allocs[i], names[i]+"-allocs")
		if i > 0 {
			b.ReportMetric(float64(spent[i])/float64(spent[0]), names[i]+"/"+names[0])
		}
	}
}

// BenchmarkFloor: memstore Authorize and cached Authorize (memstore) of a
// key with every restriction that does not spend, against the hand-written
// check, interleaved, at 1,000 to 1,000,000 keys. Goal (issue 17): 0
// allocations and at most 1.3x the baseline, flat across sizes. The
// ratios to read are "memstore/baseline" and "cached/baseline".
func BenchmarkFloor(b *testing.B) {
	ctx := context.Background()
	for _, n := range floorSizes() {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s := memstore.New()
			for range n - 1 {
				rec := apikeys.Record{Version: 1}
				rec.ID = uuid.Must(uuid.NewV7())
				rec.Type, rec.Name, rec.UserID = apikeys.Public, "filler", "user"
				rec.Digest = sha256.Sum256(rec.ID[:])
				if err := s.Create(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			uncached, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			cached, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1, Cache: &apikeys.CacheConfig{}})
			if err != nil {
				b.Fatal(err)
			}
			nk, req := floorKey(b, uncached)
			base := floorBaseline(n, nk)
			interleave(b, []string{"baseline", "memstore", "cached"}, []func(){
				func() {
					if !floorCheck(base, nk.Value, req.Origin, req.AssistantID) {
						b.Fatal("baseline refused")
					}
				},
				func() {
					if _, err := uncached.Authorize(ctx, nk.Value, req); err != nil {
						b.Fatal(err)
					}
				},
				func() {
					if _, err := cached.Authorize(ctx, nk.Value, req); err != nil {
						b.Fatal(err)
					}
				},
			})
		})
	}
}

// BenchmarkFloorCached: cached Authorize on every server store whose
// APIKEYS_TEST_* variable is set, and SQLite, against the same baseline
// (1,000 keys in its map), interleaved. A hit never reaches the store,
// so every row must be what memstore's cached row is.
func BenchmarkFloorCached(b *testing.B) {
	ctx := context.Background()
	for _, be := range backends {
		if be.name == "memory" {
			continue // BenchmarkFloor's "cached"
		}
		b.Run("store="+be.name, func(b *testing.B) {
			store, _ := be.open(b)
			m, err := apikeys.New(store, &apikeys.Config{LastUsedInterval: -1, Cache: &apikeys.CacheConfig{}})
			if err != nil {
				b.Fatal(err)
			}
			nk, req := floorKey(b, m)
			base := floorBaseline(1000, nk)
			interleave(b, []string{"baseline", "cached"}, []func(){
				func() {
					if !floorCheck(base, nk.Value, req.Origin, req.AssistantID) {
						b.Fatal("baseline refused")
					}
				},
				func() {
					if _, err := m.Authorize(ctx, nk.Value, req); err != nil {
						b.Fatal(err)
					}
				},
			})
		})
	}
}

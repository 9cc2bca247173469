package benchmarks_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/keytest"
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

// typicalCheck is floorCheck as the issue measured it (270 ns, 2
// allocations, before issue 17): the map keyed by the hex of the digest,
// the key converted to a []byte. Not slowed down either: it is how such a
// check is commonly written. BenchmarkFloor reports Authorize against
// both.
func typicalCheck(m map[string]*floorRecord, key, origin, assistant string) bool {
	sum := sha256.Sum256([]byte(key))
	rec := m[hex.EncodeToString(sum[:])]
	if rec == nil {
		return false
	}
	return slices.Contains(rec.origins, origin) && slices.Contains(rec.assistants, assistant)
}

// floorTypical is typicalCheck's map of the keys of base.
func floorTypical(base map[[32]byte]*floorRecord) map[string]*floorRecord {
	m := make(map[string]*floorRecord, len(base))
	for sum, rec := range base {
		m[hex.EncodeToString(sum[:])] = rec
	}
	return m
}

// floorKey creates, through m, the key of the floor benchmarks.
func floorKey(b *testing.B, m *apikeys.Manager) (apikeys.NewKey, apikeys.Request) {
	return keytest.FullyRestricted(b, m)
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
func interleave(b *testing.B, names []string, sides []func()) []time.Duration {
	return interleaveBatch(b, floorBatch, names, sides)
}

// interleaveBatch is interleave with batch calls of each side per round.
// It returns each side's total time.
func interleaveBatch(b *testing.B, batch int, names []string, sides []func()) []time.Duration {
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
			for range batch {
				f()
			}
			spent[i] += time.Since(t0)
		}
	}
	calls := float64(b.N) * float64(batch)
	for i := range sides {
		b.ReportMetric(float64(spent[i].Nanoseconds())/calls, names[i]+"-ns")
		b.ReportMetric(allocs[i], names[i]+"-allocs")
		if i > 0 {
			b.ReportMetric(float64(spent[i])/float64(spent[0]), names[i]+"/"+names[0])
		}
	}
	return spent
}

// BenchmarkFloor: memstore Authorize and cached Authorize (memstore) of a
// key with every restriction that does not spend, default Managers
// (last-used recording on), against the hand-written check, interleaved,
// at 1,000 to 1,000,000 keys. Goal (issue 17): 0
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
			// Default Managers: last-used recording on, as a service runs.
			uncached, err := apikeys.New(s, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = uncached.Close(context.Background()) })
			cached, err := apikeys.New(s, &apikeys.Config{Cache: &apikeys.CacheConfig{}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = cached.Close(context.Background()) })
			nk, req := floorKey(b, uncached)
			base := floorBaseline(n, nk)
			typical := floorTypical(base)
			spent := interleave(b, []string{"baseline", "typical", "memstore", "cached"}, []func(){
				func() {
					if !floorCheck(base, nk.Value, req.Origin, req.AssistantID) {
						b.Fatal("baseline refused")
					}
				},
				func() {
					if !typicalCheck(typical, nk.Value, req.Origin, req.AssistantID) {
						b.Fatal("typical refused")
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
			b.ReportMetric(float64(spent[2])/float64(spent[1]), "memstore/typical")
			b.ReportMetric(float64(spent[3])/float64(spent[1]), "cached/typical")
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
			m, err := apikeys.New(store, &apikeys.Config{Cache: &apikeys.CacheConfig{}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = m.Close(context.Background()) })
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

// minimalMiddleware is the hand-written middleware issue 17 compares
// with: the bearer token, SHA-256 of it, one map lookup, the origin and
// assistant checks, and the CORS headers (Vary, Access-Control-Allow-Origin).
func minimalMiddleware(keys map[[32]byte]*floorRecord, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		origin := r.Header.Get("Origin")
		if !ok || !floorCheck(keys, key, origin, r.Header.Get("X-Assistant")) {
			http.Error(w, "invalid key", http.StatusUnauthorized)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		next.ServeHTTP(w, r)
	})
}

// BenchmarkMiddlewareFloor: a handler writing "hello" on loopback, bare,
// behind the minimal hand-written middleware, and behind ours (memstore,
// default Manager), called in turn by 8 clients with keep-alive, so that
// all three see the same load. Reports each side's mean latency, ours
// against the minimal one (goal: within 5%, as requests per second at
// equal concurrency), and each side's allocations per request in the
// handler chain (served to a ResponseRecorder; goal: ours at most 10
// above bare).
func BenchmarkMiddlewareFloor(b *testing.B) {
	hello, protected, key := middlewareSetup(b)
	nk := apikeys.NewKey{Value: key}
	nk.AllowedOrigins = []string{"https://app.example.com", "https://*.example.org"}
	nk.AllowedAssistants = []string{"asst-1", "asst-2", "asst-3"}
	minimal := minimalMiddleware(floorBaseline(1000, nk), hello)
	handlers := []http.Handler{hello, minimal, protected}
	names := []string{"bare", "minimal", "ours"}
	metrics := map[string]float64{}
	for i, h := range handlers {
		req := browserCall("http://example.com/", key)
		metrics[names[i]+"-allocs"] = testing.AllocsPerRun(1000, func() { h.ServeHTTP(httptest.NewRecorder(), req) })
	}
	var urls []string
	for _, h := range handlers {
		srv := httptest.NewServer(h)
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	// End to end (client and server in this process), per request.
	call := func(url string) {
		res, err := client.Do(browserCall(url, key))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	for i, url := range urls {
		const n = 500
		call(url) // a connection
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			call(url)
		}
		runtime.ReadMemStats(&after)
		metrics[names[i]+"-e2e-allocs"] = float64(after.Mallocs-before.Mallocs) / n
	}
	b.ResetTimer()
	var spent [3]atomic.Int64
	var count [3]atomic.Int64
	b.SetParallelism(4) // 8 clients on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			side := i % 3
			req := browserCall(urls[side], key)
			start := time.Now()
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			spent[side].Add(int64(time.Since(start)))
			count[side].Add(1)
			if res.StatusCode != 200 {
				b.Errorf("%s: status %d", names[side], res.StatusCode)
				return
			}
		}
	})
	var ns [3]float64
	for i := range ns {
		if count[i].Load() == 0 {
			return
		}
		ns[i] = float64(spent[i].Load()) / float64(count[i].Load())
		b.ReportMetric(ns[i], names[i]+"-ns/req")
	}
	for name, v := range metrics {
		b.ReportMetric(v, name)
	}
	b.ReportMetric(ns[2]/ns[1], "ours/minimal")
	b.ReportMetric(ns[2]/ns[0], "ours/bare")
}

// BenchmarkFloorRemote: uncached Authorize on each server store (and
// SQLite) against one raw read of the same record through the same client
// (openRedis's HGETALL, openSQL's prepared SELECT by primary key), both
// under the default OpTimeout's deadline (raw-timeout: the raw read in
// context.WithTimeout(ctx, 5s), as the Manager bounds its store call) and
// the raw read alone (raw), interleaved one call at a time, under a
// cancellable context as a request's is. Reports authorize/raw-timeout
// (issue 17's SQL goal, ≤ 1.10), authorize/raw (its Redis goal, ≤ 1.10)
// and each side's allocations per call.
func BenchmarkFloorRemote(b *testing.B) {
	for _, be := range backends {
		if be.name == "memory" {
			continue
		}
		b.Run("store="+be.name, func(b *testing.B) {
			store, raw := be.open(b)
			m, err := apikeys.New(store, &apikeys.Config{LastUsedInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			nk := createWebKey(b, m)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			const timeout = 5 * time.Second // Config.OpTimeout's default
			spent := interleaveBatch(b, 1, []string{"raw-timeout", "raw", "authorize"}, []func(){
				func() {
					tctx, cancel := context.WithTimeout(ctx, timeout)
					err := raw(tctx, nk.ID)
					cancel()
					if err != nil {
						b.Fatal(err)
					}
				},
				func() {
					if err := raw(ctx, nk.ID); err != nil {
						b.Fatal(err)
					}
				},
				func() {
					if _, err := m.Authorize(ctx, nk.Value, browserRequest); err != nil {
						b.Fatal(err)
					}
				},
			})
			b.ReportMetric(float64(spent[2])/float64(spent[1]), "authorize/raw")
		})
	}
}

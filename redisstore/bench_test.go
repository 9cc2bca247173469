package redisstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// BenchmarkAuthorize compares Manager.Authorize of a public key with origin
// and assistant restrictions against the one command it costs, a raw
// HGETALL of the same record on the same client. The goal is authorize
// within 1.15x baseline on real Redis (APIKEYS_TEST_REDIS_URL); the
// miniredis run only keeps the benchmark runnable everywhere.
func BenchmarkAuthorize(b *testing.B) {
	for _, bk := range []backend{backends[2], backends[0]} {
		b.Run(bk.name, func(b *testing.B) {
			s, rdb, _ := newStore(b, bk, nil)
			m, err := apikeys.New(s, nil)
			require.NoError(b, err)
			ctx := b.Context()
			nk, err := m.Create(ctx, apikeys.CreateParams{
				Type:              apikeys.Public,
				Name:              "widget",
				UserID:            "bench-user",
				AllowedOrigins:    []string{"https://app.example.com", "https://*.example.org"},
				AllowedAssistants: []string{"asst_1", "asst_2", "asst_3"},
			})
			require.NoError(b, err)
			req := apikeys.Request{Origin: "https://shop.example.org", AssistantID: "asst_3"}
			key := s.recordKey(nk.ID.String())

			b.Run("baseline", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if h, err := rdb.HGetAll(ctx, key).Result(); err != nil || len(h) == 0 {
						b.Fatalf("HGETALL = %d fields, %v", len(h), err)
					}
				}
			})
			b.Run("authorize", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Authorize(ctx, nk.Value, req); err != nil {
						b.Fatal(err)
					}
				}
			})
			// Both, alternating, so that both see the same load on the
			// machine; reports the ratio of their times.
			b.Run("interleaved", func(b *testing.B) {
				var tBase, tAuth time.Duration
				for b.Loop() {
					start := time.Now()
					if _, err := rdb.HGetAll(ctx, key).Result(); err != nil {
						b.Fatal(err)
					}
					mid := time.Now()
					if _, err := m.Authorize(ctx, nk.Value, req); err != nil {
						b.Fatal(err)
					}
					tBase += mid.Sub(start)
					tAuth += time.Since(mid)
				}
				b.ReportMetric(float64(tBase.Nanoseconds())/float64(b.N), "baseline-ns/op")
				b.ReportMetric(float64(tAuth.Nanoseconds())/float64(b.N), "authorize-ns/op")
				b.ReportMetric(float64(tAuth)/float64(tBase), "authorize/baseline")
			})
		})
	}
}

// BenchmarkDecode is the CPU cost Get adds to the HGETALL reply.
func BenchmarkDecode(b *testing.B) {
	rec := testRecord(b, "bench-user")
	args := appendFields(nil, &rec, writeAll)
	h := make(map[string]string, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		h[args[i].(string)] = args[i+1].(string)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(rec.ID, h); err != nil {
			b.Fatal(err)
		}
	}
}

package redisstore

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// roundTrips is a go-redis hook that counts round trips: one per command
// sent alone and one per pipeline.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestAuthorizeOneRoundTrip: Authorize costs exactly one round trip to
// Redis whatever the outcome, and none for a key that does not parse.
func TestAuthorizeOneRoundTrip(t *testing.T) {
	t.Parallel()
	for _, b := range []backend{backends[0], backends[2]} { // plain clients
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, rdb, _ := newStore(t, b, nil)
			counter := &roundTrips{}
			rdb.AddHook(counter)
			m, err := apikeys.New(s, nil)
			require.NoError(t, err)
			ctx := t.Context()
			nk, err := m.Create(ctx, apikeys.CreateParams{
				Type:              apikeys.Public,
				Name:              "widget",
				UserID:            "alice",
				AllowedOrigins:    []string{"https://app.example.com", "https://*.example.org"},
				AllowedAssistants: []string{"asst_1", "asst_2"},
			})
			require.NoError(t, err)
			restricted, err := m.Create(ctx, apikeys.CreateParams{
				Type: apikeys.Private, Name: "restricted", UserID: "alice",
				Scopes: []string{"calls:read"}, AllowedIPs: []string{"203.0.113.0/24"},
			})
			require.NoError(t, err)
			disabled, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "off", UserID: "alice", Disabled: true})
			require.NoError(t, err)
			office := netip.MustParseAddr("203.0.113.9")
			wrongSecret := nk.Value[:len(nk.Value)-8] + "AAAAAAAA"
			other, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "gone", UserID: "alice"})
			require.NoError(t, err)
			_, err = m.Delete(ctx, "alice", other.ID)
			require.NoError(t, err)
			metered, _ := limitedKey(t, s, apikeys.CreateParams{Scopes: []string{"calls:read"}},
				&apikeys.RateLimit{Limit: apikeys.MaxQuota, WindowSeconds: 60}, &apikeys.Credits{Remaining: 3})
			// Authorize reads a key it knows to be limited with Store.Spend
			// (a Get, then a Spend, the first time) and refunds with
			// Store.Refund, scripts, which cost one more round trip the first time on a
			// server that does not have them yet (EVALSHA, then EVAL): count
			// as after a service's first requests.
			require.NoError(t, spendScript.Load(ctx, rdb).Err())
			require.NoError(t, refundScript.Load(ctx, rdb).Err())

			tests := []struct {
				name  string
				key   string
				req   apikeys.Request
				want  error
				trips int64
			}{
				{"allowed", nk.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst_2"}, nil, 1},
				{"origin refused", nk.Value, apikeys.Request{Origin: "https://evil.example"}, apikeys.ErrOriginNotAllowed, 1},
				{"assistant refused", nk.Value, apikeys.Request{Origin: "https://a.example.org", AssistantID: "asst_9"}, apikeys.ErrAssistantNotAllowed, 1},
				{"restricted, allowed", restricted.Value, apikeys.Request{ClientIP: office, Scopes: []string{"calls:read"}}, nil, 1},
				{"address refused", restricted.Value, apikeys.Request{ClientIP: netip.MustParseAddr("198.51.100.1"), Scopes: []string{"calls:read"}}, apikeys.ErrIPNotAllowed, 1},
				{"scope refused", restricted.Value, apikeys.Request{ClientIP: office, Scopes: []string{"calls:write"}}, apikeys.ErrInsufficientScope, 1},
				{"disabled key", disabled.Value, apikeys.Request{}, apikeys.ErrKeyDisabled, 1},
				{"deleted key", other.Value, apikeys.Request{}, apikeys.ErrInvalidKey, 1},
				{"limited, first request: read, then spent", metered, apikeys.Request{Scopes: []string{"calls:read"}}, nil, 2},
				{"limited, allowed", metered, apikeys.Request{Scopes: []string{"calls:read"}}, nil, 1},
				{"limited, scope refused: spent, then refunded", metered, apikeys.Request{Scopes: []string{"calls:write"}}, apikeys.ErrInsufficientScope, 2},
				{"limited, allowed with what was refunded", metered, apikeys.Request{Scopes: []string{"calls:read"}}, nil, 1},
				{"limited, credits exhausted", metered, apikeys.Request{Scopes: []string{"calls:read"}}, apikeys.ErrCreditsExhausted, 1},
				{"wrong secret or checksum", wrongSecret, apikeys.Request{}, apikeys.ErrInvalidKey, -1},
				{"garbage", "ak_pk_" + uuid.NewString(), apikeys.Request{}, apikeys.ErrInvalidKey, 0},
			}
			for _, tt := range tests {
				before := counter.n.Load()
				_, err := m.Authorize(ctx, tt.key, tt.req)
				got := counter.n.Load() - before
				if tt.want == nil {
					assert.NoError(t, err, tt.name)
				} else {
					assert.ErrorIs(t, err, tt.want, tt.name)
				}
				if tt.trips >= 0 {
					assert.Equal(t, tt.trips, got, "%s: round trips", tt.name)
				} else {
					// Depends on whether the checksum catches the change.
					assert.LessOrEqual(t, got, int64(1), "%s: round trips", tt.name)
				}
			}
		})
	}
}

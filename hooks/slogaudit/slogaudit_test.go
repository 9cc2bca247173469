package slogaudit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/hooks/slogaudit"
	"github.com/keyward/apikeys/memstore"
)

func TestLogs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Hook: slogaudit.New(l)})
	require.NoError(t, err)
	ctx := t.Context()
	nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "web", UserID: "alice",
		AllowedOrigins: []string{"https://app.example.com"}, Scopes: []string{"calls:read"},
		RateLimit: &apikeys.RateLimit{Limit: 10, WindowSeconds: 60}})
	require.NoError(t, err)
	_, err = m.Authorize(ctx, nk.Value, apikeys.Request{Origin: "https://app.example.com", Scopes: []string{"calls:read"}})
	require.NoError(t, err)
	_, err = m.Authorize(ctx, nk.Value, apikeys.Request{Origin: "https://evil.example"})
	require.Error(t, err)
	// A changed last character (one that differs: "x" left one key in 62
	// unchanged, and the test failed 1 run in ~60).
	changed := "x"
	if strings.HasSuffix(nk.Value, "x") {
		changed = "y"
	}
	_, err = m.Authorize(ctx, nk.Value[:len(nk.Value)-1]+changed, apikeys.Request{})
	require.Error(t, err)
	_, err = m.Update(ctx, "alice", nk.ID, apikeys.UpdateParams{Disabled: new(true)})
	require.NoError(t, err)
	_, err = m.Delete(apikeys.NewContext(ctx, apikeys.Key{ID: nk.ID}), "alice", nk.ID)
	require.Error(t, err, "a public key may not manage keys")
	require.NoError(t, m.Close(ctx))

	assert.NotContains(t, buf.String(), nk.Value)
	assert.NotContains(t, buf.String(), nk.Value[10:40])
	var recs []map[string]any
	for line := range strings.Lines(buf.String()) {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		recs = append(recs, r)
	}
	require.Len(t, recs, 5)
	assert.Equal(t, "apikeys: key created", recs[0]["msg"])
	assert.Equal(t, "INFO", recs[0]["level"])
	assert.Equal(t, "service", recs[0]["actor"])
	assert.Equal(t, nk.Hint, recs[0]["after"].(map[string]any)["hint"])
	assert.Equal(t, "DEBUG", recs[1]["level"])
	assert.Equal(t, "allowed", recs[1]["reason"])
	assert.Equal(t, nk.ID.String(), recs[1]["key_id"])
	assert.Equal(t, "alice", recs[1]["user_id"])
	assert.Equal(t, "INFO", recs[2]["level"])
	assert.Equal(t, "origin", recs[2]["reason"])
	assert.Equal(t, "https://evil.example", recs[2]["origin"])
	assert.Contains(t, recs[2]["err"], "origin not allowed")
	assert.Equal(t, "malformed", recs[3]["reason"], "a changed checksum")
	assert.NotContains(t, recs[3], "err", "invalid keys: the reason, not the error")
	assert.Equal(t, "apikeys: key disabled", recs[4]["msg"])
	assert.Equal(t, true, recs[4]["before"].(map[string]any)["enabled"])
	assert.Equal(t, false, recs[4]["after"].(map[string]any)["enabled"])
}

func TestLevels(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil)) // Info
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Hook: slogaudit.New(l)})
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "web", UserID: "alice"})
	require.NoError(t, err)
	buf.Reset()
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)
	assert.Empty(t, buf.String(), "allowed decisions are Debug")
	require.NoError(t, m.Close(context.Background()))
}

// Example logs key changes and refusals, with the reason a caller never
// sees. (Times, ids, hints and durations are left out of the output here
// so that it is the same on every run.)
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "key_id", "id", "hint", "duration":
				return slog.Attr{}
			}
			return a
		},
	}))
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Hook: slogaudit.New(logger)})
	if err != nil {
		panic(err)
	}
	defer m.Close(context.Background())
	ctx := context.Background()
	nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "web", UserID: "alice",
		AllowedOrigins: []string{"https://app.example.com"}})
	if err != nil {
		panic(err)
	}
	_, err = m.Authorize(ctx, nk.Value, apikeys.Request{Origin: "https://evil.example"})
	fmt.Println("caller sees:", err)
	_, err = m.Authorize(ctx, "ak_pk_guess", apikeys.Request{})
	fmt.Println("caller sees:", err)
	// Output:
	// level=INFO msg="apikeys: key created" kind=created user_id=alice actor=service after.key_type=public after.name=web after.enabled=true after.allowed_origins=[https://app.example.com]
	// level=INFO msg="apikeys: authorize" allowed=false reason=origin user_id=alice origin=https://evil.example err="apikeys: origin not allowed for this key"
	// caller sees: apikeys: origin not allowed for this key
	// level=INFO msg="apikeys: authorize" allowed=false reason=malformed
	// caller sees: apikeys: invalid API key
}

package apikeys_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

func permissionFields(err error) []string {
	var out []string
	for _, pe := range apikeys.PermissionErrors(err) {
		out = append(out, pe.Field)
	}
	return out
}

// TestCreateCanOnlyNarrow: a key creating keys gives no more than it has
// (issue 10: a key limited to one assistant and an hour created an
// unrestricted, never-expiring key).
func TestCreateCanOnlyNarrow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hour := e.clock.now().Add(time.Hour)
	full := e.create(t, apikeys.CreateParams{Type: apikeys.Private, TransientAssistant: true})
	limited := e.create(t, apikeys.CreateParams{
		Type: apikeys.Private, AllowedOrigins: []string{"https://*.example.com", "https://admin.example.net"},
		AllowedAssistants: []string{"a1", "a2"}, ExpiresAt: hour,
	})
	exact := e.create(t, apikeys.CreateParams{Type: apikeys.Private, AllowedOrigins: []string{"https://app.example.com"}})
	transient := e.create(t, apikeys.CreateParams{Type: apikeys.Private, TransientAssistant: true})

	tests := []struct {
		name  string
		actor apikeys.NewKey
		p     apikeys.CreateParams
		want  []string // fields refused; nil: allowed
	}{
		{"full key, anything", full, apikeys.CreateParams{TransientAssistant: true}, nil},
		{"no transient, transient", exact, apikeys.CreateParams{AllowedOrigins: []string{"https://app.example.com"}, TransientAssistant: true},
			[]string{"transient_assistant"}},
		{"limited, unrestricted key", limited, apikeys.CreateParams{Type: apikeys.Private},
			[]string{"allowed_origins", "allowed_assistants", "expires_at"}},
		{"limited, within", limited, apikeys.CreateParams{
			AllowedOrigins:    []string{"https://app.example.com", "https://*.eu.example.com", "https://admin.example.net"},
			AllowedAssistants: []string{"a2"}, ExpiresAt: hour.Add(-time.Minute)}, nil},
		{"limited, same expiry", limited, apikeys.CreateParams{
			AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"a1"}, ExpiresAt: hour}, nil},
		{"limited, origin outside", limited, apikeys.CreateParams{
			AllowedOrigins: []string{"https://app.example.com", "https://evil.example.org"}, AllowedAssistants: []string{"a1"}, ExpiresAt: hour},
			[]string{"allowed_origins[1]"}},
		{"limited, apex of wildcard", limited, apikeys.CreateParams{
			AllowedOrigins: []string{"https://example.com"}, AllowedAssistants: []string{"a1"}, ExpiresAt: hour},
			[]string{"allowed_origins[0]"}},
		{"limited, other assistant", limited, apikeys.CreateParams{
			AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"a1", "a3"}, ExpiresAt: hour},
			[]string{"allowed_assistants[1]"}},
		{"limited, transient", limited, apikeys.CreateParams{
			AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"a1"}, ExpiresAt: hour, TransientAssistant: true},
			[]string{"transient_assistant"}},
		{"limited, later expiry", limited, apikeys.CreateParams{
			AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"a1"}, ExpiresAt: hour.Add(time.Second)},
			[]string{"expires_at"}},
		{"exact origin, wildcard under it", exact, apikeys.CreateParams{AllowedOrigins: []string{"https://*.app.example.com"}},
			[]string{"allowed_origins[0]"}},
		{"exact origin, same", exact, apikeys.CreateParams{AllowedOrigins: []string{"https://app.example.com"}}, nil},
		{"exact origin, other port", exact, apikeys.CreateParams{AllowedOrigins: []string{"https://app.example.com:8443"}},
			[]string{"allowed_origins[0]"}},
		{"transient key, transient", transient, apikeys.CreateParams{TransientAssistant: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := apikeys.NewContext(e.ctx, tt.actor.Key)
			p := tt.p
			p.Name, p.UserID = "child", "alice"
			if p.Type == "" {
				p.Type = apikeys.Public
			}
			nk, err := e.m.Create(ctx, p)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, apikeys.ErrNotPermitted)
			assert.Equal(t, tt.want, permissionFields(err))
			assert.Zero(t, nk)
		})
	}
}

// TestNoWideningThroughUpdateDeleteRotate: a restricted key cannot widen
// itself, change, rotate or delete a key wider than itself, and a key in its
// rotation grace period cannot manage keys at all (issue 10: a rotated-out
// key cleared its own expiry and never retired).
func TestNoWideningThroughUpdateDeleteRotate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hour := e.clock.now().Add(time.Hour)
	full := e.create(t, apikeys.CreateParams{Type: apikeys.Private})
	limited := e.create(t, apikeys.CreateParams{Type: apikeys.Private, AllowedAssistants: []string{"a1", "a2"}, ExpiresAt: hour})
	narrower := e.create(t, apikeys.CreateParams{AllowedAssistants: []string{"a1"}, ExpiresAt: hour})
	as := apikeys.NewContext(e.ctx, limited.Key)

	_, err := e.m.Update(as, "alice", limited.ID, apikeys.UpdateParams{ExpiresAt: new(time.Time{})})
	assert.Equal(t, []string{"expires_at"}, permissionFields(err), "clear its own expiry")
	_, err = e.m.Update(as, "alice", limited.ID, apikeys.UpdateParams{AllowedAssistants: new([]string{})})
	assert.Equal(t, []string{"allowed_assistants"}, permissionFields(err), "drop its own assistant list")
	_, err = e.m.Update(as, "alice", limited.ID, apikeys.UpdateParams{AllowedAssistants: new([]string{"a1", "a9"})})
	assert.Equal(t, []string{"allowed_assistants[1]"}, permissionFields(err), "add an assistant")
	k, err := e.m.Update(as, "alice", limited.ID, apikeys.UpdateParams{AllowedAssistants: new([]string{"a1"})})
	require.NoError(t, err, "narrowing itself is fine")
	assert.Equal(t, []string{"a1"}, k.AllowedAssistants)

	_, err = e.m.Update(as, "alice", full.ID, apikeys.UpdateParams{Name: new("mine")})
	assert.ErrorIs(t, err, apikeys.ErrNotPermitted, "change a wider key")
	_, err = e.m.Rotate(as, "alice", full.ID, 0)
	assert.ErrorIs(t, err, apikeys.ErrNotPermitted, "rotate a wider key")
	_, err = e.m.Delete(as, "alice", full.ID)
	assert.ErrorIs(t, err, apikeys.ErrNotPermitted, "delete a wider key")
	_, err = e.m.Authorize(e.ctx, full.Value, apikeys.Request{})
	require.NoError(t, err, "the wider key is untouched")

	_, err = e.m.Update(as, "alice", narrower.ID, apikeys.UpdateParams{Name: new("renamed")})
	require.NoError(t, err, "a narrower key can be changed")
	_, err = e.m.Delete(as, "alice", narrower.ID)
	require.NoError(t, err, "and deleted")

	// Rotated out with a grace period: the old key works for requests, but
	// manages nothing, itself included.
	nk, err := e.m.Rotate(e.ctx, "alice", limited.ID, 30*time.Minute)
	require.NoError(t, err)
	_, err = e.m.Authorize(e.ctx, limited.Value, apikeys.Request{AssistantID: "a1"})
	require.NoError(t, err, "still works during its grace period")
	old, err := e.m.Get(e.ctx, "alice", limited.ID)
	require.NoError(t, err)
	assert.Equal(t, nk.ID, old.SuccessorID)
	retiring := apikeys.NewContext(e.ctx, old)
	for name, op := range map[string]func() error{
		"clear own expiry": func() error {
			_, err := e.m.Update(retiring, "alice", limited.ID, apikeys.UpdateParams{ExpiresAt: new(time.Time{})})
			return err
		},
		"create": func() error {
			_, err := e.m.Create(retiring, apikeys.CreateParams{Type: apikeys.Public, Name: "x", UserID: "alice", AllowedAssistants: []string{"a1"}, ExpiresAt: hour})
			return err
		},
		"list":   func() error { _, err := e.m.List(retiring, "alice", apikeys.ListParams{}); return err },
		"get":    func() error { _, err := e.m.Get(retiring, "alice", nk.ID); return err },
		"delete": func() error { _, err := e.m.Delete(retiring, "alice", nk.ID); return err },
	} {
		err := op()
		require.ErrorIs(t, err, apikeys.ErrNotPermitted, name)
		assert.Equal(t, []string{"key"}, permissionFields(err), name)
	}
}

// TestActingKeyMustStillWork: the acting key is read afresh, must be the
// user's own private key, and may be masked with WithoutKey.
func TestActingKeyMustStillWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pub := e.create(t, apikeys.CreateParams{Type: apikeys.Public})
	bobs := e.create(t, apikeys.CreateParams{Type: apikeys.Private, UserID: "bob"})
	gone := e.create(t, apikeys.CreateParams{Type: apikeys.Private})
	_, err := e.m.Delete(e.ctx, "alice", gone.ID)
	require.NoError(t, err)
	limited := e.create(t, apikeys.CreateParams{Type: apikeys.Private, AllowedAssistants: []string{"a1"}})
	stale := limited.Key
	stale.AllowedAssistants = nil // what the context says no longer counts

	p := apikeys.CreateParams{Type: apikeys.Private, Name: "x", UserID: "alice"}
	for name, actor := range map[string]apikeys.Key{
		"public key":      pub.Key,
		"another user's":  bobs.Key,
		"deleted":         gone.Key,
		"stale, narrowed": stale,
		"restricted":      limited.Key,
	} {
		_, err := e.m.Create(apikeys.NewContext(e.ctx, actor), p)
		assert.ErrorIs(t, err, apikeys.ErrNotPermitted, name)
	}
	masked := apikeys.WithoutKey(apikeys.NewContext(e.ctx, limited.Key))
	_, ok := apikeys.KeyFromContext(masked)
	assert.False(t, ok)
	_, err = e.m.Create(masked, p)
	require.NoError(t, err, "WithoutKey acts with the service's authority")
	_, ok = apikeys.KeyFromContext(apikeys.NewContext(masked, limited.Key))
	assert.True(t, ok, "a key set below WithoutKey counts again")
}

// TestOriginAllowedNames: ListsOrigin answers only for listed origins and
// AllowsOrigin answers Authorize's origin rule (issue 10: OriginAllowed was
// false for a key that allows every origin).
func TestOriginAllowedNames(t *testing.T) {
	t.Parallel()
	open := apikeys.Key{Type: apikeys.Public}
	listed := apikeys.Key{Type: apikeys.Public, AllowedOrigins: []string{"https://*.example.com"}}
	server := apikeys.Key{Type: apikeys.Private}
	browser := apikeys.Key{Type: apikeys.Private, AllowedOrigins: []string{"https://admin.example.com"}}
	tests := []struct {
		name          string
		k             apikeys.Key
		origin        string
		lists, allows bool
	}{
		{"public, no list, origin", open, "https://any.example", false, true},
		{"public, no list, no origin", open, "", false, true},
		{"public, listed", listed, "https://a.example.com", true, true},
		{"public, not listed", listed, "https://example.org", false, false},
		{"public, list, no origin", listed, "", false, false},
		{"private, no list, origin", server, "https://any.example", false, false},
		{"private, no list, null", server, "null", false, false},
		{"private, no list, no origin", server, "", false, true},
		{"private, listed", browser, "https://admin.example.com", true, true},
		{"private, not listed", browser, "https://a.example.com", false, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.lists, tt.k.ListsOrigin(tt.origin), "ListsOrigin: %s", tt.name)
		assert.Equal(t, tt.allows, tt.k.AllowsOrigin(tt.origin), "AllowsOrigin: %s", tt.name)
	}
	assert.True(t, slices.Equal([]string{"https://*.example.com"}, listed.AllowedOrigins))
}

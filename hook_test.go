package apikeys_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// recorder is a Hook that keeps what it is told.
type recorder struct {
	mu        sync.Mutex
	decisions []apikeys.Decision
	changes   []apikeys.Change
}

func (r *recorder) Decision(_ context.Context, d apikeys.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions = append(r.decisions, d)
}

func (r *recorder) Change(_ context.Context, c apikeys.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

// last returns the last decision and forgets every one.
func (r *recorder) last(t *testing.T) apikeys.Decision {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.decisions)
	d := r.decisions[len(r.decisions)-1]
	r.decisions = nil
	return d
}

func (r *recorder) takeChanges() []apikeys.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.changes
	r.changes = nil
	return c
}

// hookEnv is an env whose Manager has a recorder and token keys.
func hookEnv(t *testing.T, cfg apikeys.Config) (*env, *recorder) {
	t.Helper()
	rec := &recorder{}
	e := &env{store: memstore.New(), clock: newClock(), ctx: t.Context()}
	tk, err := apikeys.NewTokenKey()
	require.NoError(t, err)
	cfg.Now, cfg.Hook, cfg.TokenKeys = e.clock.now, rec, []apikeys.TokenKey{tk}
	m, err := apikeys.New(e.store, &cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	e.m = m
	return e, rec
}

func TestHookNilByDefault(t *testing.T) {
	t.Parallel()
	var cfg apikeys.Config
	assert.Nil(t, cfg.Hook)
	e := newEnv(t) // no hook: nothing to report to, and nothing fails
	nk := e.create(t, apikeys.CreateParams{})
	_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.NoError(t, err)
}

// TestHookDecisionReasons checks that every refusal reports its reason to
// the hook while the caller sees the error it always did: one
// ErrInvalidKey for every reason that is "invalid key" to callers.
func TestHookDecisionReasons(t *testing.T) {
	t.Parallel()
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprint("cached=", cached), func(t *testing.T) {
			t.Parallel()
			var cfg apikeys.Config
			if cached {
				cfg.Cache = &apikeys.CacheConfig{}
			}
			e, rec := hookEnv(t, cfg)
			public := e.create(t, apikeys.CreateParams{})
			private := e.create(t, apikeys.CreateParams{Type: apikeys.Private})
			expiring := e.create(t, apikeys.CreateParams{ExpiresAt: e.clock.now().Add(time.Hour)})
			disabled := e.create(t, apikeys.CreateParams{Disabled: true})
			origins := e.create(t, apikeys.CreateParams{AllowedOrigins: []string{"https://app.example.com"}})
			ips := e.create(t, apikeys.CreateParams{AllowedIPs: []string{"10.0.0.0/8"}})
			assistants := e.create(t, apikeys.CreateParams{AllowedAssistants: []string{"asst-1"}})
			scoped := e.create(t, apikeys.CreateParams{Scopes: []string{"calls:read"}})
			limited := e.create(t, apikeys.CreateParams{RateLimit: &apikeys.RateLimit{Limit: 1, WindowSeconds: 60}})
			broke := e.create(t, apikeys.CreateParams{Credits: &apikeys.Credits{Remaining: 0}})
			unknownID := uuid.Must(uuid.NewV7())
			unknown, err := apikeys.GenerateKey("ak", apikeys.Public, unknownID)
			require.NoError(t, err)
			wrong, err := apikeys.GenerateKey("ak", apikeys.Public, public.ID)
			require.NoError(t, err)
			_, err = e.m.Authorize(e.ctx, limited.Value, apikeys.Request{}) // spends the window
			require.NoError(t, err)
			tok, err := e.m.MintToken(e.ctx, "alice", apikeys.TokenParams{KeyID: private.ID})
			require.NoError(t, err)
			rec.takeChanges()

			tests := []struct {
				name    string
				key     string
				req     apikeys.Request
				before  func()
				reason  apikeys.Reason
				invalid bool // the caller sees ErrInvalidKey
				id      uuid.UUID
				token   bool
			}{
				{name: "allowed", key: public.Value, reason: apikeys.ReasonAllowed, id: public.ID},
				{name: "malformed", key: "ak_pk_nonsense", reason: apikeys.ReasonMalformed, invalid: true},
				{name: "unknown", key: unknown, reason: apikeys.ReasonUnknown, invalid: true, id: unknownID},
				{name: "wrong secret", key: wrong, reason: apikeys.ReasonWrongSecret, invalid: true, id: public.ID},
				{name: "disabled", key: disabled.Value, reason: apikeys.ReasonDisabled, invalid: true, id: disabled.ID},
				{name: "key type", key: public.Value, req: apikeys.Request{RequirePrivate: true}, reason: apikeys.ReasonKeyType, id: public.ID},
				{name: "private in browser", key: private.Value, req: apikeys.Request{Origin: "https://x.example"}, reason: apikeys.ReasonKeyType, id: private.ID},
				{name: "origin", key: origins.Value, req: apikeys.Request{Origin: "https://evil.example"}, reason: apikeys.ReasonOrigin, id: origins.ID},
				{name: "ip", key: ips.Value, req: apikeys.Request{ClientIP: netip.MustParseAddr("192.0.2.1")}, reason: apikeys.ReasonIP, id: ips.ID},
				{name: "assistant", key: assistants.Value, req: apikeys.Request{AssistantID: "asst-2"}, reason: apikeys.ReasonAssistant, id: assistants.ID},
				{name: "transient", key: public.Value, req: apikeys.Request{Transient: true}, reason: apikeys.ReasonTransient, id: public.ID},
				{name: "scope", key: scoped.Value, req: apikeys.Request{Scopes: []string{"calls:write"}}, reason: apikeys.ReasonScope, id: scoped.ID},
				{name: "rate limit", key: limited.Value, reason: apikeys.ReasonRateLimit, id: limited.ID},
				{name: "credits", key: broke.Value, reason: apikeys.ReasonCredits, id: broke.ID},
				{name: "bad cost", key: public.Value, req: apikeys.Request{Cost: -1}, reason: apikeys.ReasonBadRequest},
				{name: "token", key: tok.Token, reason: apikeys.ReasonAllowed, id: private.ID, token: true},
				{name: "token refused", key: tok.Token, req: apikeys.Request{Transient: true}, reason: apikeys.ReasonTransient, id: private.ID, token: true},
				{name: "bad token", key: tok.Token[:len(tok.Token)-2] + "xx", reason: apikeys.ReasonTokenInvalid, invalid: true, token: true},
				{name: "token of a disabled key", key: tok.Token, before: func() {
					_, err := e.m.Update(e.ctx, "alice", private.ID, apikeys.UpdateParams{Disabled: new(true)})
					require.NoError(t, err)
				}, reason: apikeys.ReasonDisabled, invalid: true, id: private.ID, token: true},
				{name: "token of a deleted key", key: tok.Token, before: func() {
					_, err := e.m.Delete(e.ctx, "alice", private.ID)
					require.NoError(t, err)
				}, reason: apikeys.ReasonUnknown, invalid: true, id: private.ID, token: true},
				{name: "expired", key: expiring.Value, before: func() { e.clock.advance(2 * time.Hour) }, reason: apikeys.ReasonExpired, invalid: true, id: expiring.ID},
			}
			for _, tt := range tests { // in order: the last ones change keys
				if tt.before != nil {
					tt.before()
				}
				_, err := e.m.Authorize(e.ctx, tt.key, tt.req)
				d := rec.last(t)
				assert.Equal(t, tt.reason, d.Reason, tt.name)
				assert.Equal(t, err == nil, d.Allowed, tt.name)
				assert.Equal(t, err, d.Err, tt.name)
				assert.Equal(t, tt.id, d.KeyID, tt.name)
				assert.Equal(t, tt.token, d.Token, tt.name)
				assert.Equal(t, tt.req, d.Request, tt.name)
				assert.False(t, d.Start.IsZero(), tt.name)
				assert.GreaterOrEqual(t, d.Duration, time.Duration(0), tt.name)
				if tt.id != uuid.Nil && tt.reason != apikeys.ReasonUnknown && tt.reason != apikeys.ReasonWrongSecret {
					assert.Equal(t, "alice", d.UserID, tt.name)
				}
				if tt.invalid {
					// One outcome to callers, whatever the reason.
					assert.ErrorIs(t, err, apikeys.ErrInvalidKey, tt.name)
					assert.Equal(t, apikeys.ErrInvalidKey.Error(), strings.SplitN(err.Error(), " (", 2)[0], tt.name)
				} else if tt.reason != apikeys.ReasonAllowed {
					assert.NotErrorIs(t, err, apikeys.ErrInvalidKey, tt.name)
				}
				if !cached || tt.id == uuid.Nil {
					assert.False(t, d.CacheHit, tt.name)
				}
				assert.Equal(t, cached && tt.id != uuid.Nil && tt.reason != apikeys.ReasonBadRequest, d.Cached, tt.name)
			}
		})
	}
}

func TestHookCacheHit(t *testing.T) {
	t.Parallel()
	e, rec := hookEnv(t, apikeys.Config{Cache: &apikeys.CacheConfig{}})
	nk := e.create(t, apikeys.CreateParams{})
	_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.NoError(t, err)
	d := rec.last(t)
	assert.True(t, d.Cached)
	assert.False(t, d.CacheHit)
	_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.NoError(t, err)
	d = rec.last(t)
	assert.True(t, d.Cached)
	assert.True(t, d.CacheHit)
}

func TestHookStoreAndClosed(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	m, err := apikeys.New(brokenStore{}, &apikeys.Config{Hook: rec})
	require.NoError(t, err)
	key, err := apikeys.GenerateKey("ak", apikeys.Public, uuid.Must(uuid.NewV7()))
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), key, apikeys.Request{})
	require.Error(t, err)
	d := rec.last(t)
	assert.Equal(t, apikeys.ReasonStore, d.Reason)
	assert.False(t, d.Allowed)
	require.NoError(t, m.Close(t.Context()))
	_, err = m.Authorize(t.Context(), key, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrClosed)
	assert.Equal(t, apikeys.ReasonClosed, rec.last(t).Reason)
	assert.Empty(t, rec.takeChanges(), "failed changes are not reported")
}

// TestHookChanges checks every kind of change, with before, after and the
// acting key.
func TestHookChanges(t *testing.T) {
	t.Parallel()
	e, rec := hookEnv(t, apikeys.Config{})
	admin := e.create(t, apikeys.CreateParams{Type: apikeys.Private, Name: "admin"})
	created := rec.takeChanges()
	require.Len(t, created, 1)
	c := created[0]
	assert.Equal(t, apikeys.ChangeCreated, c.Kind)
	assert.Equal(t, admin.ID, c.KeyID)
	assert.Equal(t, "alice", c.UserID)
	assert.Equal(t, uuid.Nil, c.Actor, "the service made it")
	assert.Equal(t, uuid.Nil, c.Before.ID)
	assert.Equal(t, admin.Key, c.After)

	acting := apikeys.NewContext(e.ctx, admin.Key)
	child, err := e.m.Create(acting, apikeys.CreateParams{Type: apikeys.Public, Name: "child", UserID: "alice"})
	require.NoError(t, err)
	changes := rec.takeChanges()
	require.Len(t, changes, 1)
	assert.Equal(t, admin.ID, changes[0].Actor)
	assert.Equal(t, child.ID, changes[0].KeyID)

	_, err = e.m.Update(acting, "alice", child.ID, apikeys.UpdateParams{Name: new("renamed")})
	require.NoError(t, err)
	_, err = e.m.Update(e.ctx, "alice", child.ID, apikeys.UpdateParams{Disabled: new(true)})
	require.NoError(t, err)
	_, err = e.m.Update(e.ctx, "alice", child.ID, apikeys.UpdateParams{Disabled: new(false), Name: new("again")})
	require.NoError(t, err)
	changes = rec.takeChanges()
	require.Len(t, changes, 3)
	assert.Equal(t, apikeys.ChangeUpdated, changes[0].Kind)
	assert.Equal(t, admin.ID, changes[0].Actor)
	assert.Equal(t, "child", changes[0].Before.Name)
	assert.Equal(t, "renamed", changes[0].After.Name)
	assert.Equal(t, apikeys.ChangeDisabled, changes[1].Kind)
	assert.False(t, changes[1].Before.Disabled)
	assert.True(t, changes[1].After.Disabled)
	assert.Equal(t, uuid.Nil, changes[1].Actor)
	assert.Equal(t, apikeys.ChangeEnabled, changes[2].Kind)
	assert.Equal(t, "again", changes[2].After.Name)

	e.clock.advance(time.Second)
	next, err := e.m.Rotate(e.ctx, "alice", child.ID, time.Hour)
	require.NoError(t, err)
	changes = rec.takeChanges()
	require.Len(t, changes, 2)
	assert.Equal(t, apikeys.ChangeCreated, changes[0].Kind)
	assert.Equal(t, next.ID, changes[0].KeyID)
	assert.Equal(t, apikeys.ChangeRotated, changes[1].Kind)
	assert.Equal(t, child.ID, changes[1].KeyID)
	assert.Equal(t, uuid.Nil, changes[1].Before.SuccessorID)
	assert.Equal(t, next.ID, changes[1].After.SuccessorID)
	assert.Equal(t, e.clock.now().Add(time.Hour), changes[1].After.ExpiresAt)

	next2, err := e.m.Rotate(e.ctx, "alice", next.ID, 0)
	require.NoError(t, err)
	changes = rec.takeChanges()
	require.Len(t, changes, 3)
	assert.Equal(t, []apikeys.ChangeKind{apikeys.ChangeCreated, apikeys.ChangeRotated, apikeys.ChangeDeleted},
		[]apikeys.ChangeKind{changes[0].Kind, changes[1].Kind, changes[2].Kind})
	assert.Equal(t, next2.ID, changes[0].KeyID)
	assert.Equal(t, next.ID, changes[2].KeyID)
	assert.Equal(t, uuid.Nil, changes[2].After.ID)

	_, err = e.m.Delete(acting, "alice", next2.ID)
	require.NoError(t, err)
	changes = rec.takeChanges()
	require.Len(t, changes, 1)
	assert.Equal(t, apikeys.ChangeDeleted, changes[0].Kind)
	assert.Equal(t, next2.ID, changes[0].KeyID)
	assert.Equal(t, "alice", changes[0].UserID)
	assert.Equal(t, admin.ID, changes[0].Actor)
	assert.Equal(t, next2.ID, changes[0].Before.ID)
	assert.Equal(t, uuid.Nil, changes[0].After.ID)

	// Refused changes are not reported.
	_, err = e.m.Update(e.ctx, "alice", next2.ID, apikeys.UpdateParams{Name: new("gone")})
	require.ErrorIs(t, err, apikeys.ErrNotFound)
	assert.Empty(t, rec.takeChanges())
}

// TestHookChangeDoesNotTouchCredits checks that reporting a change leaves
// the record alone: the Key a hook gets is a copy brought up to now.
func TestHookChangeDoesNotTouchCredits(t *testing.T) {
	t.Parallel()
	e, rec := hookEnv(t, apikeys.Config{})
	nk := e.create(t, apikeys.CreateParams{Credits: &apikeys.Credits{Remaining: 1, Refill: &apikeys.Refill{Amount: 5, IntervalSeconds: 60}}})
	_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.NoError(t, err)
	e.clock.advance(90 * time.Second) // one refill due, not yet applied in the store
	_, err = e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{Name: new("x")})
	require.NoError(t, err)
	changes := rec.takeChanges()
	require.Len(t, changes, 2)
	assert.Equal(t, int64(5), changes[1].Before.Credits.Remaining)
	k, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.NoError(t, err)
	left, _ := k.CreditsLeft(e.clock.now())
	assert.Equal(t, int64(4), left)
}

// TestHookNeverSeesAValue formats everything a hook was told and looks
// for the keys' values and secrets in it.
func TestHookNeverSeesAValue(t *testing.T) {
	t.Parallel()
	e, rec := hookEnv(t, apikeys.Config{Cache: &apikeys.CacheConfig{}})
	var values []string
	nk := e.create(t, apikeys.CreateParams{Type: apikeys.Private})
	values = append(values, nk.Value)
	other := e.create(t, apikeys.CreateParams{AllowedOrigins: []string{"https://a.example"}})
	values = append(values, other.Value)
	for _, v := range values {
		_, _ = e.m.Authorize(e.ctx, v, apikeys.Request{})
		_, _ = e.m.Authorize(e.ctx, v, apikeys.Request{Origin: "https://b.example"})
		_, _ = e.m.Authorize(e.ctx, changeLast(v), apikeys.Request{})
	}
	_, err := e.m.Update(e.ctx, "alice", other.ID, apikeys.UpdateParams{Disabled: new(true)})
	require.NoError(t, err)
	rot, err := e.m.Rotate(e.ctx, "alice", nk.ID, 0)
	require.NoError(t, err)
	values = append(values, rot.Value)
	_, _ = e.m.Authorize(e.ctx, rot.Value, apikeys.Request{})
	tok, err := e.m.MintToken(e.ctx, "alice", apikeys.TokenParams{KeyID: rot.ID})
	require.NoError(t, err)
	_, _ = e.m.Authorize(e.ctx, tok.Token, apikeys.Request{})
	_, err = e.m.Delete(e.ctx, "alice", other.ID)
	require.NoError(t, err)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.NotEmpty(t, rec.decisions)
	require.NotEmpty(t, rec.changes)
	var all strings.Builder
	for _, d := range rec.decisions {
		fmt.Fprintf(&all, "%+v\n%#v\n", d, d)
	}
	for _, c := range rec.changes {
		fmt.Fprintf(&all, "%+v\n%#v\n", c, c)
	}
	text := all.String()
	for _, v := range values {
		secret := v[len("ak_sk_")+22 : len(v)-6] // the body's secret part
		assert.NotContains(t, text, v)
		assert.NotContains(t, text, secret)
		assert.NotContains(t, text, secret[:16])
	}
	assert.NotContains(t, text, tok.Token)
}

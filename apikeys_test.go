package apikeys_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// clock is a settable time source for Config.Now.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock() *clock {
	c := &clock{}
	c.set(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	return c
}
func (c *clock) now() time.Time          { return *c.t.Load() }
func (c *clock) set(t time.Time)         { c.t.Store(&t) }
func (c *clock) advance(d time.Duration) { c.set(c.now().Add(d)) }

type env struct {
	m     *apikeys.Manager
	store *memstore.Store
	clock *clock
	ctx   context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{store: memstore.New(), clock: newClock(), ctx: t.Context()}
	m, err := apikeys.New(e.store, &apikeys.Config{Now: e.clock.now})
	require.NoError(t, err)
	e.m = m
	return e
}

func (e *env) create(t *testing.T, p apikeys.CreateParams) apikeys.NewKey {
	t.Helper()
	if p.Type == "" {
		p.Type = apikeys.Public
	}
	if p.Name == "" {
		p.Name = "test key"
	}
	if p.UserID == "" {
		p.UserID = "alice"
	}
	nk, err := e.m.Create(e.ctx, p)
	require.NoError(t, err)
	return nk
}

func fields(err error) []string {
	var out []string
	for _, fe := range apikeys.FieldErrors(err) {
		out = append(out, fe.Field)
	}
	return out
}

func TestNew(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	tests := []struct {
		name  string
		store apikeys.Store
		cfg   *apikeys.Config
		ok    bool
	}{
		{"nil config", s, nil, true},
		{"zero config", s, &apikeys.Config{}, true},
		{"custom prefix", s, &apikeys.Config{Prefix: "vapi2"}, true},
		{"nil store", nil, nil, false},
		{"prefix with underscore", s, &apikeys.Config{Prefix: "a_b"}, false},
		{"prefix upper-case", s, &apikeys.Config{Prefix: "AK"}, false},
		{"prefix starts with digit", s, &apikeys.Config{Prefix: "1ak"}, false},
		{"prefix too long", s, &apikeys.Config{Prefix: strings.Repeat("a", apikeys.MaxPrefixLen+1)}, false},
		{"negative limit", s, &apikeys.Config{MaxOrigins: -1}, false},
		{"default page over max", s, &apikeys.Config{DefaultListLimit: 50, MaxListLimit: 10}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := apikeys.New(tt.store, tt.cfg)
			if tt.ok {
				require.NoError(t, err)
				require.NotNil(t, m)
			} else {
				require.Error(t, err)
				require.Nil(t, m)
			}
		})
	}
}

func TestCustomPrefix(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	m, err := apikeys.New(s, &apikeys.Config{Prefix: "vapi"})
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "x", UserID: "u"})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(nk.Value, "vapi_sk_"), nk.Value)
	require.Len(t, nk.Value, len("vapi_sk_")+72)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)

	// A Manager with another prefix refuses it without a store read.
	other, err := apikeys.New(s, nil)
	require.NoError(t, err)
	_, err = other.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrInvalidKey)
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	valid := apikeys.CreateParams{Type: apikeys.Public, Name: "widget", UserID: "alice"}
	with := func(f func(*apikeys.CreateParams)) apikeys.CreateParams {
		p := valid
		f(&p)
		return p
	}
	many := func(n int, f func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	tests := []struct {
		name   string
		params apikeys.CreateParams
		fields []string
	}{
		{"no type", with(func(p *apikeys.CreateParams) { p.Type = "" }), []string{"key_type"}},
		{"bad type", with(func(p *apikeys.CreateParams) { p.Type = "admin" }), []string{"key_type"}},
		{"no name", with(func(p *apikeys.CreateParams) { p.Name = "" }), []string{"name"}},
		{"blank name", with(func(p *apikeys.CreateParams) { p.Name = " \t " }), []string{"name"}},
		{"long name", with(func(p *apikeys.CreateParams) { p.Name = strings.Repeat("é", 101) }), []string{"name"}},
		{"control in name", with(func(p *apikeys.CreateParams) { p.Name = "a\x07b" }), []string{"name"}},
		{"invalid UTF-8 name", with(func(p *apikeys.CreateParams) { p.Name = "a\xffb" }), []string{"name"}},
		{"no user", with(func(p *apikeys.CreateParams) { p.UserID = "" }), []string{"user_id"}},
		{"long user", with(func(p *apikeys.CreateParams) { p.UserID = strings.Repeat("u", 256) }), []string{"user_id"}},
		{"user with space", with(func(p *apikeys.CreateParams) { p.UserID = "a b" }), []string{"user_id"}},
		{"bad email", with(func(p *apikeys.CreateParams) { p.UserEmail = "not-an-email" }), []string{"user_email"}},
		{"email with name", with(func(p *apikeys.CreateParams) { p.UserEmail = "Al <al@example.com>" }), []string{"user_email"}},
		{"email without domain dot", with(func(p *apikeys.CreateParams) { p.UserEmail = "al@example" }), []string{"user_email"}},
		{"bad origin", with(func(p *apikeys.CreateParams) { p.AllowedOrigins = []string{"https://ok.example", "null"} }), []string{"allowed_origins[1]"}},
		{"too many origins", with(func(p *apikeys.CreateParams) {
			p.AllowedOrigins = many(101, func(i int) string { return fmt.Sprintf("https://a%d.example.com", i) })
		}), []string{"allowed_origins"}},
		{"bad assistant", with(func(p *apikeys.CreateParams) { p.AllowedAssistants = []string{"ok", "no spaces"} }), []string{"allowed_assistants[1]"}},
		{"empty assistant", with(func(p *apikeys.CreateParams) { p.AllowedAssistants = []string{""} }), []string{"allowed_assistants[0]"}},
		{"long assistant", with(func(p *apikeys.CreateParams) { p.AllowedAssistants = []string{strings.Repeat("a", 129)} }), []string{"allowed_assistants[0]"}},
		{"too many assistants", with(func(p *apikeys.CreateParams) {
			p.AllowedAssistants = many(1001, func(i int) string { return fmt.Sprint("a", i) })
		}), []string{"allowed_assistants"}},
		{"past expiry", with(func(p *apikeys.CreateParams) { p.ExpiresAt = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }), []string{"expires_at"}},
		{"everything wrong", apikeys.CreateParams{
			Type: "x", Name: "", UserID: "", UserEmail: "@", AllowedOrigins: []string{"*"},
			AllowedAssistants: []string{"a b"}, ExpiresAt: time.Unix(1, 0),
		}, []string{"key_type", "name", "allowed_origins[0]", "allowed_assistants[0]", "user_id", "user_email", "expires_at"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, err := e.m.Create(e.ctx, tt.params)
			require.ErrorIs(t, err, apikeys.ErrValidation)
			require.ElementsMatch(t, tt.fields, fields(err))
			var ve *apikeys.ValidationError
			require.ErrorAs(t, err, &ve)
			require.NotEmpty(t, ve.Reason)
			require.Zero(t, e.store.Len(), "an invalid create stored something")
		})
	}
}

func TestCreateLimitsAtTheEdge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	origins := make([]string, 100)
	for i := range origins {
		origins[i] = fmt.Sprintf("https://a%d.example.com", i)
	}
	assistants := make([]string, 1000)
	for i := range assistants {
		assistants[i] = fmt.Sprint("asst-", i)
	}
	nk := e.create(t, apikeys.CreateParams{
		Name: strings.Repeat("é", 100), AllowedOrigins: origins, AllowedAssistants: assistants,
		UserID: strings.Repeat("u", 255), UserEmail: "a.b+c@example.co.uk",
	})
	require.Len(t, nk.AllowedOrigins, 100)
	require.Len(t, nk.AllowedAssistants, 1000)
}

func TestCreateCanonicalizes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nk := e.create(t, apikeys.CreateParams{
		Name:              "  widget  ",
		AllowedOrigins:    []string{"HTTPS://App.Example.com:443", "https://app.example.com", "https://*.Example.org"},
		AllowedAssistants: []string{"a1", "a2", "a1"},
		UserEmail:         "al@example.com",
	})
	assert.Equal(t, "widget", nk.Name)
	assert.Equal(t, []string{"https://app.example.com", "https://*.example.org"}, nk.AllowedOrigins)
	assert.Equal(t, []string{"a1", "a2"}, nk.AllowedAssistants)
	got, err := e.m.Get(e.ctx, "alice", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, nk.Key, got)
}

func TestCreateResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	exp := e.clock.now().Add(24 * time.Hour)
	nk := e.create(t, apikeys.CreateParams{Type: apikeys.Private, ExpiresAt: exp, UserEmail: "al@example.com"})
	assert.Equal(t, uuid.Version(7), nk.ID.Version(), "ids are UUIDv7")
	assert.Regexp(t, `^ak_sk_[0-9A-Za-z]{72}$`, nk.Value)
	assert.Equal(t, "ak_sk_..."+nk.Value[len(nk.Value)-4:], nk.Hint)
	assert.Equal(t, e.clock.now(), nk.CreatedAt)
	assert.Equal(t, nk.CreatedAt, nk.UpdatedAt)
	assert.True(t, exp.Equal(nk.ExpiresAt))
	assert.Equal(t, []string{}, nk.AllowedOrigins, "empty lists are [] not nil")

	js, err := json.Marshal(nk)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(js, &m))
	assert.Equal(t, nk.Value, m["key_value"])
	for _, f := range []string{"id", "key_type", "name", "allowed_origins", "allowed_assistants", "transient_assistant", "user_id", "user_email", "hint", "created_at", "updated_at", "expires_at"} {
		assert.Contains(t, m, f)
	}
	assert.NotContains(t, m, "last_used_at", "unset optional times are omitted")

	got, err := e.m.Get(e.ctx, "alice", nk.ID)
	require.NoError(t, err)
	js, err = json.Marshal(got)
	require.NoError(t, err)
	assert.NotContains(t, string(js), "key_value")
	assert.NotContains(t, string(js), nk.Value[6:20])
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	open := e.create(t, apikeys.CreateParams{})
	private := e.create(t, apikeys.CreateParams{Type: apikeys.Private})
	web := e.create(t, apikeys.CreateParams{
		AllowedOrigins:    []string{"https://app.example.com", "https://*.example.org"},
		AllowedAssistants: []string{"asst-1", "asst-2"},
	})
	webOrigins := e.create(t, apikeys.CreateParams{AllowedOrigins: []string{"https://app.example.com", "https://*.example.org"}})
	transient := e.create(t, apikeys.CreateParams{TransientAssistant: true})
	assistants := e.create(t, apikeys.CreateParams{Type: apikeys.Private, AllowedAssistants: []string{"asst-1"}})
	privateWeb := e.create(t, apikeys.CreateParams{Type: apikeys.Private, AllowedOrigins: []string{"https://admin.example.com"}})

	tests := []struct {
		name string
		key  string
		req  apikeys.Request
		want error
	}{
		{"unrestricted, nothing asked", open.Value, apikeys.Request{}, nil},
		{"unrestricted, any origin", open.Value, apikeys.Request{Origin: "https://anything.example"}, nil},
		{"unrestricted, any assistant", open.Value, apikeys.Request{AssistantID: "whatever"}, nil},
		{"public on private endpoint", open.Value, apikeys.Request{RequirePrivate: true}, apikeys.ErrPrivateKeyRequired},
		{"private on private endpoint", private.Value, apikeys.Request{RequirePrivate: true}, nil},
		{"private on public endpoint", private.Value, apikeys.Request{}, nil},
		{"allowed origin", webOrigins.Value, apikeys.Request{Origin: "https://app.example.com"}, nil},
		{"wildcard origin", webOrigins.Value, apikeys.Request{Origin: "https://x.y.example.org"}, nil},
		{"allowed origin and assistant", web.Value, apikeys.Request{Origin: "https://x.y.example.org", AssistantID: "asst-1"}, nil},
		{"no origin, restricted key", web.Value, apikeys.Request{}, apikeys.ErrOriginNotAllowed},
		{"suffix attack", web.Value, apikeys.Request{Origin: "https://app.example.com.evil.com"}, apikeys.ErrOriginNotAllowed},
		{"prefix attack", web.Value, apikeys.Request{Origin: "https://evilapp.example.com"}, apikeys.ErrOriginNotAllowed},
		{"http for https", web.Value, apikeys.Request{Origin: "http://app.example.com"}, apikeys.ErrOriginNotAllowed},
		{"other port", web.Value, apikeys.Request{Origin: "https://app.example.com:8443"}, apikeys.ErrOriginNotAllowed},
		{"null origin", web.Value, apikeys.Request{Origin: "null"}, apikeys.ErrOriginNotAllowed},
		{"wildcard apex", web.Value, apikeys.Request{Origin: "https://example.org"}, apikeys.ErrOriginNotAllowed},
		{"allowed assistant", web.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-2"}, nil},
		{"other assistant", web.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-3"}, apikeys.ErrAssistantNotAllowed},
		{"assistant prefix", web.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-"}, apikeys.ErrAssistantNotAllowed},
		{"no assistant named, restricted key", web.Value, apikeys.Request{Origin: "https://app.example.com"}, apikeys.ErrAssistantNotAllowed},
		{"no assistant named, restricted private key", assistants.Value, apikeys.Request{}, apikeys.ErrAssistantNotAllowed},
		{"listed assistant, private key", assistants.Value, apikeys.Request{AssistantID: "asst-1"}, nil},
		{"private key from a browser", private.Value, apikeys.Request{Origin: "https://evil.example"}, apikeys.ErrPrivateKeyInBrowser},
		{"private key from a null origin", private.Value, apikeys.Request{Origin: "null"}, apikeys.ErrPrivateKeyInBrowser},
		{"private key, listed origin", privateWeb.Value, apikeys.Request{Origin: "https://admin.example.com"}, nil},
		{"private key, other origin", privateWeb.Value, apikeys.Request{Origin: "https://evil.example"}, apikeys.ErrPrivateKeyInBrowser},
		{"private key, null origin, origins listed", privateWeb.Value, apikeys.Request{Origin: "null"}, apikeys.ErrPrivateKeyInBrowser},
		{"private key with origins, server side", privateWeb.Value, apikeys.Request{}, apikeys.ErrOriginNotAllowed},
		{"transient refused", web.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-1", Transient: true}, apikeys.ErrTransientNotAllowed},
		{"transient allowed", transient.Value, apikeys.Request{Transient: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := e.m.Authorize(e.ctx, tt.key, tt.req)
			if tt.want == nil {
				require.NoError(t, err)
				require.Equal(t, tt.key[len(tt.key)-4:], k.Hint[len(k.Hint)-4:])
				return
			}
			require.ErrorIs(t, err, tt.want)
			require.Equal(t, tt.key[len(tt.key)-4:], k.Hint[len(k.Hint)-4:], "a refusal of a valid key names the key")
		})
	}
}

func TestPrivateKeyRequiredMessage(t *testing.T) {
	t.Parallel()
	msg := apikeys.ErrPrivateKeyRequired.Error()
	assert.Contains(t, msg, "private key")
	assert.Contains(t, msg, "public key was used")
}

// TestInvalidKeysIndistinguishable: every reason a key is not valid gives
// the same error value, so a caller learns nothing about which it was.
func TestInvalidKeysIndistinguishable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	live := e.create(t, apikeys.CreateParams{})
	deleted := e.create(t, apikeys.CreateParams{})
	_, err := e.m.Delete(e.ctx, "alice", deleted.ID)
	require.NoError(t, err)
	expiring := e.create(t, apikeys.CreateParams{ExpiresAt: e.clock.now().Add(time.Hour)})
	wrongSecret, err := apikeys.GenerateKey("ak", apikeys.Public, live.ID)
	require.NoError(t, err)
	unknown, err := apikeys.GenerateKey("ak", apikeys.Public, uuid.Must(uuid.NewV7()))
	require.NoError(t, err)
	swapped := "ak_sk_" + live.Value[6:]

	_, err = e.m.Authorize(e.ctx, expiring.Value, apikeys.Request{})
	require.NoError(t, err, "valid before expiry")
	e.clock.advance(time.Hour)

	for name, key := range map[string]string{
		"malformed":    "ak_pk_nope",
		"empty":        "",
		"bad checksum": changeLast(live.Value),
		"type swapped": swapped,
		"unknown id":   unknown,
		"wrong secret": wrongSecret,
		"deleted":      deleted.Value,
		"expired":      expiring.Value,
	} {
		k, err := e.m.Authorize(e.ctx, key, apikeys.Request{})
		if err != apikeys.ErrInvalidKey { //nolint:errorlint // identity is the point
			t.Errorf("%s: Authorize = %v, want exactly ErrInvalidKey", name, err)
		}
		if !reflect.DeepEqual(k, apikeys.Key{}) {
			t.Errorf("%s: an invalid key returned key data %+v", name, k)
		}
	}
}

// changeLast returns s with its last character replaced by another digit.
func changeLast(s string) string {
	if s[len(s)-1] == '0' {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.create(t, apikeys.CreateParams{UserID: "alice"})
	b := e.create(t, apikeys.CreateParams{UserID: "bob"})
	_, err := e.m.Get(e.ctx, "bob", a.ID)
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
	_, err = e.m.Update(e.ctx, "bob", a.ID, apikeys.UpdateParams{Name: new("mine now")})
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
	_, err = e.m.Delete(e.ctx, "bob", a.ID)
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
	_, err = e.m.Rotate(e.ctx, "bob", a.ID, 0)
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
	_, err = e.m.Get(e.ctx, "", a.ID)
	assert.ErrorIs(t, err, apikeys.ErrNotFound)

	page, err := e.m.List(e.ctx, "bob", apikeys.ListParams{})
	require.NoError(t, err)
	require.Len(t, page.Keys, 1)
	assert.Equal(t, b.ID, page.Keys[0].ID)

	got, err := e.m.Get(e.ctx, "alice", a.ID)
	require.NoError(t, err)
	assert.Equal(t, a.Key, got, "alice's key is untouched")
	_, err = e.m.Authorize(e.ctx, a.Value, apikeys.Request{})
	assert.NoError(t, err)
}

func TestList(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	m, err := apikeys.New(s, &apikeys.Config{DefaultListLimit: 4, MaxListLimit: 10})
	require.NoError(t, err)
	var want []uuid.UUID
	for range 11 {
		nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "alice"})
		require.NoError(t, err)
		want = append([]uuid.UUID{nk.ID}, want...)
	}

	var got []uuid.UUID
	var cursor string
	for pages := 1; ; pages++ {
		page, err := m.List(t.Context(), "alice", apikeys.ListParams{Cursor: cursor})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Keys), 4)
		for _, k := range page.Keys {
			got = append(got, k.ID)
		}
		if !page.HasMore {
			require.Empty(t, page.NextCursor)
			require.Equal(t, 3, pages)
			break
		}
		require.Equal(t, page.Keys[len(page.Keys)-1].ID.String(), page.NextCursor)
		cursor = page.NextCursor
	}
	require.Equal(t, want, got, "newest first, each once")

	page, err := m.List(t.Context(), "alice", apikeys.ListParams{Limit: 11 - 1})
	require.NoError(t, err)
	require.True(t, page.HasMore)
	page, err = m.List(t.Context(), "nobody", apikeys.ListParams{})
	require.NoError(t, err)
	require.NotNil(t, page.Keys)
	require.Empty(t, page.Keys)

	for name, opts := range map[string]apikeys.ListParams{
		"limit over max":   {Limit: 11},
		"negative limit":   {Limit: -1},
		"garbage cursor":   {Cursor: "nope"},
		"braced cursor":    {Cursor: "{" + want[0].String() + "}"},
		"urn cursor":       {Cursor: "urn:uuid:" + want[0].String()},
		"limit and cursor": {Limit: 99, Cursor: "x"},
	} {
		_, err := m.List(t.Context(), "alice", opts)
		assert.ErrorIs(t, err, apikeys.ErrValidation, name)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nk := e.create(t, apikeys.CreateParams{
		AllowedOrigins: []string{"https://a.example.com"}, AllowedAssistants: []string{"x"}, UserEmail: "al@example.com",
	})
	e.clock.advance(time.Minute)

	// Nothing given: nothing but updated_at changes.
	k, err := e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{})
	require.NoError(t, err)
	want := nk.Key
	want.UpdatedAt = e.clock.now()
	assert.Equal(t, want, k)

	exp := e.clock.now().Add(time.Hour)
	k, err = e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{
		Name:               new(" renamed "),
		AllowedOrigins:     &[]string{"HTTPS://B.example.com"},
		TransientAssistant: new(true),
		ExpiresAt:          &exp,
	})
	require.NoError(t, err)
	assert.Equal(t, "renamed", k.Name)
	assert.Equal(t, []string{"https://b.example.com"}, k.AllowedOrigins)
	assert.Equal(t, []string{"x"}, k.AllowedAssistants, "absent field unchanged")
	assert.True(t, k.TransientAssistant)
	assert.Equal(t, exp, k.ExpiresAt)
	assert.Equal(t, nk.Type, k.Type)
	assert.Equal(t, nk.CreatedAt, k.CreatedAt)
	got, err := e.m.Get(e.ctx, "alice", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, k, got)

	// Clearing lists and the expiry.
	k, err = e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{
		AllowedOrigins: &[]string{}, AllowedAssistants: &[]string{}, ExpiresAt: new(time.Time{}),
	})
	require.NoError(t, err)
	assert.Empty(t, k.AllowedOrigins)
	assert.Empty(t, k.AllowedAssistants)
	assert.True(t, k.ExpiresAt.IsZero())
	_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{Origin: "https://anywhere.example", AssistantID: "y"})
	assert.NoError(t, err, "restrictions lifted take effect at once")

	// A bad update reports every problem and changes nothing.
	before, err := e.m.Get(e.ctx, "alice", nk.ID)
	require.NoError(t, err)
	_, err = e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{
		Name: new(""), AllowedOrigins: &[]string{"null"}, AllowedAssistants: &[]string{"a b"}, ExpiresAt: new(time.Unix(5, 0)),
	})
	require.ErrorIs(t, err, apikeys.ErrValidation)
	assert.ElementsMatch(t, []string{"name", "allowed_origins[0]", "allowed_assistants[0]", "expires_at"}, fields(err))
	after, err := e.m.Get(e.ctx, "alice", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	_, err = e.m.Update(e.ctx, "alice", uuid.Must(uuid.NewV7()), apikeys.UpdateParams{Name: new("x")})
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
}

// racyStore lets a test run a competing write just before the Manager's
// Update lands, to show the Manager re-reads and re-applies instead of
// overwriting it.
type racyStore struct {
	*memstore.Store
	before  atomic.Int32 // how many Updates still get a competing write first
	compete func(apikeys.Record)
}

func (s *racyStore) Update(ctx context.Context, rec apikeys.Record) error {
	if s.before.Add(-1) >= 0 {
		s.compete(rec)
	}
	return s.Store.Update(ctx, rec)
}

func TestUpdateKeepsConcurrentChange(t *testing.T) {
	t.Parallel()
	rs := &racyStore{Store: memstore.New()}
	m, err := apikeys.New(rs, nil)
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "orig", UserID: "alice"})
	require.NoError(t, err)

	competitor := 0
	rs.compete = func(rec apikeys.Record) {
		cur, err := rs.Store.Get(t.Context(), rec.ID)
		require.NoError(t, err)
		competitor++
		cur.Name = fmt.Sprint("competitor ", competitor)
		cur.Version++
		require.NoError(t, rs.Store.Update(t.Context(), cur))
	}
	rs.before.Store(3)
	k, err := m.Update(t.Context(), "alice", nk.ID, apikeys.UpdateParams{TransientAssistant: new(true)})
	require.NoError(t, err)
	assert.True(t, k.TransientAssistant)
	assert.Equal(t, "competitor 3", k.Name, "the concurrent rename survives")

	// A store that always loses: the Manager gives up with ErrConflict.
	rs.before.Store(1000)
	_, err = m.Update(t.Context(), "alice", nk.ID, apikeys.UpdateParams{TransientAssistant: new(false)})
	assert.ErrorIs(t, err, apikeys.ErrConflict)
}

func TestConcurrentUpdatesThroughManager(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nk := e.create(t, apikeys.CreateParams{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if i%2 == 0 {
				_, err := e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{Name: new("final name")})
				assert.NoError(t, err)
			} else {
				_, err := e.m.Update(e.ctx, "alice", nk.ID, apikeys.UpdateParams{TransientAssistant: new(true)})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	k, err := e.m.Get(e.ctx, "alice", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, "final name", k.Name)
	assert.True(t, k.TransientAssistant)
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nk := e.create(t, apikeys.CreateParams{})
	_, err := e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	require.NoError(t, err)
	k, err := e.m.Delete(e.ctx, "alice", nk.ID)
	require.NoError(t, err)
	assert.Equal(t, nk.Key, k)
	_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "revoked at once")
	_, err = e.m.Delete(e.ctx, "alice", nk.ID)
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
	_, err = e.m.Get(e.ctx, "alice", nk.ID)
	assert.ErrorIs(t, err, apikeys.ErrNotFound)
}

func TestRotate(t *testing.T) {
	t.Parallel()
	t.Run("at once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		old := e.create(t, apikeys.CreateParams{
			Type: apikeys.Private, Name: "server", AllowedOrigins: []string{"https://a.example.com"},
			AllowedAssistants: []string{"x"}, TransientAssistant: true, UserEmail: "al@example.com",
		})
		e.clock.advance(time.Minute)
		nk, err := e.m.Rotate(e.ctx, "alice", old.ID, 0)
		require.NoError(t, err)
		assert.NotEqual(t, old.ID, nk.ID)
		assert.NotEqual(t, old.Value, nk.Value)
		assert.Equal(t, e.clock.now(), nk.CreatedAt)
		for _, pair := range [][2]any{
			{old.Type, nk.Type}, {old.Name, nk.Name}, {old.AllowedOrigins, nk.AllowedOrigins},
			{old.AllowedAssistants, nk.AllowedAssistants}, {old.TransientAssistant, nk.TransientAssistant},
			{old.UserID, nk.UserID}, {old.UserEmail, nk.UserEmail},
		} {
			assert.Equal(t, pair[0], pair[1], "settings carry over")
		}
		_, err = e.m.Authorize(e.ctx, old.Value, apikeys.Request{Origin: "https://a.example.com", AssistantID: "x"})
		assert.ErrorIs(t, err, apikeys.ErrInvalidKey)
		_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{Origin: "https://a.example.com", AssistantID: "x"})
		assert.NoError(t, err)
		_, err = e.m.Get(e.ctx, "alice", old.ID)
		assert.ErrorIs(t, err, apikeys.ErrNotFound)
	})
	t.Run("with grace", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		old := e.create(t, apikeys.CreateParams{})
		nk, err := e.m.Rotate(e.ctx, "alice", old.ID, time.Hour)
		require.NoError(t, err)
		e.clock.advance(59 * time.Minute)
		_, err = e.m.Authorize(e.ctx, old.Value, apikeys.Request{})
		assert.NoError(t, err, "old key works during the grace period")
		e.clock.advance(time.Minute)
		_, err = e.m.Authorize(e.ctx, old.Value, apikeys.Request{})
		assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "old key stops at the end of the grace period")
		_, err = e.m.Authorize(e.ctx, nk.Value, apikeys.Request{})
		assert.NoError(t, err)
	})
	t.Run("grace never extends an expiry", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		exp := e.clock.now().Add(10 * time.Minute)
		old := e.create(t, apikeys.CreateParams{ExpiresAt: exp})
		nk, err := e.m.Rotate(e.ctx, "alice", old.ID, time.Hour)
		require.NoError(t, err)
		assert.Equal(t, exp, nk.ExpiresAt, "the new key keeps the expiry")
		k, err := e.m.Get(e.ctx, "alice", old.ID)
		require.NoError(t, err)
		assert.Equal(t, exp, k.ExpiresAt)
	})
	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		old := e.create(t, apikeys.CreateParams{ExpiresAt: e.clock.now().Add(time.Minute)})
		_, err := e.m.Rotate(e.ctx, "alice", old.ID, -time.Second)
		assert.ErrorIs(t, err, apikeys.ErrValidation)
		e.clock.advance(time.Minute)
		_, err = e.m.Rotate(e.ctx, "alice", old.ID, 0)
		assert.ErrorIs(t, err, apikeys.ErrValidation, "an expired key cannot be rotated")
		_, err = e.m.Rotate(e.ctx, "alice", uuid.Must(uuid.NewV7()), 0)
		assert.ErrorIs(t, err, apikeys.ErrNotFound)
		require.Equal(t, 1, e.store.Len(), "nothing was created")
	})
}

func TestPepper(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	peppered, err := apikeys.New(s, &apikeys.Config{Pepper: []byte("server secret")})
	require.NoError(t, err)
	nk, err := peppered.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "x", UserID: "u"})
	require.NoError(t, err)
	_, err = peppered.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)

	for name, cfg := range map[string]*apikeys.Config{
		"no pepper":    nil,
		"other pepper": {Pepper: []byte("other secret")},
	} {
		m, err := apikeys.New(s, cfg)
		require.NoError(t, err)
		_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
		assert.ErrorIs(t, err, apikeys.ErrInvalidKey, name)
	}
}

// brokenStore fails every call, as a store whose server is down does.
type brokenStore struct{}

var errDown = errors.New("connection refused")

func (brokenStore) Create(context.Context, apikeys.Record) error { return errDown }
func (brokenStore) Get(context.Context, uuid.UUID) (apikeys.Record, error) {
	return apikeys.Record{}, errDown
}
func (brokenStore) List(context.Context, string, apikeys.ListQuery) ([]apikeys.Record, error) {
	return nil, errDown
}
func (brokenStore) Update(context.Context, apikeys.Record) error       { return errDown }
func (brokenStore) Delete(context.Context, string, uuid.UUID) error    { return errDown }
func (brokenStore) TouchLastUsed(context.Context, []apikeys.Use) error { return errDown }
func (brokenStore) Spend(context.Context, apikeys.SpendRequest) (apikeys.Record, bool, error) {
	return apikeys.Record{}, false, errDown
}
func (brokenStore) Refund(context.Context, apikeys.RefundRequest) error { return errDown }

func TestStoreFailureFailsClosed(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(brokenStore{}, nil)
	require.NoError(t, err)
	key, err := apikeys.GenerateKey("ak", apikeys.Public, uuid.Must(uuid.NewV7()))
	require.NoError(t, err)
	id := uuid.Must(uuid.NewV7())
	ops := map[string]func() error{
		"Authorize": func() error { _, err := m.Authorize(t.Context(), key, apikeys.Request{}); return err },
		"Create": func() error {
			_, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "x", UserID: "u"})
			return err
		},
		"Get":    func() error { _, err := m.Get(t.Context(), "u", id); return err },
		"List":   func() error { _, err := m.List(t.Context(), "u", apikeys.ListParams{}); return err },
		"Update": func() error { _, err := m.Update(t.Context(), "u", id, apikeys.UpdateParams{}); return err },
		"Delete": func() error { _, err := m.Delete(t.Context(), "u", id); return err },
		"Rotate": func() error { _, err := m.Rotate(t.Context(), "u", id, 0); return err },
	}
	for name, op := range ops {
		err := op()
		var se *apikeys.StoreError
		assert.ErrorAs(t, err, &se, name)
		assert.ErrorIs(t, err, errDown, name)
		for _, not := range []error{apikeys.ErrInvalidKey, apikeys.ErrNotFound, apikeys.ErrValidation} {
			assert.NotErrorIs(t, err, not, name)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	t.Parallel()
	assert.Nil(t, apikeys.FieldErrors(nil))
	assert.Nil(t, apikeys.FieldErrors(errDown))
	ve := &apikeys.ValidationError{Field: "name", Reason: "is required"}
	assert.Equal(t, "apikeys: invalid name: is required", ve.Error())
	wrapped := fmt.Errorf("ctx: %w", errors.Join(ve, errDown, &apikeys.ValidationError{Field: "x", Reason: "y"}))
	got := apikeys.FieldErrors(wrapped)
	require.Len(t, got, 2)
	assert.Equal(t, ve, got[0])
	assert.True(t, slices.ContainsFunc(got, func(v *apikeys.ValidationError) bool { return v.Field == "x" }))
}

func TestContext(t *testing.T) {
	t.Parallel()
	_, ok := apikeys.KeyFromContext(t.Context())
	require.False(t, ok)
	k := apikeys.Key{ID: uuid.Must(uuid.NewV7()), UserID: "u"}
	got, ok := apikeys.KeyFromContext(apikeys.NewContext(t.Context(), k))
	require.True(t, ok)
	require.Equal(t, k, got)
}

func TestValidateDryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.NoError(t, e.m.ValidateCreate(apikeys.CreateParams{Type: apikeys.Public, Name: "x", UserID: "u"}))
	err := e.m.ValidateCreate(apikeys.CreateParams{Type: "x", Name: "x", UserID: "u"})
	require.ErrorIs(t, err, apikeys.ErrValidation)
	require.Equal(t, []string{"key_type"}, fields(err))
	require.NoError(t, e.m.ValidateUpdate(apikeys.UpdateParams{Name: new("ok")}))
	err = e.m.ValidateUpdate(apikeys.UpdateParams{Name: new(""), AllowedOrigins: &[]string{"null"}})
	require.ElementsMatch(t, []string{"name", "allowed_origins[0]"}, fields(err))
	require.Zero(t, e.store.Len(), "validation stores nothing")
}

func TestContextDelegates(t *testing.T) {
	t.Parallel()
	type other struct{}
	parent, cancel := context.WithCancel(context.WithValue(t.Context(), other{}, "v"))
	ctx := apikeys.NewContext(parent, apikeys.Key{UserID: "u"})
	require.Equal(t, "v", ctx.Value(other{}), "other values pass through")
	inner := apikeys.NewContext(ctx, apikeys.Key{UserID: "inner"})
	k, _ := apikeys.KeyFromContext(inner)
	require.Equal(t, "inner", k.UserID, "the innermost key wins")
	cancel()
	<-ctx.Done() // cancellation passes through
	require.ErrorIs(t, ctx.Err(), context.Canceled)
}

// hangingStore never answers Get, Spend or List until the context ends, like a
// store whose server stopped responding. It embeds the interface, not
// memstore, so memstore's Local marker is not promoted.
type hangingStore struct{ apikeys.Store }

func (hangingStore) Get(ctx context.Context, _ uuid.UUID) (apikeys.Record, error) {
	<-ctx.Done()
	return apikeys.Record{}, ctx.Err()
}

func (hangingStore) Spend(ctx context.Context, _ apikeys.SpendRequest) (apikeys.Record, bool, error) {
	<-ctx.Done()
	return apikeys.Record{}, false, ctx.Err()
}

func (hangingStore) List(ctx context.Context, _ string, _ apikeys.ListQuery) ([]apikeys.Record, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestOpTimeout(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(hangingStore{memstore.New()}, &apikeys.Config{OpTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	key, err := apikeys.GenerateKey("ak", apikeys.Public, uuid.Must(uuid.NewV7()))
	require.NoError(t, err)
	for name, op := range map[string]func() error{
		"Authorize": func() error { _, err := m.Authorize(t.Context(), key, apikeys.Request{}); return err },
		"Get":       func() error { _, err := m.Get(t.Context(), "u", uuid.Must(uuid.NewV7())); return err },
		"List":      func() error { _, err := m.List(t.Context(), "u", apikeys.ListParams{}); return err },
	} {
		// The store returns only when its context ends, and t.Context has
		// no deadline: DeadlineExceeded can only be OpTimeout's.
		err := op()
		var se *apikeys.StoreError
		assert.ErrorAs(t, err, &se, name)
		assert.ErrorIs(t, err, context.DeadlineExceeded, name)
	}
	// A shorter deadline of the caller wins.
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	m2, err := apikeys.New(hangingStore{memstore.New()}, &apikeys.Config{OpTimeout: time.Hour})
	require.NoError(t, err)
	_, err = m2.Authorize(ctx, key, apikeys.Request{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestOpTimeoutDefaults: the documented default applies to stores that can
// wait on I/O, and not to Local ones (a bug: New once kept the Config from
// before its defaults were filled in).
func TestOpTimeoutDefaults(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		store apikeys.Store
		cfg   *apikeys.Config
		want  time.Duration
	}{
		"remote store, default":   {hangingStore{memstore.New()}, nil, 5 * time.Second},
		"remote store, set":       {hangingStore{memstore.New()}, &apikeys.Config{OpTimeout: time.Second}, time.Second},
		"remote store, off":       {hangingStore{memstore.New()}, &apikeys.Config{OpTimeout: -1}, 0},
		"local store, default":    {memstore.New(), nil, 0},
		"local store, set anyway": {memstore.New(), &apikeys.Config{OpTimeout: time.Second}, 0},
	} {
		m, err := apikeys.New(tc.store, tc.cfg)
		require.NoError(t, err)
		assert.Equal(t, tc.want, apikeys.OpTimeoutOf(m), name)
	}
}

package apikeys_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// TestPepperRotation: a key digested with an old pepper still authorizes
// and is moved to the current one in the background, after which a
// Manager that knows only the current pepper accepts it; without the old
// pepper it is a wrong secret.
func TestPepperRotation(t *testing.T) {
	t.Parallel()
	for name, old := range map[string][]byte{"from a pepper": []byte("pepper-A"), "from no pepper": nil} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := memstore.New()
			before, err := apikeys.New(s, &apikeys.Config{Pepper: old})
			require.NoError(t, err)
			nk, err := before.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "alice"})
			require.NoError(t, err)

			onlyNew, err := apikeys.New(s, &apikeys.Config{Pepper: []byte("pepper-B")})
			require.NoError(t, err)
			v, err := onlyNew.Verify(t.Context(), nk.Value)
			require.NoError(t, err)
			assert.Equal(t, apikeys.ReasonWrongSecret, v.Reason, "the new pepper alone does not know the key yet")

			rotating, err := apikeys.New(s, &apikeys.Config{Pepper: []byte("pepper-B"), OldPeppers: [][]byte{[]byte("unused"), old}})
			require.NoError(t, err)
			v, err = rotating.Verify(t.Context(), nk.Value)
			require.NoError(t, err)
			assert.True(t, v.Valid && v.OldPepper, "%+v", v)
			_, err = rotating.Authorize(t.Context(), nk.Value, apikeys.Request{})
			require.NoError(t, err, "an old pepper's key authorizes")
			assert.Equal(t, int64(1), rotating.OldPepperUses())
			require.NoError(t, rotating.Close(context.Background()), "Close waits for the re-digest")

			_, err = onlyNew.Authorize(t.Context(), nk.Value, apikeys.Request{})
			require.NoError(t, err, "moved to the current pepper")
			v, err = onlyNew.Verify(t.Context(), nk.Value)
			require.NoError(t, err)
			assert.True(t, v.Valid && !v.OldPepper)
			_, err = before.Authorize(t.Context(), nk.Value, apikeys.Request{})
			assert.ErrorIs(t, err, apikeys.ErrInvalidKey, "the old pepper alone no longer knows it")
		})
	}
}

// TestPepperRotationLimitedKey: a limited key under an old pepper spends
// exactly, on the path that reads with Spend (a remote store's known
// limited keys), whose digest check the old digest must pass.
func TestPepperRotationLimitedKey(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	before, err := apikeys.New(s, &apikeys.Config{Pepper: []byte("A")})
	require.NoError(t, err)
	nk, err := before.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "alice", RateLimit: rate(3, 3600)})
	require.NoError(t, err)
	// As a remote store, and without re-digests finishing first: the
	// Manager is closed only at the end.
	m, err := apikeys.New(struct{ apikeys.Store }{s}, &apikeys.Config{Pepper: []byte("B"), OldPeppers: [][]byte{[]byte("A")}})
	require.NoError(t, err)
	for i := range 3 {
		_, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{})
		require.NoError(t, err, "request %d", i+1)
	}
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.ErrorIs(t, err, apikeys.ErrRateLimited)
	require.NoError(t, m.Close(context.Background()))
	rec, err := s.Get(t.Context(), nk.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(3), rec.Usage.WindowUsed)
}

func TestOldPepperIsNotTheCurrentOne(t *testing.T) {
	t.Parallel()
	_, err := apikeys.New(memstore.New(), &apikeys.Config{Pepper: []byte("A"), OldPeppers: [][]byte{[]byte("A")}})
	assert.Error(t, err)
	_, err = apikeys.New(memstore.New(), &apikeys.Config{OldPeppers: [][]byte{nil}})
	assert.Error(t, err, "no pepper now and no pepper before")
}

// TestVerify: the operator's reason for each kind of invalid key, without
// using the key.
func TestVerify(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, apikeys.CreateParams{})
	ctx := t.Context()
	mk := func(p apikeys.CreateParams) apikeys.NewKey {
		p.Type, p.Name, p.UserID = apikeys.Public, "k", "alice"
		nk, err := e.m.Create(ctx, p)
		require.NoError(t, err)
		return nk
	}
	valid := mk(apikeys.CreateParams{RateLimit: rate(1, 3600)})
	disabled := mk(apikeys.CreateParams{Disabled: true})
	expiring := mk(apikeys.CreateParams{ExpiresAt: e.clock.now().Add(time.Minute)})
	deleted := mk(apikeys.CreateParams{})
	_, err := e.m.Delete(ctx, "alice", deleted.ID)
	require.NoError(t, err)
	tok := e.mint(t, apikeys.TokenParams{})
	e.clock.advance(time.Minute)
	wrong := []byte(valid.Value)
	wrong[len(wrong)-10] ^= 1 // a wrong secret, and so a wrong checksum: malformed
	for name, tt := range map[string]struct {
		key    string
		reason apikeys.Reason
	}{
		"valid":     {valid.Value, apikeys.ReasonAllowed},
		"disabled":  {disabled.Value, apikeys.ReasonDisabled},
		"expired":   {expiring.Value, apikeys.ReasonExpired},
		"deleted":   {deleted.Value, apikeys.ReasonUnknown},
		"malformed": {string(wrong), apikeys.ReasonMalformed},
		"token":     {tok.Token, apikeys.ReasonAllowed},
		"bad token": {tok.Token[:len(tok.Token)-1] + "x", apikeys.ReasonTokenInvalid}, // never a strict last character
		"empty":     {"", apikeys.ReasonMalformed},
	} {
		v, err := e.m.Verify(ctx, tt.key)
		require.NoError(t, err, name)
		assert.Equal(t, tt.reason, v.Reason, name)
		assert.Equal(t, tt.reason == apikeys.ReasonAllowed, v.Valid, name)
	}
	for range 3 {
		v, err := e.m.Verify(ctx, valid.Value)
		require.NoError(t, err)
		require.True(t, v.Valid, "Verify spends nothing: the key's limit of 1 is untouched")
	}
	_, err = e.m.Authorize(ctx, valid.Value, apikeys.Request{})
	require.NoError(t, err)
}

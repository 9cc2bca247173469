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

// TestClosedManagerRefusesEverything: after Close every method returns
// ErrClosed, Authorize included (issue 10: uses were dropped silently).
func TestClosedManagerRefusesEverything(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "k", UserID: "u"})
	require.NoError(t, err)
	require.NoError(t, m.Close(t.Context()))
	require.NoError(t, m.Close(t.Context()), "a second Close is fine")
	for name, op := range map[string]func() error{
		"Authorize": func() error { _, err := m.Authorize(t.Context(), nk.Value, apikeys.Request{}); return err },
		"Create": func() error {
			_, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "x", UserID: "u"})
			return err
		},
		"Get":    func() error { _, err := m.Get(t.Context(), "u", nk.ID); return err },
		"List":   func() error { _, err := m.List(t.Context(), "u", apikeys.ListParams{}); return err },
		"Update": func() error { _, err := m.Update(t.Context(), "u", nk.ID, apikeys.UpdateParams{}); return err },
		"Delete": func() error { _, err := m.Delete(t.Context(), "u", nk.ID); return err },
		"Rotate": func() error { _, err := m.Rotate(t.Context(), "u", nk.ID, 0); return err },
	} {
		assert.ErrorIs(t, op(), apikeys.ErrClosed, name)
	}
}

// hungTouchStore never answers TouchLastUsed until its context ends. It
// embeds the interface, so memstore's Local marker is not promoted.
type hungTouchStore struct{ apikeys.Store }

func (hungTouchStore) TouchLastUsed(ctx context.Context, _ []apikeys.Use) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestCloseBoundedByOpTimeout: the last-used flush in Close is a store call
// like any other, bounded by OpTimeout (issue 10: Close with
// context.Background() waited for a hung store forever).
func TestCloseBoundedByOpTimeout(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(hungTouchStore{memstore.New()}, &apikeys.Config{OpTimeout: 20 * time.Millisecond, LastUsedInterval: time.Hour})
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "u"})
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- m.Close(context.Background()) }()
	select {
	case err = <-done:
	case <-t.Context().Done():
		t.Fatal("Close waited for the hung store past the test's deadline")
	}
	var se *apikeys.StoreError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

package apikeys_test

import (
	"context"
	"errors"
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

// TestConcurrentRotatesOneSuccessor: of concurrent rotations of one key,
// exactly one succeeds, and the key ends with exactly one successor
// (issue 10: two concurrent rotates left two live successors).
func TestConcurrentRotatesOneSuccessor(t *testing.T) {
	t.Parallel()
	for _, grace := range []time.Duration{0, time.Hour} {
		t.Run(grace.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			old := e.create(t, apikeys.CreateParams{Type: apikeys.Private})
			const n = 8
			var wg sync.WaitGroup
			keys := make([]apikeys.NewKey, n)
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					keys[i], errs[i] = e.m.Rotate(e.ctx, "alice", old.ID, grace)
				})
			}
			close(start)
			wg.Wait()
			var winner apikeys.NewKey
			wins := 0
			for i, err := range errs {
				if err == nil {
					wins++
					winner = keys[i]
					continue
				}
				assert.True(t, errors.Is(err, apikeys.ErrAlreadyRotated) || errors.Is(err, apikeys.ErrNotFound) || errors.Is(err, apikeys.ErrConflict), "%v", err)
				assert.Zero(t, keys[i], "a failed rotation returns no key")
			}
			require.Equal(t, 1, wins)
			page, err := e.m.List(e.ctx, "alice", apikeys.ListParams{})
			require.NoError(t, err)
			var ids []uuid.UUID
			for _, k := range page.Keys {
				ids = append(ids, k.ID)
			}
			if grace == 0 {
				assert.Equal(t, []uuid.UUID{winner.ID}, ids, "only the successor is left")
			} else {
				assert.Equal(t, []uuid.UUID{winner.ID, old.ID}, ids, "the old key and one successor")
				assert.Equal(t, winner.ID, page.Keys[1].SuccessorID)
			}
			_, err = e.m.Authorize(e.ctx, winner.Value, apikeys.Request{})
			assert.NoError(t, err)
		})
	}
}

func TestRotateRotatedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old := e.create(t, apikeys.CreateParams{Type: apikeys.Private})
	nk, err := e.m.Rotate(e.ctx, "alice", old.ID, time.Hour)
	require.NoError(t, err)
	_, err = e.m.Rotate(e.ctx, "alice", old.ID, time.Hour)
	require.ErrorIs(t, err, apikeys.ErrAlreadyRotated)
	assert.Contains(t, err.Error(), nk.ID.String(), "names the successor")
	_, err = e.m.Rotate(e.ctx, "alice", nk.ID, time.Hour)
	require.NoError(t, err, "the successor rotates")
}

// hookStore runs a hook once, after the first Create that follows arm.
type hookStore struct {
	apikeys.Store
	armed atomic.Bool
	hook  func()
}

func (s *hookStore) Create(ctx context.Context, rec apikeys.Record) error {
	err := s.Store.Create(ctx, rec)
	if err == nil && s.armed.CompareAndSwap(true, false) {
		s.hook()
	}
	return err
}

// TestRotateSeesConcurrentUpdate: an Update that lands between Rotate's read
// and its retirement of the old key is never undone by the new key (issue
// 10: an origin removed by the Update came back on the new key).
func TestRotateSeesConcurrentUpdate(t *testing.T) {
	t.Parallel()
	mem := memstore.New()
	s := &hookStore{Store: mem}
	m, err := apikeys.New(s, nil)
	require.NoError(t, err)
	other, err := apikeys.New(mem, nil) // another instance on the same data
	require.NoError(t, err)
	ctx := t.Context()
	old, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "web", UserID: "alice",
		AllowedOrigins: []string{"https://a.example.com", "https://leaked.example.com"}})
	require.NoError(t, err)
	var hookErr error
	s.hook = func() {
		_, hookErr = other.Update(ctx, "alice", old.ID, apikeys.UpdateParams{AllowedOrigins: new([]string{"https://a.example.com"})})
	}
	s.armed.Store(true)

	nk, err := m.Rotate(ctx, "alice", old.ID, time.Hour)
	require.NoError(t, err)
	require.NoError(t, hookErr)
	assert.Equal(t, []string{"https://a.example.com"}, nk.AllowedOrigins, "the new key has the update")
	page, err := m.List(ctx, "alice", apikeys.ListParams{})
	require.NoError(t, err)
	require.Len(t, page.Keys, 2, "the first new key was rolled back")
	assert.Equal(t, nk.ID, page.Keys[0].ID)
	assert.Equal(t, nk.ID, page.Keys[1].SuccessorID)
	_, err = m.Authorize(ctx, nk.Value, apikeys.Request{Origin: "https://leaked.example.com"})
	assert.ErrorIs(t, err, apikeys.ErrOriginNotAllowed)
}

// failStore fails Update calls that retire a key (set a SuccessorID), and
// Delete calls when failDelete is set.
type failStore struct {
	apikeys.Store
	failDelete bool
}

func (s failStore) Update(ctx context.Context, rec apikeys.Record) error {
	if rec.SuccessorID != uuid.Nil && !s.failDelete {
		return errDown
	}
	return s.Store.Update(ctx, rec)
}

func (s failStore) Delete(ctx context.Context, user string, id uuid.UUID) error {
	if s.failDelete {
		return errDown
	}
	return s.Store.Delete(ctx, user, id)
}

// TestRotateFailedRetirement: when retiring the old key fails, the caller
// gets the new key and its value with ErrOldKeyLive, never a working key
// nobody has (issue 10: the REST answer was a 503 while the new key worked).
func TestRotateFailedRetirement(t *testing.T) {
	t.Parallel()
	mem := memstore.New()
	m, err := apikeys.New(failStore{Store: mem}, nil)
	require.NoError(t, err)
	old, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "k", UserID: "alice"})
	require.NoError(t, err)
	nk, err := m.Rotate(t.Context(), "alice", old.ID, 0)
	require.ErrorIs(t, err, apikeys.ErrOldKeyLive)
	require.ErrorIs(t, err, errDown)
	var se *apikeys.StoreError
	require.ErrorAs(t, err, &se)
	require.NotEmpty(t, nk.Value, "the caller has the new key")
	for _, v := range []string{nk.Value, old.Value} {
		_, err = m.Authorize(t.Context(), v, apikeys.Request{})
		assert.NoError(t, err, "both keys work")
	}
}

// TestRotateAtOnceFailedDelete: with no grace, a failed delete of the old
// key still leaves it refused, because it was expired first.
func TestRotateAtOnceFailedDelete(t *testing.T) {
	t.Parallel()
	mem := memstore.New()
	m, err := apikeys.New(failStore{Store: mem, failDelete: true}, nil)
	require.NoError(t, err)
	old, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "k", UserID: "alice"})
	require.NoError(t, err)
	nk, err := m.Rotate(t.Context(), "alice", old.ID, 0)
	require.NoError(t, err)
	_, err = m.Authorize(t.Context(), old.Value, apikeys.Request{})
	assert.ErrorIs(t, err, apikeys.ErrInvalidKey)
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	assert.NoError(t, err)
}

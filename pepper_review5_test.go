package apikeys_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// redigestFirstStore is a remote store whose Spend waits until an Update
// (the background re-digest) has been stored: the order the scheduler may
// well choose on its own.
type redigestFirstStore struct {
	apikeys.Store
	once    sync.Once
	updated chan struct{}
}

func (s *redigestFirstStore) Update(ctx context.Context, rec apikeys.Record) error {
	err := s.Store.Update(ctx, rec)
	s.once.Do(func() { close(s.updated) })
	return err
}

func (s *redigestFirstStore) Spend(ctx context.Context, r apikeys.SpendRequest) (apikeys.Record, bool, error) {
	<-s.updated
	return s.Store.Spend(ctx, r)
}

// TestReview5OldPepperLimitedKeyRacesItsRedigest: a valid limited key
// under an old pepper must not be refused because its own background
// re-digest finished between the read and the Spend (Spend is called with
// the old digest, the store now holds the new one).
func TestReview5OldPepperLimitedKeyRacesItsRedigest(t *testing.T) {
	t.Parallel()
	s := memstore.New()
	before, err := apikeys.New(s, &apikeys.Config{Pepper: []byte("A")})
	require.NoError(t, err)
	nk, err := before.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: "alice", RateLimit: rate(3, 3600)})
	require.NoError(t, err)
	rs := &redigestFirstStore{Store: s, updated: make(chan struct{})}
	m, err := apikeys.New(rs, &apikeys.Config{Pepper: []byte("B"), OldPeppers: [][]byte{[]byte("A")}})
	require.NoError(t, err)
	defer m.Close(context.Background())
	_, err = m.Authorize(t.Context(), nk.Value, apikeys.Request{})
	require.NoError(t, err, "a valid key, refused because it was re-digested meanwhile")
}

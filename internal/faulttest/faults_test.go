package faulttest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// TestUnreachable: with the server unreachable (new connections refused,
// open ones cut), every Manager operation fails within its deadline with a
// *StoreError, and the middleware answers 503 for a valid key.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		// A cache that has not seen the key: Authorize must go to the store.
		m := newManager(t, f, apikeys.Config{Cache: &apikeys.CacheConfig{TTL: time.Minute}})
		srv := serve(t, m)
		const user = "user-unreachable"
		k, err := m.Create(okCtx(t), createParams(user, "before the outage"))
		require.NoError(t, err)

		f.proxy.Down()
		for _, o := range allOps(t, m, user, k) {
			requireFailsClosed(t, f, "down", o)
		}
		requireMiddleware503(t, f, "down", srv, k.Value)
	})
}

// TestHung: with the connections open but the server answering nothing,
// every operation fails closed, ended by OpTimeout or the caller's
// deadline.
func TestHung(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		m := newManager(t, f, apikeys.Config{})
		srv := serve(t, m)
		const user = "user-hung"
		k, err := m.Create(okCtx(t), createParams(user, "before the hang"))
		require.NoError(t, err)
		_, err = m.Authorize(okCtx(t), k.Value, okRequest) // a pooled connection is open
		require.NoError(t, err)

		f.proxy.Delay(hang)
		for _, o := range allOps(t, m, user, k) {
			err := requireFailsClosed(t, f, "hung", o)
			requireEndedByDeadline(t, f, "hung", o.name, err)
		}
		requireMiddleware503(t, f, "hung", srv, k.Value)

		// The caller's context has no deadline: only OpTimeout can end it.
		start := time.Now()
		_, err = m.Get(context.Background(), user, k.ID)
		elapsed := time.Since(start)
		var se *apikeys.StoreError
		require.ErrorAs(t, err, &se)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "a Get cut short by OpTimeout")
		t.Logf("%s hung: Get without a caller deadline failed in %v (OpTimeout %v): %v", f.name, elapsed.Round(time.Millisecond), opTimeout, err)
	})
}

// TestCacheTTL: a key authorized before the outage is allowed from the
// cache during it within Cache.TTL (the documented bound), and refused
// with a StoreError (503) from the instant the TTL has passed.
func TestCacheTTL(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		const ttl = 30 * time.Second
		clk := newClock()
		m := newManager(t, f, apikeys.Config{Now: clk.Now(), Cache: &apikeys.CacheConfig{TTL: ttl}})
		srv := serve(t, m)
		k, err := m.Create(okCtx(t), createParams("user-ttl", "cached"))
		require.NoError(t, err)
		t0 := clk.now()
		_, err = m.Authorize(okCtx(t), k.Value, okRequest) // cached at t0
		require.NoError(t, err)

		f.proxy.Down()
		for _, after := range []time.Duration{0, ttl / 2, ttl - time.Millisecond} {
			clk.set(t0.Add(after))
			got, err := m.Authorize(callCtx(t), k.Value, okRequest)
			require.NoErrorf(t, err, "%s down: cached key refused %v after caching, within the TTL %v", f.name, after, ttl)
			assert.Equal(t, k.ID, got.ID)
			status, body, _ := fetch(t, srv, k.Value)
			assert.Equalf(t, http.StatusOK, status, "middleware within the TTL; body %s", body)
			t.Logf("%s down: cached key allowed %v after caching (TTL %v), middleware %d", f.name, after, ttl, status)
		}
		for _, after := range []time.Duration{ttl, ttl + time.Millisecond, 2 * ttl, time.Hour} {
			clk.set(t0.Add(after))
			fault := fmt.Sprintf("down, %v after caching (TTL %v)", after, ttl)
			requireFailsClosed(t, f, fault, op{"Authorize(cached key)", func(ctx context.Context) error {
				_, err := m.Authorize(ctx, k.Value, okRequest)
				return err
			}})
			requireMiddleware503(t, f, fault, srv, k.Value)
		}
	})
}

// TestRecovery: after an outage, a hang and a cut, the same Manager, store
// and client work again once the server is back, without a restart.
func TestRecovery(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, f *fixture) {
		m := newManager(t, f, apikeys.Config{})
		const user = "user-recovery"
		k, err := m.Create(okCtx(t), createParams(user, "survivor"))
		require.NoError(t, err)
		roundTrip(t, m, user, k) // connections are pooled

		faults := []struct {
			name        string
			inject, fix func()
		}{
			{"down", f.proxy.Down, func() { require.NoError(t, f.proxy.Up()) }},
			{"hung", func() { f.proxy.Delay(hang) }, func() { f.proxy.Delay(0) }},
			{"cut", f.proxy.Cut, func() {}},
		}
		for _, fault := range faults {
			fault.inject()
			if fault.name != "cut" { // after a cut, a retry on a new connection may well succeed
				err := requireFailsClosed(t, f, fault.name, op{"Get", func(ctx context.Context) error {
					_, err := m.Get(ctx, user, k.ID)
					return err
				}})
				if fault.name == "hung" {
					requireEndedByDeadline(t, f, fault.name, "Get", err)
				}
			}
			fault.fix()
			start := time.Now()
			attempts, err := poll(recoverWithin, func() error {
				_, err := m.Get(callCtx(t), user, k.ID)
				return err
			})
			require.NoErrorf(t, err, "%s: not recovered %v after %s was lifted (%d attempts)", f.name, recoverWithin, fault.name, attempts)
			t.Logf("%s %s lifted: Get works again after %d attempt(s) in %v", f.name, fault.name, attempts, time.Since(start).Round(time.Millisecond))
			for range 5 {
				roundTrip(t, m, user, k)
			}
			t.Logf("%s %s lifted: 5 rounds of Create/Get/List/Update/Authorize/Rotate/Delete all succeeded", f.name, fault.name)
		}
	})
}

// roundTrip runs every operation once and requires each to succeed.
func roundTrip(t *testing.T, m *apikeys.Manager, user string, k apikeys.NewKey) {
	t.Helper()
	ctx := callCtx(t)
	_, err := m.Get(ctx, user, k.ID)
	require.NoError(t, err, "Get")
	_, err = m.Authorize(callCtx(t), k.Value, okRequest)
	require.NoError(t, err, "Authorize")
	nk, err := m.Create(callCtx(t), createParams(user, "round trip"))
	require.NoError(t, err, "Create")
	_, err = m.Update(callCtx(t), user, nk.ID, apikeys.UpdateParams{Name: new("round trip, renamed")})
	require.NoError(t, err, "Update")
	page, err := m.List(callCtx(t), user, apikeys.ListParams{})
	require.NoError(t, err, "List")
	require.True(t, containsID(page.Keys, nk.Key), "List shows the new key")
	rk, err := m.Rotate(callCtx(t), user, nk.ID, 0)
	require.NoError(t, err, "Rotate")
	_, err = m.Authorize(callCtx(t), nk.Value, okRequest)
	require.ErrorIs(t, err, apikeys.ErrInvalidKey, "the rotated-out key")
	_, err = m.Authorize(callCtx(t), rk.Value, okRequest)
	require.NoError(t, err, "Authorize the rotated key")
	_, err = m.Delete(callCtx(t), user, rk.ID)
	require.NoError(t, err, "Delete")
	_, err = m.Get(callCtx(t), user, rk.ID)
	require.True(t, errors.Is(err, apikeys.ErrNotFound), "Get after Delete: %v", err)
}

func containsID(keys []apikeys.Key, k apikeys.Key) bool {
	for _, x := range keys {
		if x.ID == k.ID {
			return true
		}
	}
	return false
}

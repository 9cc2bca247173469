package apikeys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Rotate issues a new key with the same settings as the user's key id and
// retires the old one: at once when grace is 0, else grace from now (or at
// its own expiry, if that is sooner). The old key records the new one as
// its SuccessorID; a key has at most one successor, and rotating a key
// that has one fails with ErrAlreadyRotated.
//
// Rotate is atomic against concurrent changes: the old key is retired only
// at the version that was read and copied. When another change wins (a
// concurrent Update, Delete or Rotate), the new key is removed again and
// Rotate starts over from a fresh read, so the new key never carries
// settings the old one no longer has.
//
// A failed retirement never leaves a key nobody can use. The new key is
// stored before the old one is touched; if retiring the old key then fails
// (a store error, whose write may or may not have been applied), Rotate
// returns the new key, with its value, together with an error that wraps
// ErrOldKeyLive and the *StoreError: the new key works and the old one may
// too. Any other error comes with a zero NewKey, and nothing was changed
// (a new key that had to be removed but could not be is named in the error
// and logged).
//
// With grace 0 the old key is first retired by an expiry of now, which
// ends it at once on every instance, and then deleted; a failed delete
// leaves an expired record, which authorizes nothing.
func (m *Manager) Rotate(ctx context.Context, userID string, id uuid.UUID, grace time.Duration) (NewKey, error) {
	if err := m.live(); err != nil {
		return NewKey{}, err
	}
	if grace < 0 {
		return NewKey{}, &ValidationError{Field: "grace_period", Reason: "must not be negative"}
	}
	a, err := m.actor(ctx, userID, ScopeKeysWrite)
	if err != nil {
		return NewKey{}, err
	}
	for attempt := 1; ; attempt++ {
		old, err := m.owned(ctx, userID, id)
		if err != nil {
			return NewKey{}, err
		}
		if err := within(a, &old.Key); err != nil {
			return NewKey{}, err
		}
		now := m.now()
		switch {
		case old.SuccessorID != uuid.Nil:
			return NewKey{}, fmt.Errorf("%w: its successor is %s; rotate that key instead", ErrAlreadyRotated, old.SuccessorID)
		case old.Expired(now):
			return NewKey{}, &ValidationError{Field: "id", Reason: "the key has expired; create a new one"}
		}
		rec := Record{Key: old.Key, Version: 1}
		rec.CreatedAt, rec.UpdatedAt, rec.LastUsedAt = now, now, time.Time{}
		nk, err := m.insert(ctx, rec)
		if err != nil {
			return NewKey{}, err
		}

		retired := old
		retired.Version++
		retired.UpdatedAt = now
		retired.SuccessorID = nk.ID
		if end := normTime(now.Add(grace)); retired.ExpiresAt.IsZero() || end.Before(retired.ExpiresAt) {
			retired.ExpiresAt = end
		}
		opCtx, cancel := m.op(ctx)
		err = m.store.Update(opCtx, retired)
		cancel()
		if !errors.Is(err, ErrConflict) {
			m.changed(ctx, id) // also on failure: the write may have been applied
		}
		switch {
		case err == nil:
			if m.hook != nil {
				m.observeChange(ctx, ChangeCreated, Key{}, m.snapshot(nk.Key))
				m.observeChange(ctx, ChangeRotated, m.snapshot(old.Key), m.snapshot(retired.Key))
			}
			if grace == 0 {
				m.deleteRetired(ctx, userID, &retired)
			}
			return nk, nil
		case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
			// Another change won: the retirement was not applied.
			if rerr := m.rollback(ctx, userID, nk.ID); rerr != nil {
				return NewKey{}, rerr
			}
			if errors.Is(err, ErrNotFound) {
				return NewKey{}, ErrNotFound
			}
			if attempt == updateAttempts {
				return NewKey{}, ErrConflict
			}
		default:
			if m.hook != nil { // the new key works; the old one is as it was, or retired
				m.observeChange(ctx, ChangeCreated, Key{}, m.snapshot(nk.Key))
			}
			return nk, fmt.Errorf("apikeys: rotate: new key %s created, old key %s not retired: %w: %w", nk.ID, id, ErrOldKeyLive, &StoreError{Op: "update", Err: err})
		}
	}
}

// rollback removes a new key whose predecessor could not be retired. It
// runs even if the caller gave up, within OpTimeout.
func (m *Manager) rollback(ctx context.Context, userID string, id uuid.UUID) error {
	opCtx, cancel := m.op(context.WithoutCancel(ctx))
	err := m.store.Delete(opCtx, userID, id)
	cancel()
	m.changed(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		m.log.ErrorContext(ctx, "apikeys: rotate: cannot remove the new key after a concurrent change; delete it by hand", "id", id, "err", err)
		return fmt.Errorf("apikeys: rotate: concurrent change, and the new key %s could not be removed: %w", id, &StoreError{Op: "delete", Err: err})
	}
	return nil
}

// deleteRetired deletes a key that Rotate has already expired. A failure
// is only logged: the expired record authorizes nothing.
func (m *Manager) deleteRetired(ctx context.Context, userID string, retired *Record) {
	id := retired.ID
	opCtx, cancel := m.op(ctx)
	err := m.store.Delete(opCtx, userID, id)
	cancel()
	m.changed(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		m.log.ErrorContext(ctx, "apikeys: rotate: the old key is expired but could not be deleted", "id", id, "err", err)
		return
	}
	if err == nil && m.hook != nil {
		m.observeChange(ctx, ChangeDeleted, m.snapshot(retired.Key), Key{})
	}
}

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
// its own expiry, if that is sooner). The new key is stored before the old
// one is touched, so a failure in between leaves both working, never
// neither.
func (m *Manager) Rotate(ctx context.Context, userID string, id uuid.UUID, grace time.Duration) (NewKey, error) {
	if grace < 0 {
		return NewKey{}, &ValidationError{Field: "grace_period", Reason: "must not be negative"}
	}
	old, err := m.owned(ctx, userID, id)
	if err != nil {
		return NewKey{}, err
	}
	now := m.now()
	if old.Expired(now) {
		return NewKey{}, &ValidationError{Field: "id", Reason: "the key has expired; create a new one"}
	}
	rec := Record{Key: old.Key, Version: 1}
	rec.CreatedAt, rec.UpdatedAt, rec.LastUsedAt = now, now, time.Time{}
	nk, err := m.insert(ctx, rec)
	if err != nil {
		return NewKey{}, err
	}
	if grace == 0 {
		_, err = m.Delete(ctx, userID, id)
	} else {
		retire := normTime(now.Add(grace))
		_, err = m.modify(ctx, userID, id, func(r *Record) {
			if r.ExpiresAt.IsZero() || retire.Before(r.ExpiresAt) {
				r.ExpiresAt = retire
			}
		})
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nk, fmt.Errorf("apikeys: rotate: new key %s created, old key not retired: %w", nk.ID, err)
	}
	return nk, nil
}

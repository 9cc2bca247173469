package apikeys

import (
	"context"
	"errors"

	"github.com/google/uuid"
)

// Pepper rotation
//
// Config.Pepper digests new keys; Config.OldPeppers are the peppers keys
// were digested with before. A presented key whose stored digest is not
// the current pepper's is tried with each old pepper in turn (a nil entry
// stands for "no pepper", plain SHA-256, for turning a pepper on); if one
// matches, the key authorizes as usual and is re-digested with the current
// pepper in the background, once per key at a time, like last-used
// writes. Close waits for re-digests in flight. To retire an old pepper:
// deploy the new one with the old in OldPeppers on every instance, let
// keys be used, and remove the old pepper once OldPepperUses stays at zero
// (and `apikeys verify` no longer reports keys under it) for longer than
// your keys go unused. A key never used in that time stops working when
// the old pepper goes.

// oldDigest returns the digest of key under the first old pepper whose
// digest is stored, and whether one is.
func (m *Manager) oldDigest(key string, stored Digest) (Digest, bool) {
	for _, d := range m.oldDigesters {
		if od := d.digest(key); od.equal(stored) {
			return od, true
		}
	}
	return Digest{}, false
}

// underOldPepper returns the digest of key under the old pepper whose
// digest is stored, when there is one, and starts moving the key to the
// current pepper's digest.
func (m *Manager) underOldPepper(key string, id uuid.UUID, digest, stored Digest) (Digest, bool) {
	od, ok := m.oldDigest(key, stored)
	if ok {
		m.oldPepperUses.Add(1)
		m.redigest(id, od, digest)
	}
	return od, ok
}

// OldPepperUses returns how many times this Manager has authorized (or
// verified) a key digested with one of Config.OldPeppers: a key the
// background re-digest had not yet moved to the current pepper.
func (m *Manager) OldPepperUses() int64 { return m.oldPepperUses.Load() }

// redigest moves key id from the digest old to the current pepper's new,
// in the background, unless it is already being moved. A failure (a
// concurrent change, the store down) is left for the key's next use.
func (m *Manager) redigest(id uuid.UUID, old, new Digest) {
	if _, busy := m.redigesting.LoadOrStore(id, struct{}{}); busy {
		return
	}
	m.bgMu.Lock()
	if m.closed.Load() {
		m.bgMu.Unlock()
		m.redigesting.Delete(id)
		return
	}
	m.bg.Add(1)
	m.bgMu.Unlock()
	go func() {
		defer m.bg.Done()
		defer m.redigesting.Delete(id)
		// Not ended by Close, which waits for it: a re-digest is one
		// read and one write, bounded by OpTimeout.
		ctx, cancel := m.op(context.WithoutCancel(m.bgCtx))
		defer cancel()
		rec, err := m.store.Get(ctx, id)
		if err != nil || !rec.Digest.equal(old) {
			return // gone, changed or moved already
		}
		rec.Digest = new
		rec.Version++
		switch err := m.store.Update(ctx, rec); {
		case err == nil:
			m.changed(ctx, id)
		case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
		default:
			m.log.ErrorContext(ctx, "apikeys: cannot re-digest a key with the current pepper; it stays under the old one", "id", id, "err", err)
		}
	}()
}

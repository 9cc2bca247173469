package apikeys

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// CreateParams describes a new key.
type CreateParams struct {
	Type               KeyType
	Name               string
	AllowedOrigins     []string
	AllowedAssistants  []string
	TransientAssistant bool
	// Scopes: "resource:action" entries ("calls:write", "calls:*"); none
	// means no scope restriction.
	Scopes []string
	// AllowedIPs: IP addresses or CIDR prefixes ("203.0.113.7",
	// "10.0.0.0/8", "2001:db8::/32"); none means any client address.
	AllowedIPs []string
	// Disabled creates the key switched off.
	Disabled bool
	// RateLimit, when not nil, caps what the key may spend per window.
	RateLimit *RateLimit
	// Credits, when not nil, is the key's budget, refilling (if at all)
	// from creation on. Remaining is taken as given: set it, or the key
	// starts with none.
	Credits   *Credits
	UserID    string
	UserEmail string
	// ExpiresAt, when not zero, must be in the future.
	ExpiresAt time.Time
}

// Create validates p and stores a new key. The returned NewKey holds the
// key value, which is never stored and cannot be read again. Every invalid
// field is reported (errors.Is(err, ErrValidation); FieldErrors lists them)
// and nothing is stored.
//
// When ctx carries a key (NewContext; the middleware sets it), the key is
// created with that key's authority and can only narrow it: see the
// package documentation. A refusal unwraps to ErrNotPermitted and
// PermissionErrors lists the fields. This holds for every method that
// changes keys; reads only check that the key may manage keys at all.
func (m *Manager) Create(ctx context.Context, p CreateParams) (NewKey, error) {
	if err := m.live(); err != nil {
		return NewKey{}, err
	}
	now := m.now()
	rec, probs := m.checkCreate(p, now)
	if len(probs) > 0 {
		return NewKey{}, probs.err()
	}
	a, err := m.actor(ctx, rec.UserID, ScopeKeysWrite)
	if err != nil {
		return NewKey{}, err
	}
	if err := within(a, &rec.Key); err != nil {
		return NewKey{}, err
	}
	rec.CreatedAt, rec.UpdatedAt = now, now
	nk, err := m.insert(ctx, rec)
	if err == nil && m.hook != nil {
		m.observeChange(ctx, ChangeCreated, Key{}, m.snapshot(nk.Key))
	}
	return nk, err
}

// ValidateCreate reports what Create would refuse in p, without storing
// anything. It returns nil when Create would accept p.
func (m *Manager) ValidateCreate(p CreateParams) error {
	_, probs := m.checkCreate(p, m.now())
	return probs.err()
}

func (m *Manager) checkCreate(p CreateParams, now time.Time) (Record, problems) {
	var probs problems
	if p.Type != Private && p.Type != Public {
		probs.add("key_type", `must be "private" or "public"`)
	}
	rec := Record{Version: 1}
	rec.Type = p.Type
	rec.TransientAssistant = p.TransientAssistant
	rec.Name = m.checkName(&probs, p.Name)
	rec.AllowedOrigins = m.checkOrigins(&probs, p.AllowedOrigins)
	rec.AllowedAssistants = m.checkAssistants(&probs, p.AllowedAssistants)
	rec.Scopes = m.checkScopes(&probs, p.Scopes)
	rec.AllowedIPs = m.checkIPs(&probs, p.AllowedIPs)
	rec.Disabled = p.Disabled
	rec.RateLimit = checkRateLimit(&probs, p.RateLimit)
	rec.Credits = checkCredits(&probs, p.Credits)
	if rec.Credits != nil {
		rec.Usage.RefilledAt = now.Unix()
	}
	rec.UserID = checkUserID(&probs, p.UserID)
	rec.UserEmail = checkEmail(&probs, p.UserEmail)
	rec.ExpiresAt = checkExpiry(&probs, p.ExpiresAt, now)
	return rec, probs
}

// insert gives rec a fresh id and value and stores it.
func (m *Manager) insert(ctx context.Context, rec Record) (NewKey, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return NewKey{}, fmt.Errorf("apikeys: new id: %w", err)
	}
	value, err := generateKey(m.cfg.Prefix, rec.Type, id)
	if err != nil {
		return NewKey{}, fmt.Errorf("apikeys: new key: %w", err)
	}
	rec.ID = id
	rec.Hint = hint(m.cfg.Prefix, value)
	rec.Digest = m.digest.digest(value)
	opCtx, cancel := m.op(ctx)
	defer cancel()
	if err := m.store.Create(opCtx, rec); err != nil {
		return NewKey{}, &StoreError{Op: "create", Err: err}
	}
	if m.cache != nil {
		m.cache.invalidate(id)
	}
	return NewKey{Key: m.public(rec.Key), Value: value}, nil
}

// Get returns the user's key with the id, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, userID string, id uuid.UUID) (Key, error) {
	if err := m.live(); err != nil {
		return Key{}, err
	}
	if _, err := m.actor(ctx, userID, ScopeKeysRead); err != nil {
		return Key{}, err
	}
	rec, err := m.owned(ctx, userID, id)
	if err != nil {
		return Key{}, err
	}
	return m.public(rec.Key), nil
}

// owned reads the record and checks that it belongs to the user.
func (m *Manager) owned(ctx context.Context, userID string, id uuid.UUID) (Record, error) {
	if userID == "" {
		return Record{}, ErrNotFound
	}
	opCtx, cancel := m.op(ctx)
	defer cancel()
	rec, err := m.store.Get(opCtx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Record{}, ErrNotFound
	case err != nil:
		return Record{}, &StoreError{Op: "get", Err: err}
	case rec.UserID != userID:
		return Record{}, ErrNotFound
	}
	return rec, nil
}

// ListParams selects a page of keys.
type ListParams struct {
	// Limit is the page size: 0 for Config.DefaultListLimit, at most
	// Config.MaxListLimit.
	Limit int
	// Cursor is Page.NextCursor of the previous page; empty for the first.
	Cursor string
}

// Page is one page of a listing, newest key first.
type Page struct {
	Keys []Key
	// NextCursor fetches the next page; empty when HasMore is false.
	NextCursor string
	HasMore    bool
}

// List returns a page of the user's keys, newest first. Keys created while
// a client pages through are never repeated or skipped among the older
// ones: the cursor is the last id seen and ids are time-ordered.
func (m *Manager) List(ctx context.Context, userID string, opts ListParams) (Page, error) {
	if err := m.live(); err != nil {
		return Page{}, err
	}
	var probs problems
	limit := opts.Limit
	if limit == 0 {
		limit = m.cfg.DefaultListLimit
	}
	if limit < 1 || limit > m.cfg.MaxListLimit {
		probs.add("limit", "must be 1 to "+strconv.Itoa(m.cfg.MaxListLimit))
	}
	var before uuid.UUID
	if opts.Cursor != "" {
		id, err := uuid.Parse(opts.Cursor)
		if err != nil || len(opts.Cursor) != 36 {
			probs.add("cursor", "not a cursor returned by a previous page")
		}
		before = id
	}
	if len(probs) > 0 {
		return Page{}, probs.err()
	}
	if userID == "" {
		return Page{Keys: []Key{}}, nil
	}
	if _, err := m.actor(ctx, userID, ScopeKeysRead); err != nil {
		return Page{}, err
	}
	opCtx, cancel := m.op(ctx)
	defer cancel()
	recs, err := m.store.List(opCtx, userID, ListQuery{Before: before, Limit: limit + 1})
	if err != nil {
		return Page{}, &StoreError{Op: "list", Err: err}
	}
	page := Page{Keys: make([]Key, 0, min(len(recs), limit))}
	for i, rec := range recs {
		if i == limit {
			page.HasMore = true
			page.NextCursor = page.Keys[limit-1].ID.String()
			break
		}
		page.Keys = append(page.Keys, m.public(rec.Key))
	}
	return page, nil
}

// UpdateParams is a partial update: nil fields are left as they are. The key
// type cannot change. With Go 1.26, new(v) makes the pointers:
// UpdateParams{Name: new("staging")}.
type UpdateParams struct {
	Name               *string
	AllowedOrigins     *[]string
	AllowedAssistants  *[]string
	TransientAssistant *bool
	Scopes             *[]string
	AllowedIPs         *[]string
	// Disabled switches the key off (true) or on again (false); every
	// other setting is kept either way.
	Disabled *bool
	// ExpiresAt sets the expiry; a pointer to the zero time removes it.
	ExpiresAt *time.Time
	// RateLimit sets the rate limit; RemoveRateLimit removes it. The
	// current window's count is kept either way.
	RateLimit       *RateLimit
	RemoveRateLimit bool
	// Credits replaces the credits, Remaining and Refill both (a nil
	// Refill removes the refill), refilling (if at all) from now;
	// RemoveCredits removes them.
	Credits       *Credits
	RemoveCredits bool
}

// Update applies u to the user's key and returns the result. Concurrent
// updates of one key are serialized: each is applied to the latest
// version, none is lost. The owner may move or clear the expiry of any of
// their keys, including an expired one, which then works again; this
// includes the expiry Rotate set on a rotated-out key. A key acting through
// ctx can only narrow (see Create), and cannot change a key wider than
// itself.
func (m *Manager) Update(ctx context.Context, userID string, id uuid.UUID, u UpdateParams) (Key, error) {
	if err := m.live(); err != nil {
		return Key{}, err
	}
	// Validate once, before any read, so a bad update reports all its
	// problems without touching the store.
	v, probs := m.checkUpdate(u)
	if len(probs) > 0 {
		return Key{}, probs.err()
	}
	a, err := m.actor(ctx, userID, ScopeKeysWrite)
	if err != nil {
		return Key{}, err
	}
	return m.modify(ctx, userID, id, a, v.apply)
}

// ValidateUpdate reports what Update would refuse in u, without reading or
// writing the store.
func (m *Manager) ValidateUpdate(u UpdateParams) error {
	_, probs := m.checkUpdate(u)
	return probs.err()
}

// validUpdate is an UpdateParams whose fields passed validation, in
// canonical form.
type validUpdate struct {
	UpdateParams
	name               string
	origins, assistant []string
	scopes             []string
	ips                []netip.Prefix
	expires            time.Time
	rateLimit          *RateLimit
	credits            *Credits
	now                time.Time
}

func (m *Manager) checkUpdate(u UpdateParams) (validUpdate, problems) {
	var probs problems
	v := validUpdate{UpdateParams: u}
	if u.Name != nil {
		v.name = m.checkName(&probs, *u.Name)
	}
	if u.AllowedOrigins != nil {
		v.origins = m.checkOrigins(&probs, *u.AllowedOrigins)
	}
	if u.AllowedAssistants != nil {
		v.assistant = m.checkAssistants(&probs, *u.AllowedAssistants)
	}
	if u.Scopes != nil {
		v.scopes = m.checkScopes(&probs, *u.Scopes)
	}
	if u.AllowedIPs != nil {
		v.ips = m.checkIPs(&probs, *u.AllowedIPs)
	}
	if u.ExpiresAt != nil {
		v.expires = checkExpiry(&probs, *u.ExpiresAt, m.now())
	}
	v.rateLimit = checkRateLimit(&probs, u.RateLimit)
	if u.RateLimit != nil && u.RemoveRateLimit {
		probs.add("rate_limit", "cannot be both set and removed")
	}
	v.credits = checkCredits(&probs, u.Credits)
	if u.Credits != nil && u.RemoveCredits {
		probs.add("credits", "cannot be both set and removed")
	}
	v.now = m.now()
	return v, probs
}

// apply makes the update's changes to rec.
func (v *validUpdate) apply(rec *Record) {
	if v.Name != nil {
		rec.Name = v.name
	}
	if v.AllowedOrigins != nil {
		rec.AllowedOrigins = v.origins
	}
	if v.AllowedAssistants != nil {
		rec.AllowedAssistants = v.assistant
	}
	if v.TransientAssistant != nil {
		rec.TransientAssistant = *v.TransientAssistant
	}
	if v.Scopes != nil {
		rec.Scopes = v.scopes
	}
	if v.AllowedIPs != nil {
		rec.AllowedIPs = v.ips
	}
	if v.Disabled != nil {
		rec.Disabled = *v.Disabled
	}
	if v.ExpiresAt != nil {
		rec.ExpiresAt = v.expires
	}
	switch {
	case v.RemoveRateLimit:
		rec.RateLimit = nil
	case v.rateLimit != nil:
		r := *v.rateLimit
		rec.RateLimit = &r
	}
	switch {
	case v.RemoveCredits:
		rec.Credits = nil
	case v.credits != nil:
		c := *v.credits
		rec.Credits = &c
		rec.Usage.RefilledAt = v.now.Unix()
		rec.SetCredits = true
	}
}

// modify reads the user's record, applies change and writes it back with
// the next version, re-reading and re-applying when another write won. The
// record must lie within the acting key a (nil: none) before and after.
func (m *Manager) modify(ctx context.Context, userID string, id uuid.UUID, a *Record, change func(*Record)) (Key, error) {
	for attempt := 1; ; attempt++ {
		rec, err := m.owned(ctx, userID, id)
		if err != nil {
			m.forget(id, err)
			return Key{}, err
		}
		if err := within(a, &rec.Key); err != nil {
			return Key{}, err
		}
		var before Key
		if m.hook != nil {
			before = m.snapshot(rec.Key)
		}
		change(&rec)
		if err := within(a, &rec.Key); err != nil {
			return Key{}, err
		}
		rec.Version++
		rec.UpdatedAt = m.now()
		opCtx, cancel := m.op(ctx)
		err = m.store.Update(opCtx, rec)
		cancel()
		if !errors.Is(err, ErrConflict) {
			// Also on a store error: the write may have been applied
			// with its reply lost, and dropping a cache entry is free.
			m.changed(ctx, id)
		}
		switch {
		case err == nil:
			after := m.public(rec.Key)
			if m.hook != nil {
				kind := ChangeUpdated
				switch {
				case before.Disabled && !after.Disabled:
					kind = ChangeEnabled
				case !before.Disabled && after.Disabled:
					kind = ChangeDisabled
				}
				m.observeChange(ctx, kind, before, m.snapshot(after))
			}
			return after, nil
		case errors.Is(err, ErrNotFound):
			return Key{}, ErrNotFound
		case errors.Is(err, ErrConflict) && attempt < updateAttempts:
			continue
		case errors.Is(err, ErrConflict):
			return Key{}, ErrConflict
		default:
			return Key{}, &StoreError{Op: "update", Err: err}
		}
	}
}

// Delete removes the user's key and returns it as it was. The key stops
// authorizing as soon as Delete returns. A second Delete is ErrNotFound. A
// key acting through ctx may delete only keys within itself (see Create).
func (m *Manager) Delete(ctx context.Context, userID string, id uuid.UUID) (Key, error) {
	if err := m.live(); err != nil {
		return Key{}, err
	}
	a, err := m.actor(ctx, userID, ScopeKeysWrite)
	if err != nil {
		return Key{}, err
	}
	rec, err := m.owned(ctx, userID, id)
	if err != nil {
		m.forget(id, err)
		return Key{}, err
	}
	if err := within(a, &rec.Key); err != nil {
		return Key{}, err
	}
	opCtx, cancel := m.op(ctx)
	err = m.store.Delete(opCtx, userID, id)
	cancel()
	// Whatever the outcome: a failed Delete may have been applied with
	// its reply lost, and dropping a cache entry is free.
	m.changed(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Key{}, ErrNotFound
	case err != nil:
		return Key{}, &StoreError{Op: "delete", Err: err}
	}
	k := m.public(rec.Key)
	if m.hook != nil {
		m.observeChange(ctx, ChangeDeleted, m.snapshot(k), Key{})
	}
	return k, nil
}

package apikeys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// KeyType says what a key may be used for.
type KeyType string

const (
	// Private keys have full access to their owner's resources and belong
	// on servers.
	Private KeyType = "private"
	// Public keys are for browsers and are restricted by origins,
	// assistants and the transient flag.
	Public KeyType = "public"
)

// Key is an API key as the API shows it: every property but its value,
// which exists only in the NewKey returned by Create and Rotate.
type Key struct {
	ID                 uuid.UUID `json:"id"`
	Type               KeyType   `json:"key_type"`
	Name               string    `json:"name"`
	AllowedOrigins     []string  `json:"allowed_origins"`
	AllowedAssistants  []string  `json:"allowed_assistants"`
	TransientAssistant bool      `json:"transient_assistant"`
	UserID             string    `json:"user_id"`
	UserEmail          string    `json:"user_email"`
	// Hint is a non-secret reminder of the value: "ak_pk_...x9Yz".
	Hint      string    `json:"hint"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ExpiresAt, when not zero, is the instant the key stops working.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// LastUsedAt, when not zero, is about when the key last authorized a
	// request.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// Expired reports whether the key has an expiry at or before now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// NewKey is a key together with its value, returned only by Create and
// Rotate. The value is shown once and cannot be recovered afterwards.
type NewKey struct {
	Key
	Value string `json:"key_value"`
}

// Config configures a Manager. The zero value, and a nil *Config, give the
// documented defaults.
type Config struct {
	// Prefix starts every key: "<prefix>_sk_..." or "<prefix>_pk_...".
	// 1 to MaxPrefixLen lower-case letters and digits, starting with a
	// letter. Default "ak". Changing it invalidates every existing key.
	Prefix string

	// Pepper, when set, turns the stored digest into HMAC-SHA-256 keyed by
	// it, so that a copy of the store alone cannot confirm a guessed key.
	// Keep it outside the store (an environment secret). Changing it
	// invalidates every existing key. Default: none (SHA-256).
	Pepper []byte

	// Now is the clock. Default time.Now. Tests set it to control expiry.
	Now func() time.Time

	// MaxOrigins bounds allowed_origins. Default 100.
	MaxOrigins int
	// MaxAssistants bounds allowed_assistants. Default 1000.
	MaxAssistants int
	// DefaultListLimit is the page size when List is given none. Default 100.
	DefaultListLimit int
	// MaxListLimit is the largest page List accepts. Default 1000.
	MaxListLimit int

	// Cache, when not nil, turns on the verification cache; see
	// CacheConfig for its defaults and revocation bounds. Default: off,
	// every Authorize reads the store.
	Cache *CacheConfig

	// Invalidator, when set, shares "key changed" notifications with the
	// other Managers on the same store, so that their caches drop changed
	// keys at once instead of after Cache.TTL. Every Manager with one
	// publishes its changes; one with a Cache also subscribes, from New
	// until Close.
	Invalidator Invalidator

	// OpTimeout bounds every store call the Manager makes, so that a hung
	// store cannot hang requests: the call fails with a *StoreError
	// wrapping context.DeadlineExceeded. A shorter deadline on the caller's
	// context still wins. Stores that implement Local are not bounded.
	// Default 5 seconds; negative turns it off.
	OpTimeout time.Duration

	// LastUsedInterval is how often key uses are written to the store's
	// last_used_at: Authorize only notes a use in memory, a background
	// goroutine writes the notes in batches, at most once per key per
	// interval, and Close writes what is left. last_used_at is therefore
	// about when a key was last used, to within the interval. Default 1
	// minute; negative turns recording off.
	LastUsedInterval time.Duration

	// ErrorLog receives failures that do not fail an operation, such as a
	// notification that could not be published. Default slog.Default().
	ErrorLog *slog.Logger
}

// Limits on fields that are not configurable.
const (
	MaxNameLen        = 100 // characters
	MaxUserIDLen      = 255 // bytes
	MaxEmailLen       = 254 // bytes
	MaxAssistantIDLen = 128 // bytes

	defaultOpTimeout = 5 * time.Second

	// updateAttempts bounds how often Update re-reads and re-applies a
	// change that lost an optimistic-concurrency race.
	updateAttempts = 8
)

// Manager creates, lists, changes and deletes keys in a Store, and
// authorizes requests that present them. It is safe for concurrent use.
type Manager struct {
	store  Store
	cfg    Config
	digest digester
	cache  *cache // nil when off
	log    *slog.Logger

	lastUsed *lastUsed // nil when off

	bgCtx     context.Context // ends background work
	stop      context.CancelFunc
	bg        sync.WaitGroup
	bgMu      sync.Mutex  // guards starting the flusher against Close
	flusherOn atomic.Bool // the last-used flusher has started
	closed    bool        // guarded by bgMu
}

// New returns a Manager on store. cfg may be nil.
func New(store Store, cfg *Config) (*Manager, error) {
	if store == nil {
		return nil, errors.New("apikeys: New: nil Store")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Prefix == "" {
		c.Prefix = "ak"
	}
	if !validPrefix(c.Prefix) {
		return nil, fmt.Errorf("apikeys: New: prefix %q must be 1 to %d lower-case letters and digits, starting with a letter", c.Prefix, MaxPrefixLen)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	for _, l := range []struct {
		v    *int
		def  int
		name string
	}{
		{&c.MaxOrigins, 100, "MaxOrigins"},
		{&c.MaxAssistants, 1000, "MaxAssistants"},
		{&c.DefaultListLimit, 100, "DefaultListLimit"},
		{&c.MaxListLimit, 1000, "MaxListLimit"},
	} {
		if *l.v < 0 {
			return nil, fmt.Errorf("apikeys: New: %s must not be negative", l.name)
		}
		if *l.v == 0 {
			*l.v = l.def
		}
	}
	if c.DefaultListLimit > c.MaxListLimit {
		return nil, errors.New("apikeys: New: DefaultListLimit exceeds MaxListLimit")
	}
	c.Pepper = append([]byte(nil), c.Pepper...)
	if c.ErrorLog == nil {
		c.ErrorLog = slog.Default()
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = defaultOpTimeout
	}
	if _, local := store.(Local); local || c.OpTimeout < 0 {
		c.OpTimeout = 0
	}
	if c.LastUsedInterval == 0 {
		c.LastUsedInterval = time.Minute
	}
	// Build the Manager only now: it keeps the normalized Config.
	m := &Manager{store: store, cfg: c, digest: newDigester(c.Pepper), log: c.ErrorLog}
	if c.Cache != nil {
		ch, err := newCache(*c.Cache)
		if err != nil {
			return nil, err
		}
		m.cache = ch
	}
	if c.LastUsedInterval > 0 {
		m.lastUsed = newLastUsed(c.LastUsedInterval)
	}
	m.bgCtx, m.stop = context.WithCancel(context.Background())
	if c.Invalidator != nil && m.cache != nil {
		m.bg.Add(1)
		go m.subscribe()
	}
	return m, nil
}

// op returns the context for one store call: ctx bounded by OpTimeout.
func (m *Manager) op(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.cfg.OpTimeout == 0 {
		return ctx, noCancel
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= m.cfg.OpTimeout {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, m.cfg.OpTimeout)
}

func noCancel() {}

// subscribe runs the invalidation subscription until Close.
func (m *Manager) subscribe() {
	defer m.bg.Done()
	err := m.cfg.Invalidator.Subscribe(m.bgCtx, m.cache.invalidate, m.cache.flush)
	if err != nil && m.bgCtx.Err() == nil {
		m.log.Error("apikeys: invalidation subscription ended; the cache falls back to its TTL", "err", err)
		m.cache.flush()
	}
}

// noteUse records a successful use for last_used_at, starting the flusher
// on the first one, so that Managers that never authorize run no goroutine.
func (m *Manager) noteUse(id uuid.UUID) {
	if m.lastUsed == nil {
		return
	}
	m.lastUsed.note(id, m.now)
	if !m.flusherOn.Load() {
		m.bgMu.Lock()
		if !m.closed && !m.flusherOn.Load() {
			m.bg.Add(1)
			go m.runLastUsed(m.bgCtx)
			m.flusherOn.Store(true)
		}
		m.bgMu.Unlock()
	}
}

// Close stops the Manager's background work (the invalidation
// subscription and the last-used flusher), waits for it, and writes the
// pending last-used times, all within ctx. The Manager must not be used
// afterwards. Close is safe to call more than once.
func (m *Manager) Close(ctx context.Context) error {
	m.bgMu.Lock()
	m.closed = true
	m.bgMu.Unlock()
	m.stop()
	done := make(chan struct{})
	go func() {
		m.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return m.flushLastUsed(ctx)
}

// changed drops id from this Manager's cache and tells the other Managers.
// A failed notification does not fail the change: the other caches then
// drop the key within Cache.TTL.
func (m *Manager) changed(ctx context.Context, id uuid.UUID) {
	if m.cache != nil {
		m.cache.invalidate(id)
	}
	if m.cfg.Invalidator != nil {
		// The change is made: publish even if the caller gave up, but
		// within OpTimeout, so a hung notifier cannot hang the request.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(m.cfg.OpTimeout, defaultOpTimeout))
		defer cancel()
		if err := m.cfg.Invalidator.Publish(pctx, id); err != nil {
			m.log.ErrorContext(ctx, "apikeys: cannot publish key change; other instances drop it within the cache TTL", "id", id, "err", err)
		}
	}
}

// forget drops id from this Manager's cache when the store says it is gone
// (a retried Delete whose first attempt was applied but reported failed).
func (m *Manager) forget(id uuid.UUID, err error) {
	if m.cache != nil && errors.Is(err, ErrNotFound) {
		m.cache.invalidate(id)
	}
}

func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > MaxPrefixLen || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !(p[i] >= 'a' && p[i] <= 'z' || p[i] >= '0' && p[i] <= '9') {
			return false
		}
	}
	return true
}

// Prefix returns the prefix of the keys this Manager issues.
func (m *Manager) Prefix() string { return m.cfg.Prefix }

// now is the clock, in UTC at the microsecond precision every store keeps.
func (m *Manager) now() time.Time { return normTime(m.cfg.Now()) }

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// CreateParams describes a new key.
type CreateParams struct {
	Type               KeyType
	Name               string
	AllowedOrigins     []string
	AllowedAssistants  []string
	TransientAssistant bool
	UserID             string
	UserEmail          string
	// ExpiresAt, when not zero, must be in the future.
	ExpiresAt time.Time
}

// Create validates p and stores a new key. The returned NewKey holds the
// key value, which is never stored and cannot be read again. Every invalid
// field is reported (errors.Is(err, ErrInvalid); FieldErrors lists them)
// and nothing is stored.
func (m *Manager) Create(ctx context.Context, p CreateParams) (NewKey, error) {
	now := m.now()
	rec, probs := m.checkCreate(p, now)
	if len(probs) > 0 {
		return NewKey{}, probs.err()
	}
	rec.CreatedAt, rec.UpdatedAt = now, now
	return m.insert(ctx, rec)
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
	return NewKey{Key: publicKey(rec.Key), Value: value}, nil
}

// Get returns the user's key with the id, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, userID string, id uuid.UUID) (Key, error) {
	rec, err := m.owned(ctx, userID, id)
	if err != nil {
		return Key{}, err
	}
	return publicKey(rec.Key), nil
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

// ListOptions selects a page of keys.
type ListOptions struct {
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
func (m *Manager) List(ctx context.Context, userID string, opts ListOptions) (Page, error) {
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
		page.Keys = append(page.Keys, publicKey(rec.Key))
	}
	return page, nil
}

// Update is a partial update: nil fields are left as they are. The key
// type cannot change. With Go 1.26, new(v) makes the pointers:
// Update{Name: new("staging")}.
type Update struct {
	Name               *string
	AllowedOrigins     *[]string
	AllowedAssistants  *[]string
	TransientAssistant *bool
	// ExpiresAt sets the expiry; a pointer to the zero time removes it.
	ExpiresAt *time.Time
}

// Update applies u to the user's key and returns the result. Concurrent
// updates of one key are serialized: each is applied to the latest
// version, none is lost. The owner may move or clear the expiry of any of
// their keys, including an expired one, which then works again; this
// includes the expiry Rotate set on a rotated-out key.
func (m *Manager) Update(ctx context.Context, userID string, id uuid.UUID, u Update) (Key, error) {
	// Validate once, before any read, so a bad update reports all its
	// problems without touching the store.
	name, origins, assistants, expires, probs := m.checkUpdate(u)
	if len(probs) > 0 {
		return Key{}, probs.err()
	}
	return m.modify(ctx, userID, id, func(rec *Record) {
		if u.Name != nil {
			rec.Name = name
		}
		if u.AllowedOrigins != nil {
			rec.AllowedOrigins = origins
		}
		if u.AllowedAssistants != nil {
			rec.AllowedAssistants = assistants
		}
		if u.TransientAssistant != nil {
			rec.TransientAssistant = *u.TransientAssistant
		}
		if u.ExpiresAt != nil {
			rec.ExpiresAt = expires
		}
	})
}

// ValidateUpdate reports what Update would refuse in u, without reading or
// writing the store.
func (m *Manager) ValidateUpdate(u Update) error {
	_, _, _, _, probs := m.checkUpdate(u)
	return probs.err()
}

func (m *Manager) checkUpdate(u Update) (name string, origins, assistants []string, expires time.Time, probs problems) {
	if u.Name != nil {
		name = m.checkName(&probs, *u.Name)
	}
	if u.AllowedOrigins != nil {
		origins = m.checkOrigins(&probs, *u.AllowedOrigins)
	}
	if u.AllowedAssistants != nil {
		assistants = m.checkAssistants(&probs, *u.AllowedAssistants)
	}
	if u.ExpiresAt != nil {
		expires = checkExpiry(&probs, *u.ExpiresAt, m.now())
	}
	return name, origins, assistants, expires, probs
}

// modify reads the user's record, applies change and writes it back with
// the next version, re-reading and re-applying when another write won.
func (m *Manager) modify(ctx context.Context, userID string, id uuid.UUID, change func(*Record)) (Key, error) {
	for attempt := 1; ; attempt++ {
		rec, err := m.owned(ctx, userID, id)
		if err != nil {
			m.forget(id, err)
			return Key{}, err
		}
		change(&rec)
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
			return publicKey(rec.Key), nil
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
// authorizing as soon as Delete returns. A second Delete is ErrNotFound.
func (m *Manager) Delete(ctx context.Context, userID string, id uuid.UUID) (Key, error) {
	rec, err := m.owned(ctx, userID, id)
	if err != nil {
		m.forget(id, err)
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
	return publicKey(rec.Key), nil
}

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

// Request is what a caller knows about a request that presents a key.
type Request struct {
	// Origin is the request's Origin header, empty when it has none.
	Origin string
	// AssistantID is the assistant the request wants to use, if any.
	AssistantID string
	// Transient is true when the request asks for a transient assistant
	// (one defined inline rather than by id).
	Transient bool
	// RequirePrivate is true for endpoints only private keys may call.
	RequirePrivate bool
}

// Authorize decides whether key may make the request. It parses the key
// without touching the store, reads the record by the id inside the key
// (one store read), compares digests in constant time and then checks
// expiry, key type, origin, assistant and transient flag, in that order.
//
// On success it returns the key. Otherwise the error is ErrInvalidKey for
// any malformed, unknown, wrong, deleted or expired key (and the Key is
// zero); one of ErrPrivateKeyRequired, ErrOriginNotAllowed,
// ErrAssistantNotAllowed or ErrTransientNotAllowed for a valid key that
// may not make this request (and the Key is that key, for logging and
// CORS decisions; it must not be treated as authorized); or a *StoreError
// when the store failed, which must be treated as "not allowed".
func (m *Manager) Authorize(ctx context.Context, key string, req Request) (Key, error) {
	parsed, err := parseKey(m.cfg.Prefix, key)
	if err != nil {
		return Key{}, ErrInvalidKey
	}
	digest := m.digest.digest(key)
	var rec Record
	if m.cache == nil {
		opCtx, cancel := m.op(ctx)
		rec, err = m.store.Get(opCtx, parsed.id)
		cancel()
	} else {
		rec, err = m.cachedGet(ctx, parsed.id)
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Key{}, ErrInvalidKey
		}
		return Key{}, &StoreError{Op: "get", Err: err}
	}
	if !digest.equal(rec.Digest) || rec.Type != parsed.typ || (!rec.ExpiresAt.IsZero() && rec.Expired(m.cfg.Now())) {
		return Key{}, ErrInvalidKey
	}
	err = check(&rec.Key, &req)
	if err == nil {
		m.noteUse(rec.ID)
	}
	k := publicKey(rec.Key)
	if m.cache != nil {
		// rec's lists belong to the cache: the caller gets its own.
		k.AllowedOrigins, k.AllowedAssistants = cloneLists(k.AllowedOrigins, k.AllowedAssistants)
	}
	return k, err
}

// cachedGet reads id through the cache. The returned record's lists are
// shared with the cache and must not be modified.
func (m *Manager) cachedGet(ctx context.Context, id uuid.UUID) (Record, error) {
	now := m.cfg.Now()
	if e, ok := m.cache.get(id, now); ok {
		if e.rec == nil {
			return Record{}, ErrNotFound
		}
		return *e.rec, nil
	}
	gen := m.cache.generation(id)
	opCtx, cancel := m.op(ctx)
	rec, err := m.store.Get(opCtx, id)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		m.cache.put(id, nil, gen, now)
	case err == nil:
		cached := rec // the store gave us a private copy: the cache keeps it
		m.cache.put(id, &cached, gen, now)
	}
	return rec, err
}

// cloneLists copies two lists into one fresh backing array (one
// allocation), capped so that appending to one cannot reach the other.
func cloneLists(a, b []string) ([]string, []string) {
	if len(a)+len(b) == 0 {
		return a[:0:0], b[:0:0]
	}
	buf := make([]string, len(a)+len(b))
	copy(buf, a)
	copy(buf[len(a):], b)
	return buf[:len(a):len(a)], buf[len(a):]
}

// check applies a key's restrictions to a request.
func check(k *Key, req *Request) error {
	if req.RequirePrivate && k.Type != Private {
		return ErrPrivateKeyRequired
	}
	if len(k.AllowedOrigins) > 0 && !originAllowed(k.AllowedOrigins, req.Origin) {
		return ErrOriginNotAllowed
	}
	if req.AssistantID != "" && len(k.AllowedAssistants) > 0 && !contains(k.AllowedAssistants, req.AssistantID) {
		return ErrAssistantNotAllowed
	}
	if req.Transient && !k.TransientAssistant {
		return ErrTransientNotAllowed
	}
	return nil
}

func originAllowed(patterns []string, origin string) bool {
	if origin == "" {
		return false
	}
	for _, p := range patterns {
		if MatchOrigin(p, origin) {
			return true
		}
	}
	return false
}

// OriginAllowed reports whether the key's allowed_origins lists the origin.
// An empty list allows any origin, but only a listed origin makes this true.
func (k *Key) OriginAllowed(origin string) bool {
	return originAllowed(k.AllowedOrigins, origin)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// publicKey returns k with empty lists as empty slices rather than nil,
// so that JSON shows [] and callers need not nil-check.
func publicKey(k Key) Key {
	if k.AllowedOrigins == nil {
		k.AllowedOrigins = []string{}
	}
	if k.AllowedAssistants == nil {
		k.AllowedAssistants = []string{}
	}
	return k
}

func (m *Manager) checkName(probs *problems, name string) string {
	name = strings.TrimSpace(name)
	switch {
	case !utf8.ValidString(name):
		probs.add("name", "must be valid UTF-8")
	case name == "":
		probs.add("name", "is required")
	case utf8.RuneCountInString(name) > MaxNameLen:
		probs.add("name", "must be at most "+strconv.Itoa(MaxNameLen)+" characters")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		probs.add("name", "must not contain control characters")
	}
	return name
}

func (m *Manager) checkOrigins(probs *problems, in []string) []string {
	if len(in) > m.cfg.MaxOrigins {
		probs.add("allowed_origins", "at most "+strconv.Itoa(m.cfg.MaxOrigins)+" entries")
		return nil
	}
	out := make([]string, 0, len(in))
	for i, s := range in {
		canon, reason := canonicalOrigin(s, true)
		if reason != "" {
			probs.add("allowed_origins["+strconv.Itoa(i)+"]", reason)
			continue
		}
		if !contains(out, canon) {
			out = append(out, canon)
		}
	}
	return out
}

func (m *Manager) checkAssistants(probs *problems, in []string) []string {
	if len(in) > m.cfg.MaxAssistants {
		probs.add("allowed_assistants", "at most "+strconv.Itoa(m.cfg.MaxAssistants)+" entries")
		return nil
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for i, s := range in {
		if !validAssistantID(s) {
			probs.add("allowed_assistants["+strconv.Itoa(i)+"]", "must be 1 to "+strconv.Itoa(MaxAssistantIDLen)+" of A-Z a-z 0-9 . _ : -")
			continue
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func validAssistantID(s string) bool {
	if len(s) == 0 || len(s) > MaxAssistantIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func checkUserID(probs *problems, id string) string {
	switch {
	case id == "":
		probs.add("user_id", "is required")
	case len(id) > MaxUserIDLen:
		probs.add("user_id", "must be at most "+strconv.Itoa(MaxUserIDLen)+" bytes")
	case !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		probs.add("user_id", "must be valid UTF-8 without spaces or control characters")
	}
	return id
}

func checkEmail(probs *problems, email string) string {
	if email == "" {
		return ""
	}
	if len(email) > MaxEmailLen {
		probs.add("user_email", "must be at most "+strconv.Itoa(MaxEmailLen)+" bytes")
		return email
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") && !strings.HasSuffix(email, "@localhost") {
		probs.add("user_email", "must be a plain email address like name@example.com")
	}
	return email
}

func checkExpiry(probs *problems, t, now time.Time) time.Time {
	t = normTime(t)
	if !t.IsZero() && !t.After(now) {
		probs.add("expires_at", "must be in the future")
	}
	return t
}

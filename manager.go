package apikeys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

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

	// OldPeppers are peppers keys were digested with before Pepper: keys
	// under them still authorize, and are re-digested with Pepper in the
	// background (see "Pepper rotation" in the package documentation). A
	// nil or empty entry stands for no pepper (plain SHA-256), to turn a
	// pepper on without invalidating keys. Default none.
	OldPeppers [][]byte

	// Now is the clock. Default time.Now. Tests set it to control expiry.
	Now func() time.Time

	// MaxOrigins bounds allowed_origins. Default 100.
	MaxOrigins int
	// MaxAssistants bounds allowed_assistants. Default 1000.
	MaxAssistants int
	// MaxScopes bounds scopes. Default 100.
	MaxScopes int
	// MaxIPs bounds allowed_ips. Default 100.
	MaxIPs int
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

	// TokenKeys turn on browser tokens (MintToken): the first key signs,
	// every key verifies, so that signing keys can be rotated by putting a
	// new one first and keeping the old one, without its PrivateKey, until
	// its tokens have expired. Keep private keys outside the store, as the
	// pepper. Default none: tokens are off, MintToken fails with
	// ErrTokensDisabled and Authorize refuses tokens as invalid keys.
	TokenKeys []TokenKey
	// MaxTokenTTL bounds a token's time to live. Default 1 hour; 1 second
	// to 24 hours.
	MaxTokenTTL time.Duration

	// Hook, when set, observes every decision of Authorize and every
	// change to a key: see Hook. Default none, which costs nothing.
	Hook Hook

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
	viewer Viewer // store, when it is one; nil otherwise
	cfg    Config
	digest digester
	cache  *cache // nil when off
	log    *slog.Logger
	hook   Hook // nil when none

	oldDigesters  []digester // Config.OldPeppers'
	oldPepperUses atomic.Int64
	redigesting   sync.Map // ids being re-digested

	lastUsed *lastUsed // nil when off

	tokens     *tokenSigner // nil: tokens are off
	limitedIDs *limitedSet  // keys seen limited, for uncached Authorize; nil for Local stores (always Get first)

	bgCtx     context.Context // ends background work
	stop      context.CancelFunc
	bg        sync.WaitGroup
	bgMu      sync.Mutex  // guards starting the flusher against Close
	flusherOn atomic.Bool // the last-used flusher has started
	closed    atomic.Bool // set by Close; written under bgMu
}

// New returns a Manager on store. cfg may be nil.
//
// What runs in the background, all of it ended by Close: with a Cache and
// an Invalidator, one goroutine holds the invalidation subscription from
// New on; with last-used recording on (the default), one goroutine starts
// on the first successful Authorize and writes key uses to the store every
// LastUsedInterval. A Manager that never authorizes and has no
// subscription runs no goroutine.
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
		{&c.MaxScopes, 100, "MaxScopes"},
		{&c.MaxIPs, 100, "MaxIPs"},
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
	m := &Manager{store: store, cfg: c, digest: newDigester(c.Pepper), log: c.ErrorLog, hook: c.Hook}
	for i, p := range c.OldPeppers {
		if string(p) == string(c.Pepper) {
			return nil, fmt.Errorf("apikeys: New: OldPeppers[%d] is the current Pepper", i)
		}
		m.oldDigesters = append(m.oldDigesters, newDigester(p))
	}
	if _, local := store.(Local); !local {
		m.limitedIDs = newLimitedSet()
	}
	if v, ok := store.(Viewer); ok && v.ViewerOf() == store {
		m.viewer = v // not a wrapper that embeds one: see Viewer
	}
	ts, err := newTokenSigner(c.TokenKeys, c.MaxTokenTTL)
	if err != nil {
		return nil, err
	}
	m.tokens = ts
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
		if !m.closed.Load() && !m.flusherOn.Load() {
			m.bg.Add(1)
			go m.runLastUsed(m.bgCtx)
			m.flusherOn.Store(true)
		}
		m.bgMu.Unlock()
	}
}

// Close stops the Manager's background work (the invalidation
// subscription and the last-used flusher), waits for it, and writes the
// pending last-used times, all within ctx; each store call is also bounded
// by OpTimeout, so a hung store cannot hold Close longer than that. After
// Close every method returns ErrClosed (Authorize included: a closed
// Manager authorizes nothing). Close is safe to call more than once: a
// later call writes what an earlier one could not.
func (m *Manager) Close(ctx context.Context) error {
	m.bgMu.Lock()
	m.closed.Store(true)
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

// live returns ErrClosed once Close has begun.
func (m *Manager) live() error {
	if m.closed.Load() {
		return ErrClosed
	}
	return nil
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

// Now returns the time on the Manager's clock (Config.Now), the one its
// rate-limit windows and refills are counted by: pass it to
// Key.RateLimitLeft and Key.CreditsLeft.
func (m *Manager) Now() time.Time { return m.cfg.Now() }

// now is the clock, in UTC at the microsecond precision every store keeps.
func (m *Manager) now() time.Time { return normTime(m.cfg.Now()) }

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

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

// Request is what a caller knows about a request that presents a key. Its
// zero value names nothing, and a key restricted in some way refuses a
// request that names nothing for that restriction: the rules fail closed.
type Request struct {
	// Origin is the request's Origin header, empty when it has none. Any
	// Origin, "null" included, marks the request as coming from a browser.
	Origin string
	// AssistantID is the assistant the request wants to use; empty when it
	// names none, which a key restricted to assistants refuses.
	AssistantID string
	// Transient is true when the request asks for a transient assistant
	// (one defined inline rather than by id).
	Transient bool
	// RequirePrivate is true for endpoints only private keys may call.
	RequirePrivate bool
	// ClientIP is the address the request came from; the zero Addr when
	// unknown, which a key restricted to addresses refuses.
	ClientIP netip.Addr
	// Scopes are the scopes the request needs, all of which a key with
	// scopes must hold; none, and a key with scopes refuses the request.
	Scopes []string
	// Cost is what the request spends from a limited key's rate limit and
	// credits: 1 to MaxQuota; 0 means 1.
	Cost int64
}

// Authorize decides whether key may make the request: every request-time
// rule is decided here, and front ends only gather the Request and render
// the outcome. It parses the key without touching the store, reads the
// record by the id inside the key (one store read, or the cache), compares
// digests in constant time, and then applies the rules in this order,
// each failing closed:
//
//  1. enabled and not expired (a disabled key is ErrInvalidKey to callers;
//     the error also matches ErrKeyDisabled, for operators);
//  2. key type: RequirePrivate refuses a public key (ErrPrivateKeyRequired);
//     a private key with an Origin, "null" included, is refused unless its
//     allowed_origins lists that origin (ErrPrivateKeyInBrowser);
//  3. origins: a non-empty allowed_origins admits only a request whose
//     Origin matches an entry; a request without Origin is refused
//     (ErrOriginNotAllowed);
//  4. client address: a non-empty allowed_ips admits only a request whose
//     ClientIP falls in an entry; a request without one is refused
//     (ErrIPNotAllowed);
//  5. assistants: a non-empty allowed_assistants admits only a request that
//     names one of them; a request naming none is refused
//     (ErrAssistantNotAllowed);
//  6. transient: a request for a transient assistant needs
//     transient_assistant (ErrTransientNotAllowed);
//  7. scopes: a key with scopes admits only a request that names scopes,
//     all of which it holds (a *ScopeError, or ErrInsufficientScope when
//     the request names none);
//  8. rate limit, then credits: a key with either spends the request's
//     Cost from counters in the store, and is refused with a *LimitError
//     (ErrRateLimited, ErrCreditsExhausted) when they leave less.
//
// Only a request that passes rules 1 to 7 spends. A limited key's counters
// are always spent in the store, with or without the cache, so they are
// exact across instances. Without the cache, a key this Manager has seen
// limited before is read and spent from in one round trip (Store.Spend):
// the read and the spend come before rules 1 to 7 can be checked, and a
// request they then refuse gets its cost back (Store.Refund, a second
// round trip on that refusal only). Any other key is read with Store.Get,
// as before; if it turns out limited, rules 1 to 7 are checked on it and
// then Spend reads and spends (a second round trip, the first time only).
// (A Local store is always read with Get first: it has no round trips to
// save, and its limited keys never need a refund.) With the cache, rules 1 to 7 are checked on the cached record
// first, and the request costs one Spend. Either way rules 1 to 7 are checked again
// on the record Spend returns. A key without limits costs one store read
// as before, or none with the cache.
//
// On success it returns the key, with its counters after this request
// (RateLimitLeft, CreditsLeft). Otherwise the error is ErrInvalidKey for
// any malformed, unknown, wrong, deleted or expired key (and the Key is
// zero); one of the errors named above for a valid key that may not make
// this request (and the Key is that key, for logging, CORS decisions and
// rate-limit headers; it must not be treated as authorized); a
// *ValidationError for a Cost out of range; a *StoreError when the store
// failed; or ErrClosed after Close. Only a nil error means "allowed".
//
// The returned Key is the caller's, but for its four lists
// (AllowedOrigins, AllowedAssistants, Scopes, AllowedIPs), which are
// read-only (RateLimit and Credits always point to the caller's own
// copies): when the record was
// read in place (from the verification cache, or from a store that
// implements Viewer, such as memstore) they are shared with other calls,
// which is how Authorize answers without allocating. Clone a list
// (slices.Clone) before changing it. Every list is capped at its length,
// so that append always copies. Writing into one anyway is a data race
// with other requests, but changes no decision: the rules read a copy
// that is never handed out, and Authorize hands fresh lists to later
// callers once it sees its own changed.
//
// Config.Hook, when set, is told every decision, with the reason callers
// do not see (Decision.Reason).
func (m *Manager) Authorize(ctx context.Context, key string, request Request) (k Key, err error) {
	// One function, not a wrapper around another: a second layer would
	// copy the large Key it returns once more on every call. t collects
	// what a Hook is told; without a Hook it stays nil, and each use of it
	// is one nil check.
	req := &request
	var (
		t  *trace
		tr trace
	)
	if m.hook != nil {
		t = &tr
		tr.start = time.Now()
		defer func() { m.observe(ctx, t, req, err) }()
	}
	if m.closed.Load() {
		return Key{}, ErrClosed
	}
	cost := req.Cost
	if cost == 0 {
		cost = 1
	}
	if cost < 0 || cost > MaxQuota {
		return Key{}, errBadCost
	}
	parsed, err := parseKey(m.cfg.Prefix, key)
	if err != nil {
		if LooksLikeToken(key) {
			if t != nil {
				t.token = true
			}
			return m.authorizeToken(ctx, key, *req, cost, t)
		}
		t.set(ReasonMalformed)
		return Key{}, ErrInvalidKey
	}
	if t != nil {
		t.keyID = parsed.id
	}
	digest := m.digest.digest(key)
	current := digest // digest may become an old pepper's (see pepper.go)
	var (
		own   Record  // a record read for this call alone
		rec   *Record // &own, or sh's record
		sh    *Shared // the cache's or a Viewer store's record, read in place
		spent bool
		now   time.Time // the clock, once read: zero until then
	)
	if m.cache == nil && m.limitedIDs != nil && m.limitedIDs.has(parsed.id) {
		// Known to be limited: read and spend in one round trip.
		own, spent, err = m.spend(ctx, parsed.id, digest, cost)
		rec = &own
		if errors.Is(err, ErrNotFound) || err == nil && !rec.Limited() {
			m.limitedIDs.remove(parsed.id)
		}
		if err == nil && m.oldDigesters != nil && !digest.equal(rec.Digest) {
			if od, ok := m.underOldPepper(key, parsed.id, digest, rec.Digest); ok {
				digest = od
				if rec.Limited() {
					own, spent, digest, err = m.spendUnder(ctx, parsed.id, digest, current, cost)
				}
			}
		}
	} else {
		switch {
		case m.cache != nil:
			sh, now, err = m.cachedGet(ctx, parsed.id, t)
		case m.viewer != nil:
			sh, err = m.viewer.View(ctx, parsed.id)
		default:
			opCtx, cancel := m.op(ctx)
			own, err = m.store.Get(opCtx, parsed.id)
			cancel()
			rec = &own
		}
		if sh != nil {
			rec = sh.Record()
		}
		if err == nil && m.oldDigesters != nil && !digest.equal(rec.Digest) {
			if od, ok := m.underOldPepper(key, parsed.id, digest, rec.Digest); ok {
				digest = od
			}
		}
		if err == nil && rec.Limited() && digest.equal(rec.Digest) {
			if m.cache == nil && m.limitedIDs != nil {
				m.limitedIDs.add(parsed.id)
			}
			// Rules 1 to 7 on the record read, so that a request they
			// refuse spends nothing; then spend, and check the record
			// Spend read.
			if ruleErr := m.rules(rec, req, now); ruleErr == nil {
				own, spent, digest, err = m.spendUnder(ctx, parsed.id, digest, current, cost)
				rec, sh, now = &own, nil, time.Time{} // the spend took a round trip
			}
		}
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			t.set(ReasonUnknown)
			return Key{}, ErrInvalidKey
		}
		return Key{}, &StoreError{Op: "get", Err: err}
	}
	if !digest.equal(rec.Digest) || rec.Type != parsed.typ {
		// A store spends only for the right digest, which covers the
		// type too: nothing to refund.
		t.set(ReasonWrongSecret)
		return Key{}, ErrInvalidKey
	}
	t.found(rec.ID, rec.UserID)
	err = m.rules(rec, req, now)
	if err != nil && spent {
		m.refund(ctx, rec, cost)
	}
	if errors.Is(err, ErrInvalidKey) {
		if err == ErrInvalidKey { // rules: the only other one is errDisabled
			t.set(ReasonExpired)
		}
		return Key{}, err
	}
	// Copied into the result in place (a local copy returned would be
	// copied once more). sh's lists stay sh's: lend hands out its
	// read-only ones.
	k = rec.Key
	switch {
	case err == nil && k.Limited() && !spent:
		err = m.limitRefusal(&k, cost) // only after a Spend: k's pointers are own's
	case err == nil:
		m.noteUse(rec.ID)
	}
	if sh != nil {
		sh.lend(&k)
		// A limited key read in place is here only when refused (an
		// allowed one went through Spend, and own): its limits are the
		// Shared's, which the caller must not reach.
		k.ownLimits()
	} else {
		k.fillLists()
	}
	return k, err
}

// rules applies rules 1 to 7 of Authorize to a record whose digest
// matched, at now, or, when now is zero, at the clock's time, which it
// reads only for a key with an expiry.
func (m *Manager) rules(rec *Record, req *Request, now time.Time) error {
	if !rec.ExpiresAt.IsZero() {
		if now.IsZero() {
			now = m.cfg.Now()
		}
		if rec.Expired(now) {
			return ErrInvalidKey
		}
	}
	if rec.Disabled {
		return errDisabled
	}
	return check(&rec.Key, req)
}

// spend reads the record with id from the store, spending cost from its
// counters if it is limited and its digest is digest.
func (m *Manager) spend(ctx context.Context, id uuid.UUID, digest Digest, cost int64) (Record, bool, error) {
	opCtx, cancel := m.op(ctx)
	defer cancel()
	return m.store.Spend(opCtx, SpendRequest{ID: id, Digest: digest, Cost: cost, Now: m.cfg.Now().Unix()})
}

// spendUnder is spend with digest, which may be an old pepper's digest of
// the key while current is the current pepper's: when the background
// re-digest moved the record to current in between, so that Spend found
// current stored and spent nothing, it spends again under current. It
// returns the digest the record is under.
func (m *Manager) spendUnder(ctx context.Context, id uuid.UUID, digest, current Digest, cost int64) (Record, bool, Digest, error) {
	rec, spent, err := m.spend(ctx, id, digest, cost)
	if err == nil && !spent && digest != current && current.equal(rec.Digest) {
		digest = current
		rec, spent, err = m.spend(ctx, id, digest, cost)
	}
	return rec, spent, digest, err
}

// refund gives back a cost spent for a request that a rule then refused.
// It runs even if the caller gave up, within OpTimeout; a failure is
// logged and leaves the cost spent, which errs on the side of the limit.
func (m *Manager) refund(ctx context.Context, rec *Record, cost int64) {
	opCtx, cancel := m.op(context.WithoutCancel(ctx))
	defer cancel()
	err := m.store.Refund(opCtx, RefundRequest{ID: rec.ID, Cost: cost, Version: rec.Version, WindowStart: rec.Usage.WindowStart, RefilledAt: rec.Usage.RefilledAt})
	if err != nil {
		m.log.ErrorContext(ctx, "apikeys: authorize: cannot refund a refused request; its cost stays spent", "id", rec.ID, "cost", cost, "err", err)
	}
}

// limitRefusal explains why the store did not spend cost from k, whose
// counters it returned, and brings them up to now (k must be the caller's
// own copy).
func (m *Manager) limitRefusal(k *Key, cost int64) error {
	now := m.cfg.Now()
	probe := *k
	if probe.Credits != nil {
		c := *probe.Credits
		probe.Credits = &c
	}
	err := probe.Charge(cost, now.Unix())
	if err == nil {
		// The store refused what the counters it returned would allow:
		// another instance spent in between. It is the rate limit or the
		// credits; report the stricter reading.
		err = ErrRateLimited
		if k.RateLimit == nil {
			err = ErrCreditsExhausted
		}
	}
	k.roll(now.Unix())
	return limitError(k, cost, now, err)
}

// cachedGet reads id through the cache. The returned Shared is the
// cache's, and must not be modified. On a hit it returns the clock it
// read too, for the rules; after a store read, which takes time, zero.
func (m *Manager) cachedGet(ctx context.Context, id uuid.UUID, t *trace) (*Shared, time.Time, error) {
	now := m.cfg.Now()
	e, ok := m.cache.get(id, now)
	if t != nil {
		t.cached, t.cacheHit = true, ok
	}
	if ok {
		if e.rec == nil {
			return nil, now, ErrNotFound
		}
		return e.rec, now, nil
	}
	gen := m.cache.generation(id)
	var sh *Shared
	var err error
	if m.viewer != nil {
		sh, err = m.viewer.View(ctx, id)
	} else {
		opCtx, cancel := m.op(ctx)
		var rec Record
		rec, err = m.store.Get(opCtx, id)
		cancel()
		if err == nil {
			sh = share(rec) // the store gave us a private copy: the cache keeps it
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		m.cache.put(id, nil, gen, now)
	case err == nil:
		m.cache.put(id, sh, gen, now)
	}
	// The clock as of before a store read: later callers read it again.
	return sh, time.Time{}, err
}

// cloneLists copies three lists into one fresh backing array (one
// allocation), capped so that appending to one cannot reach the other.
func cloneLists(a, b, c []string) ([]string, []string, []string) {
	if len(a)+len(b)+len(c) == 0 {
		return a[:0:0], b[:0:0], c[:0:0]
	}
	buf := make([]string, len(a)+len(b)+len(c))
	copy(buf, a)
	copy(buf[len(a):], b)
	copy(buf[len(a)+len(b):], c)
	ab := len(a) + len(b)
	return buf[:len(a):len(a)], buf[len(a):ab:ab], buf[ab:]
}

// errNoAssistantNamed is ErrAssistantNotAllowed for a request that names
// no assistant, made once so that refusing costs no allocation.
var errNoAssistantNamed = fmt.Errorf("%w: the key is restricted to assistants and the request named none", ErrAssistantNotAllowed)

// Refusals made once, so that refusing costs no allocation.
var (
	// errDisabled is ErrInvalidKey to callers and ErrKeyDisabled to
	// operators.
	errDisabled     = fmt.Errorf("%w (%w)", ErrInvalidKey, ErrKeyDisabled)
	errNoIPNamed    = fmt.Errorf("%w: the key is restricted to client addresses and the request named none", ErrIPNotAllowed)
	errNoScopeNamed = fmt.Errorf("%w: the key is restricted to scopes and the request named none", ErrInsufficientScope)
	errBadCost      = &ValidationError{Field: "cost", Reason: "must be 1 to " + strconv.FormatInt(MaxQuota, 10)}
)

// check applies a key's restrictions to a request, in the order
// Authorize documents.
func check(k *Key, req *Request) error {
	if req.RequirePrivate && k.Type != Private {
		return ErrPrivateKeyRequired
	}
	if k.Type == Private && req.Origin != "" && !originListed(k.AllowedOrigins, req.Origin) {
		return ErrPrivateKeyInBrowser
	}
	if len(k.AllowedOrigins) > 0 && !originListed(k.AllowedOrigins, req.Origin) {
		return ErrOriginNotAllowed
	}
	if len(k.AllowedIPs) > 0 {
		if !req.ClientIP.IsValid() {
			return errNoIPNamed
		}
		if !ipAllowed(k.AllowedIPs, req.ClientIP) {
			return ErrIPNotAllowed
		}
	}
	if len(k.AllowedAssistants) > 0 {
		if req.AssistantID == "" {
			return errNoAssistantNamed
		}
		if !contains(k.AllowedAssistants, req.AssistantID) {
			return ErrAssistantNotAllowed
		}
	}
	if req.Transient && !k.TransientAssistant {
		return ErrTransientNotAllowed
	}
	if len(k.Scopes) > 0 {
		if len(req.Scopes) == 0 {
			return errNoScopeNamed
		}
		if s := missingScope(k.Scopes, req.Scopes); s != "" {
			return &ScopeError{Scope: s}
		}
	}
	return nil
}

func originListed(patterns []string, origin string) bool {
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

// ListsOrigin reports whether an entry of the key's allowed_origins
// matches origin. An empty list lists nothing, so this is false for it even
// though such a public key accepts any origin: see AllowsOrigin.
func (k *Key) ListsOrigin(origin string) bool {
	return originListed(k.AllowedOrigins, origin)
}

// AllowsOrigin reports whether Authorize's origin rules admit a request from
// origin ("" for a request without one): a listed origin always; for a
// public key with an empty allowed_origins, any origin; for a private key,
// only a listed one. No origin passes only an empty allowed_origins. Other
// restrictions may still refuse the request.
func (k *Key) AllowsOrigin(origin string) bool {
	if origin == "" {
		return len(k.AllowedOrigins) == 0
	}
	return k.ListsOrigin(origin) || k.Type == Public && len(k.AllowedOrigins) == 0
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Package apikeys gives a Go service a complete API-key system: create,
// list, get, update, rotate and delete keys, and authorize every request
// that presents one, in microseconds.
//
// # Keys
//
// A key is private (full access to its owner's resources, for servers) or
// public (for browsers, restricted). Its value looks like
//
//	ak_pk_0G7x2LkQm3ZcW9aB4rTn1p...  (78 characters with the default prefix)
//
// and is returned once, by Manager.Create or Manager.Rotate. Stores keep only
// its SHA-256 digest (HMAC-SHA-256 with Config.Pepper). A fast hash is right
// here: the secret is 256 random bits, so there is nothing for a slow
// password hash to protect, and it would cost milliseconds per request.
//
// The value embeds the key's id, so Authorize reads exactly one record by
// primary key, and ends in a CRC-32C of the rest, so that typos and garbage
// are refused without a store read and leaked keys are easy to recognise.
//
// # Authorization
//
// Manager.Authorize takes the presented key and a Request describing what
// the caller knows (Origin header, assistant id, transient assistant, whether
// the endpoint needs a private key), and makes every request-time decision
// in one place, so that every front end gives the same answer. Each rule
// fails closed: a key restricted in some way refuses a request that names
// nothing for that restriction. Outcomes, each its own error value:
//
//   - ErrInvalidKey: malformed, unknown, wrong secret, deleted or expired;
//     deliberately one outcome (HTTP 401).
//   - ErrPrivateKeyRequired, ErrPrivateKeyInBrowser, ErrOriginNotAllowed,
//     ErrAssistantNotAllowed, ErrTransientNotAllowed: the key is valid but
//     may not do this (403).
//   - *LimitError (ErrRateLimited, ErrCreditsExhausted): the key's rate
//     limit or credits leave less than the request's Cost (429).
//   - *StoreError, ErrClosed: the key could not be checked; never treat it
//     as allowed (503).
//
// Rules: a private key with an Origin (a browser sent it, "null" included)
// is refused unless its allowed_origins lists that origin; a non-empty
// allowed_origins needs an Origin header matching an entry (so a request
// without Origin is refused), while an empty one lets a public key be used
// from anywhere; a non-empty allowed_assistants needs the request to name a
// listed assistant (naming none is refused); a transient assistant needs
// transient_assistant. Origin entries are exact origins or
// "https://*.example.com" subdomain wildcards, validated and canonicalised
// when stored (see ParseOriginPattern), then matched byte for byte; a
// wildcard matches only hosts inside its own registrable domain, never
// across a public suffix (see MatchOrigin).
//
// # Rate limits and credits
//
// A key may carry a rate limit (at most Limit units of cost per fixed,
// epoch-aligned window) and credits (a budget, optionally refilled to an
// amount every interval). A request that passes every other rule spends its
// Cost from both, in the store, in the same atomic step as the read that
// authorizes it (Store.Spend): exact across any number of instances, and
// no extra round trip. See Key.Charge for the rule and Authorize for how
// it meets the cache.
//
// # Management can only narrow
//
// A change made with a key gives no more than that key has. When the
// context of Create, Update, Rotate or Delete carries a key (NewContext; the
// middleware sets it for every authorized request), that key is re-read from
// the store and must be a private key of the same user that works and is not
// being retired (rotated out, in its grace period); every key it creates,
// changes, rotates or deletes must lie within it: origins within its
// origins, assistants within its assistants, transient assistants only if
// it allows them, an expiry no later than its own. Refusals unwrap to
// ErrNotPermitted (PermissionErrors lists the fields). A context without a
// key, or WithoutKey, acts with the service's own authority.
//
// # Lifecycle
//
// New starts a goroutine only for the invalidation subscription (with a
// Cache and an Invalidator); the last-used flusher starts on the first
// successful Authorize. Close ends both and writes pending last-used times;
// every store call, flushes included, is bounded by Config.OpTimeout. After
// Close every method returns ErrClosed.
//
// # Configuration
//
// In every Config of this module (Config, CacheConfig, middleware.Config,
// httpapi.Config), zero means the documented default, and a negative value
// turns a setting off where its documentation says it can be turned off
// (OpTimeout, LastUsedInterval, CacheConfig.NegativeSize,
// middleware.Config.MaxAge) and makes New fail everywhere else.
//
// # Tenancy
//
// Every operation on a key by a user names the user, and another user's key
// is ErrNotFound, exactly like a missing one.
//
// # Stores
//
// The Store interface is small and documented method by method; memstore
// (in memory), redisstore (Redis, Sentinel, Cluster) and sqlstore
// (PostgreSQL, MySQL/MariaDB, SQLite) implement it, and storetest.Run checks
// any implementation against the contract.
//
// # Errors
//
// Invalid input is reported as *ValidationError values, one per bad field,
// joined with errors.Join; all of them unwrap to ErrValidation (HTTP 400),
// and FieldErrors lists them. Nothing is stored when any field is invalid.
// ErrInvalidKey (HTTP 401) is about a presented key, never about input.
package apikeys

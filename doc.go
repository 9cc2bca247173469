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
// the endpoint needs a private key). Outcomes, each its own error value:
//
//   - ErrInvalidKey: malformed, unknown, wrong secret, deleted or expired;
//     deliberately one outcome (HTTP 401).
//   - ErrPrivateKeyRequired, ErrOriginNotAllowed, ErrAssistantNotAllowed,
//     ErrTransientNotAllowed: the key is valid but may not do this (403).
//   - *StoreError: the store failed; never treat it as allowed (503).
//
// Rules: an empty allowed_origins allows any origin, a non-empty one needs
// an Origin header matching an entry (so a request without Origin is
// refused); an empty allowed_assistants allows every assistant; a transient
// assistant needs transient_assistant. Origin entries are exact origins or
// "https://*.example.com" subdomain wildcards, validated and canonicalised
// when stored (see ParseOriginPattern), then matched byte for byte.
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
// joined with errors.Join; all of them unwrap to ErrValidation, and FieldErrors
// lists them. Nothing is stored when any field is invalid.
package apikeys

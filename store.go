package apikeys

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Record is what a Store persists for one key: the key's properties, the
// digest of its value and a version for optimistic concurrency. The key
// value itself never reaches a store.
type Record struct {
	Key

	// Digest is SHA-256 (or HMAC-SHA-256 with the Manager's pepper) of the
	// key value. Stores keep it as is and never interpret it.
	Digest Digest

	// Version is 1 on creation and grows by one with every Update. Stores
	// use it to refuse writes based on a stale read.
	Version int64
}

// ListQuery selects one page of a user's keys, newest first.
type ListQuery struct {
	// Before, when not the zero UUID, restricts the page to ids that sort
	// strictly before it (older keys): it is the previous page's last id.
	Before uuid.UUID
	// Limit is the most records to return; always at least 1.
	Limit int
}

// Use says that the key with ID authorized a request at At. The Manager
// collects uses and hands them to Store.TouchLastUsed in batches.
type Use struct {
	ID uuid.UUID
	At time.Time
}

// Store persists key records. The Manager validates, hashes and decides;
// a Store only keeps records and answers by id and by user. Every method
// takes a context first and honours its deadline and cancellation.
//
// The contract, which storetest.Run (and RunConfig, for several instances
// on the same data) checks for any implementation:
//
//   - Records round-trip: every field of Record written by Create or Update
//     comes back equal from Get and List (but an Update keeps a later
//     stored LastUsedAt; see Update). Times come back in UTC, equal to at
//     least microsecond precision (the Manager writes microsecond-truncated
//     UTC times). Empty and nil slices are interchangeable.
//   - Results are copies: a caller that mutates a returned Record changes
//     nothing stored.
//   - Tenancy: Update and Delete name the user, and a record of another user
//     is ErrNotFound, never touched. Get is by id alone (the Manager uses it
//     to authorize a presented key, which names no user, and checks the
//     owner itself for user reads).
//   - Ids are UUIDv7 and sort by creation time; List returns a user's records
//     in descending id order.
//   - Tenants are told apart byte for byte: user ids that differ only in
//     case, in spaces or in Unicode normalization form are different users.
//   - Failures of the backend are returned wrapped (fmt.Errorf("...: %w",
//     err)) and are never ErrNotFound: the Manager must be able to tell "no
//     such key" from "store down". A call whose context is already done
//     (canceled, or past its deadline) fails with an error that wraps
//     ctx.Err() and changes nothing.
//   - Several instances of a service, each with its own store value (its
//     own connections) on the same data, may call any methods at once:
//     each sees the others' writes, and concurrent calls neither fail for
//     being concurrent (no deadlock between TouchLastUsed batches, say) nor
//     lose what the contract keeps (the version check, the latest
//     LastUsedAt).
//   - A store never sees, and so never holds, a key value.
type Store interface {
	// Create stores a new record. It returns ErrDuplicate, storing nothing,
	// when a record with rec.ID exists.
	Create(ctx context.Context, rec Record) error

	// Get returns the record with the id, or ErrNotFound.
	Get(ctx context.Context, id uuid.UUID) (Record, error)

	// List returns up to q.Limit records of the user with ids before
	// q.Before (all, when it is zero), newest first. A user with no
	// records gets an empty slice and no error. Its cost grows with the
	// page, not with the number of the user's keys.
	List(ctx context.Context, userID string, q ListQuery) ([]Record, error)

	// Update replaces the record with rec.ID, which must belong to
	// rec.UserID and have version rec.Version-1. It returns ErrNotFound
	// when no such record exists for that user (including a deleted one)
	// and ErrConflict, writing nothing, when the stored version differs.
	//
	// LastUsedAt is the exception to "replaces": Update never moves it
	// back or clears it, and stores the later of the stored and rec's
	// LastUsedAt (in the same atomic step as the version check). The
	// record an Update writes was read earlier, and a TouchLastUsed batch
	// of this or another instance, which does not change the version,
	// may have come in between: writing rec's value would undo it.
	Update(ctx context.Context, rec Record) error

	// Delete removes the user's record with the id. It returns ErrNotFound
	// when there is none, so a second delete reports ErrNotFound. Once
	// Delete returns, Get no longer finds the record.
	Delete(ctx context.Context, userID string, id uuid.UUID) error

	// TouchLastUsed sets the LastUsedAt of each used key to its At where
	// that is later than the stored value; it never moves LastUsedAt back.
	// Ids without a record (keys deleted since) are skipped, not an error;
	// an id may appear more than once, and its latest At counts. It
	// changes nothing else, not even Version: last use is advisory, and
	// must not make a concurrent Update fail with ErrConflict (Update in
	// turn keeps the later LastUsedAt). It need not be atomic across keys.
	// Several instances flush uses of the same keys, in any order and at
	// the same time: a batch must not fail because another one runs
	// (write in an order that cannot deadlock). The Manager calls it off
	// the request path, with at most 1000 uses per call; a store bounds
	// the size of what it sends at once itself.
	TouchLastUsed(ctx context.Context, uses []Use) error
}

// Local is implemented by stores that never wait on I/O, such as memstore.
// The Manager does not put its per-operation timeout (Config.OpTimeout)
// around their calls, which keeps their Authorize free of the timer's
// allocations.
type Local interface {
	Local()
}

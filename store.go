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
	// use it to refuse writes based on a stale read. Spend and Refund do
	// not change it.
	Version int64

	// SetCredits is read by Update only, and never stored: when true,
	// Update writes rec's Credits.Remaining and Usage.RefilledAt; when
	// false it keeps the stored ones, which Spend may have changed since
	// rec was read. The Manager sets it whenever a change sets credits.
	SetCredits bool
}

// SpendRequest is one authorization's charge, for Store.Spend.
type SpendRequest struct {
	ID uuid.UUID
	// Digest is the presented key's digest. A store spends only from a
	// record with this digest, so that only a holder of the key spends.
	Digest Digest
	// Cost is what the request costs: 1 to MaxQuota.
	Cost int64
	// Now is the Manager's clock, in Unix seconds.
	Now int64
}

// RefundRequest gives back a charge that Spend made for a request another
// rule then refused.
type RefundRequest struct {
	ID   uuid.UUID
	Cost int64
	// Version is the record's Version as Spend returned it. A record with
	// another version was changed by an Update since, which may have set
	// the counters: nothing goes back into those.
	Version int64
	// WindowStart and RefilledAt are the record's Usage as Spend returned
	// it: the window and the refill interval the cost was spent in. Cost
	// goes back only into those, never into a later window or interval.
	WindowStart, RefilledAt int64
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
//   - Counters are exact: Spend applies Key.Charge atomically with its
//     read, so that any number of instances spending from one key at once
//     never spend past a limit, and no credit is spent twice or lost.
//     Spend, Refund and TouchLastUsed change no Version, and Update keeps
//     the counters they changed (see Record.SetCredits).
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
	// The counters are the exception to "replaces", in the same atomic
	// step as the version check, because the record an Update writes was
	// read earlier, and a TouchLastUsed batch or a Spend of this or
	// another instance, which do not change the version, may have come in
	// between: writing rec's values would undo them. So Update never moves
	// LastUsedAt back or clears it (it stores the later of the stored and
	// rec's); it keeps the stored Usage.WindowStart and Usage.WindowUsed;
	// and unless rec.SetCredits it keeps the stored Credits.Remaining and
	// Usage.RefilledAt (rec.Credits nil removes the credits, and
	// rec.Credits.Refill is written either way).
	Update(ctx context.Context, rec Record) error

	// Spend reads the record with s.ID and, in one atomic step with that
	// read, spends s.Cost from its counters when the record has a rate
	// limit or credits (Key.Limited), its digest is s.Digest, and
	// Key.Charge at s.Now allows it. It returns the record as it is after
	// the call, counters included, and whether it spent; ErrNotFound when
	// there is no record. A record without limits, or with another digest,
	// is returned unchanged and unspent; a refused charge changes nothing
	// stored. The Manager calls it for every request of a key it knows to
	// be limited, and reads other keys with Get: it must cost one round
	// trip.
	Spend(ctx context.Context, s SpendRequest) (Record, bool, error)

	// Refund gives back r.Cost to the record's counters, if its Version
	// is still r.Version: to Usage.WindowUsed (not below 0) when the
	// stored Usage.WindowStart is still r.WindowStart, and to
	// Credits.Remaining (up to MaxQuota) when the stored Usage.RefilledAt
	// is still r.RefilledAt. A missing record, or one of another version,
	// is left alone and is not an error. See Key.Refund.
	Refund(ctx context.Context, r RefundRequest) error

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

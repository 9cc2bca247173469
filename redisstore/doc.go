// Package redisstore is an apikeys.Store on Redis, through go-redis v9: a
// single node, Sentinel (redis.NewFailoverClient) or Cluster, anything that
// is a redis.UniversalClient. It is the store for services that run on many
// machines and share their keys.
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
//	store, err := redisstore.New(rdb, nil) // namespace "apikeys:"
//	...
//	m, err := apikeys.New(store, nil)
//
// The caller owns the client: the store never closes it.
//
// # Key layout
//
// With the default namespace "apikeys:", a key record and the index of its
// user's keys live in two Redis keys:
//
//	apikeys:k:{<id>}       hash: one key record (the id is the canonical UUID string)
//	apikeys:u:{<user>}     sorted set: the user's key ids, all with score 0
//
// <user> is the user ID in unpadded base64url (RFC 4648, section 5), because
// user IDs may hold any printable character, braces included, and a brace
// in a key name would change its hash tag. The parts in braces are Redis
// Cluster hash tags: each record is one key, hashed by its id alone, so
// records spread over the cluster, and everything a command or script
// touches is a single key. The store sends no command and no script that
// touches two keys, so every one of them works on Cluster; the record and
// its index entry are usually in different slots and are written one after
// the other (below). The namespace may not contain braces, so that it never
// becomes the hash tag.
//
// The record hash has these fields, every one written on every Create and
// Update, so an Update replaces the whole record (but last_used_at, which
// it never moves back, and the limits and counters; see below):
//
//	type, name, user_id, user_email, hint   strings
//	origins, assistants, scopes             JSON arrays of strings
//	allowed_ips                             JSON array of strings, each a
//	                                        prefix in canonical form
//	                                        ("203.0.113.0/24", "2001:db8::7/128")
//	transient, disabled                     "1" or "0"
//	created_at, updated_at,
//	expires_at, last_used_at                Unix time in microseconds, decimal;
//	                                        "" for the zero time
//	digest                                  the 32 raw bytes of the digest
//	version                                 decimal
//	successor_id                            the canonical UUID text of
//	                                        SuccessorID; "" for the zero UUID
//
// and, for the rate limits and credits of issue 13, each a decimal integer
// (canonical: no sign but '-', no leading zero), present only as described:
//
//	rate_limit, rate_window                 RateLimit: Limit, WindowSeconds;
//	                                        both, or neither for no rate limit
//	credits                                 Credits.Remaining; absent: no credits
//	refill_amount, refill_interval          Credits.Refill: Amount,
//	                                        IntervalSeconds; both or neither,
//	                                        and only with credits
//	window_start, window_used, refilled_at  Usage, Unix seconds and a count;
//	                                        absent reads as 0, and Create
//	                                        writes only those that are not 0
//
// A key without limits has none of these fields, so its record is what it
// was before issue 13, and costs no more to read.
//
// successor_id came later than the other fields, and scopes, allowed_ips
// and disabled later still: a record written before a field existed has no
// such field, and reads with its zero value (the zero SuccessorID; no
// scopes, no addresses, enabled) until its next Update writes the field.
// No migration is needed. (During a rolling upgrade, an Update by an
// instance that predates a field leaves it as it was, since HSET only
// writes the fields it names: an older instance renaming a disabled key
// does not enable it, nor lift its limits. But an instance that predates
// the limits authorizes with HGETALL, and so neither enforces nor spends
// them: limits hold only once every instance runs a version that has
// them.) Records written before the limits read as keys without limits.
//
// A field that is present must decode: scopes and allowed_ips must be JSON
// arrays ("" and "null" are not), each address a prefix in the canonical
// text the store writes, and disabled "1" or "0". Anything else makes the
// record an error, never ErrNotFound and never a key without the
// restriction, so Authorize fails closed. (Scope entries are not checked
// against the scope grammar: an entry that is not a scope matches no
// request, which only narrows the key.) Likewise every limit and counter
// field must be a canonical decimal within the bounds of
// apikeys.MaxQuota (counts and limits, 2^50), apikeys.MaxQuotaSeconds
// (windows and intervals) and ±2^50 (the counters' Unix seconds), and a
// limit must come whole (rate_limit with rate_window; a refill with both
// fields, and with credits). Create and Update refuse, with an
// *apikeys.ValidationError and writing nothing, limits or counters out of
// those bounds, which they could not read back.
//
// The hash holds the record and nothing else; the store never sees a key
// value. Times come back in UTC with microsecond precision, which is the
// precision the Manager writes.
//
// # Reads
//
// Get is one HGETALL of the record key: one round trip and no script. An
// empty reply is apikeys.ErrNotFound; every other failure, including a
// record that cannot be decoded, is a wrapped error that is never
// ErrNotFound. Authorize without the cache reads with Spend instead (see
// Rate limits and credits), which is one round trip too.
//
// List reads one page of ids from the user's sorted set with ZRANGE BYLEX
// REV LIMIT, starting strictly below the cursor; UUIDv7 strings sort by
// creation time, so the page is newest first. It then fetches the page's
// records in one pipeline. The cost is O(log n + page) whatever the number
// of the user's keys. A listing skips index entries whose record is gone or
// belongs to another user, removes them from the index (lazy repair) and
// reads further ids to fill the page. An entry without a record is removed
// only once its id is older than Config.RepairAfter (default 10 minutes):
// a younger one may be a Create between its two writes, and removing it
// would make concurrent listings miss the key for a moment.
//
// # Writes and the invariants they keep
//
// Create, Update and Delete each change the record with one Lua script
// that touches only the record key, so each is atomic on it:
//
//   - Create: ZADD the id to the user's index; then the create script
//     (HSET all fields only when the key does not exist, else report the
//     owner: apikeys.ErrDuplicate); then ZADD the id again (see below). A
//     duplicate id leaves the existing record as it was, and the index
//     entry just added for another user is removed again. A Create repeated
//     with the same id, user and digest (go-redis retries a write whose
//     reply was lost) finds its own record and succeeds.
//   - Update: one script checks that the record exists and belongs to the
//     user (else apikeys.ErrNotFound) and that its version is rec.Version-1
//     (else apikeys.ErrConflict, writing nothing), then replaces the fields
//     and the expiry. It keeps the stored last_used_at when that is later
//     than the one written (or the one written is empty): the record was
//     read before, and a TouchLastUsed since, which does not change the
//     version, must not be undone. For the same reason, with Spend and
//     Refund, it never writes window_start and window_used, and writes
//     credits and refilled_at only with rec.SetCredits (credits of a record
//     that had none are written either way). The limits are replaced as a
//     whole: the script deletes the limit fields (rate_limit, rate_window,
//     credits, refill_amount, refill_interval) that the update does not
//     name. The index does not change: ids and owners are fixed.
//   - TouchLastUsed: one single-key script per use, all in one pipeline,
//     each setting last_used_at only on an existing record and only to a
//     later time (times compare exactly, as decimal strings). Instances
//     flushing the same keys at once cannot deadlock: every script is
//     atomic on its one key, and none waits for another.
//   - Delete: one script deletes the record if it belongs to the user (else
//     apikeys.ErrNotFound); then ZREM removes the id from the index. Once
//     the record is gone the key stops authorizing, so Delete reports
//     success even if that ZREM fails; the listing repairs the index.
//
// The index is written first on Create and cleaned last on Delete, so a
// crash between the two writes never leaves a record outside its user's
// index: a key that authorizes can always be listed and deleted. What such
// a crash can leave is an index entry without a record, which a listing
// skips and removes. A listing that repairs an entry while a Create of that
// id is between its writes could remove the entry the Create relies on;
// both sides close that race: the Create adds its entry again after writing
// the record, and the listing, after removing entries, reads their records
// again and puts back those that now exist for the user. (Left open: Redis
// failing at that very re-read, during that very race, leaves the record
// out of the index; Get, Update and Delete by id still find it.)
//
// Reads on Cluster go where the client sends them: with ReadOnly or
// RouteByLatency, Get and List may reach a replica, which can be behind.
// Spend, and so Authorize without the cache, always goes to the master
// (it may write).
//
// # Rate limits and credits
//
// Spend is one Lua script on the record key, one round trip (EVALSHA; on a
// server that has not seen the script, EVAL after the NOSCRIPT, as
// go-redis's Script.Run does). The script reads the record with HGETALL,
// picks the limit and counter fields out of the reply, and, when the key
// has a rate limit or credits, its digest is the one presented and its
// limit and counter fields decode (the script reads them exactly as the
// decoder does), applies apikeys.Key.Charge: the window rolls over only
// forward, credits refill in whole intervals, and the cost is spent from
// both or neither. Only when it spends does it write, with one HSET of the
// counters, which keeps the record's Redis expiry; it returns the HGETALL
// reply with what it wrote in place, and whether it spent, which Spend
// decodes like Get. Redis runs a script alone, so any number of instances
// spend exactly; and a script touches only KEYS[1], one slot, so it runs
// on Cluster. Every number the script computes is an integer below 2^52,
// which a Lua number (a double) holds exactly, and it writes numbers with
// string.format('%d'), never tostring (which writes 2^50 as
// 1.1258999068426e+15). A record whose limit or counter fields do not
// decode is never spent from nor written: Spend returns the decoder's
// error, like Get.
//
// A key without limits costs the HGETALL and a scan of its field names,
// inside the script. That is more than a bare HGETALL, for every key: on
// loopback, where a round trip is tens of microseconds, a script that does
// nothing but return an HGETALL already costs Redis 15 to 40% more time
// than the HGETALL itself (BenchmarkSpend's script-floor), which is the
// price of doing the read and the spend atomically in one round trip.
//
// Refund is one script too: it gives the cost back to window_used (not
// below 0) if the record has a rate limit and its window_start is still
// the one the cost was spent in, and to credits (not above MaxQuota) if
// the record has credits and its refilled_at is still the one the cost was
// spent in (apikeys.Key.Refund). A missing record is no error; one whose
// limits or counters do not decode is, and is not written.
//
// Spend and Refund of a limited key write, so they fail where Redis
// refuses writes (a master without the replicas min-replicas-to-write
// asks for, out of memory with noeviction): Authorize of such a key then
// fails closed with a *apikeys.StoreError. A key without limits writes
// nothing, and authorizes as long as Redis answers.
//
// # Expiry
//
// A key with an expires_at stops authorizing at that instant; the Manager
// checks it on every Authorize, and the store returns an expired record
// like any other. The store also sets a Redis expiry (PEXPIREAT) on the
// record key at expires_at plus Config.ExpiryMargin (default 24 hours), or
// that margin after the write when expires_at has already passed, so Redis
// drops dead records by itself; an Update that removes the expiry removes
// the Redis expiry too (PERSIST). The index entries of records Redis has
// dropped are removed by the next listing of that user (the index itself
// has no Redis expiry, so the entries of a user who never lists stay, a
// few dozen bytes each). A negative margin turns this off: records then
// stay until deleted.
//
// # Invalidation
//
// The Store is also an apikeys.Invalidator: Publish sends the id of a
// changed key to the channel "<namespace>changes", and Subscribe holds a
// subscription to it, so that every Manager with a cache drops a changed
// or deleted key at once. Redis pub/sub delivers at most once, and only to
// subscriptions that are up, so Subscribe calls onReset (the Manager
// flushes its cache) whenever changes may have been missed: when a
// subscription is confirmed, when it is lost, and after each failed attempt
// to subscribe again (attempts back off from 50ms to 5s).
//
// A subscription can die without an error: a connection that a firewall,
// a NAT or a hung server holds open and drops everything on looks idle; and
// after a Sentinel failover a subscription can stay, alive and answering,
// on the demoted master, which hears none of what is now published on the
// new one until Sentinel reconfigures it (10 to 20s later). Subscribe
// therefore checks, every Config.PingInterval (default 5s), both that its
// connection answers a PING and that a heartbeat it publishes through the
// client, on a channel of its own ("<namespace>changes:heartbeat:<uuid>"),
// comes back. When nothing at all has arrived for two intervals, or a
// heartbeat has not come back within two, it takes the subscription for
// lost: it calls onReset, logs a warning to Config.Logger (default
// slog.Default()), closes that connection and subscribes on a new one,
// which goes where the client now goes. A dead connection is so noticed
// within two intervals, a subscription left behind within three (10s and
// 15s by default, against the cache's default TTL of 30s); until then
// another instance may still accept a key deleted elsewhere. A heartbeat
// that cannot be published is not awaited; the PING still checks the
// connection. With an ACL that allows the changes channel only, Redis
// refuses the heartbeat channel: Subscribe then logs a warning once and
// goes on with PING alone (allow "<namespace>changes:heartbeat:*" too to
// keep the heartbeat). The store logs rather than returns these failures
// because Subscribe must go on until its context ends; the log says when
// the subscription was lost and why, and when it is back.
//
// # Cluster and Sentinel
//
// The package's tests run the whole suite against a real Redis Cluster (3
// masters, 3 replicas) and a real Sentinel deployment (a master, a
// replica, 3 sentinels), which scripts/redis-topologies.sh starts, and
// fail each over while a Manager writes: a manual CLUSTER FAILOVER and
// SENTINEL FAILOVER. Authorize and revocation recover in running Managers,
// without a restart. What survives a failover is Redis's to promise, since
// its replication is asynchronous and the store does not WAIT:
//
//   - Cluster, manual CLUSTER FAILOVER: the master pauses writers until the
//     replica has caught up, so no acknowledged write is lost. A forced
//     failover (FORCE, TAKEOVER, or a master that dies) can lose the
//     writes the replica had not received yet.
//   - Sentinel: SENTINEL FAILOVER promotes the replica without pausing the
//     master, and clients follow when Sentinel announces the new master,
//     about a second later; writes the old master acknowledges in between
//     are lost when it becomes a replica. Writes acknowledged before the
//     failover began, and after it, survive. Running the masters with
//     min-replicas-to-write 1 makes the old master refuse writes once its
//     replica is promoted away, which closes that window except for writes
//     in flight to the replica at that instant; the price is that writes
//     fail until the old master has rejoined as a replica (in the tests,
//     about 20s), while Authorize goes on working.
//
// The subscription follows the client: a cluster client subscribes on the
// master of the channel's slot (and stays subscribed there if that node
// becomes a replica, since cluster pub/sub reaches every node); a failover
// client subscribes on the current master, and after a failover the
// heartbeat moves the subscription to the new one (see above).
//
// # Errors and contexts
//
// Every method checks its context before sending anything and passes it to
// go-redis, so a canceled context or a passed deadline is an error and
// changes nothing. The deadline bounds dialing and retries; for it to bound
// the wait on a connected Redis that stops answering, too, create the
// client with ContextTimeoutEnabled (else go-redis waits ReadTimeout,
// default 3s). Errors of the client are returned wrapped with %w, as
// "redisstore: <op>: <cause>", and are never apikeys.ErrNotFound, so a
// Redis outage makes Authorize fail closed with an *apikeys.StoreError.
package redisstore

package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/keyward/apikeys"
	"github.com/redis/go-redis/v9"
)

// DefaultNamespace starts every Redis key the store writes unless
// Config.Namespace says otherwise.
const DefaultNamespace = "apikeys:"

// DefaultExpiryMargin is how long after a key's expiry Redis drops its
// record, unless Config.ExpiryMargin says otherwise.
const DefaultExpiryMargin = 24 * time.Hour

// Config configures a Store. The zero value, and a nil *Config, give the
// documented defaults.
type Config struct {
	// Namespace starts the name of every Redis key the store writes, so
	// that several applications, or several Managers, can share one Redis.
	// It must not contain '{' or '}' (see the package doc on hash tags).
	// Default "apikeys:".
	Namespace string

	// ExpiryMargin is how long after a key's expires_at Redis deletes the
	// record by itself (PEXPIREAT). The key stops authorizing at expires_at
	// whatever the margin; the margin only keeps the record readable a
	// while longer. Default 24h; negative: never, records of expired keys
	// stay until deleted.
	ExpiryMargin time.Duration

	// RepairAfter is how old an index entry must be before a listing may
	// remove it for having no record (an entry whose record belongs to
	// another user goes at once). Ids are UUIDv7, so an entry's age is
	// its key's: a young entry without a record may be a Create between
	// its two writes, and removing it would make concurrent listings miss
	// the key until the listing that removed it puts it back. Entries left
	// by a crash are removed once older. Listings skip entries without a
	// record whatever their age. Default 10 minutes; negative: at once.
	RepairAfter time.Duration

	// PingInterval is how Subscribe (the invalidation subscription) checks
	// that its subscription is alive. Every interval it sends a PING on the
	// subscription's connection and publishes a heartbeat, through the
	// client, to a channel of its own that it also subscribes to. A
	// subscription on which nothing at all has arrived for two intervals
	// (its connection is dead, however open it looks), or that has not
	// received a heartbeat within two intervals of its publication (it is
	// on a server the client no longer publishes to, such as a master
	// demoted by a failover), is lost: Subscribe calls onReset (the Manager
	// flushes its cache), logs it, closes the connection and subscribes
	// again on a new one. A dead connection is so noticed within two
	// intervals, a subscription left behind within three, and a
	// connection that fails outright at once. Default 5s (10s and 15s,
	// against the cache's default TTL of 30s); the cost is a PING and a
	// PUBLISH per interval and subscriber.
	// (The heartbeat channel is "<Namespace>changes:heartbeat:<uuid>"; if
	// an ACL refuses it, the PING alone checks the subscription.)
	// Negative is an error.
	PingInterval time.Duration

	// Logger receives what happens to the invalidation subscription: a
	// Warn when it is lost (with the cause) and an Info when it is back;
	// failed attempts in between go to Debug. Default slog.Default().
	Logger *slog.Logger
}

// DefaultRepairAfter is Config.RepairAfter's default.
const DefaultRepairAfter = 10 * time.Minute

// DefaultPingInterval is Config.PingInterval's default.
const DefaultPingInterval = 5 * time.Second

// Store is an apikeys.Store on a go-redis client. It is safe for concurrent
// use. The zero value is not usable; call New.
type Store struct {
	rdb    redis.UniversalClient
	ns     string
	margin time.Duration // < 0: no Redis expiry

	repairAfter time.Duration // < 0: repair at once

	pingInterval time.Duration // > 0
	log          *slog.Logger

	// hook, when set by a test, is called at named points between the
	// writes of one operation; a non-nil error stops the operation there,
	// as a crash would.
	hook func(ctx context.Context, step string) error
}

var _ apikeys.Store = (*Store)(nil)

// Points at which Store.hook is called.
const (
	stepCreateIndexed = "create: index entry written"
	stepCreateStored  = "create: record written"
	stepDeleteRemoved = "delete: record deleted"
	stepListRepair    = "list: stale entries found"
)

// New returns a Store on rdb. cfg may be nil. The caller keeps ownership of
// rdb and closes it when done; the Store never does.
func New(rdb redis.UniversalClient, cfg *Config) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("redisstore: New: nil client")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if strings.ContainsAny(c.Namespace, "{}") {
		return nil, fmt.Errorf("redisstore: New: namespace %q must not contain '{' or '}'", c.Namespace)
	}
	if c.ExpiryMargin == 0 {
		c.ExpiryMargin = DefaultExpiryMargin
	}
	if c.RepairAfter == 0 {
		c.RepairAfter = DefaultRepairAfter
	}
	if c.PingInterval < 0 {
		return nil, fmt.Errorf("redisstore: New: PingInterval %v is negative", c.PingInterval)
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Store{
		rdb: rdb, ns: c.Namespace, margin: c.ExpiryMargin, repairAfter: c.RepairAfter,
		pingInterval: c.PingInterval, log: c.Logger,
	}, nil
}

// recordKey is the hash of the record with the id: "<ns>k:{<id>}".
func (s *Store) recordKey(id string) string {
	return s.ns + "k:{" + id + "}"
}

// recordKeyOf is recordKey(id.String()) in one allocation, for the
// authorization path.
func (s *Store) recordKeyOf(id uuid.UUID) string {
	var buf [128]byte
	b := append(buf[:0], s.ns...)
	b = append(b, "k:{"...)
	b = append(b, make([]byte, 36)...)
	hexUUID(b[len(b)-36:], id)
	return string(append(b, '}'))
}

// hexUUID writes id's canonical text into dst, 36 bytes, as UUID.String.
func hexUUID(dst []byte, id uuid.UUID) {
	const digits = "0123456789abcdef"
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = digits[c>>4], digits[c&0xf]
		j += 2
	}
}

// indexKey is the sorted set of the user's ids: "<ns>u:{<base64url(user)>}".
func (s *Store) indexKey(userID string) string {
	return s.ns + "u:{" + base64.RawURLEncoding.EncodeToString([]byte(userID)) + "}"
}

func (s *Store) step(ctx context.Context, name string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(ctx, name)
}

// Record hash fields.
const (
	fType       = "type"
	fName       = "name"
	fUserID     = "user_id"
	fUserEmail  = "user_email"
	fHint       = "hint"
	fOrigins    = "origins"
	fAssistants = "assistants"
	fTransient  = "transient"
	fCreatedAt  = "created_at"
	fUpdatedAt  = "updated_at"
	fExpiresAt  = "expires_at"
	fLastUsedAt = "last_used_at"
	fDigest     = "digest"
	fVersion    = "version"
	// fSuccessorID came with apikeys.Key.SuccessorID: records written
	// before it lack the field, which reads as the zero UUID.
	fSuccessorID = "successor_id"
	// fScopes, fAllowedIPs and fDisabled came with the restrictions of
	// issue 12: records written before them lack the fields, which read
	// as no scopes, no addresses and enabled. Present, each must decode,
	// or the record is an error (never "no restriction").
	fScopes     = "scopes"
	fAllowedIPs = "allowed_ips"
	fDisabled   = "disabled"
	// The limits and counters of issue 13 (see limits.go), each a
	// canonical decimal integer. A record has the fields of the limits it
	// has and no others, and only the counters that are not 0: records
	// written before them, and keys without limits, lack them all, which
	// reads as unlimited.
	fRateLimit      = "rate_limit"      // RateLimit.Limit
	fRateWindow     = "rate_window"     // RateLimit.WindowSeconds
	fCredits        = "credits"         // Credits.Remaining
	fRefillAmount   = "refill_amount"   // Credits.Refill.Amount
	fRefillInterval = "refill_interval" // Credits.Refill.IntervalSeconds
	fWindowStart    = "window_start"    // Usage.WindowStart
	fWindowUsed     = "window_used"     // Usage.WindowUsed
	fRefilledAt     = "refilled_at"     // Usage.RefilledAt
)

// recordArgs is the most arguments the create and update scripts take:
// four arguments, then a field and a value for each of the 18 fields every
// record has and the 8 of the limits and counters.
const recordArgs = 4 + 2*(18+8)

// createScript stores a record unless its key exists.
//
//	KEYS[1]  the record key
//	ARGV[1]  user_id, ARGV[2] digest: to recognise a retry of this very write
//	ARGV[3]  PEXPIREAT in ms, or "" for none
//	ARGV[4:] field, value, ...
//
// It returns 1 when the record is stored (now or by an identical earlier
// call), else the existing record's user_id.
const createScriptSrc = `
if redis.call('EXISTS', KEYS[1]) == 1 then
	local cur = redis.call('HMGET', KEYS[1], 'user_id', 'digest')
	if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
		return 1
	end
	return cur[1] or ''
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
if ARGV[3] ~= '' then
	redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return 1
`

var createScript = redis.NewScript(createScriptSrc)

// luaTimeBefore defines before(a, b): whether the encoded time a (decimal
// Unix microseconds, as encodeTime writes them) is earlier than b. It
// compares the decimal strings, exactly: tonumber would round times after
// the year 2255 (beyond 2^53 microseconds) to a double. (No multiple
// assignment: gopher-lua, under miniredis, assigns a before it evaluates
// the second value.)
const luaTimeBefore = `
local function before(a, b)
	local na = a:sub(1, 1) == '-'
	local nb = b:sub(1, 1) == '-'
	if na ~= nb then return na end
	if na then
		local absA = a:sub(2)
		a = b:sub(2)
		b = absA
	end
	if #a ~= #b then return #a < #b end
	return a < b
end
`

// updateScript replaces a record of a user that has the expected version,
// but for what Spend, Refund and TouchLastUsed change without a version
// (see apikeys.Store): it keeps the stored last_used_at when that is later
// than the written one, and the stored credits unless ARGV[4] says to set
// them. The caller writes no window_start or window_used, which stay as
// stored, and refilled_at only to set the credits. The limits are replaced
// as a whole: the limit fields the call does not name are deleted.
//
//	KEYS[1]  the record key
//	ARGV[1]  user_id, ARGV[2] the version the record must have
//	ARGV[3]  PEXPIREAT in ms, or "" to remove the expiry
//	ARGV[4]  "1" to write the credits given, "0" to keep stored ones
//	ARGV[5:] field, value, ...
//
// It returns 1 when done, 0 when the user has no such record, -1 when the
// version differs.
const updateScriptSrc = luaTimeBefore + `
local cur = redis.call('HMGET', KEYS[1], 'user_id', 'version', 'last_used_at', 'credits')
if cur[1] ~= ARGV[1] then
	return 0
end
if cur[2] ~= ARGV[2] then
	return -1
end
local fields = {unpack(ARGV, 5)}
local used = cur[3]
local named = {}
for i = 1, #fields - 1, 2 do
	local f = fields[i]
	named[f] = true
	if f == 'last_used_at' then
		if used and used ~= '' and (fields[i + 1] == '' or before(fields[i + 1], used)) then
			fields[i + 1] = used
		end
	elseif f == 'credits' and cur[4] and ARGV[4] ~= '1' then
		fields[i + 1] = cur[4]
	end
end
local gone = {}
for _, f in ipairs({'rate_limit', 'rate_window', 'credits', 'refill_amount', 'refill_interval'}) do
	if not named[f] then
		gone[#gone + 1] = f
	end
end
if #gone > 0 then
	redis.call('HDEL', KEYS[1], unpack(gone))
end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[3] == '' then
	redis.call('PERSIST', KEYS[1])
else
	redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return 1
`

var updateScript = redis.NewScript(updateScriptSrc)

// deleteScript deletes a record of a user.
//
//	KEYS[1]  the record key
//	ARGV[1]  user_id
//
// It returns 1 when deleted, 0 when the user has no such record.
const deleteScriptSrc = `
if redis.call('HGET', KEYS[1], 'user_id') ~= ARGV[1] then
	return 0
end
redis.call('DEL', KEYS[1])
return 1
`

var deleteScript = redis.NewScript(deleteScriptSrc)

// Create implements apikeys.Store.
func (s *Store) Create(ctx context.Context, rec apikeys.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: create: %w", err)
	}
	if err := checkQuotas(&rec); err != nil {
		return fmt.Errorf("redisstore: create: %w", err)
	}
	id := rec.ID.String()
	index := s.indexKey(rec.UserID)
	// The index entry first: a crash after it leaves an entry without a
	// record, which List removes, never a record that cannot be listed.
	if err := s.rdb.ZAdd(ctx, index, redis.Z{Member: id}).Err(); err != nil {
		return fmt.Errorf("redisstore: create: index: %w", err)
	}
	if err := s.step(ctx, stepCreateIndexed); err != nil {
		return err
	}
	args := make([]any, 0, recordArgs)
	args = append(args, rec.UserID, string(rec.Digest[:]), s.expireAt(rec.ExpiresAt))
	args = appendFields(args, &rec, writeAll)
	res, err := createScript.Run(ctx, s.rdb, []string{s.recordKey(id)}, args...).Result()
	if err != nil {
		return fmt.Errorf("redisstore: create: %w", err)
	}
	if owner, dup := res.(string); dup {
		if owner != rec.UserID {
			// The entry added above points at another user's record. List
			// would skip it anyway; remove it now, best effort.
			_ = s.rdb.ZRem(ctx, index, id).Err()
		}
		return apikeys.ErrDuplicate
	}
	if err := s.step(ctx, stepCreateStored); err != nil {
		return err
	}
	// Again, in case a concurrent List saw the entry before the record
	// existed and removed it.
	if err := s.rdb.ZAdd(ctx, index, redis.Z{Member: id}).Err(); err != nil {
		return fmt.Errorf("redisstore: create: index: %w", err)
	}
	return nil
}

// Get implements apikeys.Store. It is one HGETALL.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	if err := ctx.Err(); err != nil {
		return apikeys.Record{}, fmt.Errorf("redisstore: get: %w", err)
	}
	h, err := s.rdb.HGetAll(ctx, s.recordKeyOf(id)).Result()
	if err != nil {
		return apikeys.Record{}, fmt.Errorf("redisstore: get: %w", err)
	}
	if len(h) == 0 {
		return apikeys.Record{}, apikeys.ErrNotFound
	}
	rec, err := decode(id, h)
	if err != nil {
		return apikeys.Record{}, fmt.Errorf("redisstore: get: %w", err)
	}
	return rec, nil
}

// List implements apikeys.Store.
func (s *Store) List(ctx context.Context, userID string, q apikeys.ListQuery) ([]apikeys.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisstore: list: %w", err)
	}
	out := make([]apikeys.Record, 0, min(max(q.Limit, 0), 128))
	index := s.indexKey(userID)
	upper := "+"
	if q.Before != (uuid.UUID{}) {
		upper = "(" + q.Before.String()
	}
	for len(out) < q.Limit {
		want := q.Limit - len(out)
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: index, Start: upper, Stop: "-", ByLex: true, Rev: true, Count: int64(want),
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: list: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, s.recordKey(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("redisstore: list: %w", err)
		}
		var stale []string
		for i, member := range ids {
			id, err := uuid.Parse(member)
			h := cmds[i].Val()
			if err != nil || id.String() != member || len(h) == 0 || h[fUserID] != userID {
				// No record yet may be a Create in flight: leave young
				// entries for a later listing. Another user's record
				// never is this user's Create.
				if err != nil || len(h) != 0 || !s.young(id) {
					stale = append(stale, member)
				}
				continue
			}
			rec, err := decode(id, h)
			if err != nil {
				return nil, fmt.Errorf("redisstore: list: %w", err)
			}
			out = append(out, rec)
		}
		if len(stale) > 0 {
			if err := s.repair(ctx, userID, stale); err != nil {
				return nil, fmt.Errorf("redisstore: list: repair index: %w", err)
			}
		}
		if len(ids) < want {
			break
		}
		upper = "(" + ids[len(ids)-1]
	}
	return out, nil
}

// young reports whether the UUIDv7 id was made less than RepairAfter ago.
func (s *Store) young(id uuid.UUID) bool {
	if s.repairAfter < 0 {
		return false
	}
	ms := int64(id[0])<<40 | int64(id[1])<<32 | int64(id[2])<<24 | int64(id[3])<<16 | int64(id[4])<<8 | int64(id[5])
	return time.Since(time.UnixMilli(ms)) < s.repairAfter
}

// repair removes index entries of the user whose record is gone or is not
// the user's. It then reads those records again and puts back the entries
// of any that exist for the user now: a Create may have written its record
// after List looked.
func (s *Store) repair(ctx context.Context, userID string, stale []string) error {
	if err := s.step(ctx, stepListRepair); err != nil {
		return err
	}
	index := s.indexKey(userID)
	members := make([]any, len(stale))
	for i, m := range stale {
		members[i] = m
	}
	if err := s.rdb.ZRem(ctx, index, members...).Err(); err != nil {
		return err
	}
	pipe := s.rdb.Pipeline()
	owners := make([]*redis.StringCmd, len(stale))
	for i, m := range stale {
		owners[i] = pipe.HGet(ctx, s.recordKey(m), fUserID)
	}
	_, _ = pipe.Exec(ctx) // the error of the first failed command; each is checked below
	var back []redis.Z
	for i, m := range stale {
		owner, err := owners[i].Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return err
		case owner == userID:
			back = append(back, redis.Z{Member: m})
		}
	}
	if len(back) > 0 {
		return s.rdb.ZAdd(ctx, index, back...).Err()
	}
	return nil
}

// Update implements apikeys.Store.
func (s *Store) Update(ctx context.Context, rec apikeys.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: update: %w", err)
	}
	if err := checkQuotas(&rec); err != nil {
		return fmt.Errorf("redisstore: update: %w", err)
	}
	args := make([]any, 0, recordArgs)
	args = append(args, rec.UserID, strconv.FormatInt(rec.Version-1, 10), s.expireAt(rec.ExpiresAt))
	write := writeUpdate
	if rec.SetCredits {
		args = append(args, "1")
		write = writeUpdateCredits
	} else {
		args = append(args, "0")
	}
	args = appendFields(args, &rec, write)
	res, err := updateScript.Run(ctx, s.rdb, []string{s.recordKey(rec.ID.String())}, args...).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: update: %w", err)
	}
	switch res {
	case 1:
		return nil
	case 0:
		return apikeys.ErrNotFound
	case -1:
		return apikeys.ErrConflict
	}
	return fmt.Errorf("redisstore: update: unexpected script result %d", res)
}

// Delete implements apikeys.Store.
func (s *Store) Delete(ctx context.Context, userID string, id uuid.UUID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	sid := id.String()
	// The record first: once it is gone the key no longer authorizes, and
	// an index entry left behind by a crash is removed by List.
	n, err := deleteScript.Run(ctx, s.rdb, []string{s.recordKey(sid)}, userID).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	if n == 0 {
		return apikeys.ErrNotFound
	}
	if err := s.step(ctx, stepDeleteRemoved); err != nil {
		return err
	}
	// Best effort: the record is deleted, which is what the caller asked
	// for; a failure here leaves an entry that List removes.
	_ = s.rdb.ZRem(ctx, s.indexKey(userID), sid).Err()
	return nil
}

// expireAt is the PEXPIREAT argument for a record expiring at t: t plus
// the margin, or the margin from now when t has passed, in Unix
// milliseconds; "" when the record gets no Redis expiry.
func (s *Store) expireAt(t time.Time) string {
	if t.IsZero() || s.margin < 0 {
		return ""
	}
	if now := time.Now(); t.Before(now) {
		t = now
	}
	return strconv.FormatInt(t.Add(s.margin).UnixMilli(), 10)
}

// What appendFields writes of the counters.
const (
	writeAll           = iota // all of them: Create
	writeUpdate               // none: Update keeps them
	writeUpdateCredits        // refilled_at: Update with SetCredits
)

// appendFields appends the hash fields of rec, as field, value pairs: the
// fields every record has, those of its limits, and the counters that
// write says.
func appendFields(args []any, rec *apikeys.Record, write int) []any {
	args = appendLimits(args, rec)
	switch write {
	case writeAll:
		args = appendCounters(args, &rec.Usage)
	case writeUpdateCredits:
		// Written even when 0, to replace the stored value.
		args = append(args, fRefilledAt, strconv.FormatInt(rec.Usage.RefilledAt, 10))
	}
	return append(args,
		fType, string(rec.Type),
		fName, rec.Name,
		fUserID, rec.UserID,
		fUserEmail, rec.UserEmail,
		fHint, rec.Hint,
		fOrigins, encodeList(rec.AllowedOrigins),
		fAssistants, encodeList(rec.AllowedAssistants),
		fTransient, encodeBool(rec.TransientAssistant),
		fScopes, encodeList(rec.Scopes),
		fAllowedIPs, encodePrefixes(rec.AllowedIPs),
		fDisabled, encodeBool(rec.Disabled),
		fCreatedAt, encodeTime(rec.CreatedAt),
		fUpdatedAt, encodeTime(rec.UpdatedAt),
		fExpiresAt, encodeTime(rec.ExpiresAt),
		fLastUsedAt, encodeTime(rec.LastUsedAt),
		fDigest, string(rec.Digest[:]),
		fVersion, strconv.FormatInt(rec.Version, 10),
		fSuccessorID, encodeUUID(rec.SuccessorID),
	)
}

// encodeBool gives "1" for true and "0" for false.
func encodeBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// encodePrefixes gives a JSON array of the prefixes' canonical text, as
// netip.Prefix.String writes it ("203.0.113.0/24", "2001:db8::/32").
func encodePrefixes(l []netip.Prefix) string {
	if len(l) == 0 {
		return "[]"
	}
	b := make([]byte, 0, 2+len(l)*22)
	b = append(b, '[')
	for i, p := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = p.AppendTo(b) // digits, dots, colons, hex and '/': nothing to escape
		b = append(b, '"')
	}
	return string(append(b, ']'))
}

// encodeUUID gives the canonical text of id, or "" for the zero UUID.
func encodeUUID(id uuid.UUID) string {
	if id == (uuid.UUID{}) {
		return ""
	}
	return id.String()
}

func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // []string always marshals
	return string(b)
}

func encodeTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// decode turns a record hash back into a Record.
func decode(id uuid.UUID, h map[string]string) (apikeys.Record, error) {
	d := decoder{h: h}
	// The lists' strings share one backing array, each list capped.
	n := 0
	for _, f := range [...]string{fOrigins, fAssistants, fScopes, fAllowedIPs} {
		if v := h[f]; len(v) > 4 {
			n += strings.Count(v, `","`) + 1
		}
	}
	d.arena = make([]string, 0, n)
	rec := apikeys.Record{Key: apikeys.Key{
		ID:                 id,
		Type:               apikeys.KeyType(d.str(fType)),
		Name:               d.str(fName),
		UserID:             d.str(fUserID),
		UserEmail:          d.str(fUserEmail),
		Hint:               d.str(fHint),
		AllowedOrigins:     d.list(fOrigins),
		AllowedAssistants:  d.list(fAssistants),
		TransientAssistant: d.str(fTransient) == "1",
		Scopes:             d.optionalList(fScopes),
		AllowedIPs:         d.optionalPrefixes(fAllowedIPs),
		Disabled:           d.optionalBool(fDisabled),
		CreatedAt:          d.time(fCreatedAt),
		UpdatedAt:          d.time(fUpdatedAt),
		ExpiresAt:          d.time(fExpiresAt),
		LastUsedAt:         d.time(fLastUsedAt),
		SuccessorID:        d.optionalUUID(fSuccessorID),
	}}
	rec.RateLimit, rec.Credits, rec.Usage = d.limits()
	digest := d.str(fDigest)
	if d.err == nil && len(digest) != len(rec.Digest) {
		d.fail(fDigest, fmt.Errorf("%d bytes, want %d", len(digest), len(rec.Digest)))
	}
	copy(rec.Digest[:], digest)
	rec.Version = d.int(fVersion)
	if d.err != nil {
		return apikeys.Record{}, fmt.Errorf("record %s: %w", id, d.err)
	}
	return rec, nil
}

// decoder reads fields of a record hash and keeps the first error.
type decoder struct {
	h     map[string]string
	err   error
	arena []string // where list appends its lists' strings while there is room
}

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("field %s: %w", field, err)
	}
}

func (d *decoder) str(field string) string {
	v, ok := d.h[field]
	if !ok {
		d.fail(field, errors.New("missing"))
	}
	return v
}

// optionalUUID reads a field that records written by earlier versions of
// the store lack: missing or "" is the zero UUID.
func (d *decoder) optionalUUID(field string) uuid.UUID {
	v := d.h[field]
	if v == "" {
		return uuid.UUID{}
	}
	id, err := uuid.Parse(v)
	if err == nil && !canonicalUUID(v) {
		err = fmt.Errorf("%q is not a canonical UUID", v)
	}
	if err != nil {
		d.fail(field, err)
		return uuid.UUID{}
	}
	return id
}

// canonicalUUID reports whether v, which uuid.Parse accepted, is the
// canonical form UUID.String gives: 36 characters (not braced, not a URN),
// hex digits in lower case. It compares without making the string.
func canonicalUUID(v string) bool {
	if len(v) != 36 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= 'A' && c <= 'F' {
			return false
		}
	}
	return true
}

// optionalList reads a list field that records written by earlier
// versions of the store lack: missing is the empty list. A present field
// must be a JSON array of strings (see decodeList).
func (d *decoder) optionalList(field string) []string {
	v, ok := d.h[field]
	if !ok {
		return nil
	}
	l, err := decodeListInto(&d.arena, v)
	if err != nil {
		d.fail(field, err)
		return nil
	}
	return l
}

// optionalPrefixes reads an address list field, as optionalList, each
// entry a prefix in the canonical text encodePrefixes writes. Anything
// else is an error: an entry that does not parse, or that is not
// canonical ("10.0.0.1/8", "::ffff:10.0.0.0/104", "203.0.113.7"), was not
// written by the store.
func (d *decoder) optionalPrefixes(field string) []netip.Prefix {
	l := d.optionalList(field)
	if len(l) == 0 {
		return nil
	}
	out := make([]netip.Prefix, len(l))
	for i, v := range l {
		p, err := netip.ParsePrefix(v)
		var buf [64]byte // the longest prefix text is 43 bytes
		if err == nil && (p != p.Masked() || p.Addr().Is4In6() || string(p.AppendTo(buf[:0])) != v) {
			err = fmt.Errorf("%q is not a canonical prefix", v)
		}
		if err != nil {
			d.fail(field, err)
			return nil
		}
		out[i] = p
	}
	return out
}

// optionalBool reads a flag field that records written by earlier versions
// of the store lack: missing is false. A present field must be "1" or "0".
func (d *decoder) optionalBool(field string) bool {
	switch v, ok := d.h[field]; {
	case !ok || v == "0":
		return false
	case v == "1":
		return true
	default:
		d.fail(field, fmt.Errorf("%q is neither \"1\" nor \"0\"", v))
		return true
	}
}

func (d *decoder) int(field string) int64 {
	n, err := strconv.ParseInt(d.str(field), 10, 64)
	if err != nil {
		d.fail(field, err)
	}
	return n
}

func (d *decoder) time(field string) time.Time {
	v := d.str(field)
	if v == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d.fail(field, err)
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

func (d *decoder) list(field string) []string {
	l, err := decodeListInto(&d.arena, d.str(field))
	if err != nil {
		d.fail(field, err)
	}
	return l
}

// decodeList decodes a JSON array of strings. encodeList writes it as
// json.Marshal does, so in printable ASCII without a backslash no string
// holds a quote and splitting at `","` is exact; anything else goes
// through encoding/json.
// (This is on the authorization path; the split is several times faster.)
//
// Anything but an array is an error, "null" and "" included: a restriction
// that cannot be read must never read as "none".
func decodeList(v string) ([]string, error) {
	var none []string
	return decodeListInto(&none, v)
}

// decodeListInto is decodeList, appending the strings of a split list to
// *arena, and returning them from there, capped: a decoder gives the
// lists of one record one backing array. An arena without room for them
// grows as append does, into a new array that only this list uses.
func decodeListInto(arena *[]string, v string) ([]string, error) {
	if v == "[]" {
		return nil, nil
	}
	if t := strings.TrimSpace(v); t == "" || t[0] != '[' {
		return nil, fmt.Errorf("%q is not a JSON array", v)
	}
	if n := len(v); n >= 4 && v[:2] == `["` && v[n-2:] == `"]` && splittable(v) {
		a, start := *arena, len(*arena)
		for rest := v[2 : n-2]; ; {
			i := strings.Index(rest, `","`)
			if i < 0 {
				a = append(a, rest)
				break
			}
			a = append(a, rest[:i])
			rest = rest[i+3:]
		}
		l := a[start:len(a):len(a)]
		if !slices.ContainsFunc(l, func(s string) bool { return strings.ContainsRune(s, '"') }) {
			if cap(a) == cap(*arena) {
				*arena = a // it had room: the next list goes after this one
			}
			return l, nil
		}
		clear(l) // a quote: not what encodeList writes, so encoding/json decides
	}
	var l []string
	if err := json.Unmarshal([]byte(v), &l); err != nil {
		return nil, err
	}
	return slices.Clip(l), nil
}

// splittable reports whether v holds only printable ASCII and no
// backslash, as every list encodeList writes of validated values does, so
// that no string in it holds a quote (an escape) and splitting is exact.
// Anything else (escapes; control characters, which JSON refuses inside
// strings; bytes that are not UTF-8, which it replaces) is left to
// encoding/json.
func splittable(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}

// touchScriptSrc sets last_used_at if the record exists and the new time is
// later. It never creates a record.
const touchScriptSrc = luaTimeBefore + `
local cur = redis.call('HGET', KEYS[1], 'last_used_at')
if cur == false then return 0 end
if cur == '' or before(cur, ARGV[1]) then
  redis.call('HSET', KEYS[1], 'last_used_at', ARGV[1])
  return 1
end
return 0
`

var touchScript = redis.NewScript(touchScriptSrc)

// TouchLastUsed implements apikeys.Store: one single-key script per use,
// all in one pipeline (which go-redis splits by node on Cluster).
func (s *Store) TouchLastUsed(ctx context.Context, uses []apikeys.Use) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: touch: %w", err)
	}
	if len(uses) == 0 {
		return nil
	}
	// Load the script once so the pipeline can use EVALSHA; a script
	// flushed in between costs one failed batch, retried by the Manager.
	if err := touchScript.Load(ctx, s.rdb).Err(); err != nil {
		return fmt.Errorf("redisstore: touch: %w", err)
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range uses {
			touchScript.EvalSha(ctx, p, []string{s.recordKey(u.ID.String())}, encodeTime(u.At))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: touch: %w", err)
	}
	return nil
}

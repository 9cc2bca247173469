package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/keyward/apikeys"
	"github.com/redis/go-redis/v9"
)

// Rate limits and credits (issue 13): the limits and counters are fields of
// the record hash (see the package doc), and Spend and Refund are one Lua
// script each on the record key, so that each is atomic with its read and
// exact across instances, in one round trip.

// maxTime bounds the counters' Unix seconds (Usage.WindowStart and
// RefilledAt) as apikeys.MaxQuota bounds the counts: within it every sum
// and difference the scripts compute is an integer a Lua number (a double)
// holds exactly. It is some 35 million years.
const maxTime = apikeys.MaxQuota

// luaLimits defines limits(c), which reads the record's limits and
// counters as the decoder reads them (see decoder.limits) from c, the
// values of the fields in LIMIT_FIELDS' order (false for a missing one), as
// HMGET returns them: it returns nil when the record has neither a rate
// limit nor credits (or there is no record), false when its limits or
// counters do not decode, else a table of numbers (limit and window,
// remaining, amount and interval are nil for the limits the record does
// not have) and the digest field.
//
// It checks with one if per step, never with a chain like
// "ok = ok and l.a and l.b": gopher-lua (miniredis) gets that wrong when
// l.a is nil and l.b is not, and makes ok l.b.
//
// int(v, lo, hi) takes exactly what decoder.quota takes: string.format
// refuses "+1", "01", "-0", "1.0", "1e3", "0x1", " 1" and whatever tonumber
// cannot read; the bounds come first, so that no number is formatted that
// %d would mangle. (Nor may the scripts write numbers with tostring: Redis's
// Lua writes 2^50 as 1.1258999068426e+15.)
const luaLimits = `
local MAX = 1125899906842624
local MAX_SECONDS = 31622400
local LIMIT_FIELDS = {'rate_limit', 'credits', 'rate_window', 'window_start', 'window_used', 'refill_amount', 'refill_interval', 'refilled_at', 'digest'}
local function int(v, lo, hi)
	local n = tonumber(v)
	if n ~= nil and n >= lo and n <= hi and string.format('%d', n) == v then
		return n
	end
	return nil
end
local function counter(v, lo, hi)
	if v == false then
		return 0
	end
	return int(v, lo, hi)
end
local function limits(c)
	if not c[1] and not c[2] then
		return nil
	end
	local l = {digest = c[9]}
	l.start = counter(c[4], -MAX, MAX)
	l.used = counter(c[5], 0, MAX)
	l.refilled = counter(c[8], -MAX, MAX)
	if not l.start or not l.used or not l.refilled then
		return false
	end
	if c[1] or c[3] then
		l.limit = int(c[1], 1, MAX)
		l.window = int(c[3], 1, MAX_SECONDS)
		if not l.limit or not l.window then
			return false
		end
	end
	if c[2] then
		l.remaining = int(c[2], 0, MAX)
		if not l.remaining then
			return false
		end
	end
	if c[6] or c[7] then
		l.amount = int(c[6], 1, MAX)
		l.interval = int(c[7], 1, MAX_SECONDS)
		if not c[2] or not l.amount or not l.interval then
			return false
		end
	end
	return l
end
`

// spendScript is Store.Spend: Key.Charge on the record, atomically with
// reading it.
//
//	KEYS[1]  the record key
//	ARGV[1]  the digest of the presented key, ARGV[2] the cost (1 to
//	         MaxQuota), ARGV[3] now in Unix seconds (within maxTime)
//
// It returns the record's HGETALL as it is after the call, empty when there
// is no record, else followed by the pair ":spent", "1" or "0". It spends
// only from a record that has a rate limit or credits and the digest, and
// whose limits and counters decode; any other record it leaves as it is,
// for the decoder to read or refuse. Steps 1 to 3 are Key.Charge's:
// math.fmod truncates like Go's %, and every value stays within 2^51, so the
// arithmetic is exact. It writes only when it spends, and only counters,
// with HSET, which keeps the key's expiry, and puts what it wrote into the
// reply in place of the values it read (or after them, for a counter that
// was missing).
//
// The HGETALL is the only read: the limits are picked out of its reply
// rather than read with a second command, which would cost Redis more. A
// key without limits costs the HGETALL and one pass over its field names
// (two string comparisons each, which Lua makes by address), and returns
// before anything else is set up; a limited one a second pass, and, when
// it spends, an HSET.
const spendScriptSrc = `
local h = redis.call('HGETALL', KEYS[1])
local n = #h
if n == 0 then
	return h
end
local limited = false
for i = 1, n - 1, 2 do
	local f = h[i]
	if f == 'rate_limit' or f == 'credits' then
		limited = true
		break
	end
end
if not limited then
	h[n + 1] = ':spent'
	h[n + 2] = '0'
	return h
end
` + luaLimits + `
-- Each limit field's index in LIMIT_FIELDS (a literal: no function calls).
local want = {rate_limit = 1, credits = 2, rate_window = 3, window_start = 4, window_used = 5, refill_amount = 6, refill_interval = 7, refilled_at = 8, digest = 9}
local c = {false, false, false, false, false, false, false, false, false}
local at = {}
for i = 1, n - 1, 2 do
	local k = want[h[i]]
	if k then
		c[k] = h[i + 1]
		at[k] = i + 1
	end
end
local spent = '0'
local l = limits(c)
if l and l.digest == ARGV[1] then
	local cost = tonumber(ARGV[2])
	local now = tonumber(ARGV[3])
	-- 1. Roll over, never back.
	if l.limit then
		local start = now - math.fmod(now, l.window)
		if start >= l.start + l.window then
			l.start = start
			l.used = 0
		end
	end
	-- 2. Refill, in whole intervals.
	if l.amount then
		local d = now - l.refilled
		local whole = d - math.fmod(d, l.interval)
		if whole > 0 then
			l.remaining = l.amount
			l.refilled = l.refilled + whole
		end
	end
	-- 3. Spend from both, or from neither.
	local allowed = true
	if l.limit and l.used + cost > l.limit then
		allowed = false
	end
	if l.remaining and cost > l.remaining then
		allowed = false
	end
	if allowed then
		local w = {}
		local function put(k, v)
			v = string.format('%d', v)
			w[#w + 1] = LIMIT_FIELDS[k]
			w[#w + 1] = v
			if at[k] then
				h[at[k]] = v
			else
				h[#h + 1] = LIMIT_FIELDS[k]
				h[#h + 1] = v
			end
		end
		if l.limit then
			put(4, l.start)
			put(5, l.used + cost)
		end
		if l.remaining then
			put(2, l.remaining - cost)
			put(8, l.refilled)
		end
		redis.call('HSET', KEYS[1], unpack(w))
		spent = '1'
	end
end
h[#h + 1] = ':spent'
h[#h + 1] = spent
return h
`

// fSpent names the pair after the record in the spend script's reply. A
// colon starts no hash field the store writes, and the pair comes last, so
// it wins over a field of that name, were there one.
const fSpent = ":spent"

var spendScript = redis.NewScript(spendScriptSrc)

// refundScript is Store.Refund: Key.Refund on the record.
//
//	KEYS[1]  the record key
//	ARGV[1]  the cost (1 to MaxQuota)
//	ARGV[2]  the window start and ARGV[3] the refill time the cost was
//	         spent in, Unix seconds; ARGV[4] the record's version Spend
//	         returned (another version: nothing is given back)
//
// It returns the number of counters it gave back to (0 for a missing
// record), or -1, writing nothing, when the record's limits or counters
// do not decode.
const refundScriptSrc = luaLimits + `
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[4] then
	return 0
end
local l = limits(redis.call('HMGET', KEYS[1], unpack(LIMIT_FIELDS)))
if l == false then
	return -1
end
if not l then
	return 0
end
local cost = tonumber(ARGV[1])
local w = {}
if l.limit and l.start == tonumber(ARGV[2]) then
	w[#w + 1] = 'window_used'
	w[#w + 1] = string.format('%d', math.max(0, l.used - cost))
end
if l.remaining and l.refilled == tonumber(ARGV[3]) then
	w[#w + 1] = 'credits'
	w[#w + 1] = string.format('%d', math.min(MAX, l.remaining + cost))
end
if #w > 0 then
	redis.call('HSET', KEYS[1], unpack(w))
end
return #w / 2
`

var refundScript = redis.NewScript(refundScriptSrc)

// Spend implements apikeys.Store: the spend script, in one round trip
// (two the first time on a server that has not seen the script: EVALSHA,
// then EVAL, as Script.Run does).
func (s *Store) Spend(ctx context.Context, q apikeys.SpendRequest) (apikeys.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return apikeys.Record{}, false, fmt.Errorf("redisstore: spend: %w", err)
	}
	if err := checkCharge(q.Cost, q.Now); err != nil {
		return apikeys.Record{}, false, fmt.Errorf("redisstore: spend: %w", err)
	}
	key := s.recordKeyOf(q.ID)
	digest, cost, now := string(q.Digest[:]), strconv.FormatInt(q.Cost, 10), strconv.FormatInt(q.Now, 10)
	// The reply is a map, like HGETALL's: read it as one, which spares the
	// []any of Script.Run and an allocation per string in it.
	cmd := redis.NewMapStringStringCmd(ctx, "evalsha", spendScript.Hash(), 1, key, digest, cost, now)
	cmd.SetFirstKeyPos(3)
	err := s.rdb.Process(ctx, cmd)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd = redis.NewMapStringStringCmd(ctx, "eval", spendScriptSrc, 1, key, digest, cost, now)
		cmd.SetFirstKeyPos(3)
		err = s.rdb.Process(ctx, cmd)
	}
	if err != nil {
		return apikeys.Record{}, false, fmt.Errorf("redisstore: spend: %w", err)
	}
	h := cmd.Val()
	if len(h) == 0 {
		return apikeys.Record{}, false, apikeys.ErrNotFound
	}
	rec, err := decode(q.ID, h)
	if err != nil {
		return apikeys.Record{}, false, fmt.Errorf("redisstore: spend: %w", err)
	}
	return rec, h[fSpent] == "1", nil
}

// Refund implements apikeys.Store.
func (s *Store) Refund(ctx context.Context, q apikeys.RefundRequest) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: refund: %w", err)
	}
	if err := checkCharge(q.Cost, 0); err != nil {
		return fmt.Errorf("redisstore: refund: %w", err)
	}
	n, err := refundScript.Run(ctx, s.rdb, []string{s.recordKey(q.ID.String())},
		strconv.FormatInt(q.Cost, 10), strconv.FormatInt(q.WindowStart, 10), strconv.FormatInt(q.RefilledAt, 10),
		strconv.FormatInt(q.Version, 10)).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: refund: %w", err)
	}
	if n < 0 {
		return fmt.Errorf("redisstore: refund: record %s: its limits or counters do not decode; nothing refunded", q.ID)
	}
	return nil
}

// checkCharge refuses a cost or a clock out of the range within which the
// scripts count exactly. The Manager never sends one.
func checkCharge(cost, now int64) error {
	if cost < 1 || cost > apikeys.MaxQuota {
		return &apikeys.ValidationError{Field: "cost", Reason: "must be 1 to " + strconv.FormatInt(apikeys.MaxQuota, 10)}
	}
	if now < -maxTime || now > maxTime {
		return fmt.Errorf("the clock, %d Unix seconds, is out of range", now)
	}
	return nil
}

// appendLimits appends the fields of rec's limits, as field, value pairs.
func appendLimits(args []any, rec *apikeys.Record) []any {
	if r := rec.RateLimit; r != nil {
		args = append(args, fRateLimit, strconv.FormatInt(r.Limit, 10), fRateWindow, strconv.FormatInt(r.WindowSeconds, 10))
	}
	if c := rec.Credits; c != nil {
		args = append(args, fCredits, strconv.FormatInt(c.Remaining, 10))
		if r := c.Refill; r != nil {
			args = append(args, fRefillAmount, strconv.FormatInt(r.Amount, 10), fRefillInterval, strconv.FormatInt(r.IntervalSeconds, 10))
		}
	}
	return args
}

// appendCounters appends the counters that are not 0, as field, value
// pairs. A missing counter reads as 0, so a key without limits has none.
func appendCounters(args []any, u *apikeys.Usage) []any {
	for _, c := range []struct {
		field string
		n     int64
	}{{fWindowStart, u.WindowStart}, {fWindowUsed, u.WindowUsed}, {fRefilledAt, u.RefilledAt}} {
		if c.n != 0 {
			args = append(args, c.field, strconv.FormatInt(c.n, 10))
		}
	}
	return args
}

// checkQuotas refuses to write limits or counters that the store could
// not read back (see decoder.limits). The Manager validates the limits
// with the same bounds, and sets the counters itself.
func checkQuotas(rec *apikeys.Record) error {
	type bound struct {
		field     string
		n, lo, hi int64
	}
	bounds := []bound{
		{"usage.window_start", rec.Usage.WindowStart, -maxTime, maxTime},
		{"usage.window_used", rec.Usage.WindowUsed, 0, apikeys.MaxQuota},
		{"usage.refilled_at", rec.Usage.RefilledAt, -maxTime, maxTime},
	}
	if r := rec.RateLimit; r != nil {
		bounds = append(bounds,
			bound{"rate_limit.limit", r.Limit, 1, apikeys.MaxQuota},
			bound{"rate_limit.window_seconds", r.WindowSeconds, 1, apikeys.MaxQuotaSeconds})
	}
	if c := rec.Credits; c != nil {
		bounds = append(bounds, bound{"credits.remaining", c.Remaining, 0, apikeys.MaxQuota})
		if r := c.Refill; r != nil {
			bounds = append(bounds,
				bound{"credits.refill.amount", r.Amount, 1, apikeys.MaxQuota},
				bound{"credits.refill.interval_seconds", r.IntervalSeconds, 1, apikeys.MaxQuotaSeconds})
		}
	}
	for _, b := range bounds {
		if b.n < b.lo || b.n > b.hi {
			return &apikeys.ValidationError{Field: b.field, Reason: fmt.Sprintf("must be %d to %d", b.lo, b.hi)}
		}
	}
	return nil
}

// limits reads the limits and the counters. Each limit is there or not as
// a whole: rate_limit with rate_window, credits with or without both
// refill fields; a part without the rest is an error, as is any value
// that is not a canonical decimal integer within its bounds (those of
// apikeys.MaxQuota, apikeys.MaxQuotaSeconds and maxTime). Missing
// counters are 0. A malformed field is never "unlimited".
func (d *decoder) limits() (*apikeys.RateLimit, *apikeys.Credits, apikeys.Usage) {
	var u apikeys.Usage
	u.WindowStart, _ = d.quota(fWindowStart, -maxTime, maxTime)
	u.WindowUsed, _ = d.quota(fWindowUsed, 0, apikeys.MaxQuota)
	u.RefilledAt, _ = d.quota(fRefilledAt, -maxTime, maxTime)

	var rl *apikeys.RateLimit
	limit, hasLimit := d.quota(fRateLimit, 1, apikeys.MaxQuota)
	window, hasWindow := d.quota(fRateWindow, 1, apikeys.MaxQuotaSeconds)
	switch {
	case hasLimit && hasWindow:
		rl = &apikeys.RateLimit{Limit: limit, WindowSeconds: window}
	case hasLimit:
		d.fail(fRateWindow, errors.New("missing"))
	case hasWindow:
		d.fail(fRateWindow, errors.New("without "+fRateLimit))
	}

	var cr *apikeys.Credits
	remaining, hasCredits := d.quota(fCredits, 0, apikeys.MaxQuota)
	amount, hasAmount := d.quota(fRefillAmount, 1, apikeys.MaxQuota)
	interval, hasInterval := d.quota(fRefillInterval, 1, apikeys.MaxQuotaSeconds)
	switch {
	case hasAmount != hasInterval:
		d.fail(fRefillInterval, fmt.Errorf("%s and %s must come together", fRefillAmount, fRefillInterval))
	case hasAmount && !hasCredits:
		d.fail(fRefillAmount, errors.New("without "+fCredits))
	case hasCredits:
		cr = &apikeys.Credits{Remaining: remaining}
		if hasAmount {
			cr.Refill = &apikeys.Refill{Amount: amount, IntervalSeconds: interval}
		}
	}
	return rl, cr, u
}

// quota reads an integer field that may be missing: it returns the value
// (0 when missing) and whether the field is there.
func (d *decoder) quota(field string, lo, hi int64) (int64, bool) {
	v, ok := d.h[field]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
	case !canonicalInt(v):
		err = fmt.Errorf("%q is not a canonical decimal integer", v)
	case n < lo || n > hi:
		err = fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
	}
	if err != nil {
		d.fail(field, err)
		return 0, true
	}
	return n, true
}

// canonicalInt reports whether v, which strconv.ParseInt read, is written
// as strconv.FormatInt writes it: no '+', no leading zero, no "-0".
func canonicalInt(v string) bool {
	if v[0] == '-' {
		v = v[1:]
		if v == "0" {
			return false
		}
	}
	return v[0] != '+' && (v[0] != '0' || len(v) == 1)
}

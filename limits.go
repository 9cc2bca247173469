package apikeys

import (
	"strconv"
	"time"
)

// Rate limits and credits
//
// A key may carry a rate limit, credits, both or neither (the default:
// unlimited). Every request states a cost (Request.Cost, default 1), and a
// request that passes every other rule spends its cost from both. The
// counters live in the store next to the key and are spent by Store.Spend,
// atomically with the read Authorize makes anyway, so they are exact on any
// number of instances: the limit is never exceeded, and no credit is spent
// twice.
//
// The rate limit uses fixed windows aligned to the Unix epoch: a key with
// {Limit: 100, WindowSeconds: 60} may spend at most 100 in each minute that
// starts at a multiple of 60 seconds since 1970, whatever the number of
// instances. Fixed windows are exact and cost one counter; the price is
// that a client may spend up to twice the limit within less than one window
// across a window boundary (100 at 12:00:59 and 100 at 12:01:00). Use a
// shorter window with a proportionally smaller limit where bursts matter.
//
// Credits are a budget: each authorized request spends its cost, and at
// zero requests are refused until the next refill, which sets Remaining back
// to Refill.Amount (not adding to it) once every Refill.IntervalSeconds,
// counted in whole intervals from when the credits were last set. Without a
// refill, spent credits stay spent until an Update sets them.

// MaxQuota bounds every count of a rate limit or of credits (limit,
// remaining, refill amount, a request's cost): 2^50, so that every store,
// Redis's Lua numbers included, counts exactly.
const MaxQuota = 1 << 50

// MaxQuotaSeconds bounds a rate limit's window and a refill's interval: 366
// days.
const MaxQuotaSeconds = 366 * 24 * 60 * 60

// RateLimit caps what a key may spend per window.
type RateLimit struct {
	// Limit is the most a key may spend in one window: 1 to MaxQuota.
	Limit int64 `json:"limit"`
	// WindowSeconds is the window's length: 1 to MaxQuotaSeconds.
	WindowSeconds int64 `json:"window_seconds"`
}

// Credits is a key's spending budget.
type Credits struct {
	// Remaining is what the key may still spend: 0 to MaxQuota.
	Remaining int64 `json:"remaining"`
	// Refill, when not nil, sets Remaining back to its Amount every
	// interval; nil means never.
	Refill *Refill `json:"refill"`
}

// Refill resets credits periodically.
type Refill struct {
	// Amount is what Remaining is set to: 1 to MaxQuota.
	Amount int64 `json:"amount"`
	// IntervalSeconds is the time between refills: 1 to MaxQuotaSeconds.
	IntervalSeconds int64 `json:"interval_seconds"`
}

// Usage is a key's counters, in Unix seconds. Only Store.Spend and
// Store.Refund change them (and Credits.Remaining), and Store.Update when
// the record says SetCredits.
type Usage struct {
	// WindowStart is the start of the rate-limit window WindowUsed counts.
	WindowStart int64
	// WindowUsed is what was spent in that window.
	WindowUsed int64
	// RefilledAt is the start of the current refill interval: when the
	// credits were last set or refilled.
	RefilledAt int64
}

// Limited reports whether the key has a rate limit or credits, so that
// authorizing it spends from counters in the store.
func (k *Key) Limited() bool { return k.RateLimit != nil || k.Credits != nil }

// Charge spends cost from k's counters at now (Unix seconds) if they allow
// it. It is the one rule every Store.Spend applies, exactly as written here,
// in one atomic step with reading the record:
//
//  1. Roll over: when k has a rate limit and now's window (now minus now
//     modulo WindowSeconds) starts at least WindowSeconds after
//     Usage.WindowStart, the window starts over there at 0 used. A window
//     is never moved back, so an instance whose clock is behind counts into
//     the latest window; and a window whose length an Update changed keeps
//     its count until it has lasted the new length (then the next aligned
//     window starts), so changing the length never resets the count.
//  2. Refill: when k has credits with a refill and now is at least one
//     interval past Usage.RefilledAt, Remaining becomes Refill.Amount and
//     RefilledAt moves forward by whole intervals.
//  3. Spend: when WindowUsed+cost is at most Limit and cost is at most
//     Remaining, both are charged and Charge returns nil. Otherwise nothing
//     is charged and Charge returns ErrRateLimited or ErrCreditsExhausted
//     (the rate limit is checked first).
//
// Steps 1 and 2 change k even when step 3 refuses; a store that refuses
// need not write them. Charge ignores keys without limits.
func (k *Key) Charge(cost, now int64) error {
	k.roll(now)
	if k.RateLimit != nil && k.Usage.WindowUsed+cost > k.RateLimit.Limit {
		return ErrRateLimited
	}
	if k.Credits != nil && cost > k.Credits.Remaining {
		return ErrCreditsExhausted
	}
	if k.RateLimit != nil {
		k.Usage.WindowUsed += cost
	}
	if k.Credits != nil {
		k.Credits.Remaining -= cost
	}
	return nil
}

// roll applies Charge's steps 1 and 2.
func (k *Key) roll(now int64) {
	if r := k.RateLimit; r != nil && r.WindowSeconds > 0 {
		if start := now - now%r.WindowSeconds; start >= k.Usage.WindowStart+r.WindowSeconds {
			k.Usage.WindowStart, k.Usage.WindowUsed = start, 0
		}
	}
	if c := k.Credits; c != nil && c.Refill != nil && c.Refill.IntervalSeconds > 0 {
		if n := (now - k.Usage.RefilledAt) / c.Refill.IntervalSeconds; n > 0 {
			c.Remaining = c.Refill.Amount
			k.Usage.RefilledAt += n * c.Refill.IntervalSeconds
		}
	}
}

// RateLimitLeft returns what the key's rate limit leaves at now in the
// current window, and when that window ends. Both are zero for a key
// without a rate limit. It reads counters as Authorize returned them.
func (k *Key) RateLimitLeft(now time.Time) (remaining int64, reset time.Duration) {
	r := k.RateLimit
	if r == nil || r.WindowSeconds <= 0 {
		return 0, 0
	}
	cp := Key{RateLimit: r, Usage: k.Usage}
	cp.roll(now.Unix())
	return max(0, r.Limit-cp.Usage.WindowUsed), until(now, windowEnd(cp.Usage.WindowStart, r.WindowSeconds))
}

// windowEnd is when the window that started at start rolls over: the
// first aligned window start at least w after it (start+w for an aligned
// start).
func windowEnd(start, w int64) int64 {
	end := start + w
	if rem := end % w; rem != 0 {
		end += w - rem
	}
	return end
}

// CreditsLeft returns the key's remaining credits at now and when they are
// next refilled (0 without a refill). Both are zero for a key without
// credits.
func (k *Key) CreditsLeft(now time.Time) (remaining int64, refill time.Duration) {
	c := k.Credits
	if c == nil {
		return 0, 0
	}
	cp := *k
	cc := *c
	cp.Credits = &cc
	cp.roll(now.Unix())
	if cc.Refill == nil || cc.Refill.IntervalSeconds <= 0 {
		return cc.Remaining, 0
	}
	return cc.Remaining, until(now, cp.Usage.RefilledAt+cc.Refill.IntervalSeconds)
}

// until returns the time from now to the Unix second sec, at least one
// second: a client told to wait 0 would retry at once.
func until(now time.Time, sec int64) time.Duration {
	return max(time.Second, time.Unix(sec, 0).Sub(now))
}

// LimitError is a refusal by a rate limit or by credits. It unwraps to
// ErrRateLimited or ErrCreditsExhausted.
type LimitError struct {
	Err error // ErrRateLimited or ErrCreditsExhausted
	// RetryAfter is when the request could succeed: the end of the window,
	// or the next refill. Zero when waiting cannot help: credits without a
	// refill, or a cost above the limit.
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	if e.RetryAfter == 0 {
		return e.Err.Error()
	}
	return e.Err.Error() + "; retry after " + strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10) + "s"
}

func (e *LimitError) Unwrap() error { return e.Err }

// limitError explains why Charge refused cost at now for k (whose counters
// the refusing store returned).
func limitError(k *Key, cost int64, now time.Time, err error) *LimitError {
	return &LimitError{Err: err, RetryAfter: retryAfter(k, cost, now)}
}

// retryAfter returns how long from now until Charge would allow cost,
// if nothing else spends: the end of a window, a refill, or the later of
// both when both refuse. Zero when waiting cannot help.
func retryAfter(k *Key, cost int64, now time.Time) time.Duration {
	t := now.Unix()
	for range 4 { // each step moves past a window or a refill
		probe := *k
		if k.Credits != nil {
			c := *k.Credits
			probe.Credits = &c
		}
		var next int64
		switch probe.Charge(cost, t) {
		case nil:
			return until(now, t) // at least a second, also when another instance spent in between
		case ErrRateLimited:
			if cost > probe.RateLimit.Limit {
				return 0
			}
			next = windowEnd(probe.Usage.WindowStart, probe.RateLimit.WindowSeconds)
		default:
			r := probe.Credits.Refill
			if r == nil || cost > r.Amount {
				return 0
			}
			next = probe.Usage.RefilledAt + r.IntervalSeconds
		}
		t = max(t+1, next)
	}
	return until(now, t)
}

func checkRateLimit(probs *problems, r *RateLimit) *RateLimit {
	if r == nil {
		return nil
	}
	checkCount(probs, "rate_limit.limit", r.Limit, 1)
	checkSeconds(probs, "rate_limit.window_seconds", r.WindowSeconds)
	c := *r
	return &c
}

func checkCredits(probs *problems, c *Credits) *Credits {
	if c == nil {
		return nil
	}
	checkCount(probs, "credits.remaining", c.Remaining, 0)
	out := Credits{Remaining: c.Remaining}
	if c.Refill != nil {
		checkCount(probs, "credits.refill.amount", c.Refill.Amount, 1)
		checkSeconds(probs, "credits.refill.interval_seconds", c.Refill.IntervalSeconds)
		r := *c.Refill
		out.Refill = &r
	}
	return &out
}

func checkCount(probs *problems, field string, n, least int64) {
	if n < least || n > MaxQuota {
		probs.add(field, "must be "+strconv.FormatInt(least, 10)+" to "+strconv.FormatInt(MaxQuota, 10))
	}
}

func checkSeconds(probs *problems, field string, n int64) {
	if n < 1 || n > MaxQuotaSeconds {
		probs.add(field, "must be 1 to "+strconv.Itoa(MaxQuotaSeconds)+" (366 days)")
	}
}

// Refund gives back what Charge spent, as Store.Refund must: cost goes back
// into the window and the refill interval it was spent in (windowStart and
// refilledAt, the counters Charge left), and is dropped for a window or an
// interval that has since been replaced.
func (k *Key) Refund(cost, windowStart, refilledAt int64) {
	if k.RateLimit != nil && k.Usage.WindowStart == windowStart {
		k.Usage.WindowUsed = max(0, k.Usage.WindowUsed-cost)
	}
	if k.Credits != nil && k.Usage.RefilledAt == refilledAt {
		k.Credits.Remaining = min(MaxQuota, k.Credits.Remaining+cost)
	}
}

package redisstore

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// limitedKey issues a key through a Manager on a memstore (for its value;
// without a pepper the digest is SHA-256 of the value, whichever Manager
// computes it), gives its record the limits, with RefilledAt now, and
// stores it in s. It returns the value and the stored record.
func limitedKey(t testing.TB, s *Store, p apikeys.CreateParams, rl *apikeys.RateLimit, cr *apikeys.Credits) (string, apikeys.Record) {
	t.Helper()
	if p.Type == "" {
		p.Type = apikeys.Private
	}
	if p.Name == "" {
		p.Name = "metered"
	}
	if p.UserID == "" {
		p.UserID = "alice"
	}
	mem := memstore.New()
	issuer, err := apikeys.New(mem, nil)
	require.NoError(t, err)
	nk, err := issuer.Create(t.Context(), p)
	require.NoError(t, err)
	rec, err := mem.Get(t.Context(), nk.ID)
	require.NoError(t, err)
	rec.RateLimit, rec.Credits = rl, cr
	rec.Usage = apikeys.Usage{RefilledAt: time.Now().Unix()}
	require.NoError(t, s.Create(t.Context(), rec))
	return nk.Value, rec
}

// hashOf returns the record hash of id as stored.
func hashOf(t testing.TB, s *Store, id string) map[string]string {
	t.Helper()
	h, err := s.rdb.HGetAll(t.Context(), s.recordKey(id)).Result()
	require.NoError(t, err)
	return h
}

// limitFields picks the limit and counter fields out of a record hash.
func limitFields(h map[string]string) map[string]string {
	out := map[string]string{}
	for _, f := range []string{fRateLimit, fRateWindow, fCredits, fRefillAmount, fRefillInterval, fWindowStart, fWindowUsed, fRefilledAt} {
		if v, ok := h[f]; ok {
			out[f] = v
		}
	}
	return out
}

// TestLimitFieldsFormat: the limits and counters are the hash fields the
// package doc names, plain decimal integers; a record has the fields of
// the limits it has and no others, and the counters that are not 0; an
// Update replaces the limits (deleting the fields of those it removes)
// and keeps the counters.
func TestLimitFieldsFormat(t *testing.T) {
	t.Parallel()
	const start, refilled = 1_700_000_040, 1_699_996_400
	steps := []struct {
		name       string
		rl         *apikeys.RateLimit
		cr         *apikeys.Credits
		setCredits bool
		want       map[string]string
	}{
		{"both limits", &apikeys.RateLimit{Limit: 100, WindowSeconds: 60},
			&apikeys.Credits{Remaining: apikeys.MaxQuota, Refill: &apikeys.Refill{Amount: 1000, IntervalSeconds: 86400}}, false,
			map[string]string{
				fRateLimit: "100", fRateWindow: "60", fCredits: "1125899906842624", fRefillAmount: "1000", fRefillInterval: "86400",
				fWindowStart: "1700000040", fWindowUsed: "7", fRefilledAt: "1699996400",
			}},
		{"refill removed, credits kept", &apikeys.RateLimit{Limit: 100, WindowSeconds: 60}, &apikeys.Credits{Remaining: 5}, false,
			map[string]string{
				fRateLimit: "100", fRateWindow: "60", fCredits: "1125899906842624",
				fWindowStart: "1700000040", fWindowUsed: "7", fRefilledAt: "1699996400",
			}},
		{"limits removed, counters kept", nil, nil, false,
			map[string]string{fWindowStart: "1700000040", fWindowUsed: "7", fRefilledAt: "1699996400"}},
		{"credits set", nil, &apikeys.Credits{Remaining: 0}, true,
			map[string]string{fCredits: "0", fWindowStart: "1700000040", fWindowUsed: "7", fRefilledAt: "0"}},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, _ := newStore(t, b, nil)
		rec := testRecord(t, "alice")
		rec.Usage = apikeys.Usage{WindowStart: start, WindowUsed: 7, RefilledAt: refilled}
		for i, st := range steps {
			rec.RateLimit, rec.Credits, rec.SetCredits = st.rl, st.cr, st.setCredits
			if i == 0 {
				require.NoError(t, s.Create(t.Context(), rec), st.name)
			} else {
				rec.Version++
				rec.Usage = apikeys.Usage{RefilledAt: 0} // what an Update keeps must not come from rec
				require.NoError(t, s.Update(t.Context(), rec), st.name)
			}
			assert.Equal(t, st.want, limitFields(hashOf(t, s, rec.ID.String())), st.name)
		}
	})
}

// TestCreateRefusesUnreadableQuotas: Create and Update refuse, storing
// nothing, limits and counters that the decoder would refuse to read back
// (the Manager validates the limits with the same bounds).
func TestCreateRefusesUnreadableQuotas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field string
		set   func(*apikeys.Record)
	}{
		{"rate_limit.limit", func(r *apikeys.Record) { r.RateLimit = &apikeys.RateLimit{Limit: 0, WindowSeconds: 1} }},
		{"rate_limit.limit", func(r *apikeys.Record) {
			r.RateLimit = &apikeys.RateLimit{Limit: apikeys.MaxQuota + 1, WindowSeconds: 1}
		}},
		{"rate_limit.window_seconds", func(r *apikeys.Record) { r.RateLimit = &apikeys.RateLimit{Limit: 1, WindowSeconds: 0} }},
		{"rate_limit.window_seconds", func(r *apikeys.Record) {
			r.RateLimit = &apikeys.RateLimit{Limit: 1, WindowSeconds: apikeys.MaxQuotaSeconds + 1}
		}},
		{"credits.remaining", func(r *apikeys.Record) { r.Credits = &apikeys.Credits{Remaining: -1} }},
		{"credits.remaining", func(r *apikeys.Record) { r.Credits = &apikeys.Credits{Remaining: apikeys.MaxQuota + 1} }},
		{"credits.refill.amount", func(r *apikeys.Record) {
			r.Credits = &apikeys.Credits{Refill: &apikeys.Refill{Amount: 0, IntervalSeconds: 1}}
		}},
		{"credits.refill.interval_seconds", func(r *apikeys.Record) {
			r.Credits = &apikeys.Credits{Refill: &apikeys.Refill{Amount: 1, IntervalSeconds: apikeys.MaxQuotaSeconds + 1}}
		}},
		{"usage.window_used", func(r *apikeys.Record) { r.Usage.WindowUsed = -1 }},
		{"usage.window_start", func(r *apikeys.Record) { r.Usage.WindowStart = maxTime + 1 }},
		{"usage.refilled_at", func(r *apikeys.Record) { r.Usage.RefilledAt = -maxTime - 1 }},
	}
	s, _, mr := newStore(t, backends[0], nil)
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			rec := testRecord(t, "alice")
			bad := rec
			tt.set(&bad)
			var ve *apikeys.ValidationError
			err := s.Create(t.Context(), bad)
			require.ErrorAs(t, err, &ve, "Create")
			assert.Equal(t, tt.field, ve.Field)
			assert.False(t, mr.Exists(s.recordKey(rec.ID.String())), "Create stored the record")

			require.NoError(t, s.Create(t.Context(), rec))
			bad.Version, bad.SetCredits = 2, true
			require.ErrorIs(t, s.Update(t.Context(), bad), apikeys.ErrValidation, "Update")
			got, err := s.Get(t.Context(), rec.ID)
			require.NoError(t, err)
			assert.Equal(t, rec, got, "Update changed the record")
		})
	}
}

// TestMalformedLimitsFailClosed: a limit or counter field that does not
// decode, or a limit with a part missing, makes the record an error for
// Get, Spend and Refund, never a key without limits, and neither Spend nor
// Refund writes to it (the scripts read the fields as the decoder does).
// Authorize refuses the key with a *apikeys.StoreError.
func TestMalformedLimitsFailClosed(t *testing.T) {
	t.Parallel()
	const del = "\x00deleted"
	tests := []struct {
		field, value string
		errField     string // the field the error names; "" for field
	}{
		{fRateLimit, "", ""},
		{fRateLimit, "0", ""},
		{fRateLimit, "-1", ""},
		{fRateLimit, "ten", ""},
		{fRateLimit, "+10", ""},
		{fRateLimit, "010", ""},
		{fRateLimit, "1e3", ""},
		{fRateLimit, "10.0", ""},
		{fRateLimit, " 10", ""},
		{fRateLimit, "0x10", ""},
		{fRateLimit, "1125899906842625", ""}, // MaxQuota + 1
		{fRateLimit, "99999999999999999999", ""},
		{fRateLimit, del, fRateWindow}, // a window without a limit
		{fRateWindow, "0", ""},
		{fRateWindow, "31622401", ""}, // MaxQuotaSeconds + 1
		{fRateWindow, del, ""},
		{fCredits, "-1", ""},
		{fCredits, "", ""},
		{fCredits, "5.5", ""},
		{fCredits, "-0", ""},
		{fCredits, "nan", ""},
		{fCredits, "inf", ""},
		{fCredits, del, fRefillAmount}, // a refill without credits
		{fRefillAmount, "0", ""},
		{fRefillAmount, del, fRefillInterval},
		{fRefillInterval, "0", ""},
		{fRefillInterval, del, ""},
		{fWindowStart, "1.5", ""},
		{fWindowStart, "-0", ""},
		{fWindowStart, "1125899906842625", ""},
		{fWindowStart, "", ""},
		{fWindowUsed, "-1", ""},
		{fWindowUsed, "x", ""},
		{fRefilledAt, "yesterday", ""},
		{fRefilledAt, "-1125899906842625", ""},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		for _, tt := range tests {
			name := tt.field + "=" + strconv.Quote(tt.value)
			if tt.value == del {
				name = tt.field + " deleted"
			}
			errField := tt.errField
			if errField == "" {
				errField = tt.field
			}
			value, rec := limitedKey(t, s, apikeys.CreateParams{UserID: "mallory"},
				&apikeys.RateLimit{Limit: 100, WindowSeconds: 60},
				&apikeys.Credits{Remaining: 50, Refill: &apikeys.Refill{Amount: 50, IntervalSeconds: 3600}})
			_, err := m.Authorize(t.Context(), value, apikeys.Request{})
			require.NoError(t, err, "%s: the key before it is spoiled", name)
			key := s.recordKey(rec.ID.String())
			if tt.value == del {
				require.NoError(t, rdb.HDel(t.Context(), key, tt.field).Err())
			} else {
				require.NoError(t, rdb.HSet(t.Context(), key, tt.field, tt.value).Err())
			}
			before := hashOf(t, s, rec.ID.String())

			_, err = s.Get(t.Context(), rec.ID)
			if assert.Error(t, err, "Get with %s", name) {
				assert.NotErrorIs(t, err, apikeys.ErrNotFound, "Get with %s", name)
				assert.ErrorContains(t, err, "field "+errField, "Get with %s", name)
			}
			now := time.Now().Unix()
			_, spent, err := s.Spend(t.Context(), apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: now + 7200})
			if assert.Error(t, err, "Spend with %s", name) {
				assert.NotErrorIs(t, err, apikeys.ErrNotFound, "Spend with %s", name)
				assert.ErrorContains(t, err, "field "+errField, "Spend with %s", name)
			}
			assert.False(t, spent, "Spend with %s", name)
			err = s.Refund(t.Context(), apikeys.RefundRequest{ID: rec.ID, Cost: 1, Version: rec.Version, WindowStart: now - now%60, RefilledAt: rec.Usage.RefilledAt})
			assert.Error(t, err, "Refund with %s", name)
			assert.Equal(t, before, hashOf(t, s, rec.ID.String()), "%s: Spend or Refund wrote to the record", name)

			_, err = m.Authorize(t.Context(), value, apikeys.Request{})
			var se *apikeys.StoreError
			assert.True(t, errors.As(err, &se), "Authorize with %s = %v, want a *apikeys.StoreError", name, err)
			require.NoError(t, rdb.Del(t.Context(), key).Err())
		}
	})
}

// TestSpendKeepsExpiry: Spend and Refund write counters with HSET, which
// keeps the record key's Redis expiry (PEXPIREAT at expires_at plus the
// margin) as it is, and gives none to a record without one.
func TestSpendKeepsExpiry(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, mr := newStore(t, b, nil)
		if mr != nil {
			mr.SetTime(time.Now()) // a fixed clock, so that PEXPIRETIME is exact
		}
		ctx := t.Context()
		for _, expires := range []bool{true, false} {
			rec := testRecord(t, "alice")
			rec.Disabled = false
			rec.RateLimit = &apikeys.RateLimit{Limit: 3, WindowSeconds: 3600}
			rec.Credits = &apikeys.Credits{Remaining: 10}
			if !expires {
				rec.ExpiresAt = time.Time{}
			}
			require.NoError(t, s.Create(ctx, rec))
			key := s.recordKey(rec.ID.String())
			want, err := rdb.PExpireTime(ctx, key).Result()
			require.NoError(t, err)
			if expires {
				require.Greater(t, want, time.Duration(0), "the record has no expiry")
			} else {
				require.Equal(t, time.Duration(-1), want, "the record has an expiry")
			}
			now := time.Now().Unix()
			ops := []struct {
				name      string
				cost      int64
				refund    bool
				wantSpent bool
			}{
				{"spend", 2, false, true},
				{"refund", 2, true, false},
				{"spend again", 3, false, true},
				{"refused spend", 1, false, false},
			}
			var last apikeys.Record
			for _, op := range ops {
				if op.refund {
					require.NoError(t, s.Refund(ctx, apikeys.RefundRequest{ID: rec.ID, Cost: op.cost, Version: last.Version, WindowStart: last.Usage.WindowStart, RefilledAt: last.Usage.RefilledAt}))
				} else {
					got, spent, err := s.Spend(ctx, apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: op.cost, Now: now})
					require.NoError(t, err, op.name)
					require.Equal(t, op.wantSpent, spent, op.name)
					last = got
				}
				got, err := rdb.PExpireTime(ctx, key).Result()
				require.NoError(t, err)
				assert.Equal(t, want, got, "expiring %v, after %s: PEXPIRETIME", expires, op.name)
			}
		}
	})
}

// TestSpendExactAtTheBounds: the scripts count with Lua numbers, doubles,
// which hold every integer up to 2^53: at the bounds of apikeys.MaxQuota,
// MaxQuotaSeconds and the clock (maxTime, either side of 1970) Spend and
// Refund still agree exactly with Key.Charge and Key.Refund, and write
// every number as decimal digits.
func TestSpendExactAtTheBounds(t *testing.T) {
	t.Parallel()
	const q, w = apikeys.MaxQuota, apikeys.MaxQuotaSeconds
	steps := []struct {
		cost, now int64
		refund    bool // give the cost back after spending it
	}{
		{q, -maxTime + 1, false},
		{1, -maxTime + 1, false},
		{q - 1, -maxTime + 3*w + 17, true},
		{q, -maxTime + 3*w + 17, false},
		{1, -w - 1, false},
		{q - 1, -1, true},
		{q, 0, false},
		{1, w - 1, false},
		{q, maxTime - w, true},
		{q, maxTime - 1, false},
		{q - 2, maxTime, false},
		{3, maxTime, false},
		{2, maxTime, true},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, _ := newStore(t, b, nil)
		ctx := t.Context()
		rec := testRecord(t, "alice")
		rec.RateLimit = &apikeys.RateLimit{Limit: q, WindowSeconds: w}
		rec.Credits = &apikeys.Credits{Remaining: q, Refill: &apikeys.Refill{Amount: q - 1, IntervalSeconds: w - 1}}
		rec.Usage = apikeys.Usage{WindowStart: -maxTime, WindowUsed: 0, RefilledAt: -maxTime}
		require.NoError(t, s.Create(ctx, rec))
		model := rec
		for i, st := range steps {
			want := model
			c := *model.Credits
			want.Credits = &c
			wantOK := want.Charge(st.cost, st.now) == nil
			got, ok, err := s.Spend(ctx, apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: st.cost, Now: st.now})
			require.NoError(t, err, "step %d", i)
			require.Equal(t, wantOK, ok, "step %d: spent", i)
			if ok {
				model = want
			}
			require.Equal(t, model.Usage, got.Usage, "step %d: usage", i)
			require.Equal(t, *model.Credits, *got.Credits, "step %d: credits", i)
			if ok && st.refund {
				r := apikeys.RefundRequest{ID: rec.ID, Cost: st.cost, Version: got.Version, WindowStart: got.Usage.WindowStart, RefilledAt: got.Usage.RefilledAt}
				require.NoError(t, s.Refund(ctx, r), "step %d", i)
				c := *model.Credits
				model.Credits = &c
				model.Refund(r.Cost, r.WindowStart, r.RefilledAt)
				after, err := s.Get(ctx, rec.ID)
				require.NoError(t, err, "step %d", i)
				require.Equal(t, model.Usage, after.Usage, "step %d: usage after Refund", i)
				require.Equal(t, *model.Credits, *after.Credits, "step %d: credits after Refund", i)
			}
			for f, v := range limitFields(hashOf(t, s, rec.ID.String())) {
				_, err := strconv.ParseInt(v, 10, 64)
				require.NoError(t, err, "step %d: %s = %q", i, f, v)
			}
		}
		// Refund caps the credits at MaxQuota.
		got, err := s.Get(ctx, rec.ID)
		require.NoError(t, err)
		require.NoError(t, s.Refund(ctx, apikeys.RefundRequest{ID: rec.ID, Cost: q, Version: got.Version, WindowStart: got.Usage.WindowStart, RefilledAt: got.Usage.RefilledAt}))
		got, err = s.Get(ctx, rec.ID)
		require.NoError(t, err)
		assert.Equal(t, int64(q), got.Credits.Remaining, "credits after a refund past MaxQuota")
		assert.Equal(t, int64(0), got.Usage.WindowUsed, "window used after a refund of more than was used")
	})
}

// TestSpendRefusesOutOfRange: a cost or a clock outside the range the
// scripts count exactly in is an error, and sends nothing.
func TestSpendRefusesOutOfRange(t *testing.T) {
	t.Parallel()
	s, _, mr := newStore(t, backends[0], nil)
	rec := testRecord(t, "alice")
	rec.RateLimit = &apikeys.RateLimit{Limit: 10, WindowSeconds: 60}
	require.NoError(t, s.Create(t.Context(), rec))
	before := mr.CommandCount()
	for _, q := range []apikeys.SpendRequest{
		{Cost: 0, Now: 1}, {Cost: -1, Now: 1}, {Cost: apikeys.MaxQuota + 1, Now: 1},
		{Cost: 1, Now: maxTime + 1}, {Cost: 1, Now: -maxTime - 1},
	} {
		q.ID, q.Digest = rec.ID, rec.Digest
		_, spent, err := s.Spend(t.Context(), q)
		assert.Error(t, err, "Spend(cost %d, now %d)", q.Cost, q.Now)
		assert.NotErrorIs(t, err, apikeys.ErrNotFound)
		assert.False(t, spent)
		if q.Cost < 1 || q.Cost > apikeys.MaxQuota {
			err = s.Refund(t.Context(), apikeys.RefundRequest{ID: rec.ID, Cost: q.Cost})
			assert.ErrorIs(t, err, apikeys.ErrValidation, "Refund(cost %d)", q.Cost)
		}
	}
	assert.Equal(t, before, mr.CommandCount(), "commands sent")
}

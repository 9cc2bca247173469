package sqlstore

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

func TestIntScanner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		src      any
		nullable bool
		want     int64
		valid    bool
		err      string // substring; "" for success
	}{
		{"int64", int64(-7), false, -7, true, ""},
		{"MySQL text", []byte("1125899906842624"), false, apikeys.MaxQuota, true, ""},
		{"string", "42", true, 42, true, ""},
		{"NULL in a nullable column", nil, true, 0, false, ""},
		{"NULL in a NOT NULL column", nil, false, 0, false, "NULL"},
		{"float", 2.5, true, 0, false, "unexpected float64"},
		{"bool", true, true, 0, false, "unexpected bool"},
		{"text", "ten", true, 0, false, "invalid syntax"},
		{"decimal text", []byte("2.5"), true, 0, false, "invalid syntax"},
		{"empty", "", true, 0, false, "invalid syntax"},
		{"out of int64", "9223372036854775808", true, 0, false, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := nullInt{v: 99, valid: true}
			sc := n.scanner("rate_limit")
			if !tt.nullable {
				sc = intScanner{"rate_limit", &n.v, nil}
			}
			err := sc.Scan(tt.src)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				require.ErrorContains(t, err, "rate_limit")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, n.v)
			if tt.nullable {
				assert.Equal(t, tt.valid, n.valid)
			}
		})
	}
}

func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	v := func(n int64) nullInt { return nullInt{n, true} }
	var null nullInt
	tests := []struct {
		name      string
		raw       rawLimits
		used      int64
		rate      *apikeys.RateLimit
		credits   *apikeys.Credits
		errColumn string // named by the error; "" for success
	}{
		{"none", rawLimits{}, 0, nil, nil, ""},
		{"rate limit", rawLimits{rateLimit: v(5), rateWindow: v(60)}, 5, &apikeys.RateLimit{Limit: 5, WindowSeconds: 60}, nil, ""},
		{"credits", rawLimits{remaining: v(0)}, 0, nil, &apikeys.Credits{}, ""},
		{"both, at the bounds", rawLimits{
			rateLimit: v(apikeys.MaxQuota), rateWindow: v(apikeys.MaxQuotaSeconds),
			remaining: v(apikeys.MaxQuota), refillAmount: v(1), refillInterval: v(apikeys.MaxQuotaSeconds),
		}, apikeys.MaxQuota,
			&apikeys.RateLimit{Limit: apikeys.MaxQuota, WindowSeconds: apikeys.MaxQuotaSeconds},
			&apikeys.Credits{Remaining: apikeys.MaxQuota, Refill: &apikeys.Refill{Amount: 1, IntervalSeconds: apikeys.MaxQuotaSeconds}}, ""},
		{"window used above the limit (lowered since)", rawLimits{rateLimit: v(1), rateWindow: v(60)}, 9, &apikeys.RateLimit{Limit: 1, WindowSeconds: 60}, nil, ""},
		{"a limit without a window", rawLimits{rateLimit: v(5), rateWindow: null}, 0, nil, nil, "rate_limit"},
		{"a window without a limit", rawLimits{rateWindow: v(5)}, 0, nil, nil, "rate_window_seconds"},
		{"a limit of 0", rawLimits{rateLimit: v(0), rateWindow: v(60)}, 0, nil, nil, "rate_limit"},
		{"a limit above MaxQuota", rawLimits{rateLimit: v(apikeys.MaxQuota + 1), rateWindow: v(60)}, 0, nil, nil, "rate_limit"},
		{"a window of 0", rawLimits{rateLimit: v(1), rateWindow: v(0)}, 0, nil, nil, "rate_window_seconds"},
		{"a window above MaxQuotaSeconds", rawLimits{rateLimit: v(1), rateWindow: v(apikeys.MaxQuotaSeconds + 1)}, 0, nil, nil, "rate_window_seconds"},
		{"credits below 0", rawLimits{remaining: v(-1)}, 0, nil, nil, "credits_remaining"},
		{"credits above MaxQuota", rawLimits{remaining: v(apikeys.MaxQuota + 1)}, 0, nil, nil, "credits_remaining"},
		{"a refill without credits", rawLimits{refillAmount: v(1), refillInterval: v(1)}, 0, nil, nil, "refill_amount"},
		{"a refill without an interval", rawLimits{remaining: v(1), refillAmount: v(1)}, 0, nil, nil, "refill_interval_seconds"},
		{"a refill of 0", rawLimits{remaining: v(1), refillAmount: v(0), refillInterval: v(1)}, 0, nil, nil, "refill_amount"},
		{"a refill interval of 0", rawLimits{remaining: v(1), refillAmount: v(1), refillInterval: v(0)}, 0, nil, nil, "refill_interval_seconds"},
		{"window used below 0", rawLimits{}, -1, nil, nil, "window_used"},
		{"window used above MaxQuota", rawLimits{}, apikeys.MaxQuota + 1, nil, nil, "window_used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// What a previous row left must not survive.
			k := apikeys.Key{RateLimit: &apikeys.RateLimit{Limit: 1, WindowSeconds: 1}, Credits: &apikeys.Credits{Remaining: 3}}
			k.Usage.WindowUsed = tt.used
			err := decodeLimits(&tt.raw, &k)
			if tt.errColumn != "" {
				require.ErrorContains(t, err, tt.errColumn)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.rate, k.RateLimit)
			assert.Equal(t, tt.credits, k.Credits)
		})
	}
}

func TestBindNamed(t *testing.T) {
	t.Parallel()
	q := "a = :id AND b = :cost + :id AND c = :now_ish"
	names := []string{"id", "cost", "now_ish"}
	tests := []struct {
		d     Dialect
		want  string
		order []int
	}{
		{Postgres, "a = $1 AND b = $2 + $1 AND c = $3", nil},
		{SQLite, "a = ?1 AND b = ?2 + ?1 AND c = ?3", nil},
		{MySQL, "a = ? AND b = ? + ? AND c = ?", []int{0, 1, 0, 2}},
	}
	for _, tt := range tests {
		text, order := bindNamed(tt.d, q, names)
		assert.Equal(t, tt.want, text, "%s", tt.d)
		assert.Equal(t, tt.order, order, "%s", tt.d)
		n := namedStmt{order: order}
		want := []any{"i", 2, "i", "n"}
		if order == nil {
			want = []any{"i", 2, "n"}
		}
		assert.Equal(t, want, n.args("i", 2, "n"), "%s", tt.d)
	}
	assert.Panics(t, func() { bindNamed(Postgres, "a = :nope", names) })

	// Every statement names only its own parameters, and MySQL's take one
	// argument per placeholder.
	for _, d := range []Dialect{Postgres, MySQL, SQLite} {
		for _, st := range [][2]any{stmtOf(chargeSQL(d, "t", true)), stmtOf(refundSQL(d, "t", true))} {
			text, order := bindNamed(d, st[0].(string), st[1].([]string))
			assert.NotContains(t, text, ":", "%s", d)
			if d == MySQL {
				assert.Equal(t, strings.Count(text, "?"), len(order))
			} else {
				assert.NotContains(t, text, "? ", "%s", d)
			}
		}
	}
}

func stmtOf(q string, names []string) [2]any { return [2]any{q, names} }

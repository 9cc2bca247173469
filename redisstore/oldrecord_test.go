package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// oldFields appends the hash fields of rec as the store wrote them before
// successor_id existed. It spells them out rather than calling
// appendFields, so that it stays what the old version wrote.
func oldFields(args []any, rec *apikeys.Record) []any {
	transient := "0"
	if rec.TransientAssistant {
		transient = "1"
	}
	return append(args,
		"type", string(rec.Type),
		"name", rec.Name,
		"user_id", rec.UserID,
		"user_email", rec.UserEmail,
		"hint", rec.Hint,
		"origins", encodeList(rec.AllowedOrigins),
		"assistants", encodeList(rec.AllowedAssistants),
		"transient", transient,
		"created_at", encodeTime(rec.CreatedAt),
		"updated_at", encodeTime(rec.UpdatedAt),
		"expires_at", encodeTime(rec.ExpiresAt),
		"last_used_at", encodeTime(rec.LastUsedAt),
		"digest", string(rec.Digest[:]),
		"version", strconv.FormatInt(rec.Version, 10),
	)
}

// oldCreate writes rec as Create did before successor_id existed: the
// index entry, then the create script with the old fields.
func oldCreate(ctx context.Context, s *Store, rec *apikeys.Record) error {
	id := rec.ID.String()
	if err := s.rdb.ZAdd(ctx, s.indexKey(rec.UserID), redis.Z{Member: id}).Err(); err != nil {
		return err
	}
	args := oldFields([]any{rec.UserID, string(rec.Digest[:]), s.expireAt(rec.ExpiresAt)}, rec)
	return createScript.Run(ctx, s.rdb, []string{s.recordKey(id)}, args...).Err()
}

// oldUpdate runs the update script as Update did before successor_id
// existed, and returns the script's result.
func oldUpdate(ctx context.Context, s *Store, rec *apikeys.Record) (int64, error) {
	args := oldFields([]any{rec.UserID, strconv.FormatInt(rec.Version-1, 10), s.expireAt(rec.ExpiresAt)}, rec)
	return updateScriptBeforeLimits.Run(ctx, s.rdb, []string{s.recordKey(rec.ID.String())}, args...).Int64()
}

// updateScriptBeforeLimits is the update script of the versions before
// the limits and counters (issue 13), verbatim, with their argument
// layout: an instance of such a version updates records with it during a
// rolling upgrade. It writes the fields it is given and no others.
var updateScriptBeforeLimits = redis.NewScript(luaTimeBefore + `
local cur = redis.call('HMGET', KEYS[1], 'user_id', 'version', 'last_used_at')
if cur[1] ~= ARGV[1] then
	return 0
end
if cur[2] ~= ARGV[2] then
	return -1
end
local fields = {unpack(ARGV, 4)}
local used = cur[3]
if used and used ~= '' then
	for i = 1, #fields - 1, 2 do
		if fields[i] == 'last_used_at' then
			if fields[i + 1] == '' or before(fields[i + 1], used) then
				fields[i + 1] = used
			end
			break
		end
	end
end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[3] == '' then
	redis.call('PERSIST', KEYS[1])
else
	redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return 1
`)

// TestRecordsWithoutSuccessorID: records written before successor_id
// existed read with the zero SuccessorID, list and authorize as before,
// and get the field from their next Update; an Update by an old version
// keeps a SuccessorID it does not know about.
func TestRecordsWithoutSuccessorID(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		ctx := t.Context()

		// Keys issued by a Manager, so that there are values to authorize
		// with. Without a pepper the digest is SHA-256 of the value,
		// whichever Manager computes it.
		mem := memstore.New()
		issuer, err := apikeys.New(mem, nil)
		require.NoError(t, err)
		const user = "old-user"
		tests := []struct {
			name string
			p    apikeys.CreateParams
			req  apikeys.Request
		}{
			{"private", apikeys.CreateParams{Type: apikeys.Private, Name: "server"}, apikeys.Request{RequirePrivate: true}},
			{"public with lists", apikeys.CreateParams{
				Type: apikeys.Public, Name: "widget", UserEmail: "old@example.com",
				AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"asst_1"},
				TransientAssistant: true,
			}, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst_1", Transient: true}},
			{"expiring", apikeys.CreateParams{
				Type: apikeys.Private, Name: "temporary", ExpiresAt: time.Now().Add(time.Hour),
			}, apikeys.Request{}},
		}
		values := make(map[uuid.UUID]string)
		var want []apikeys.Record // newest first
		for _, tt := range tests {
			tt.p.UserID = user
			nk, err := issuer.Create(ctx, tt.p)
			require.NoError(t, err, tt.name)
			rec, err := mem.Get(ctx, nk.ID)
			require.NoError(t, err, tt.name)
			require.NoError(t, oldCreate(ctx, s, &rec), tt.name)
			exists, err := rdb.HExists(ctx, s.recordKey(rec.ID.String()), fSuccessorID).Result()
			require.NoError(t, err)
			require.False(t, exists, "%s: the old record has a successor_id field", tt.name)
			values[rec.ID] = nk.Value
			want = append([]apikeys.Record{rec}, want...)
		}

		for _, w := range want {
			got, err := s.Get(ctx, w.ID)
			require.NoError(t, err)
			assert.Equal(t, w, got, "Get")
			assert.Equal(t, uuid.UUID{}, got.SuccessorID, "Get")
		}
		list, err := s.List(ctx, user, apikeys.ListQuery{Limit: 10})
		require.NoError(t, err)
		assert.Equal(t, want, list, "List")

		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		for i, tt := range tests {
			rec := want[len(want)-1-i]
			k, err := m.Authorize(ctx, values[rec.ID], tt.req)
			require.NoError(t, err, "Authorize(%s)", tt.name)
			assert.Equal(t, rec.ID, k.ID, tt.name)
			assert.Equal(t, uuid.UUID{}, k.SuccessorID, tt.name)
		}

		// The next Update writes the field.
		up := want[0]
		up.SuccessorID = uuid.Must(uuid.NewV7())
		up.Version++
		require.NoError(t, s.Update(ctx, up))
		got, err := s.Get(ctx, up.ID)
		require.NoError(t, err)
		assert.Equal(t, up, got, "Get after Update")

		// An instance that predates the field, updating the record, leaves
		// it as it was.
		old := up
		old.Name = "renamed by an old version"
		old.Version++
		res, err := oldUpdate(ctx, s, &old)
		require.NoError(t, err)
		require.Equal(t, int64(1), res, "old update script result")
		got, err = s.Get(ctx, up.ID)
		require.NoError(t, err)
		assert.Equal(t, old, got, "Get after an old version's Update")
		assert.Equal(t, up.SuccessorID, got.SuccessorID)
	})
}

// fieldsBeforeRestrictions appends the hash fields of rec as the store
// wrote them before scopes, allowed_ips and disabled existed (issue 12):
// the old fields and successor_id. Spelled out, like oldFields.
func fieldsBeforeRestrictions(args []any, rec *apikeys.Record) []any {
	successor := ""
	if rec.SuccessorID != (uuid.UUID{}) {
		successor = rec.SuccessorID.String()
	}
	return append(oldFields(args, rec), "successor_id", successor)
}

// TestRecordsWithoutRestrictions: records written before scopes,
// allowed_ips and disabled existed read as no scopes, no addresses and
// enabled, list and authorize as before, and get the fields from their
// next Update; an Update by an instance that predates the fields keeps
// them, so it cannot enable a disabled key or lift its restrictions.
func TestRecordsWithoutRestrictions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		ctx := t.Context()
		mem := memstore.New()
		issuer, err := apikeys.New(mem, nil)
		require.NoError(t, err)
		const user = "pre-restrictions-user"
		tests := []struct {
			name string
			p    apikeys.CreateParams
			req  apikeys.Request
		}{
			{"private", apikeys.CreateParams{Type: apikeys.Private, Name: "server"}, apikeys.Request{RequirePrivate: true}},
			{"public with lists", apikeys.CreateParams{
				Type: apikeys.Public, Name: "widget", AllowedOrigins: []string{"https://app.example.com"},
				AllowedAssistants: []string{"asst_1"}, TransientAssistant: true,
			}, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst_1", Transient: true}},
		}
		values := make(map[uuid.UUID]string)
		var want []apikeys.Record // newest first
		for _, tt := range tests {
			tt.p.UserID = user
			nk, err := issuer.Create(ctx, tt.p)
			require.NoError(t, err, tt.name)
			rec, err := mem.Get(ctx, nk.ID)
			require.NoError(t, err, tt.name)
			id := rec.ID.String()
			require.NoError(t, rdb.ZAdd(ctx, s.indexKey(user), redis.Z{Member: id}).Err())
			args := fieldsBeforeRestrictions([]any{rec.UserID, string(rec.Digest[:]), s.expireAt(rec.ExpiresAt)}, &rec)
			require.NoError(t, createScript.Run(ctx, s.rdb, []string{s.recordKey(id)}, args...).Err(), tt.name)
			for _, f := range []string{fScopes, fAllowedIPs, fDisabled} {
				exists, err := rdb.HExists(ctx, s.recordKey(id), f).Result()
				require.NoError(t, err)
				require.False(t, exists, "%s: the old record has a %s field", tt.name, f)
			}
			values[rec.ID] = nk.Value
			want = append([]apikeys.Record{rec}, want...)
		}

		for _, w := range want {
			got, err := s.Get(ctx, w.ID)
			require.NoError(t, err)
			assert.Equal(t, w, got, "Get")
			assert.Empty(t, got.Scopes, "Get: scopes")
			assert.Empty(t, got.AllowedIPs, "Get: addresses")
			assert.False(t, got.Disabled, "Get: disabled")
		}
		list, err := s.List(ctx, user, apikeys.ListQuery{Limit: 10})
		require.NoError(t, err)
		assert.Equal(t, want, list, "List")

		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		for i, tt := range tests {
			rec := want[len(want)-1-i]
			k, err := m.Authorize(ctx, values[rec.ID], tt.req)
			require.NoError(t, err, "Authorize(%s)", tt.name)
			assert.Equal(t, rec.ID, k.ID, tt.name)
			assert.False(t, k.Disabled, tt.name)
		}

		// The next Update writes the fields: switch the private key off
		// and restrict it.
		old := want[len(want)-1]
		k, err := m.Update(ctx, user, old.ID, apikeys.UpdateParams{
			Disabled: new(true), Scopes: &[]string{"calls:read"}, AllowedIPs: &[]string{"203.0.113.0/24"},
		})
		require.NoError(t, err)
		require.True(t, k.Disabled)
		_, err = m.Authorize(ctx, values[old.ID], tests[0].req)
		require.ErrorIs(t, err, apikeys.ErrKeyDisabled, "after the Update that disabled it")

		// An instance that predates the fields renames the key: its
		// update script names only the fields it knows, and the key stays
		// disabled and restricted.
		rec, err := s.Get(ctx, old.ID)
		require.NoError(t, err)
		renamed := rec
		renamed.Name = "renamed by an old version"
		renamed.Version++
		args := fieldsBeforeRestrictions([]any{renamed.UserID, strconv.FormatInt(renamed.Version-1, 10), s.expireAt(renamed.ExpiresAt)}, &renamed)
		res, err := updateScriptBeforeLimits.Run(ctx, s.rdb, []string{s.recordKey(renamed.ID.String())}, args...).Int64()
		require.NoError(t, err)
		require.Equal(t, int64(1), res, "old update script result")
		got, err := s.Get(ctx, old.ID)
		require.NoError(t, err)
		assert.Equal(t, renamed, got, "Get after an old version's Update")
		assert.True(t, got.Disabled, "an old version's Update enabled the key")
		_, err = m.Authorize(ctx, values[old.ID], tests[0].req)
		require.ErrorIs(t, err, apikeys.ErrKeyDisabled, "after an old version's Update")
	})
}

// fieldsBeforeLimits appends the hash fields of rec as the store wrote
// them before the limits and counters existed (issue 13): those of
// fieldsBeforeRestrictions and scopes, allowed_ips and disabled. Spelled
// out, like oldFields.
func fieldsBeforeLimits(args []any, rec *apikeys.Record) []any {
	disabled := "0"
	if rec.Disabled {
		disabled = "1"
	}
	return append(fieldsBeforeRestrictions(args, rec),
		"scopes", encodeList(rec.Scopes),
		"allowed_ips", encodePrefixes(rec.AllowedIPs),
		"disabled", disabled,
	)
}

// TestRecordsWithoutLimits: records written before the limits and
// counters existed read as keys without limits, with zero counters; Spend
// returns them as they are, unspent, writing nothing, and Authorize
// allows them as before; the next Update can give them limits, which they
// then spend from. An Update by an instance that predates the limits (its
// own update script, which writes the fields it knows and no others)
// keeps them and the counters: it cannot lift a key's limits.
func TestRecordsWithoutLimits(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		ctx := t.Context()
		mem := memstore.New()
		issuer, err := apikeys.New(mem, nil)
		require.NoError(t, err)
		const user = "pre-limits-user"
		nk, err := issuer.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "server", UserID: user, Scopes: []string{"calls:read"}})
		require.NoError(t, err)
		rec, err := mem.Get(ctx, nk.ID)
		require.NoError(t, err)
		id := rec.ID.String()
		require.NoError(t, rdb.ZAdd(ctx, s.indexKey(user), redis.Z{Member: id}).Err())
		args := fieldsBeforeLimits([]any{rec.UserID, string(rec.Digest[:]), s.expireAt(rec.ExpiresAt)}, &rec)
		require.NoError(t, createScript.Run(ctx, s.rdb, []string{s.recordKey(id)}, args...).Err())
		stored := hashOf(t, s, id)
		require.Empty(t, limitFields(stored), "the old record has limit fields")

		got, err := s.Get(ctx, rec.ID)
		require.NoError(t, err)
		assert.Equal(t, rec, got, "Get")
		assert.Nil(t, got.RateLimit, "Get: rate limit")
		assert.Nil(t, got.Credits, "Get: credits")
		assert.Equal(t, apikeys.Usage{}, got.Usage, "Get: counters")
		got, spent, err := s.Spend(ctx, apikeys.SpendRequest{ID: rec.ID, Digest: rec.Digest, Cost: 1, Now: time.Now().Unix()})
		require.NoError(t, err)
		assert.False(t, spent, "Spend of an old record spent")
		assert.Equal(t, rec, got, "Spend")
		assert.Equal(t, stored, hashOf(t, s, id), "Spend wrote to an old record")

		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		for range 3 {
			_, err := m.Authorize(ctx, nk.Value, apikeys.Request{Scopes: []string{"calls:read"}})
			require.NoError(t, err, "Authorize of an old record")
		}

		// The next Update gives it limits: two requests' worth of credits.
		up := rec
		up.Credits = &apikeys.Credits{Remaining: 2}
		up.RateLimit = &apikeys.RateLimit{Limit: 10, WindowSeconds: 60}
		up.Usage.RefilledAt = time.Now().Unix()
		up.SetCredits = true
		up.Version++
		require.NoError(t, s.Update(ctx, up))
		for i := range 3 {
			k, err := m.Authorize(ctx, nk.Value, apikeys.Request{Scopes: []string{"calls:read"}})
			if i < 2 {
				require.NoError(t, err, "Authorize %d after the Update that set credits", i)
				assert.Equal(t, int64(1-i), k.Credits.Remaining)
			} else {
				require.ErrorIs(t, err, apikeys.ErrCreditsExhausted, "Authorize after the credits are spent")
			}
		}

		// An instance that predates the limits renames the key: the
		// limits and counters stay, and so does the refusal.
		limited := hashOf(t, s, id)
		renamed := up
		renamed.Name = "renamed by an old version"
		renamed.Version++
		args = fieldsBeforeLimits([]any{renamed.UserID, strconv.FormatInt(renamed.Version-1, 10), s.expireAt(renamed.ExpiresAt)}, &renamed)
		res, err := updateScriptBeforeLimits.Run(ctx, s.rdb, []string{s.recordKey(id)}, args...).Int64()
		require.NoError(t, err)
		require.Equal(t, int64(1), res, "old update script result")
		assert.Equal(t, limitFields(limited), limitFields(hashOf(t, s, id)), "an old version's Update changed the limits or counters")
		_, err = m.Authorize(ctx, nk.Value, apikeys.Request{Scopes: []string{"calls:read"}})
		require.ErrorIs(t, err, apikeys.ErrCreditsExhausted, "after an old version's Update")
	})
}

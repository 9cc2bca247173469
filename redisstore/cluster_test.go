package redisstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
)

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the
// checksum of the Redis Cluster specification.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is the Redis Cluster hash slot of key: the hash tag (what is
// between the first '{' and the first '}' after it, when not empty) or
// else the whole key, CRC16 modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % 16384)
}

// hashTag is what keySlot hashes for key.
func hashTag(key string) (string, bool) {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j], true
		}
	}
	return key, false
}

// TestKeySlot checks keySlot against CLUSTER KEYSLOT of Redis 7.
func TestKeySlot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		slot int
	}{
		{"123456789", 12739},
		{"foo", 12182},
		{"bar", 5061},
		{"hello", 866},
		{"user1000", 3443},
		{"{user1000}.following", 3443},
		{"foo{}{bar}", 8363},
		{"foo{{bar}}zap", 4015},
		{"foo{bar}{zap}", 5061},
		{"{bar", 4015},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.slot, keySlot(tt.key), "slot of %q", tt.key)
	}
}

// unit is what Redis Cluster must find in one slot: one command, or a
// MULTI/EXEC block. (A plain pipeline is not: go-redis splits it by node
// and each of its commands is routed on its own.)
type unit struct {
	cmds [][]any
}

// recorder is a go-redis hook that records every command sent.
type recorder struct {
	mu    sync.Mutex
	units []unit
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.mu.Lock()
		r.units = append(r.units, unit{cmds: [][]any{cmd.Args()}})
		r.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.mu.Lock()
		var tx *unit
		for _, c := range cmds {
			args := c.Args()
			switch strings.ToLower(fmt.Sprint(args[0])) {
			case "multi":
				tx = &unit{}
			case "exec":
				r.units = append(r.units, *tx)
				tx = nil
			default:
				if tx != nil {
					tx.cmds = append(tx.cmds, args)
				} else {
					r.units = append(r.units, unit{cmds: [][]any{args}})
				}
			}
		}
		r.mu.Unlock()
		return next(ctx, cmds)
	}
}

// connectionSetup holds the commands go-redis sends on a new connection.
var connectionSetup = map[string]bool{"hello": true, "client": true, "auth": true, "select": true, "readonly": true}

// commandKeys returns the key arguments of a command the store sends. A
// command it does not know fails the test, so that a new command in the
// store gets its keys checked here too.
func commandKeys(t *testing.T, args []any) []string {
	t.Helper()
	name := strings.ToLower(fmt.Sprint(args[0]))
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
		n, err := strconv.Atoi(fmt.Sprint(args[2]))
		require.NoError(t, err)
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprint(args[3+i])
		}
		return keys
	case "hgetall", "hget", "zadd", "zrem", "zrange":
		return []string{fmt.Sprint(args[1])}
	default:
		t.Errorf("command %v: not known to this test; add where its keys are", args)
		return nil
	}
}

// TestClusterSlots runs every store operation, the repair paths included,
// records every command the store sends and checks that each touches
// exactly one key, so that all work on Redis Cluster, and that the keys
// hash by the tags the package doc promises.
func TestClusterSlots(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	rec := &recorder{}
	rdb.AddHook(rec)
	s, err := New(rdb, repairAtOnce) // the workload exercises the repair
	require.NoError(t, err)
	m, err := apikeys.New(s, nil)
	require.NoError(t, err)
	ctx := t.Context()

	users := []string{"alice", "{}", "a{b}c", "}{", "{user}", "用户{x"}
	for _, u := range users {
		nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "k", UserID: u, AllowedOrigins: []string{"https://app.example.com"}})
		require.NoError(t, err, "user %q", u)
		_, err = m.Authorize(ctx, nk.Value, apikeys.Request{Origin: "https://app.example.com"})
		require.NoError(t, err)
		_, err = m.Update(ctx, u, nk.ID, apikeys.UpdateParams{Name: new("renamed")})
		require.NoError(t, err)
		page, err := m.List(ctx, u, apikeys.ListParams{})
		require.NoError(t, err)
		require.Len(t, page.Keys, 1)

		// A duplicate create, for the owner and for another user.
		r, err := s.Get(ctx, nk.ID)
		require.NoError(t, err)
		r.Digest[0]++
		require.ErrorIs(t, s.Create(ctx, r), apikeys.ErrDuplicate)
		r.UserID = "other" + u
		require.ErrorIs(t, s.Create(ctx, r), apikeys.ErrDuplicate)

		// A stale entry, repaired by the listing.
		s.hook = crashAt(stepDeleteRemoved)
		_, err = m.Delete(ctx, u, nk.ID)
		require.ErrorIs(t, err, errCrash)
		s.hook = nil
		page, err = m.List(ctx, u, apikeys.ListParams{})
		require.NoError(t, err)
		require.Empty(t, page.Keys)

		nk, err = m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "k2", UserID: u})
		require.NoError(t, err)
		_, err = m.Delete(ctx, u, nk.ID)
		require.NoError(t, err)
	}

	seen := map[string]bool{}
	recordKey := regexp.MustCompile(`^apikeys:k:\{([0-9a-f-]{36})\}$`)
	indexKey := regexp.MustCompile(`^apikeys:u:\{([A-Za-z0-9_-]*)\}$`)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, u := range rec.units {
		if len(u.cmds) == 1 && connectionSetup[strings.ToLower(fmt.Sprint(u.cmds[0][0]))] {
			continue
		}
		slots := map[int]bool{}
		for _, args := range u.cmds {
			seen[strings.ToLower(fmt.Sprint(args[0]))] = true
			keys := commandKeys(t, args)
			assert.Len(t, keys, 1, "command %v: every command touches exactly one key", args)
			for _, k := range keys {
				slots[keySlot(k)] = true
				tag, ok := hashTag(k)
				require.True(t, ok, "key %q has no hash tag", k)
				switch {
				case recordKey.MatchString(k):
					id := recordKey.FindStringSubmatch(k)[1]
					assert.Equal(t, id, tag, "record key %q hashes by its id", k)
				case indexKey.MatchString(k):
					enc := indexKey.FindStringSubmatch(k)[1]
					user, err := base64.RawURLEncoding.DecodeString(enc)
					require.NoError(t, err)
					assert.Contains(t, append(users, usersWithOther(users)...), string(user))
					assert.Equal(t, enc, tag, "index key %q hashes by its whole user part", k)
				default:
					t.Errorf("key %q is neither a record key nor an index key", k)
				}
			}
		}
		assert.Len(t, slots, 1, "unit %v spans slots %v", u.cmds, slots)
	}
	for _, name := range []string{"zadd", "zrem", "zrange", "hgetall", "hget", "evalsha"} {
		assert.True(t, seen[name], "the workload never sent %s; the check is incomplete", name)
	}
}

func usersWithOther(users []string) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = "other" + u
	}
	return out
}

// TestScriptsTouchOnlyKeys1: every script reads and writes only KEYS[1],
// the record key it is called with, and builds no key names of its own.
func TestScriptsTouchOnlyKeys1(t *testing.T) {
	t.Parallel()
	keysRef := regexp.MustCompile(`KEYS\[([^\]]*)\]`)
	call := regexp.MustCompile(`redis\.p?call\('([A-Z]+)', ([^,)]+)`)
	for name, src := range map[string]string{
		"create": createScriptSrc, "update": updateScriptSrc, "delete": deleteScriptSrc,
		"touch": touchScriptSrc, "spend": spendScriptSrc, "refund": refundScriptSrc,
	} {
		refs := keysRef.FindAllStringSubmatch(src, -1)
		require.NotEmpty(t, refs, name)
		for _, r := range refs {
			assert.Equal(t, "1", r[1], "%s script uses %s", name, r[0])
		}
		calls := call.FindAllStringSubmatch(src, -1)
		require.NotEmpty(t, calls, name)
		for _, c := range calls {
			assert.Equal(t, "KEYS[1]", c[2], "%s script: redis.call(%s) on %s", name, c[1], c[2])
		}
		assert.Equal(t, strings.Count(src, "redis.call"), len(calls), "%s script: a redis.call this test cannot read", name)
	}
}

// TestRecordsSpreadOverSlots: records hash by their ids, so a cluster
// spreads them; a namespace or layout that put them all in one slot would
// fail here.
func TestRecordsSpreadOverSlots(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{}) // never used: key names only
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := New(rdb, &Config{Namespace: "tenant-7:apikeys:"})
	require.NoError(t, err)
	slots := map[int]bool{}
	users := map[int]bool{}
	for i := range 200 {
		slots[keySlot(s.recordKey(uuid.Must(uuid.NewV7()).String()))] = true
		users[keySlot(s.indexKey(fmt.Sprintf("user-%d", i)))] = true
	}
	assert.Greater(t, len(slots), 150, "record keys of 200 ids fall in %d slots", len(slots))
	assert.Greater(t, len(users), 150, "index keys of 200 users fall in %d slots", len(users))
}

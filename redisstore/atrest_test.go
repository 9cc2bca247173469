package redisstore

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/keytest"
)

// TestNoPlaintextAtRest creates, updates and rotates keys through a
// Manager, then reads every Redis key of the namespace with all its
// contents and checks that no key value, nor any 12-character piece of
// one, is there.
func TestNoPlaintextAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, rdb, _ := newStore(t, b, nil)
		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		values := keytest.Populate(t, m)
		var dump bytes.Buffer
		keys := scanNamespace(t.Context(), t, rdb, s.ns)
		require.NotEmpty(t, keys)
		for _, k := range keys {
			typ, err := rdb.Type(t.Context(), k).Result()
			require.NoError(t, err)
			fmt.Fprintf(&dump, "%s %s\n", k, typ)
			switch typ {
			case "hash":
				fields, err := rdb.HGetAll(t.Context(), k).Result()
				require.NoError(t, err)
				for f, v := range fields {
					fmt.Fprintf(&dump, "%s=%s\n", f, v)
				}
			case "zset":
				members, err := rdb.ZRange(t.Context(), k, 0, -1).Result()
				require.NoError(t, err)
				fmt.Fprintln(&dump, members)
			default:
				t.Fatalf("unexpected %s key %s", typ, k)
			}
		}
		require.Empty(t, keytest.Leak(dump.Bytes(), values...), "a key value is stored in Redis")
		require.Contains(t, dump.String(), "user-1", "the dump holds the records")
	})
}

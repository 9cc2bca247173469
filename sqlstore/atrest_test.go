package sqlstore_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/keytest"
)

// TestNoPlaintextAtRest creates, updates and rotates keys through a
// Manager, then reads every column of every row of the store's tables and
// checks that no key value, nor any 12-character piece of one, is there.
func TestNoPlaintextAtRest(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		m, err := apikeys.New(s, nil)
		require.NoError(t, err)
		values := keytest.Populate(t, m)
		require.NoError(t, m.Close(t.Context())) // writes last_used_at too

		var dump bytes.Buffer
		for _, table := range []string{s.Table(), s.Table() + "_schema_versions"} {
			rows, err := db.QueryContext(t.Context(), "SELECT * FROM "+quote(db.dialect, table))
			require.NoError(t, err)
			cols, err := rows.Columns()
			require.NoError(t, err)
			n := 0
			for rows.Next() {
				raw := make([]sql.RawBytes, len(cols))
				dest := make([]any, len(cols))
				for i := range raw {
					dest[i] = &raw[i]
				}
				require.NoError(t, rows.Scan(dest...))
				for i, v := range raw {
					fmt.Fprintf(&dump, "%s=%s\n", cols[i], v)
				}
				n++
			}
			require.NoError(t, rows.Err())
			require.NoError(t, rows.Close())
			require.Positive(t, n, "table %s is empty", table)
		}
		require.Empty(t, keytest.Leak(dump.Bytes(), values...), "a key value is stored in the database")
		require.Contains(t, dump.String(), "user-1", "the dump holds the records")
	})
}

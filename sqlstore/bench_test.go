package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/sqlstore"
)

// benchKeys is how many keys the benchmark table holds.
const benchKeys = 1000

// selectColumns is the column list the store reads, for the baseline.
const selectColumns = "id, user_id, key_type, name, allowed_origins, allowed_assistants, transient_assistant, " +
	"user_email, hint, digest, created_at, updated_at, expires_at, last_used_at, version"

// BenchmarkAuthorize compares Manager.Authorize of a public key with
// origin and assistant restrictions (parse, digest, one Get, checks) with
// a baseline that only reads the same row by primary key through the same
// *sqlx.DB: "baseline" with db.QueryRowxContext, as an application would
// write it, and "baseline_prepared" with a statement prepared once, as
// the store does. The goal is authorize within 1.15x of the baseline.
func BenchmarkAuthorize(b *testing.B) {
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			db := tg.open(b)
			s := migratedStore(b, db.DB)
			m, key, id := benchFill(b, s)
			q := "SELECT " + selectColumns + " FROM " + quote(tg.dialect, s.Table()) + " WHERE id = " + ph(tg.dialect, 1)
			c := context.Background()

			b.Run("baseline", func(b *testing.B) {
				benchRawGet(b, func(dest ...any) error { return db.QueryRowxContext(c, q, id).Scan(dest...) })
			})
			b.Run("baseline_prepared", func(b *testing.B) {
				st, err := db.PreparexContext(c, q)
				require.NoError(b, err)
				b.Cleanup(func() { st.Close() })
				benchRawGet(b, func(dest ...any) error { return st.QueryRowContext(c, id).Scan(dest...) })
			})
			b.Run("authorize", func(b *testing.B) {
				req := apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-2"}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Authorize(c, key, req); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// benchRawGet reads one row per iteration into plain variables.
func benchRawGet(b *testing.B, get func(dest ...any) error) {
	var (
		id, user, typ, name, email, hint string
		origins, assistants, digest      []byte
		transient                        bool
		version                          int64
		created, updated, expires, used  any
	)
	dest := []any{&id, &user, &typ, &name, &origins, &assistants, &transient,
		&email, &hint, &digest, &created, &updated, &expires, &used, &version}
	b.ReportAllocs()
	for b.Loop() {
		if err := get(dest...); err != nil {
			b.Fatal(err)
		}
	}
	if len(digest) != sha256.Size {
		b.Fatalf("baseline read a %d-byte digest", len(digest))
	}
}

// benchFill stores benchKeys-1 filler keys directly and one real key
// through a Manager, and returns the Manager, the key and its id.
func benchFill(b *testing.B, s *sqlstore.Store) (*apikeys.Manager, string, any) {
	b.Helper()
	c := context.Background()
	for i := range benchKeys - 1 {
		rec := testRecord(b, fmt.Sprint("user-", i%100))
		if err := s.Create(c, rec); err != nil {
			b.Fatal(err)
		}
	}
	m, err := apikeys.New(s, nil)
	require.NoError(b, err)
	nk, err := m.Create(c, apikeys.CreateParams{
		Type: apikeys.Public, Name: "web", UserID: "user-1",
		AllowedOrigins:    []string{"https://app.example.com", "https://*.example.org"},
		AllowedAssistants: []string{"asst-1", "asst-2", "asst-3"},
	})
	require.NoError(b, err)
	return m, nk.Value, nk.ID
}

package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/sqlstore"
)

// v1Columns are the columns of schema version 1.
var v1Columns = []string{
	"id", "user_id", "key_type", "name", "allowed_origins", "allowed_assistants", "transient_assistant",
	"user_email", "hint", "digest", "created_at", "updated_at", "expires_at", "last_used_at", "version",
}

// v1Insert writes rec into a version-1 table as version 1 of the store
// did, through the version-1 columns. It is spelled out here rather than
// taken from the Store, so that it stays what that version wrote.
func v1Insert(t *testing.T, db testDB, table string, rec apikeys.Record) {
	t.Helper()
	timeArg := func(tm time.Time) any {
		if tm.IsZero() {
			return nil
		}
		switch db.dialect {
		case sqlstore.MySQL:
			return tm.UTC().Format("2006-01-02 15:04:05.000000")
		case sqlstore.SQLite:
			return tm.UnixMicro()
		}
		return tm.UTC()
	}
	list := func(l []string) string {
		if len(l) == 0 {
			return "[]"
		}
		b, err := json.Marshal(l)
		require.NoError(t, err)
		return string(b)
	}
	marks := make([]string, len(v1Columns))
	for i := range marks {
		marks[i] = ph(db.dialect, i+1)
	}
	q := "INSERT INTO " + quote(db.dialect, table) + " (" + strings.Join(v1Columns, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
	_, err := db.ExecContext(ctx(t), q,
		rec.ID, rec.UserID, string(rec.Type), rec.Name, list(rec.AllowedOrigins), list(rec.AllowedAssistants), rec.TransientAssistant,
		rec.UserEmail, rec.Hint, rec.Digest[:], timeArg(rec.CreatedAt), timeArg(rec.UpdatedAt), timeArg(rec.ExpiresAt), timeArg(rec.LastUsedAt),
		rec.Version)
	require.NoError(t, err, "version-1 insert of %s", rec.ID)
}

// hasSuccessorColumn reports whether the table has a successor_id column,
// from the catalog (a SELECT * would be cached by pgx, and PostgreSQL
// refuses a cached plan whose columns have changed).
func hasSuccessorColumn(t *testing.T, db testDB, table string) bool {
	t.Helper()
	q := map[sqlstore.Dialect]string{
		sqlstore.Postgres: "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'successor_id'",
		sqlstore.MySQL:    "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'successor_id'",
		sqlstore.SQLite:   "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = 'successor_id'",
	}[db.dialect]
	var n int
	require.NoError(t, db.GetContext(ctx(t), &n, q, table))
	return n == 1
}

// issued is a key issued by a Manager: its value, its record, and a
// request it is allowed to make.
type issued struct {
	value string
	rec   apikeys.Record
	req   apikeys.Request
}

// issueKeys issues keys of every kind for users alice and bob through a
// Manager on memstore and returns them in creation order. Without a pepper
// the digest is SHA-256 of the value, whichever Manager computes it, so
// any Manager without a pepper authorizes them once their records are
// stored.
func issueKeys(t *testing.T) []issued {
	t.Helper()
	c := ctx(t)
	mem := memstore.New()
	m, err := apikeys.New(mem, &apikeys.Config{LastUsedInterval: -1})
	require.NoError(t, err)
	soon := time.Now().Add(24 * time.Hour)
	tests := []struct {
		p   apikeys.CreateParams
		req apikeys.Request
	}{
		{apikeys.CreateParams{Type: apikeys.Private, Name: "server", UserID: "alice"}, apikeys.Request{RequirePrivate: true}},
		{apikeys.CreateParams{
			Type: apikeys.Public, Name: "widget ✓", UserID: "alice", UserEmail: "alice@example.com",
			AllowedOrigins: []string{"https://app.example.com", "https://*.example.org"}, AllowedAssistants: []string{"asst-1"},
			TransientAssistant: true,
		}, apikeys.Request{Origin: "https://a.example.org", AssistantID: "asst-1", Transient: true}},
		{apikeys.CreateParams{Type: apikeys.Private, Name: "expiring", UserID: "alice", ExpiresAt: soon}, apikeys.Request{}},
		{apikeys.CreateParams{Type: apikeys.Public, Name: "bob's", UserID: "bob", AllowedOrigins: []string{"https://bob.example"}},
			apikeys.Request{Origin: "https://bob.example"}},
		{apikeys.CreateParams{Type: apikeys.Private, Name: "renamed later", UserID: "bob"}, apikeys.Request{}},
	}
	var out []issued
	for _, tt := range tests {
		nk, err := m.Create(c, tt.p)
		require.NoError(t, err)
		out = append(out, issued{value: nk.Value, rec: apikeys.Record{Key: nk.Key}, req: tt.req})
	}
	// A record past its first version, and one that has been used.
	renamed := "renamed"
	last := out[len(out)-1].rec
	_, err = m.Update(c, last.UserID, last.ID, apikeys.UpdateParams{Name: &renamed})
	require.NoError(t, err)
	require.NoError(t, mem.TouchLastUsed(c, []apikeys.Use{{ID: out[0].rec.ID, At: time.Now().UTC().Truncate(time.Microsecond)}}))
	for i := range out {
		out[i].rec, err = mem.Get(c, out[i].rec.ID)
		require.NoError(t, err)
	}
	require.Equal(t, int64(2), out[len(out)-1].rec.Version, "the renamed key's version")
	require.False(t, out[0].rec.LastUsedAt.IsZero(), "the used key's last use")
	return out
}

// TestUpgradeFromVersion1 fills a version-1 table as version 1 of the store
// did, migrates it to the current version with a Store built before the upgrade, and
// checks that every key is still there, unchanged, with the zero
// SuccessorID, and still authorizes.
func TestUpgradeFromVersion1(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		keys := issueKeys(t)
		s := newStore(t, db.DB, randomTable(t))
		require.NoError(t, s.MigrateTo(ctx(t), 1))
		require.Equal(t, 1, versionRows(t, db.DB, s))
		require.False(t, hasSuccessorColumn(t, db, s.Table()), "version 1 has successor_id")
		// All keys but the last now; the last after the upgrade, as an
		// instance of version 1 still running would write it.
		for _, k := range keys[:len(keys)-1] {
			v1Insert(t, db, s.Table(), k.rec)
		}
		// An instance of version 1 has its statements prepared: they name
		// their columns, so they keep working on the upgraded table.
		v1Get, err := db.PreparexContext(ctx(t), db.Rebind("SELECT "+strings.Join(v1Columns, ", ")+" FROM "+quote(db.dialect, s.Table())+" WHERE id = ?"))
		require.NoError(t, err)
		t.Cleanup(func() { v1Get.Close() })
		v1Read := func(id uuid.UUID) map[string]any {
			t.Helper()
			row := map[string]any{}
			require.NoError(t, v1Get.QueryRowxContext(ctx(t), id).MapScan(row), "version-1 read of %s", id)
			return row
		}
		require.Len(t, v1Read(keys[0].rec.ID), len(v1Columns))

		// This version's statements need the column: before the upgrade
		// a read fails, and is never "not found", so Authorize fails
		// closed.
		_, err = s.Get(ctx(t), keys[0].rec.ID)
		require.Error(t, err)
		require.NotErrorIs(t, err, apikeys.ErrNotFound)
		m, err := apikeys.New(s, nil)
		require.NoError(t, err)
		t.Cleanup(func() { // before the table is dropped
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			assert.NoError(t, m.Close(c))
		})
		_, err = m.Authorize(ctx(t), keys[0].value, keys[0].req)
		var se *apikeys.StoreError
		require.True(t, errors.As(err, &se), "Authorize before the upgrade = %v, want a *apikeys.StoreError", err)

		require.NoError(t, s.Migrate(ctx(t)))
		require.Equal(t, 3, versionRows(t, db.DB, s))
		require.True(t, hasSuccessorColumn(t, db, s.Table()), "version 2 lacks successor_id")
		require.Len(t, v1Read(keys[0].rec.ID), len(v1Columns))
		v1Insert(t, db, s.Table(), keys[len(keys)-1].rec)

		var rows int
		require.NoError(t, db.GetContext(ctx(t), &rows, "SELECT COUNT(*) FROM "+quote(db.dialect, s.Table())))
		require.Equal(t, len(keys), rows, "rows after the upgrade")
		byUser := map[string][]apikeys.Record{}
		for _, k := range keys {
			byUser[k.rec.UserID] = append([]apikeys.Record{k.rec}, byUser[k.rec.UserID]...) // newest first
		}
		for user, want := range byUser {
			list, err := s.List(ctx(t), user, apikeys.ListQuery{Limit: 10})
			require.NoError(t, err)
			require.Equal(t, ids(want), ids(list), "List(%s)", user)
			for i := range want {
				requireSame(t, want[i], list[i])
			}
		}
		for _, k := range keys {
			got, err := s.Get(ctx(t), k.rec.ID)
			require.NoError(t, err)
			requireSame(t, k.rec, got)
			require.Equal(t, uuid.UUID{}, got.SuccessorID)

			key, err := m.Authorize(ctx(t), k.value, k.req)
			require.NoError(t, err, "Authorize(%s) after the upgrade", k.rec.Name)
			require.Equal(t, k.rec.ID, key.ID)
			require.Equal(t, uuid.UUID{}, key.SuccessorID)
		}

		// The upgraded rows take a SuccessorID like new ones.
		up := keys[1].rec
		up.SuccessorID = keys[2].rec.ID
		up.Version++
		require.NoError(t, s.Update(ctx(t), up))
		got, err := s.Get(ctx(t), up.ID)
		require.NoError(t, err)
		requireSame(t, up, got)

		require.NoError(t, s.Migrate(ctx(t)), "Migrate after the upgrade")
		require.Equal(t, 3, versionRows(t, db.DB, s))
	})
}

// TestUpgradeRerun: on MySQL a migration's DDL is committed at once, so
// Migrate can stop after adding successor_id and before recording version
// 2. Migrate must then finish the upgrade rather than fail on the existing
// column. (PostgreSQL and SQLite migrate in one transaction and cannot be
// left so; PostgreSQL runs the test anyway.)
func TestUpgradeRerun(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		if db.dialect == sqlstore.SQLite {
			t.Skip("SQLite migrates in one transaction")
		}
		s := newStore(t, db.DB, randomTable(t))
		require.NoError(t, s.MigrateTo(ctx(t), 1))
		old := testRecord(t, "rerun-user")
		v1Insert(t, db, s.Table(), old)
		require.NoError(t, s.MigrateTo(ctx(t), 2))
		versions := quote(db.dialect, s.Table()+"_schema_versions")
		_, err := db.ExecContext(ctx(t), "DELETE FROM "+versions+" WHERE version = 2")
		require.NoError(t, err)
		require.Equal(t, 1, versionRows(t, db.DB, s))

		require.NoError(t, s.Migrate(ctx(t)))
		require.Equal(t, 3, versionRows(t, db.DB, s))
		got, err := s.Get(ctx(t), old.ID)
		require.NoError(t, err)
		requireSame(t, old, got)
		rec := testRecord(t, "rerun-user")
		rec.SuccessorID = old.ID
		require.NoError(t, s.Create(ctx(t), rec))
		got, err = s.Get(ctx(t), rec.ID)
		require.NoError(t, err)
		requireSame(t, rec, got)
	})
}

// TestSuccessorIDStoredLikeID: successor_id holds the canonical UUID text
// as id does (a native UUID on PostgreSQL), and NULL for the zero UUID.
func TestSuccessorIDStoredLikeID(t *testing.T) {
	t.Parallel()
	asText := map[sqlstore.Dialect]string{
		sqlstore.Postgres: "CAST(%s AS TEXT)",
		sqlstore.MySQL:    "CAST(%s AS CHAR)",
		sqlstore.SQLite:   "typeof(%[1]s) || ':' || %[1]s",
	}
	forEach(t, func(t *testing.T, db testDB) {
		s := migratedStore(t, db.DB)
		with, without := testRecord(t, "stored-user"), testRecord(t, "stored-user")
		with.SuccessorID, without.SuccessorID = without.ID, uuid.UUID{}
		require.NoError(t, s.Create(ctx(t), with))
		require.NoError(t, s.Create(ctx(t), without))
		read := func(id uuid.UUID) (idText string, successor *string) {
			t.Helper()
			f := asText[db.dialect]
			q := "SELECT " + fmt.Sprintf(f, "id") + ", " + fmt.Sprintf(f, "successor_id") +
				" FROM " + quote(db.dialect, s.Table()) + " WHERE id = " + ph(db.dialect, 1)
			require.NoError(t, db.QueryRowxContext(ctx(t), q, id).Scan(&idText, &successor))
			return idText, successor
		}
		idText, successor := read(with.ID)
		want := strings.Replace(idText, with.ID.String(), without.ID.String(), 1)
		require.NotEqual(t, idText, want, "id is stored as %q", idText)
		require.NotNil(t, successor)
		assert.Equal(t, want, *successor, "successor_id stored unlike id")
		_, successor = read(without.ID)
		assert.Nil(t, successor, "the zero SuccessorID is stored as %q, want NULL", successor)
	})
}

// TestSchemaRerunnable: on PostgreSQL and MySQL, Schema's text runs again
// on a migrated table that holds keys, changing nothing, as the package
// doc says.
func TestSchemaRerunnable(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		if db.dialect == sqlstore.SQLite {
			t.Skip("SQLite has no ADD COLUMN IF NOT EXISTS")
		}
		s := migratedStore(t, db.DB)
		rec := testRecord(t, "schema-user")
		rec.SuccessorID = apikeysID(t)
		require.NoError(t, s.Create(ctx(t), rec))
		text, err := sqlstore.Schema(db.dialect, s.Table())
		require.NoError(t, err)
		conn, err := db.Conn(ctx(t)) // one session, for MySQL's variables
		require.NoError(t, err)
		defer conn.Close()
		n := 0
		for q := range strings.SplitSeq(text, ";\n") {
			if strings.TrimSpace(q) == "" {
				continue
			}
			_, err := conn.ExecContext(ctx(t), q)
			require.NoError(t, err, "%s", q)
			n++
		}
		require.Greater(t, n, 2)
		got, err := s.Get(ctx(t), rec.ID)
		require.NoError(t, err)
		requireSame(t, rec, got)
	})
}

package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
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
	oldInsert(t, db, table, rec, v1Columns)
}

// v3Columns are the columns of schema versions 2 and 3.
var v3Columns = append(slices.Clone(v1Columns), "successor_id")

// v3Insert writes rec into a version-3 table as versions 2 and 3 of the
// store did, through their columns: those of version 1 and successor_id.
func v3Insert(t *testing.T, db testDB, table string, rec apikeys.Record) {
	t.Helper()
	oldInsert(t, db, table, rec, v3Columns)
}

// v4Columns are the columns of schema version 4.
var v4Columns = append(slices.Clone(v3Columns), restrictionColumns...)

// v4Insert writes rec into a version-4 table as version 4 of the store
// did, through its columns.
func v4Insert(t *testing.T, db testDB, table string, rec apikeys.Record) {
	t.Helper()
	oldInsert(t, db, table, rec, v4Columns)
}

// oldInsert writes rec through columns, v1Columns, v3Columns or
// v4Columns.
func oldInsert(t *testing.T, db testDB, table string, rec apikeys.Record, columns []string) {
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
	args := []any{
		rec.ID, rec.UserID, string(rec.Type), rec.Name, list(rec.AllowedOrigins), list(rec.AllowedAssistants), rec.TransientAssistant,
		rec.UserEmail, rec.Hint, rec.Digest[:], timeArg(rec.CreatedAt), timeArg(rec.UpdatedAt), timeArg(rec.ExpiresAt), timeArg(rec.LastUsedAt),
		rec.Version,
	}
	if len(columns) > len(v1Columns) {
		var successor any // NULL for the zero UUID
		if rec.SuccessorID != (uuid.UUID{}) {
			successor = rec.SuccessorID
		}
		args = append(args, successor)
	}
	if len(columns) > len(v3Columns) {
		ips := make([]string, len(rec.AllowedIPs))
		for i, p := range rec.AllowedIPs {
			ips[i] = p.String()
		}
		args = append(args, list(rec.Scopes), list(ips), rec.Disabled)
	}
	require.Len(t, args, len(columns))
	marks := make([]string, len(columns))
	for i := range marks {
		marks[i] = ph(db.dialect, i+1)
	}
	q := "INSERT INTO " + quote(db.dialect, table) + " (" + strings.Join(columns, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
	_, err := db.ExecContext(ctx(t), q, args...)
	require.NoError(t, err, "insert of %s through the columns of an earlier version", rec.ID)
}

// restrictionColumns are the columns schema version 4 adds.
var restrictionColumns = []string{"scopes", "allowed_ips", "disabled"}

// hasColumn reports whether the table has the column, from the catalog (a
// SELECT * would be cached by pgx, and PostgreSQL refuses a cached plan
// whose columns have changed).
func hasColumn(t *testing.T, db testDB, table, column string) bool {
	t.Helper()
	q := map[sqlstore.Dialect]string{
		sqlstore.Postgres: "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
		sqlstore.MySQL:    "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?",
		sqlstore.SQLite:   "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?",
	}[db.dialect]
	var n int
	require.NoError(t, db.GetContext(ctx(t), &n, q, table, column))
	return n == 1
}

// requireColumns fails unless the table has each of the columns (want) or
// none of them.
func requireColumns(t *testing.T, db testDB, table string, want bool, columns ...string) {
	t.Helper()
	for _, c := range columns {
		require.Equal(t, want, hasColumn(t, db, table, c), "table %s has column %s", table, c)
	}
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
// SuccessorID, enabled and without scopes or addresses, and still
// authorizes.
func TestUpgradeFromVersion1(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		keys := issueKeys(t)
		s := newStore(t, db.DB, randomTable(t))
		require.NoError(t, s.MigrateTo(ctx(t), 1))
		require.Equal(t, 1, versionRows(t, db.DB, s))
		requireColumns(t, db, s.Table(), false, append([]string{"successor_id"}, restrictionColumns...)...)
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
		require.Equal(t, int(s.LatestVersion()), versionRows(t, db.DB, s))
		requireColumns(t, db, s.Table(), true, append([]string{"successor_id"}, restrictionColumns...)...)
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
			// Version 4's defaults: enabled, no scopes, no addresses.
			require.False(t, got.Disabled, "Disabled")
			require.Empty(t, got.Scopes, "Scopes")
			require.Empty(t, got.AllowedIPs, "AllowedIPs")

			key, err := m.Authorize(ctx(t), k.value, k.req)
			require.NoError(t, err, "Authorize(%s) after the upgrade", k.rec.Name)
			require.Equal(t, k.rec.ID, key.ID)
			require.Equal(t, uuid.UUID{}, key.SuccessorID)
			require.False(t, key.Disabled)
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
		require.Equal(t, int(s.LatestVersion()), versionRows(t, db.DB, s))
	})
}

// TestUpgradeRerun: on MySQL a migration's DDL is committed at once, so
// Migrate can stop after adding a column and before recording its
// version: after version 2's successor_id, or between the ALTERs of
// version 4. Migrate must then finish the upgrade rather than fail on an
// existing column. (PostgreSQL and SQLite migrate in one transaction and
// cannot be left so; PostgreSQL runs the test anyway.)
func TestUpgradeRerun(t *testing.T) {
	t.Parallel()
	// What version 4 adds, as its MySQL file and PostgreSQL's would.
	addColumn := map[sqlstore.Dialect]map[string]string{
		sqlstore.MySQL: {
			"scopes":      "scopes JSON NOT NULL DEFAULT ('[]')",
			"allowed_ips": "allowed_ips JSON NOT NULL DEFAULT ('[]')",
		},
		sqlstore.Postgres: {
			"scopes":      "scopes JSONB NOT NULL DEFAULT '[]'",
			"allowed_ips": "allowed_ips JSONB NOT NULL DEFAULT '[]'",
		},
	}
	tests := []struct {
		name string
		// stop leaves the table as a migration that stopped would.
		stop func(t *testing.T, db testDB, s *sqlstore.Store)
		rows int // version rows after stop
	}{
		{"version 2 not recorded", func(t *testing.T, db testDB, s *sqlstore.Store) {
			require.NoError(t, s.MigrateTo(ctx(t), 2))
			_, err := db.ExecContext(ctx(t), "DELETE FROM "+quote(db.dialect, s.Table()+"_schema_versions")+" WHERE version = 2")
			require.NoError(t, err)
		}, 1},
		{"version 4 stopped after two of its columns", func(t *testing.T, db testDB, s *sqlstore.Store) {
			require.NoError(t, s.MigrateTo(ctx(t), 3))
			for _, c := range []string{"scopes", "allowed_ips"} {
				_, err := db.ExecContext(ctx(t), "ALTER TABLE "+quote(db.dialect, s.Table())+" ADD COLUMN "+addColumn[db.dialect][c])
				require.NoError(t, err)
			}
			requireColumns(t, db, s.Table(), false, "disabled")
		}, 3},
		{"version 5 not recorded", func(t *testing.T, db testDB, s *sqlstore.Store) {
			require.NoError(t, s.Migrate(ctx(t)))
			_, err := db.ExecContext(ctx(t), "DELETE FROM "+quote(db.dialect, s.Table()+"_schema_versions")+" WHERE version = 5")
			require.NoError(t, err)
		}, 4},
	}
	forEach(t, func(t *testing.T, db testDB) {
		if db.dialect == sqlstore.SQLite {
			t.Skip("SQLite migrates in one transaction")
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := newStore(t, db.DB, randomTable(t))
				require.NoError(t, s.MigrateTo(ctx(t), 1))
				old := testRecord(t, "rerun-user")
				v1Insert(t, db, s.Table(), old)
				tt.stop(t, db, s)
				require.Equal(t, tt.rows, versionRows(t, db.DB, s))

				require.NoError(t, s.Migrate(ctx(t)))
				require.Equal(t, int(s.LatestVersion()), versionRows(t, db.DB, s))
				requireColumns(t, db, s.Table(), true, append(append([]string{"successor_id"}, restrictionColumns...), limitColumns...)...)
				got, err := s.Get(ctx(t), old.ID)
				require.NoError(t, err)
				requireSame(t, old, got)
				rec := testRecord(t, "rerun-user")
				rec.SuccessorID = old.ID
				rec.Scopes = []string{"calls:read"}
				rec.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
				rec.Disabled = true
				rec.RateLimit = &apikeys.RateLimit{Limit: 10, WindowSeconds: 60}
				rec.Credits = &apikeys.Credits{Remaining: 5}
				require.NoError(t, s.Create(ctx(t), rec))
				got, err = s.Get(ctx(t), rec.ID)
				require.NoError(t, err)
				requireSame(t, rec, got)
			})
		}
	})
}

// TestUpgradeFromVersion3 fills a version-3 table as version 3 of the
// store did, migrates it to version 4 and checks that every key is still
// there, enabled and without scopes or addresses, and authorizes; that an
// instance of version 3 still running keeps inserting and reading keys;
// and that such an instance, updating a key that version 4 disabled and
// restricted, leaves it disabled and restricted (its statements name only
// its columns), so a rolling upgrade cannot switch a key back on.
func TestUpgradeFromVersion3(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		keys := issueKeys(t)
		keys[2].rec.SuccessorID = keys[4].rec.ID // a key being retired
		s := newStore(t, db.DB, randomTable(t))
		require.NoError(t, s.MigrateTo(ctx(t), 3))
		require.Equal(t, 3, versionRows(t, db.DB, s))
		requireColumns(t, db, s.Table(), false, restrictionColumns...)
		for _, k := range keys[:len(keys)-1] {
			v3Insert(t, db, s.Table(), k.rec)
		}
		table := quote(db.dialect, s.Table())
		v3Get, err := db.PreparexContext(ctx(t), db.Rebind("SELECT "+strings.Join(v3Columns, ", ")+" FROM "+table+" WHERE id = ?"))
		require.NoError(t, err)
		t.Cleanup(func() { v3Get.Close() })
		v3Rename, err := db.PreparexContext(ctx(t), db.Rebind("UPDATE "+table+" SET name = ?, version = ? WHERE id = ? AND user_id = ? AND version = ?"))
		require.NoError(t, err)
		t.Cleanup(func() { v3Rename.Close() })

		// This version's statements need the columns: before the upgrade
		// a read fails, never "not found".
		_, err = s.Get(ctx(t), keys[0].rec.ID)
		require.Error(t, err)
		require.NotErrorIs(t, err, apikeys.ErrNotFound)

		require.NoError(t, s.Migrate(ctx(t)))
		require.Equal(t, int(s.LatestVersion()), versionRows(t, db.DB, s))
		requireColumns(t, db, s.Table(), true, restrictionColumns...)
		// An instance of version 3 inserts a key after the upgrade, and
		// reads with its prepared statement.
		v3Insert(t, db, s.Table(), keys[len(keys)-1].rec)
		row := map[string]any{}
		require.NoError(t, v3Get.QueryRowxContext(ctx(t), keys[0].rec.ID).MapScan(row))
		require.Len(t, row, len(v3Columns))

		var rows int
		require.NoError(t, db.GetContext(ctx(t), &rows, "SELECT COUNT(*) FROM "+table))
		require.Equal(t, len(keys), rows, "rows after the upgrade")
		m, err := apikeys.New(s, &apikeys.Config{LastUsedInterval: -1})
		require.NoError(t, err)
		t.Cleanup(func() { // before the table is dropped
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			assert.NoError(t, m.Close(c))
		})
		for _, k := range keys {
			got, err := s.Get(ctx(t), k.rec.ID)
			require.NoError(t, err)
			requireSame(t, k.rec, got)
			require.False(t, got.Disabled, "%s: Disabled", k.rec.Name)
			require.Empty(t, got.Scopes, "%s: Scopes", k.rec.Name)
			require.Empty(t, got.AllowedIPs, "%s: AllowedIPs", k.rec.Name)

			key, err := m.Authorize(ctx(t), k.value, k.req)
			require.NoError(t, err, "Authorize(%s) after the upgrade", k.rec.Name)
			require.Equal(t, k.rec.ID, key.ID)
		}
		list, err := s.List(ctx(t), "alice", apikeys.ListQuery{Limit: 10})
		require.NoError(t, err)
		require.Len(t, list, 3)

		// Version 4 switches a key off and restricts it.
		k := keys[0]
		up, err := m.Update(ctx(t), k.rec.UserID, k.rec.ID, apikeys.UpdateParams{
			Disabled: new(true), Scopes: &[]string{"calls:read"}, AllowedIPs: &[]string{"203.0.113.0/24"},
		})
		require.NoError(t, err)
		_, err = m.Authorize(ctx(t), k.value, k.req)
		require.ErrorIs(t, err, apikeys.ErrKeyDisabled, "after the Update that disabled it")

		// An instance of version 3 renames it: the key stays off and
		// restricted.
		cur, err := s.Get(ctx(t), k.rec.ID)
		require.NoError(t, err)
		res, err := v3Rename.ExecContext(ctx(t), "renamed by version 3", cur.Version+1, cur.ID, cur.UserID, cur.Version)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "version-3 rename")
		got, err := s.Get(ctx(t), k.rec.ID)
		require.NoError(t, err)
		require.Equal(t, "renamed by version 3", got.Name)
		require.True(t, got.Disabled, "a version-3 Update enabled the key")
		require.Equal(t, up.Scopes, got.Scopes)
		require.Equal(t, up.AllowedIPs, got.AllowedIPs)
		_, err = m.Authorize(ctx(t), k.value, k.req)
		require.ErrorIs(t, err, apikeys.ErrKeyDisabled, "after a version-3 Update")
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

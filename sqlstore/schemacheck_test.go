package sqlstore_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys/sqlstore"
)

// recordVersion records schema version v in the store's versions table,
// as a newer release's Migrate would.
func recordVersion(t *testing.T, db testDB, s *sqlstore.Store, v int64) {
	t.Helper()
	now := map[sqlstore.Dialect]string{sqlstore.Postgres: "now()", sqlstore.MySQL: "NOW(6)", sqlstore.SQLite: "0"}[db.dialect]
	_, err := db.ExecContext(ctx(t), "INSERT INTO "+quote(db.dialect, s.Table()+"_schema_versions")+
		" (version, applied_at) VALUES ("+ph(db.dialect, 1)+", "+now+")", v)
	require.NoError(t, err)
}

// requireSchemaError checks that err is a *SchemaError wrapping want, for
// the store's table, with the versions given, named in its message.
func requireSchemaError(t *testing.T, err error, want error, s *sqlstore.Store, database int64) {
	t.Helper()
	require.ErrorIs(t, err, want)
	var se *sqlstore.SchemaError
	require.True(t, errors.As(err, &se), "%v (%T) is not a *sqlstore.SchemaError", err, err)
	assert.Equal(t, s.Table(), se.Table)
	assert.Equal(t, database, se.Database, "the database's version")
	assert.Equal(t, s.LatestVersion(), se.Code, "the code's version")
	for _, v := range []int64{database, s.LatestVersion()} {
		assert.Contains(t, err.Error(), "version "+strconv.FormatInt(v, 10))
	}
	assert.Contains(t, err.Error(), s.Table())
}

// TestMigrateRefusesNewerSchema: a table that a newer release migrated
// (its versions table records a version this code does not know) is
// refused by Migrate, which changes nothing, whether the table is at this
// code's version or behind it.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		tests := []struct {
			name string
			at   int64 // the version migrated to before the newer one is recorded
		}{
			{"from the current version", 0},
			{"from version 1", 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := newStore(t, db.DB, randomTable(t))
				if tt.at == 0 {
					require.NoError(t, s.Migrate(ctx(t)))
				} else {
					require.NoError(t, s.MigrateTo(ctx(t), tt.at))
				}
				newer := s.LatestVersion() + 97
				recordVersion(t, db, s, newer)
				rows := versionRows(t, db.DB, s)
				hadSuccessor := hasColumn(t, db, s.Table(), "successor_id")
				hadDisabled := hasColumn(t, db, s.Table(), "disabled")

				err := s.Migrate(ctx(t))
				requireSchemaError(t, err, sqlstore.ErrSchemaTooNew, s, newer)
				assert.NotErrorIs(t, err, sqlstore.ErrSchemaTooOld)
				// Another instance of this code, with its own pool, too.
				other, err := sqlstore.New(openPool(t, db.driver, db.dsnText), &sqlstore.Config{Table: s.Table()})
				require.NoError(t, err)
				t.Cleanup(func() { other.Close() })
				requireSchemaError(t, other.Migrate(ctx(t)), sqlstore.ErrSchemaTooNew, s, newer)

				assert.Equal(t, rows, versionRows(t, db.DB, s), "Migrate recorded versions on a newer schema")
				assert.Equal(t, hadSuccessor, hasColumn(t, db, s.Table(), "successor_id"), "Migrate changed a newer schema")
				assert.Equal(t, hadDisabled, hasColumn(t, db, s.Table(), "disabled"), "Migrate changed a newer schema")
				requireSchemaError(t, s.CheckSchema(ctx(t)), sqlstore.ErrSchemaTooNew, s, newer)
			})
		}
	})
}

// TestCheckSchema: CheckSchema accepts exactly this code's schema, only
// reads, and tells a newer schema from an older one.
func TestCheckSchema(t *testing.T) {
	t.Parallel()
	forEach(t, func(t *testing.T, db testDB) {
		tests := []struct {
			name     string
			setup    func(t *testing.T, s *sqlstore.Store)
			want     error // nil, ErrSchemaTooOld or ErrSchemaTooNew
			database int64 // SchemaError.Database, past the code's version when newer
		}{
			{"no table", func(*testing.T, *sqlstore.Store) {}, sqlstore.ErrSchemaTooOld, 0},
			{"version 1", func(t *testing.T, s *sqlstore.Store) {
				require.NoError(t, s.MigrateTo(ctx(t), 1))
			}, sqlstore.ErrSchemaTooOld, 1},
			{"current", func(t *testing.T, s *sqlstore.Store) {
				require.NoError(t, s.Migrate(ctx(t)))
			}, nil, 0},
			{"current, version 1 not recorded", func(t *testing.T, s *sqlstore.Store) {
				require.NoError(t, s.Migrate(ctx(t)))
				_, err := db.ExecContext(ctx(t), "DELETE FROM "+quote(db.dialect, s.Table()+"_schema_versions")+" WHERE version = 1")
				require.NoError(t, err)
			}, sqlstore.ErrSchemaTooOld, 0},
			{"newer", func(t *testing.T, s *sqlstore.Store) {
				require.NoError(t, s.Migrate(ctx(t)))
				recordVersion(t, db, s, s.LatestVersion()+1)
			}, sqlstore.ErrSchemaTooNew, 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := newStore(t, db.DB, randomTable(t))
				tt.setup(t, s)
				err := s.CheckSchema(ctx(t))
				switch tt.want {
				case nil:
					require.NoError(t, err)
				case sqlstore.ErrSchemaTooNew:
					requireSchemaError(t, err, tt.want, s, s.LatestVersion()+tt.database)
				default:
					requireSchemaError(t, err, tt.want, s, tt.database)
				}
				if tt.name == "no table" {
					// CheckSchema only reads: the tables are still missing.
					err := db.QueryRowContext(ctx(t), "SELECT COUNT(*) FROM "+quote(db.dialect, s.Table()+"_schema_versions")).Scan(new(int))
					require.Error(t, err, "CheckSchema created the versions table")
				}
			})
		}
	})
}

package storeurl

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoDriverImported: this package registers no SQL driver, so that a
// program that opens only memory or Redis compiles none (this test binary
// imports none either, which TestOpenMissingDriver relies on).
func TestNoDriverImported(t *testing.T) {
	for _, d := range []string{"pgx", "mysql", "sqlite"} {
		assert.NotContains(t, sql.Drivers(), d, "registered by storeurl or a test import")
	}
}

// TestOpenMissingDriver: Open on an SQL store whose driver this program
// lacks fails at once, naming the store and the import, and shows no
// password.
func TestOpenMissingDriver(t *testing.T) {
	t.Parallel()
	const pw = "Sup3r-S3cret"
	dir := t.TempDir()
	for _, tc := range []struct{ spec, want string }{
		{"sqlite:" + filepath.Join(dir, "keys.db"),
			`sqlite:PATH needs the SQLite driver, which this program was built without: import _ "modernc.org/sqlite" (examples/server: go run -tags sqlite ./examples/server ...)`},
		{"postgres://root:" + pw + "@127.0.0.1:1/test?sslmode=disable",
			`postgres://... needs the PostgreSQL driver (pgx), which this program was built without: import _ "github.com/jackc/pgx/v5/stdlib"`},
		{"postgresql://root@127.0.0.1:1/test?password=" + pw,
			`postgres://... needs the PostgreSQL driver (pgx), which this program was built without: import _ "github.com/jackc/pgx/v5/stdlib"`},
		{"mysql://root:" + pw + "@127.0.0.1:1/test",
			`mysql://... needs the MySQL driver, which this program was built without: import _ "github.com/go-sql-driver/mysql"`},
	} {
		opened, err := Open(t.Context(), tc.spec, "", nil)
		if opened != nil {
			opened.Close()
		}
		require.Error(t, err, tc.spec)
		assert.Equal(t, tc.want, err.Error(), tc.spec)
		assert.NotContains(t, err.Error(), pw)
	}
	// Nothing was created for the SQLite spec.
	assert.NoFileExists(t, filepath.Join(dir, "keys.db"))
}

// TestNeedDriver: a registered driver passes; a missing one is named.
func TestNeedDriver(t *testing.T) {
	t.Parallel()
	all := []string{"mysql", "pgx", "sqlite"}
	for _, d := range all {
		assert.NoError(t, needDriver(d, all), d)
		err := needDriver(d, []string{"other"})
		require.Error(t, err, d)
		assert.Contains(t, err.Error(), sqlDrivers[d].pkg, d)
		assert.Contains(t, err.Error(), sqlDrivers[d].store, d)
	}
	assert.ErrorContains(t, needDriver("oracle", all), `"oracle" is not registered`)
}

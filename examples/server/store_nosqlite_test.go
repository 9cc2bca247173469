//go:build !sqlite

package main

import (
	"path/filepath"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// persistentStore returns the spec of a store that several runs share and that
// outlives each: without -tags sqlite, a Redis (miniredis) of the test's
// own; with it, an SQLite file (sqlite_test.go).
func persistentStore(t *testing.T) string {
	t.Helper()
	return "redis://" + miniredis.RunT(t).Addr() + "/0"
}

// TestSQLiteNeedsTag: built without -tags sqlite, the demo has no SQLite
// driver, and -store sqlite:PATH fails before it serves, saying how to get
// it, and creates nothing.
func TestSQLiteNeedsTag(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.db")
	stdout, _, err := startRun(t, "-addr", "127.0.0.1:0", "-store", "sqlite:"+path)
	require.Error(t, err)
	assert.Equal(t, "store sqlite:"+path+": sqlite:PATH needs the SQLite driver, which this program was built without: "+
		`import _ "modernc.org/sqlite" (examples/server: go run -tags sqlite ./examples/server ...)`, err.Error())
	assert.NotContains(t, stdout, "listening on")
	assert.NotContains(t, stdout, "bootstrap private key")
	assert.NoFileExists(t, path)
}

//go:build sqlite

package main

import (
	"path/filepath"
	"testing"
)

// persistentStore returns the spec of a store that several runs share and that
// outlives each: with -tags sqlite, an SQLite file; without, a Redis
// (store_nosqlite_test.go).
func persistentStore(t *testing.T) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
}

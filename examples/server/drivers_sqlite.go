//go:build sqlite

package main

// The SQLite driver, for -store sqlite:PATH:
//
//	go run -tags sqlite ./examples/server -store sqlite:/tmp/apikeys.db
import _ "modernc.org/sqlite"

package main

// The SQL drivers the demo has by default (internal/storeurl imports
// none): PostgreSQL and MySQL. SQLite is in drivers_sqlite.go, built with
// -tags sqlite only: modernc.org/sqlite, pure Go but one very large
// package, is about a quarter of the demo's first build.
import (
	_ "github.com/go-sql-driver/mysql" // mysql://
	_ "github.com/jackc/pgx/v5/stdlib" // postgres://
)

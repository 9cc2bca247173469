package main

// The SQL drivers of every store the admin CLI opens (internal/storeurl
// imports none).
import (
	_ "github.com/go-sql-driver/mysql" // mysql://
	_ "github.com/jackc/pgx/v5/stdlib" // postgres://
	_ "modernc.org/sqlite"             // sqlite:PATH
)

package storeurl

import (
	"errors"
	"fmt"
	"slices"
)

// This package imports no SQL driver: each program imports those it wants
// (modernc.org/sqlite, one very large package, is about a quarter of the
// demo server's first build), and Open says which one is missing.
//
//	import _ "github.com/jackc/pgx/v5/stdlib" // postgres://
//	import _ "github.com/go-sql-driver/mysql" // mysql://
//	import _ "modernc.org/sqlite"             // sqlite:PATH

// sqlDriver is what Open tells of a database/sql driver it needs.
type sqlDriver struct {
	store string // the spec form that needs it
	name  string // the database
	pkg   string // the package that registers it
	demo  string // how examples/server gets it, if it does not by default
}

var sqlDrivers = map[string]sqlDriver{
	"pgx":   {store: "postgres://...", name: "PostgreSQL driver (pgx)", pkg: "github.com/jackc/pgx/v5/stdlib"},
	"mysql": {store: "mysql://...", name: "MySQL driver", pkg: "github.com/go-sql-driver/mysql"},
	"sqlite": {store: "sqlite:PATH", name: "SQLite driver", pkg: "modernc.org/sqlite",
		demo: "go run -tags sqlite ./examples/server ..."},
}

// needDriver returns nil if driver is among registered (sql.Drivers()),
// else an error naming the store, the driver and how to get it. It holds
// nothing of the spec, so no password.
func needDriver(driver string, registered []string) error {
	if slices.Contains(registered, driver) {
		return nil
	}
	d, ok := sqlDrivers[driver]
	if !ok {
		return fmt.Errorf("SQL driver %q is not registered in this program", driver)
	}
	msg := fmt.Sprintf("%s needs the %s, which this program was built without: import _ %q", d.store, d.name, d.pkg)
	if d.demo != "" {
		msg += " (examples/server: " + d.demo + ")"
	}
	return errors.New(msg)
}

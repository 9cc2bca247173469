package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jmoiron/sqlx"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/sqlstore"
)

// Open the database with sqlx (blank-import the driver: here
// _ "github.com/jackc/pgx/v5/stdlib"), create the store, migrate and hand
// it to a Manager.
func ExampleNew() {
	ctx := context.Background()
	db, err := sqlx.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(db, &sqlstore.Config{Table: "api_keys"}) // nil Config: table api_keys
	if err != nil {
		log.Fatal(err)
	}
	// Close releases the prepared statements and closes nothing else.
	defer store.Close()
	// Migrate is idempotent and safe from many instances at once.
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	m, err := apikeys.New(store, nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = m
}

// The DDL for users who run their own migrations.
func ExampleSchema() {
	ddl, err := sqlstore.Schema(sqlstore.Postgres, "api_keys")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ddl[:len("-- apikeys sqlstore schema, version 1 (PostgreSQL).")])
	// Output: -- apikeys sqlstore schema, version 1 (PostgreSQL).
}

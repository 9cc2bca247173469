// Package storeurl opens the apikeys.Store a store spec names, the form the
// demo server's -store flag and the apikeys CLI's --store take:
//
//	memory                       (also "mem" or empty) a memstore, private to the process
//	redis://[:PW@]HOST:PORT/DB   (or rediss://) a redisstore; the namespace is its key prefix
//	postgres://...               (or postgresql://) an sqlstore on pgx
//	mysql://USER[:PW]@HOST[:PORT]/DB[?params]   an sqlstore on go-sql-driver/mysql
//	sqlite:PATH                  an sqlstore on modernc.org/sqlite (WAL, busy timeout)
//
// For SQL stores the namespace is the table name. This package imports no
// SQL driver: a program imports those of the stores it opens (see
// drivers.go), and Open fails, saying which import is missing, on a store
// whose driver is not registered. A spec may hold a password: Redactor
// hides it wherever a program prints the spec or an error a driver filled
// with it.
package storeurl

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// Schema says what Open does to an SQL store's schema.
type Schema int

const (
	// Migrate runs sqlstore's Migrate (the default; what the demo does).
	Migrate Schema = iota
	// Check runs CheckSchema: a table of another version, or none, is an
	// error (a *sqlstore.SchemaError) and nothing is changed.
	Check
	// Leave touches nothing, for a program that migrates itself.
	Leave
)

// Options tune Open. The zero value (or nil) is what the demo server uses.
type Options struct {
	// Schema: Migrate, Check or Leave.
	Schema Schema
	// OpTimeout is the Manager's per-call timeout; SQLite waits for a lock
	// up to a second less, so that a busy database answers SQLITE_BUSY
	// rather than have the deadline interrupt it. Default 5 seconds.
	OpTimeout time.Duration
}

// Opened is an open store.
type Opened struct {
	// Store is the store.
	Store apikeys.Store
	// Invalidator is the store's change notifications (Redis pub/sub,
	// PostgreSQL LISTEN/NOTIFY, a polled change log), or nil for memory,
	// where one process has nothing to tell.
	Invalidator apikeys.Invalidator
	// Close releases the store and its connections.
	Close func()
}

// IsMemory reports whether spec names the memory store, which no other
// process shares.
func IsMemory(spec string) bool {
	return spec == "" || spec == "memory" || spec == "mem"
}

// Open opens the store spec names, in namespace (a Redis key prefix or an
// SQL table name; empty for the store's default). Its errors may hold the
// spec's credentials: pass them through a Redactor before printing them.
func Open(ctx context.Context, spec, namespace string, o *Options) (*Opened, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 5 * time.Second
	}
	var (
		s     apikeys.Store
		close func()
		err   error
	)
	switch {
	case IsMemory(spec):
		s, close = memstore.New(), func() {}
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"):
		s, close, err = openRedis(ctx, spec, namespace)
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		s, close, err = openSQL(ctx, "pgx", spec, namespace, &opts)
	case strings.HasPrefix(spec, "mysql://"):
		s, close, err = openSQL(ctx, "mysql", spec, namespace, &opts)
	case strings.HasPrefix(spec, "sqlite:"):
		s, close, err = openSQL(ctx, "sqlite", spec, namespace, &opts)
	default:
		err = errors.New("unknown store; use memory, redis://..., postgres://..., mysql://... or sqlite:PATH")
	}
	if err != nil {
		return nil, err
	}
	op := &Opened{Store: s, Close: close}
	if inv, ok := s.(apikeys.Invalidator); ok {
		op.Invalidator = inv
	}
	return op, nil
}

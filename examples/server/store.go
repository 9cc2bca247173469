package main

import (
	"context"
	"errors"
	"strings"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// openStore opens the store a -store flag names, in namespace (a Redis key
// prefix or an SQL table name; empty for the store's default). The returned
// function releases it.
func openStore(ctx context.Context, spec, namespace string) (apikeys.Store, func(), error) {
	switch {
	case isMemory(spec):
		return memstore.New(), func() {}, nil
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"):
		return openRedis(ctx, spec, namespace)
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return openSQL(ctx, "pgx", spec, namespace)
	case strings.HasPrefix(spec, "mysql://"):
		return openSQL(ctx, "mysql", spec, namespace)
	case strings.HasPrefix(spec, "sqlite:"):
		return openSQL(ctx, "sqlite", spec, namespace)
	}
	return nil, nil, errors.New("unknown store; use memory, redis://..., postgres://..., mysql://... or sqlite:PATH")
}

// isMemory reports whether spec names the memory store, which no other
// process shares.
func isMemory(spec string) bool {
	return spec == "" || spec == "memory" || spec == "mem"
}

// invalidatorOf returns the store's change notifications, or nil for a
// store without them (memory: one process has nothing to tell).
func invalidatorOf(s apikeys.Store) apikeys.Invalidator {
	if inv, ok := s.(apikeys.Invalidator); ok {
		return inv
	}
	return nil
}

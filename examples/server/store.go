package main

import (
	"context"
	"errors"
	"strings"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// openStore opens the store a -store flag names. The returned function
// releases it.
func openStore(ctx context.Context, spec string) (apikeys.Store, func(), error) {
	switch {
	case spec == "" || spec == "memory" || spec == "mem":
		return memstore.New(), func() {}, nil
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"):
		return openRedis(ctx, spec)
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return openSQL(ctx, "pgx", spec)
	case strings.HasPrefix(spec, "mysql://"):
		return openSQL(ctx, "mysql", spec)
	case strings.HasPrefix(spec, "sqlite:"):
		return openSQL(ctx, "sqlite", spec)
	}
	return nil, nil, errors.New("unknown store; use memory, redis://..., postgres://..., mysql://... or sqlite:PATH")
}

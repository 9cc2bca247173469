package main

import (
	"context"
	"errors"

	"github.com/keyward/apikeys"
)

// Placeholders until the Redis and SQL stores land.
func openRedis(context.Context, string) (apikeys.Store, func(), error) {
	return nil, nil, errors.New("redis store not built yet")
}

func openSQL(context.Context, string, string) (apikeys.Store, func(), error) {
	return nil, nil, errors.New("sql store not built yet")
}

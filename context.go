package apikeys

import "context"

type ctxKey struct{}

// NewContext returns a copy of ctx carrying the authorized key. The
// middleware calls it; handlers read the key back with KeyFromContext.
func NewContext(ctx context.Context, k Key) context.Context {
	return context.WithValue(ctx, ctxKey{}, k)
}

// KeyFromContext returns the key that authorized the request, if any. It is
// the key's properties, never its value.
func KeyFromContext(ctx context.Context) (Key, bool) {
	k, ok := ctx.Value(ctxKey{}).(Key)
	return k, ok
}

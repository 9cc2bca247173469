package apikeys

import "context"

type ctxKey struct{}

// keyContext carries the authorized key. It is one allocation where
// context.WithValue would take two (the context and the boxed Key).
type keyContext struct {
	context.Context
	key    Key
	hidden bool // WithoutKey: no key, whatever the parent carries
}

func (c *keyContext) Value(k any) any {
	if k == (ctxKey{}) {
		if c.hidden {
			return nil
		}
		return &c.key
	}
	return c.Context.Value(k)
}

// NewContext returns a copy of ctx carrying the authorized key. The
// middleware calls it; handlers read the key back with KeyFromContext.
func NewContext(ctx context.Context, k Key) context.Context {
	return &keyContext{Context: ctx, key: k}
}

// KeyFromContext returns the key that authorized the request, if any. It is
// the key's properties, never its value. As for the Key Authorize returns,
// its lists are read-only: clone one before changing it.
func KeyFromContext(ctx context.Context) (Key, bool) {
	if p, ok := ctx.Value(ctxKey{}).(*Key); ok {
		return *p, true
	}
	return Key{}, false
}

// KeyContext is the context NewContext makes, as a value, for a front end
// that allocates it together with its other per-request state (the
// middleware does: one allocation instead of two). Its zero value is not a
// context; Init makes it one.
type KeyContext struct{ c keyContext }

// Init makes c carry k over parent, as NewContext(parent, k) would, and
// returns it. Call it once per KeyContext, before the context is used.
func (c *KeyContext) Init(parent context.Context, k Key) context.Context {
	c.c = keyContext{Context: parent, key: k}
	return &c.c
}

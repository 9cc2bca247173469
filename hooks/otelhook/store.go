package otelhook

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/apikeys"
)

// The store spans' names: StoreSpanPrefix and the method, as in
// "apikeys.store.Get".
const StoreSpanPrefix = "apikeys.store."

// Store returns s with a span around each of its calls, named
// StoreSpanPrefix and the method ("apikeys.store.Get", "apikeys.store.Spend",
// ...), a child of the span in the call's context, so that store calls nest
// under the caller's request span and under nothing else. A span carries
// the key's id where the call names one ("apikeys.key_id"), the user for
// List and Delete ("apikeys.user_id"), the number of uses for TouchLastUsed
// ("apikeys.uses"), the cost for Spend and Refund ("apikeys.cost") and
// whether Spend spent ("apikeys.spent"); never a digest, and never a key's
// value (a store never sees one). A call that fails sets the span's status
// to Error with the error. apikeys.ErrNotFound and apikeys.ErrConflict are
// answers, not failures (no such key; a stale read, which the Manager
// retries): they leave the status unset and set "apikeys.result" to
// "not_found" or "conflict". A nil tp returns s itself.
//
// Pass the returned store to apikeys.New in place of s:
//
//	m, err := apikeys.New(otelhook.Store(store, otel.GetTracerProvider()), cfg)
//
// Every store call then pays for a span (a few allocations and, with a
// sampling tracer, the exporter's work), on the Authorize path too. That is
// why the wrapper never implements apikeys.Local, even around a store that
// does: a Local store (memstore) is one whose calls cost nothing worth
// tracing, so do not wrap one, except in tests; wrapped, it is treated as a
// remote store (Config.OpTimeout applies, and limited keys are read with
// Spend). Nor does the wrapper implement apikeys.Invalidator; give the
// unwrapped store to the Config for that.
func Store(s apikeys.Store, tp trace.TracerProvider) apikeys.Store {
	if tp == nil {
		return s
	}
	return &tracedStore{s: s, tracer: tp.Tracer(ScopeName)}
}

type tracedStore struct {
	s      apikeys.Store
	tracer trace.Tracer
}

var (
	internalKind   = trace.WithSpanKind(trace.SpanKindInternal)
	resultNotFound = attribute.String("apikeys.result", "not_found")
	resultConflict = attribute.String("apikeys.result", "conflict")
)

func (t *tracedStore) start(ctx context.Context, method string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, StoreSpanPrefix+method, internalKind, trace.WithAttributes(attrs...))
}

// end sets the span's status from err and ends it.
func end(span trace.Span, err error) {
	switch {
	case err == nil:
	case errors.Is(err, apikeys.ErrNotFound):
		span.SetAttributes(resultNotFound)
	case errors.Is(err, apikeys.ErrConflict):
		span.SetAttributes(resultConflict)
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func keyID(id uuid.UUID) attribute.KeyValue { return attribute.String("apikeys.key_id", id.String()) }

func userID(u string) attribute.KeyValue { return attribute.String("apikeys.user_id", u) }

func cost(c int64) attribute.KeyValue { return attribute.Int64("apikeys.cost", c) }

func (t *tracedStore) Create(ctx context.Context, rec apikeys.Record) error {
	ctx, span := t.start(ctx, "Create", keyID(rec.ID))
	err := t.s.Create(ctx, rec)
	end(span, err)
	return err
}

func (t *tracedStore) Get(ctx context.Context, id uuid.UUID) (apikeys.Record, error) {
	ctx, span := t.start(ctx, "Get", keyID(id))
	rec, err := t.s.Get(ctx, id)
	end(span, err)
	return rec, err
}

func (t *tracedStore) List(ctx context.Context, user string, q apikeys.ListQuery) ([]apikeys.Record, error) {
	ctx, span := t.start(ctx, "List", userID(user), attribute.Int("apikeys.limit", q.Limit))
	recs, err := t.s.List(ctx, user, q)
	if err == nil {
		span.SetAttributes(attribute.Int("apikeys.records", len(recs)))
	}
	end(span, err)
	return recs, err
}

func (t *tracedStore) Update(ctx context.Context, rec apikeys.Record) error {
	ctx, span := t.start(ctx, "Update", keyID(rec.ID))
	err := t.s.Update(ctx, rec)
	end(span, err)
	return err
}

func (t *tracedStore) Spend(ctx context.Context, s apikeys.SpendRequest) (apikeys.Record, bool, error) {
	ctx, span := t.start(ctx, "Spend", keyID(s.ID), cost(s.Cost))
	rec, spent, err := t.s.Spend(ctx, s)
	if err == nil {
		span.SetAttributes(attribute.Bool("apikeys.spent", spent))
	}
	end(span, err)
	return rec, spent, err
}

func (t *tracedStore) Refund(ctx context.Context, r apikeys.RefundRequest) error {
	ctx, span := t.start(ctx, "Refund", keyID(r.ID), cost(r.Cost))
	err := t.s.Refund(ctx, r)
	end(span, err)
	return err
}

func (t *tracedStore) Delete(ctx context.Context, user string, id uuid.UUID) error {
	ctx, span := t.start(ctx, "Delete", keyID(id), userID(user))
	err := t.s.Delete(ctx, user, id)
	end(span, err)
	return err
}

func (t *tracedStore) TouchLastUsed(ctx context.Context, uses []apikeys.Use) error {
	ctx, span := t.start(ctx, "TouchLastUsed", attribute.Int("apikeys.uses", len(uses)))
	err := t.s.TouchLastUsed(ctx, uses)
	end(span, err)
	return err
}

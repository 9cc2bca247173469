package otelhook_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/hooks/otelhook"
	"github.com/keyward/apikeys/memstore"
	"github.com/keyward/apikeys/storetest"
)

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	storetest.Run(t, func(t *testing.T) apikeys.Store { return otelhook.Store(memstore.New(), tp) })
}

func newTracedStore(t *testing.T) (apikeys.Store, *tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	return otelhook.Store(memstore.New(), tp), rec, tp
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestStoreSpans(t *testing.T) {
	t.Parallel()
	s, spans, tp := newTracedStore(t)
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")

	id, err := uuid.NewV7()
	require.NoError(t, err)
	var digest apikeys.Digest
	digest[0] = 0xAB
	now := time.Now().UTC().Truncate(time.Microsecond)
	rec := apikeys.Record{Key: apikeys.Key{ID: id, Type: apikeys.Private, Name: "n", UserID: "alice",
		CreatedAt: now, UpdatedAt: now, Credits: &apikeys.Credits{Remaining: 10}}, Digest: digest, Version: 1}

	require.NoError(t, s.Create(ctx, rec))
	_, err = s.Get(ctx, id)
	require.NoError(t, err)
	recs, err := s.List(ctx, "alice", apikeys.ListQuery{Limit: 5})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	rec.Version, rec.Name = 2, "m"
	require.NoError(t, s.Update(ctx, rec))
	got, spent, err := s.Spend(ctx, apikeys.SpendRequest{ID: id, Digest: digest, Cost: 3, Now: now.Unix()})
	require.NoError(t, err)
	require.True(t, spent)
	require.NoError(t, s.Refund(ctx, apikeys.RefundRequest{ID: id, Cost: 3, Version: got.Version,
		WindowStart: got.Usage.WindowStart, RefilledAt: got.Usage.RefilledAt}))
	require.NoError(t, s.TouchLastUsed(ctx, []apikeys.Use{{ID: id, At: now}, {ID: id, At: now.Add(time.Second)}}))
	require.NoError(t, s.Delete(ctx, "alice", id))
	parent.End()

	ended := spans.Ended()
	require.Len(t, ended, 9)
	kid := attribute.StringValue(id.String())
	want := []struct {
		name  string
		attrs map[attribute.Key]attribute.Value
	}{
		{"Create", map[attribute.Key]attribute.Value{"apikeys.key_id": kid}},
		{"Get", map[attribute.Key]attribute.Value{"apikeys.key_id": kid}},
		{"List", map[attribute.Key]attribute.Value{"apikeys.user_id": attribute.StringValue("alice"),
			"apikeys.limit": attribute.IntValue(5), "apikeys.records": attribute.IntValue(1)}},
		{"Update", map[attribute.Key]attribute.Value{"apikeys.key_id": kid}},
		{"Spend", map[attribute.Key]attribute.Value{"apikeys.key_id": kid, "apikeys.cost": attribute.Int64Value(3),
			"apikeys.spent": attribute.BoolValue(true)}},
		{"Refund", map[attribute.Key]attribute.Value{"apikeys.key_id": kid, "apikeys.cost": attribute.Int64Value(3)}},
		{"TouchLastUsed", map[attribute.Key]attribute.Value{"apikeys.uses": attribute.IntValue(2)}},
		{"Delete", map[attribute.Key]attribute.Value{"apikeys.key_id": kid, "apikeys.user_id": attribute.StringValue("alice")}},
	}
	for i, w := range want {
		sp := ended[i]
		assert.Equal(t, otelhook.StoreSpanPrefix+w.name, sp.Name())
		assert.Equal(t, w.attrs, attrs(sp), w.name)
		assert.Equal(t, codes.Unset, sp.Status().Code, w.name)
		assert.Empty(t, sp.Events(), w.name)
		assert.Equal(t, parent.SpanContext().SpanID(), sp.Parent().SpanID(), w.name)
		assert.Equal(t, parent.SpanContext().TraceID(), sp.SpanContext().TraceID(), w.name)
		assert.Equal(t, otelhook.ScopeName, sp.InstrumentationScope().Name)
		for _, kv := range sp.Attributes() { // never a digest
			assert.NotContains(t, strings.ToLower(kv.Value.String()), "ab000000", w.name)
			assert.NotContains(t, string(kv.Key), "digest", w.name)
		}
	}
	assert.Equal(t, "request", ended[8].Name())
}

func TestStoreSpanStatus(t *testing.T) {
	t.Parallel()
	s, spans, _ := newTracedStore(t)
	missing, err := uuid.NewV7()
	require.NoError(t, err)

	// Not found is an answer: no error status.
	_, err = s.Get(t.Context(), missing)
	require.ErrorIs(t, err, apikeys.ErrNotFound)
	require.ErrorIs(t, s.Delete(t.Context(), "bob", missing), apikeys.ErrNotFound)
	_, _, err = s.Spend(t.Context(), apikeys.SpendRequest{ID: missing, Cost: 1})
	require.ErrorIs(t, err, apikeys.ErrNotFound)
	// A failure: a canceled context.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = s.Get(ctx, missing)
	require.ErrorIs(t, err, context.Canceled)

	ended := spans.Ended()
	require.Len(t, ended, 4)
	for _, sp := range ended[:3] {
		assert.Equal(t, codes.Unset, sp.Status().Code, sp.Name())
		assert.Equal(t, attribute.StringValue("not_found"), attrs(sp)["apikeys.result"], sp.Name())
		assert.Empty(t, sp.Events(), sp.Name())
		_, hasSpent := attrs(sp)["apikeys.spent"]
		assert.False(t, hasSpent, sp.Name())
	}
	failed := ended[3]
	assert.Equal(t, "apikeys.store.Get", failed.Name())
	assert.Equal(t, codes.Error, failed.Status().Code)
	assert.Equal(t, err.Error(), failed.Status().Description)
	require.Len(t, failed.Events(), 1)
	assert.Equal(t, "exception", failed.Events()[0].Name)
	assert.False(t, failed.Parent().IsValid(), "no span in the context: a root span")
}

type conflictStore struct{ apikeys.Store }

func (conflictStore) Update(context.Context, apikeys.Record) error { return apikeys.ErrConflict }

type brokenStore struct{ apikeys.Store }

func (brokenStore) TouchLastUsed(context.Context, []apikeys.Use) error {
	return fmt.Errorf("teststore: %w", errors.New("connection refused"))
}

func TestStoreConflictAndFailure(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	require.ErrorIs(t, otelhook.Store(conflictStore{memstore.New()}, tp).Update(t.Context(), apikeys.Record{}), apikeys.ErrConflict)
	require.Error(t, otelhook.Store(brokenStore{memstore.New()}, tp).TouchLastUsed(t.Context(), nil))
	ended := spans.Ended()
	require.Len(t, ended, 2)
	assert.Equal(t, codes.Unset, ended[0].Status().Code)
	assert.Equal(t, attribute.StringValue("conflict"), attrs(ended[0])["apikeys.result"])
	assert.Equal(t, codes.Error, ended[1].Status().Code)
	assert.Equal(t, "teststore: connection refused", ended[1].Status().Description)
}

func TestStoreNotLocal(t *testing.T) {
	t.Parallel()
	ms := memstore.New()
	var _ apikeys.Local = ms
	s, _, _ := newTracedStore(t)
	_, local := s.(apikeys.Local)
	assert.False(t, local, "spans are not free: a wrapped store is not Local")
	assert.Same(t, ms, otelhook.Store(ms, nil), "a nil provider: the store itself")
}

// Store calls nest under the span of the request that made them, next to
// the Authorize span the Hook records.
func TestStoreUnderManager(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	m, err := apikeys.New(otelhook.Store(memstore.New(), tp), nil)
	require.NoError(t, err)
	defer m.Close(context.Background())
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "svc", UserID: "alice"})
	require.NoError(t, err)
	spans.Reset()

	ctx, req := tp.Tracer("test").Start(t.Context(), "request")
	_, err = m.Authorize(ctx, nk.Value, apikeys.Request{})
	require.NoError(t, err)
	req.End()
	ended := spans.Ended()
	require.GreaterOrEqual(t, len(ended), 2)
	var names []string
	for _, sp := range ended[:len(ended)-1] {
		names = append(names, sp.Name())
		assert.Equal(t, req.SpanContext().SpanID(), sp.Parent().SpanID(), sp.Name())
	}
	assert.Contains(t, names, "apikeys.store.Get")
}

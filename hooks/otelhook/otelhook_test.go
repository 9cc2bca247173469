package otelhook_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/hooks/otelhook"
	"github.com/keyward/apikeys/memstore"
)

func TestMetricsAndSpans(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	h, err := otelhook.New(mp, tp)
	require.NoError(t, err)
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Hook: h, Cache: &apikeys.CacheConfig{}})
	require.NoError(t, err)
	ctx := t.Context()
	defer m.Close(context.Background())
	nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "web", UserID: "alice",
		AllowedOrigins: []string{"https://app.example.com"}})
	require.NoError(t, err)
	ok := apikeys.Request{Origin: "https://app.example.com"}
	for range 2 {
		_, err = m.Authorize(ctx, nk.Value, ok) // a miss, then a hit
		require.NoError(t, err)
	}
	_, err = m.Authorize(ctx, nk.Value, apikeys.Request{Origin: "https://evil.example"}) // a hit
	require.Error(t, err)
	_, err = m.Authorize(ctx, "garbage", ok) // no lookup
	require.Error(t, err)
	_, err = m.Update(ctx, "alice", nk.ID, apikeys.UpdateParams{Disabled: new(true)})
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	got := map[string]metricdata.Aggregation{}
	for _, mt := range rm.ScopeMetrics[0].Metrics {
		got[mt.Name] = mt.Data
	}
	sums := func(name string) map[attribute.Distinct]int64 {
		t.Helper()
		s, ok := got[name].(metricdata.Sum[int64])
		require.True(t, ok, name)
		out := map[attribute.Distinct]int64{}
		for _, dp := range s.DataPoints {
			out[dp.Attributes.Equivalent()] = dp.Value
		}
		return out
	}
	set := func(kv ...attribute.KeyValue) attribute.Distinct {
		s := attribute.NewSet(kv...)
		return s.Equivalent()
	}
	assert.Equal(t, map[attribute.Distinct]int64{
		set(attribute.String("outcome", "allowed"), attribute.String("reason", "allowed"), attribute.Bool("token", false)):   2,
		set(attribute.String("outcome", "refused"), attribute.String("reason", "origin"), attribute.Bool("token", false)):    1,
		set(attribute.String("outcome", "refused"), attribute.String("reason", "malformed"), attribute.Bool("token", false)): 1,
	}, sums(otelhook.DecisionsName))
	assert.Equal(t, map[attribute.Distinct]int64{
		set(attribute.String("result", "miss")): 1,
		set(attribute.String("result", "hit")):  2,
	}, sums(otelhook.CacheName))
	assert.Equal(t, map[attribute.Distinct]int64{
		set(attribute.String("kind", "created")):  1,
		set(attribute.String("kind", "disabled")): 1,
	}, sums(otelhook.ChangesName))
	hist, isHist := got[otelhook.DurationName].(metricdata.Histogram[float64])
	require.True(t, isHist)
	var n uint64
	for _, dp := range hist.DataPoints {
		n += dp.Count
	}
	assert.Equal(t, uint64(4), n)

	ended := spans.Ended()
	require.Len(t, ended, 4)
	s := ended[2]
	assert.Equal(t, otelhook.SpanName, s.Name())
	assert.False(t, s.EndTime().Before(s.StartTime()))
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	assert.Equal(t, "origin", attrs["reason"].AsString())
	assert.Equal(t, "refused", attrs["outcome"].AsString())
	assert.Equal(t, nk.ID.String(), attrs["apikeys.key_id"].AsString())
	assert.True(t, attrs["apikeys.cache_hit"].AsBool())
	for _, sp := range ended {
		for _, kv := range sp.Attributes() {
			assert.NotContains(t, kv.Value.String(), nk.Value[10:40])
		}
	}
}

func TestSpanIsChildOfCaller(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	h, err := otelhook.New(sdkmetric.NewMeterProvider(), tp)
	require.NoError(t, err)
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Hook: h})
	require.NoError(t, err)
	defer m.Close(context.Background())
	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	_, _ = m.Authorize(ctx, "garbage", apikeys.Request{})
	parent.End()
	ended := spans.Ended()
	require.Len(t, ended, 2)
	assert.Equal(t, parent.SpanContext().SpanID(), ended[0].Parent().SpanID())
	assert.Equal(t, parent.SpanContext().TraceID(), ended[0].SpanContext().TraceID())
}

func TestNoTracer(t *testing.T) {
	t.Parallel()
	h, err := otelhook.New(sdkmetric.NewMeterProvider(), nil)
	require.NoError(t, err)
	h.Decision(t.Context(), apikeys.Decision{Reason: apikeys.ReasonMalformed})
}

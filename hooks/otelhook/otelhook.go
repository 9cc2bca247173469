// Package otelhook is an apikeys.Hook that reports to OpenTelemetry: a
// counter of decisions by outcome and reason, a histogram of their
// durations, a counter of verification-cache lookups by result, a counter
// of key changes by kind, and a span for each Authorize (recorded after
// the fact, with its measured start and end, as a child of the span in the
// caller's context). No attribute holds a key's value; spans and metrics
// carry the reason, and spans the key's id.
//
// Store wraps an apikeys.Store with a span around each of its calls, for
// remote stores (see Store for what it records and costs).
//
//	h, err := otelhook.New(otel.GetMeterProvider(), otel.GetTracerProvider())
//	m, err := apikeys.New(store, &apikeys.Config{Hook: h})
package otelhook

import (
	"context"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/apikeys"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/keyward/apikeys"

// The instruments' names.
const (
	DecisionsName = "apikeys.authorize.decisions" // counter: outcome, reason, token
	DurationName  = "apikeys.authorize.duration"  // histogram, seconds: outcome, reason
	CacheName     = "apikeys.cache.lookups"       // counter: result ("hit", "miss")
	ChangesName   = "apikeys.key.changes"         // counter: kind
	SpanName      = "apikeys.Authorize"
)

// Hook reports decisions and changes to OpenTelemetry.
type Hook struct {
	decisions metric.Int64Counter
	duration  metric.Float64Histogram
	cache     metric.Int64Counter
	changes   metric.Int64Counter
	tracer    trace.Tracer // nil: no spans
}

var _ apikeys.Hook = (*Hook)(nil)

// New returns a Hook recording to the meter provider mp and the tracer
// provider tp; a nil tp records no spans.
func New(mp metric.MeterProvider, tp trace.TracerProvider) (*Hook, error) {
	meter := mp.Meter(ScopeName)
	h := &Hook{}
	var err error
	if h.decisions, err = meter.Int64Counter(DecisionsName, metric.WithDescription("Authorize decisions, by outcome and operator's reason")); err != nil {
		return nil, err
	}
	if h.duration, err = meter.Float64Histogram(DurationName, metric.WithUnit("s"), metric.WithDescription("Authorize duration"),
		metric.WithExplicitBucketBoundaries(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)); err != nil {
		return nil, err
	}
	if h.cache, err = meter.Int64Counter(CacheName, metric.WithDescription("verification cache lookups, by result")); err != nil {
		return nil, err
	}
	if h.changes, err = meter.Int64Counter(ChangesName, metric.WithDescription("key changes, by kind")); err != nil {
		return nil, err
	}
	if tp != nil {
		h.tracer = tp.Tracer(ScopeName)
	}
	return h, nil
}

var (
	outcomeAllowed = attribute.String("outcome", "allowed")
	outcomeRefused = attribute.String("outcome", "refused")
	cacheHit       = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "hit")))
	cacheMiss      = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "miss")))
)

// Decision records one Authorize.
func (h *Hook) Decision(ctx context.Context, d apikeys.Decision) {
	outcome := outcomeRefused
	if d.Allowed {
		outcome = outcomeAllowed
	}
	reason := attribute.String("reason", string(d.Reason))
	set := metric.WithAttributeSet(attribute.NewSet(outcome, reason, attribute.Bool("token", d.Token)))
	h.decisions.Add(ctx, 1, set)
	h.duration.Record(ctx, d.Duration.Seconds(), metric.WithAttributeSet(attribute.NewSet(outcome, reason)))
	if d.Cached {
		if d.CacheHit {
			h.cache.Add(ctx, 1, cacheHit)
		} else {
			h.cache.Add(ctx, 1, cacheMiss)
		}
	}
	if h.tracer == nil {
		return
	}
	attrs := []attribute.KeyValue{outcome, reason, attribute.Bool("apikeys.token", d.Token)}
	if d.KeyID != uuid.Nil {
		attrs = append(attrs, attribute.String("apikeys.key_id", d.KeyID.String()))
	}
	if d.Cached {
		attrs = append(attrs, attribute.Bool("apikeys.cache_hit", d.CacheHit))
	}
	_, span := h.tracer.Start(ctx, SpanName, trace.WithTimestamp(d.Start), trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	switch d.Reason {
	case apikeys.ReasonStore, apikeys.ReasonClosed:
		span.SetStatus(codes.Error, string(d.Reason)) // a failure, not a refusal
	}
	span.End(trace.WithTimestamp(d.Start.Add(d.Duration)))
}

// Change counts one change.
func (h *Hook) Change(ctx context.Context, c apikeys.Change) {
	h.changes.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", string(c.Kind))))
}

package otelhook_test

import (
	"context"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/hooks/otelhook"
	"github.com/keyward/apikeys/memstore"
)

// Store calls nest under the caller's span. (A memstore is wrapped here
// only to show the spans: in production, wrap a remote store.)
func ExampleStore() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	m, err := apikeys.New(otelhook.Store(memstore.New(), tp), nil)
	if err != nil {
		panic(err)
	}
	defer m.Close(context.Background())
	nk, err := m.Create(context.Background(), apikeys.CreateParams{Type: apikeys.Private, Name: "svc", UserID: "alice"})
	if err != nil {
		panic(err)
	}

	ctx, request := tp.Tracer("server").Start(context.Background(), "GET /calls")
	if _, err := m.Authorize(ctx, nk.Value, apikeys.Request{}); err != nil {
		panic(err)
	}
	request.End()
	for _, s := range spans.Ended() {
		parent := "-"
		if s.Parent().IsValid() {
			parent = "GET /calls"
		}
		fmt.Printf("%s (in %s)\n", s.Name(), parent)
	}
	// Output:
	// apikeys.store.Create (in -)
	// apikeys.store.Get (in GET /calls)
	// GET /calls (in -)
}

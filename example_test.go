package apikeys_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

func Example() {
	ctx := context.Background()
	m, err := apikeys.New(memstore.New(), nil)
	if err != nil {
		panic(err)
	}
	web, err := m.Create(ctx, apikeys.CreateParams{
		Type:              apikeys.Public,
		Name:              "website widget",
		UserID:            "user-42",
		AllowedOrigins:    []string{"https://app.example.com"},
		AllowedAssistants: []string{"asst-support"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(web.Value[:6], len(web.Value)) // shown once, never stored

	_, err = m.Authorize(ctx, web.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-support"})
	fmt.Println("from the app:", err)
	_, err = m.Authorize(ctx, web.Value, apikeys.Request{Origin: "https://evil.example"})
	fmt.Println("from elsewhere:", errors.Is(err, apikeys.ErrOriginNotAllowed))
	_, err = m.Authorize(ctx, web.Value, apikeys.Request{Origin: "https://app.example.com", RequirePrivate: true})
	fmt.Println("on a private endpoint:", errors.Is(err, apikeys.ErrPrivateKeyRequired))
	// Output:
	// ak_pk_ 78
	// from the app: <nil>
	// from elsewhere: true
	// on a private endpoint: true
}

func ExampleManager_Create_validation() {
	m, _ := apikeys.New(memstore.New(), nil)
	_, err := m.Create(context.Background(), apikeys.CreateParams{
		Type:           "admin",
		Name:           "",
		UserID:         "user-42",
		AllowedOrigins: []string{"https://*.com"},
	})
	fmt.Println(errors.Is(err, apikeys.ErrValidation))
	for _, fe := range apikeys.FieldErrors(err) {
		fmt.Printf("%s: %s\n", fe.Field, fe.Reason)
	}
	// Output:
	// true
	// key_type: must be "private" or "public"
	// name: is required
	// allowed_origins[0]: wildcard directly on a public suffix (com) is not allowed
}

func ExampleManager_Update() {
	ctx := context.Background()
	m, _ := apikeys.New(memstore.New(), nil)
	k, _ := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "widget", UserID: "u1"})

	// Only the fields given change; new(v) (Go 1.26) makes the pointers.
	updated, err := m.Update(ctx, "u1", k.ID, apikeys.UpdateParams{
		Name:           new("widget (staging)"),
		AllowedOrigins: &[]string{"https://staging.example.com:443"},
	})
	fmt.Println(updated.Name, updated.AllowedOrigins, err)
	// Output: widget (staging) [https://staging.example.com] <nil>
}

func ExampleManager_Rotate() {
	ctx := context.Background()
	m, _ := apikeys.New(memstore.New(), nil)
	old, _ := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "backend", UserID: "u1"})

	// The old key keeps working for an hour, so deployments can switch over.
	fresh, err := m.Rotate(ctx, "u1", old.ID, time.Hour)
	if err != nil {
		panic(err)
	}
	_, errOld := m.Authorize(ctx, old.Value, apikeys.Request{})
	_, errNew := m.Authorize(ctx, fresh.Value, apikeys.Request{})
	fmt.Println(errOld, errNew, fresh.Name)
	// Output: <nil> <nil> backend
}

func ExampleParseOriginPattern() {
	for _, s := range []string{"HTTPS://App.Example.com:443", "https://*.example.com", "https://bücher.example", "https://example.com/"} {
		canon, err := apikeys.ParseOriginPattern(s)
		fmt.Printf("%q %v\n", canon, err)
	}
	// Output:
	// "https://app.example.com" <nil>
	// "https://*.example.com" <nil>
	// "https://xn--bcher-kva.example" <nil>
	// "" apikeys: invalid origin: must not contain a path
}

// A server key for a CI job: only calls, only from the CI network.
func ExampleRequest_scopesAndAddresses() {
	ctx := context.Background()
	m, _ := apikeys.New(memstore.New(), nil)
	ci, _ := m.Create(ctx, apikeys.CreateParams{
		Type:       apikeys.Private,
		Name:       "ci",
		UserID:     "user-42",
		Scopes:     []string{"calls:*"},
		AllowedIPs: []string{"10.20.0.0/16"},
	})
	fromCI := netip.MustParseAddr("10.20.3.4")
	_, err := m.Authorize(ctx, ci.Value, apikeys.Request{ClientIP: fromCI, Scopes: []string{"calls:write"}})
	fmt.Println("a call from CI:", err)
	_, err = m.Authorize(ctx, ci.Value, apikeys.Request{ClientIP: fromCI, Scopes: []string{"billing:read"}})
	fmt.Println("billing:", errors.Is(err, apikeys.ErrInsufficientScope))
	_, err = m.Authorize(ctx, ci.Value, apikeys.Request{ClientIP: netip.MustParseAddr("192.0.2.1"), Scopes: []string{"calls:write"}})
	fmt.Println("from elsewhere:", errors.Is(err, apikeys.ErrIPNotAllowed))
	// Output:
	// a call from CI: <nil>
	// billing: true
	// from elsewhere: true
}

// Narrowing: a key limited to one assistant cannot create a key without
// that limit, whatever front end asks.
func ExampleWithoutKey() {
	ctx := context.Background()
	m, _ := apikeys.New(memstore.New(), nil)
	limited, _ := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "limited", UserID: "u", AllowedAssistants: []string{"a1"}})
	asKey := apikeys.NewContext(ctx, limited.Key) // what the middleware does
	_, err := m.Create(asKey, apikeys.CreateParams{Type: apikeys.Public, Name: "wide", UserID: "u"})
	for _, pe := range apikeys.PermissionErrors(err) {
		fmt.Println(pe.Field)
	}
	_, err = m.Create(apikeys.WithoutKey(asKey), apikeys.CreateParams{Type: apikeys.Public, Name: "wide", UserID: "u"})
	fmt.Println("as the service:", err)
	// Output:
	// allowed_assistants
	// as the service: <nil>
}

// A public key with a rate limit and a daily budget: each web call costs
// 5, and the sixth call in the minute is refused with a LimitError that
// says when to retry.
func ExampleRateLimit() {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 15, 0, time.UTC)
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	web, err := m.Create(ctx, apikeys.CreateParams{
		Type: apikeys.Public, Name: "site widget", UserID: "user-42",
		RateLimit: &apikeys.RateLimit{Limit: 25, WindowSeconds: 60},
		Credits:   &apikeys.Credits{Remaining: 500, Refill: &apikeys.Refill{Amount: 500, IntervalSeconds: 86400}},
	})
	if err != nil {
		panic(err)
	}
	call := apikeys.Request{Cost: 5}
	for range 5 {
		if _, err := m.Authorize(ctx, web.Value, call); err != nil {
			panic(err)
		}
	}
	k, err := m.Authorize(ctx, web.Value, call)
	var le *apikeys.LimitError
	fmt.Println(errors.As(err, &le), errors.Is(err, apikeys.ErrRateLimited), le.RetryAfter)
	left, _ := k.CreditsLeft(m.Now())
	fmt.Println("credits left:", left)
	// Output:
	// true true 45s
	// credits left: 475
}

// Command quickstart creates a public and a private key in memory and shows
// authorization allowing and refusing requests.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	m, err := apikeys.New(memstore.New(), nil)
	if err != nil {
		return err
	}
	private, err := m.Create(ctx, apikeys.CreateParams{
		Type: apikeys.Private, Name: "backend", UserID: "demo", UserEmail: "demo@example.com",
	})
	if err != nil {
		return err
	}
	public, err := m.Create(ctx, apikeys.CreateParams{
		Type:              apikeys.Public,
		Name:              "website widget",
		UserID:            "demo",
		AllowedOrigins:    []string{"https://app.example.com", "https://*.example.org"},
		AllowedAssistants: []string{"asst-support"},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "private key (shown once): %s\n", private.Value)
	fmt.Fprintf(out, "public key  (shown once): %s\n", public.Value)
	fmt.Fprintf(out, "stored hints: %s, %s\n\n", private.Hint, public.Hint)

	checks := []struct {
		what string
		key  string
		req  apikeys.Request
	}{
		{"private key, private endpoint", private.Value, apikeys.Request{RequirePrivate: true}},
		{"public key from https://app.example.com", public.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-support"}},
		{"public key from https://eu.example.org", public.Value, apikeys.Request{Origin: "https://eu.example.org", AssistantID: "asst-support"}},
		{"public key naming no assistant", public.Value, apikeys.Request{Origin: "https://app.example.com"}},
		{"private key from a browser", private.Value, apikeys.Request{Origin: "https://app.example.com"}},
		{"public key from https://app.example.com.evil.com", public.Value, apikeys.Request{Origin: "https://app.example.com.evil.com"}},
		{"public key with no Origin", public.Value, apikeys.Request{}},
		{"public key, another assistant", public.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-sales"}},
		{"public key, transient assistant", public.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-support", Transient: true}},
		{"public key, private endpoint", public.Value, apikeys.Request{Origin: "https://app.example.com", RequirePrivate: true}},
		{"a mistyped key", mistype(public.Value), apikeys.Request{}},
	}
	for _, c := range checks {
		if _, err := m.Authorize(ctx, c.key, c.req); err != nil {
			fmt.Fprintf(out, "REFUSED  %-50s %v\n", c.what, err)
		} else {
			fmt.Fprintf(out, "ALLOWED  %s\n", c.what)
		}
	}

	if _, err := m.Delete(ctx, "demo", public.ID); err != nil {
		return err
	}
	_, err = m.Authorize(ctx, public.Value, apikeys.Request{Origin: "https://app.example.com"})
	fmt.Fprintf(out, "REFUSED  %-50s %v\n", "public key after delete", err)
	return nil
}

// mistype changes the key's last character, as a typo would.
func mistype(key string) string {
	last := byte('x')
	if key[len(key)-1] == last {
		last = 'y'
	}
	return key[:len(key)-1] + string(last)
}

package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run(t.Context(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"ALLOWED  private key, private endpoint",
		"ALLOWED  public key from https://app.example.com",
		"ALLOWED  public key from https://eu.example.org",
		"REFUSED  public key from https://app.example.com.evil.com",
		"REFUSED  public key with no Origin",
		"REFUSED  public key naming no assistant",
		"REFUSED  private key from a browser",
		"REFUSED  public key, another assistant",
		"REFUSED  public key, transient assistant",
		"REFUSED  public key, private endpoint",
		"REFUSED  a mistyped key",
		"REFUSED  public key after delete",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

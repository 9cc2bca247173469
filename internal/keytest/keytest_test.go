package keytest_test

import (
	"errors"
	"testing"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/keytest"
	"github.com/keyward/apikeys/memstore"
)

// The forged keys must be well formed (so they reach the store) and must
// not authorize; if the format changes, this fails first.
func TestForgedKeys(t *testing.T) {
	t.Parallel()
	m, err := apikeys.New(memstore.New(), &apikeys.Config{Prefix: "xyz"})
	if err != nil {
		t.Fatal(err)
	}
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "k", UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if keytest.Resum(nk.Value) != nk.Value {
		t.Fatalf("Resum changed a valid key: the checksum rule differs from the format")
	}
	for name, key := range map[string]string{"wrong secret": keytest.WrongSecret(nk.Value), "unknown id": keytest.UnknownID(nk.Value)} {
		if !apikeys.ValidKeyFormat("xyz", key) {
			t.Errorf("%s: forged key %q is not well formed", name, key)
		}
		if _, err := m.Authorize(t.Context(), key, apikeys.Request{}); !errors.Is(err, apikeys.ErrInvalidKey) {
			t.Errorf("%s: Authorize = %v, want ErrInvalidKey", name, err)
		}
	}
}

func TestLeak(t *testing.T) {
	t.Parallel()
	key := "ak_pk_" + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for dump, want := range map[string]string{
		"nothing here":                        "",
		"ak_pk_ only the prefix":              "",
		"x" + key + "y":                       key,
		"...QRSTUVWXYZab...":                  "QRSTUVWXYZab",
		"eleven chars: QRSTUVWXYZa, not more": "",
	} {
		if got := keytest.Leak([]byte(dump), key); got != want {
			t.Errorf("Leak(%q) = %q, want %q", dump, got, want)
		}
	}
}

// Package keytest forges API keys for tests, from the documented format
// alone: "<prefix>_<sk|pk>_<body>", where the body's first 22 characters
// encode the id, the next 44 the secret, and the last 6 a base62 CRC-32C
// of all the text before them. Forged keys are well formed, so they reach
// the store, which is what enumeration tests need.
package keytest

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/keyward/apikeys"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Resum returns key with its checksum recomputed.
func Resum(key string) string {
	text := key[:len(key)-6]
	crc := uint64(crc32.Checksum([]byte(text), crc32.MakeTable(crc32.Castagnoli)))
	var sum [6]byte
	for i := 5; i >= 0; i-- {
		sum[i] = base62[crc%62]
		crc /= 62
	}
	return text + string(sum[:])
}

// bodyStart is where the body begins: after "<prefix>_xx_".
func bodyStart(key string) int { return strings.IndexByte(key, '_') + 4 }

// change replaces the character at i with another base62 digit.
func change(key string, i int) string {
	b := []byte(key)
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return Resum(string(b))
}

// WrongSecret returns a well-formed key with key's id and another secret.
func WrongSecret(key string) string { return change(key, bodyStart(key)+22+20) }

// UnknownID returns a well-formed key with key's secret and another id.
func UnknownID(key string) string { return change(key, bodyStart(key)+11+5) }

// Leak returns the first piece of a key value found in dump: the whole
// value, or any 12 consecutive characters of its body (what follows
// "<prefix>_xx_"), or "" when there is none. Hex and base64 encodings of a
// digest never contain such pieces by accident: the body is base62 of
// random bytes.
func Leak(dump []byte, values ...string) string {
	for _, v := range values {
		if bytes.Contains(dump, []byte(v)) {
			return v
		}
		body := v[bodyStart(v):]
		for i := 0; i+12 <= len(body); i++ {
			if bytes.Contains(dump, []byte(body[i:i+12])) {
				return body[i : i+12]
			}
		}
	}
	return ""
}

// Populate creates ten keys through m, for three users, public and
// private, authorizes each once and rotates every third with a grace
// period, so that a store has seen every kind of write. It returns every
// key value issued.
func Populate(tb testing.TB, m *apikeys.Manager) []string {
	tb.Helper()
	var values []string
	for i := range 10 {
		typ := apikeys.Public
		if i%2 == 0 {
			typ = apikeys.Private
		}
		nk, err := m.Create(tb.Context(), apikeys.CreateParams{
			Type: typ, Name: fmt.Sprint("k", i), UserID: fmt.Sprint("user-", i%3),
			AllowedOrigins: []string{"https://app.example.com"}, AllowedAssistants: []string{"asst-1"},
		})
		if err != nil {
			tb.Fatal(err)
		}
		values = append(values, nk.Value)
		if _, err := m.Authorize(tb.Context(), nk.Value, apikeys.Request{Origin: "https://app.example.com", AssistantID: "asst-1"}); err != nil {
			tb.Fatal(err)
		}
		if i%3 == 0 {
			rotated, err := m.Rotate(tb.Context(), nk.UserID, nk.ID, time.Hour)
			if err != nil {
				tb.Fatal(err)
			}
			values = append(values, rotated.Value)
		}
	}
	return values
}

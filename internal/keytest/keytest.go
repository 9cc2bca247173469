// Package keytest forges API keys for tests, from the documented format
// alone: "<prefix>_<sk|pk>_<body>", where the body's first 22 characters
// encode the id, the next 44 the secret, and the last 6 a base62 CRC-32C
// of all the text before them. Forged keys are well formed, so they reach
// the store, which is what enumeration tests need.
package keytest

import (
	"hash/crc32"
	"strings"
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

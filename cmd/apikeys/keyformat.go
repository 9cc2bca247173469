package main

import (
	"regexp"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
)

// The key format (see the root package's token.go):
// <prefix>_<sk|pk>_<72 base62>, the body holding the id in its first 22
// characters (two blocks of 11 digits, 8 bytes each, big-endian), the
// secret, and a CRC-32C in the last 6. apikeys.ValidKeyFormat checks
// everything; the id is decoded here, after that check.

const bodyLen = 72

// keyPattern matches what has the shape of a key of prefix; only
// apikeys.ValidKeyFormat tells whether its checksum holds.
func keyPattern(prefix string) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(prefix) + `_(?:sk|pk)_[0-9A-Za-z]{72}`)
}

// parsed is what a valid key's text says about itself.
type parsed struct {
	id  uuid.UUID
	typ apikeys.KeyType
}

// parseKey returns the id and type of a key that apikeys.ValidKeyFormat
// accepts, and false for any other string.
func parseKey(prefix, s string) (parsed, bool) {
	id, typ, ok := apikeys.ParseKeyID(prefix, s)
	return parsed{id: id, typ: typ}, ok
}

// shaped reports whether s has a key's shape for prefix (length, prefix,
// type tag, alphabet), whatever its checksum.
func shaped(prefix, s string) bool {
	return len(s) == len(prefix)+4+bodyLen && keyPattern(prefix).MatchString(s)
}

package apikeys

import "github.com/google/uuid"

// GenerateKey exposes key generation to the external tests, which use it
// to forge keys with a known id and a wrong secret.
func GenerateKey(prefix string, t KeyType, id uuid.UUID) (string, error) {
	return generateKey(prefix, t, id)
}

package apikeys

import (
	"time"

	"github.com/google/uuid"
)

// GenerateKey exposes key generation to the external tests, which use it
// to forge keys with a known id and a wrong secret.
func GenerateKey(prefix string, t KeyType, id uuid.UUID) (string, error) {
	return generateKey(prefix, t, id)
}

// OpTimeoutOf exposes the effective per-operation timeout.
func OpTimeoutOf(m *Manager) time.Duration { return m.cfg.OpTimeout }

// IPAllowed is ipAllowed, for its benchmark.
var IPAllowed = ipAllowed

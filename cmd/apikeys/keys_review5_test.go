package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// TestReview5KeyValueGivenAsIDIsNotEchoed: an operator who pastes a key's
// value where an id is wanted (delete, get, rotate: "revoke what scan
// finds") must not see the value printed back: only create and rotate
// print values.
func TestReview5KeyValueGivenAsIDIsNotEchoed(t *testing.T) {
	m, err := apikeys.New(memstore.New(), &apikeys.Config{})
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "k", UserID: "alice"})
	require.NoError(t, err)
	for _, cmd := range []string{"get", "delete", "rotate"} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"--store", "memory", cmd, "--user", "alice", nk.Value}, strings.NewReader(""), &out, &errb)
		assert.NotEqual(t, 0, code)
		assert.NotContains(t, out.String()+errb.String(), nk.Value, "%s echoes the key value", cmd)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// TestReview5ScanSymlinkArgument: a file named on the command line that
// is a symlink (Kubernetes-mounted secrets and config maps are) is
// scanned, not skipped with exit 0.
func TestReview5ScanSymlinkArgument(t *testing.T) {
	m, err := apikeys.New(memstore.New(), &apikeys.Config{})
	require.NoError(t, err)
	nk, err := m.Create(t.Context(), apikeys.CreateParams{Type: apikeys.Private, Name: "k", UserID: "alice"})
	require.NoError(t, err)
	dir := t.TempDir()
	real := filepath.Join(dir, "real.env")
	require.NoError(t, os.WriteFile(real, []byte("KEY="+nk.Value+"\n"), 0o600))
	link := filepath.Join(dir, "config.env")
	require.NoError(t, os.Symlink(real, link))
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"scan", link}, strings.NewReader(""), &out, &errb)
	assert.Equal(t, exitFound, code, "stdout %q stderr %q", out.String(), errb.String())
}

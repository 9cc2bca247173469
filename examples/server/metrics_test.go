package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetrics: with -metrics, the decisions the demo made show up at GET
// /debug/metrics, by outcome and reason, and no key value does; without
// it, there is no such route.
func TestMetrics(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		args := []string{"-bootstrap", "demo"}
		if on {
			args = append(args, "-metrics")
		}
		base, out := runDemo(t, args...)
		key := regexp.MustCompile(`ak_sk_[0-9A-Za-z]{72}`).FindString(out.String())
		require.NotEmpty(t, key)
		for _, k := range []string{key, key[:len(key)-8] + "AAAAAAAA"} {
			req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/api_keys", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+k)
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			res.Body.Close()
		}
		res, err := http.Get(base + "/debug/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		if !on {
			assert.NotEqual(t, http.StatusOK, res.StatusCode, "no metrics route without -metrics")
			continue
		}
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		for _, want := range []string{"apikeys.authorize.decisions", "apikeys.authorize.duration", `"allowed"`} {
			assert.Contains(t, string(body), want)
		}
		assert.False(t, strings.Contains(string(body), key[6:30]), "no key value in the metrics")
	}
}

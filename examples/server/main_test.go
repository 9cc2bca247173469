package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe to write from the server goroutine
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func post(t *testing.T, url, key, origin, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	return res, m
}

// TestRun starts the demo as the README does, uses it, and stops it the way
// SIGINT does.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut syncBuffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-bootstrap", "alice, bob"}, &out, &errOut, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run returned early: %v\n%s", err, errOut.String())
	}
	keyLine := regexp.MustCompile(`(?m)^bootstrap private key for (\w+): (ak_sk_[0-9A-Za-z]{72})$`)
	found := keyLine.FindAllStringSubmatch(out.String(), -1)
	require.Len(t, found, 2, out.String())
	assert.Equal(t, "alice", found[0][1])
	assert.Equal(t, "bob", found[1][1])
	base := "http://" + addr

	res, body := post(t, base+"/api_keys", found[0][2], "",
		`{"api_key":{"name":"web","key_type":"public","allowed_origins":["https://shop.example"],"allowed_assistants":["asst-1"]}}`)
	require.Equal(t, 201, res.StatusCode, body)
	public := body["data"].(map[string]any)["key_value"].(string)

	for _, tt := range []struct {
		name, key, origin, body string
		status                  int
	}{
		{"public key, allowed origin", public, "https://shop.example", `{"assistant_id":"asst-1"}`, 201},
		{"public key, other assistant", public, "https://shop.example", `{"assistant_id":"asst-2"}`, 403},
		{"public key, transient", public, "https://shop.example", `{"assistant":{"model":"x"}}`, 403},
		{"public key, other origin", public, "https://evil.example", `{"assistant_id":"asst-1"}`, 403},
		{"private key, server side, transient", found[1][2], "", `{"assistant":{"model":"x"}}`, 403},
		{"bad body", public, "https://shop.example", `{"assistant_id":"a","assistant":{}}`, 400},
	} {
		res, body := post(t, base+"/call/web", tt.key, tt.origin, tt.body)
		assert.Equal(t, tt.status, res.StatusCode, "%s: %v", tt.name, body)
		if tt.status == 201 {
			assert.Equal(t, "asst-1", body["assistant_id"])
			assert.NotEmpty(t, body["call_id"])
		}
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("server did not shut down")
	}
	assert.Contains(t, out.String(), "shutting down")
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-store", "cassandra://x"}, {"-nope"}, {"-addr", "256.0.0.1:99999"}} {
		err := run(t.Context(), args, &syncBuffer{}, &syncBuffer{}, nil)
		assert.Error(t, err, args)
	}
}

func TestMySQLDSN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"mysql://root@127.0.0.1:3306/test":              "root@tcp(127.0.0.1:3306)/test?parseTime=true",
		"mysql://u:p%40ss@db:3306/keys?tls=skip-verify": "u:p@ss@tcp(db:3306)/keys?parseTime=true&tls=skip-verify",
	} {
		got, err := mysqlDSN(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{"mysql://host", "mysql:///db", "mysql://%zz"} {
		_, err := mysqlDSN(bad)
		assert.Error(t, err, bad)
	}
}

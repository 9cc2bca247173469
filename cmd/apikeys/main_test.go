package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	_ "github.com/keyward/apikeys/internal/storeurl" // registers the SQL drivers
)

// The tests run the built binPath, as an operator would.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "apikeys-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binPath = filepath.Join(dir, "apikeys")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the binPath with an environment of its own.
type cli struct {
	t   *testing.T
	env []string
}

type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, c.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(c.t, err)
	}
	return result{out.String(), errOut.String(), code}
}

// ok runs args, which must succeed, and returns stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	require.Equal(c.t, 0, r.code, "%v: stdout %q stderr %q", args, r.stdout, r.stderr)
	return r.stdout
}

// okJSON runs args with -o json and decodes stdout into v.
func (c *cli) okJSON(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "-o", "json")...)
	require.NoError(c.t, json.Unmarshal([]byte(out), v), out)
}

func randomName(t *testing.T) string {
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "cli_" + hex.EncodeToString(b)
}

// backends returns a store environment for each store to test: SQLite
// always, the real servers when their APIKEYS_TEST_* settings are there.
// Each has a fresh namespace, removed when the test ends.
func backends(t *testing.T) map[string][]string {
	b := map[string][]string{
		"sqlite": {"APIKEYS_STORE=sqlite:" + filepath.Join(t.TempDir(), "keys.db")},
	}
	if u := os.Getenv("APIKEYS_TEST_REDIS_URL"); u != "" {
		b["redis"] = []string{"APIKEYS_STORE=" + u, "APIKEYS_NAMESPACE=" + randomName(t) + ":"}
	}
	if dsn := os.Getenv("APIKEYS_TEST_POSTGRES_DSN"); dsn != "" {
		b["postgres"] = []string{"APIKEYS_STORE=" + dsn, "APIKEYS_NAMESPACE=" + randomName(t)}
	}
	if dsn := os.Getenv("APIKEYS_TEST_MYSQL_DSN"); dsn != "" {
		cfg, err := mysql.ParseDSN(dsn)
		require.NoError(t, err)
		spec := "mysql://" + cfg.User + "@" + cfg.Addr + "/" + cfg.DBName
		if cfg.Passwd != "" {
			spec = "mysql://" + cfg.User + ":" + cfg.Passwd + "@" + cfg.Addr + "/" + cfg.DBName
		}
		b["mysql"] = []string{"APIKEYS_STORE=" + spec, "APIKEYS_NAMESPACE=" + randomName(t), "mysqldsn=" + dsn}
	}
	return b
}

// cleanup removes what a test wrote to a server store.
func cleanup(t *testing.T, name string, env []string) {
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	ns := vals["APIKEYS_NAMESPACE"]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch name {
	case "redis":
		opts, err := redis.ParseURL(vals["APIKEYS_STORE"])
		require.NoError(t, err)
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		iter := rdb.Scan(ctx, 0, ns+"*", 1000).Iterator()
		for iter.Next(ctx) {
			assert.NoError(t, rdb.Del(ctx, iter.Val()).Err())
		}
		assert.NoError(t, iter.Err())
	case "postgres", "mysql":
		driver, dsn, q := "pgx", vals["APIKEYS_STORE"], `"`
		if name == "mysql" {
			driver, dsn, q = "mysql", vals["mysqldsn"], "`"
		}
		db, err := sqlx.Open(driver, dsn)
		require.NoError(t, err)
		defer db.Close()
		for _, table := range []string{ns, ns + "_schema_versions", ns + "_changes"} {
			_, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+q+table+q)
			assert.NoError(t, err)
		}
	}
}

func forEachBackend(t *testing.T, f func(t *testing.T, c *cli)) {
	for name, env := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Cleanup(func() { cleanup(t, name, env) })
			c := &cli{t: t, env: env}
			c.ok("migrate")
			f(t, c)
		})
	}
}

// TestLifecycle: create, list, get, disable, verify, enable, rotate,
// delete, verify, on every store; the value is printed by create and
// rotate only.
func TestLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *cli) {
		out := c.ok("create", "--user", "alice", "--type", "private", "--name", "ci", "--scope", "keys:read")
		value := keyPattern("ak").FindString(out)
		require.NotEmpty(t, value, out)
		assert.Contains(t, out, "shown only this once")
		p, ok := parseKey("ak", value)
		require.True(t, ok)
		id := p.id.String()
		assert.Contains(t, out, id)

		var keys []apikeys.Key
		c.okJSON(&keys, "list", "--user", "alice")
		require.Len(t, keys, 1)
		assert.Equal(t, id, keys[0].ID.String())
		assert.Equal(t, []string{"keys:read"}, keys[0].Scopes)
		list := c.ok("list", "--user", "alice")
		assert.Contains(t, list, id)
		assert.Contains(t, list, "ci")

		var k apikeys.Key
		c.okJSON(&k, "get", "--user", "alice", id)
		assert.Equal(t, "ci", k.Name)
		assert.False(t, k.Disabled)
		get := c.ok("get", "--user", "alice", id)
		assert.Contains(t, get, keys[0].Hint)
		r := c.run("", "get", "--user", "bob", id)
		assert.Equal(t, 2, r.code, "another user's key is not found")
		assert.Contains(t, r.stderr, "not found")

		c.okJSON(&k, "update", "--user", "alice", id, "--name", "ci2", "--ip", "10.0.0.0/8", "--expires", "2100-01-02T15:04:05Z")
		assert.Equal(t, "ci2", k.Name)
		assert.Len(t, k.AllowedIPs, 1)
		assert.Equal(t, 2100, k.ExpiresAt.Year())
		k = apikeys.Key{}
		c.okJSON(&k, "update", "--user", "alice", id, "--clear-ips", "--no-expiry")
		assert.Empty(t, k.AllowedIPs)
		assert.True(t, k.ExpiresAt.IsZero())

		c.okJSON(&k, "disable", "--user", "alice", id)
		assert.True(t, k.Disabled)
		r = c.run(value+"\n", "verify", "-")
		assert.Equal(t, 1, r.code, r.stderr)
		assert.Contains(t, r.stdout, "invalid: disabled")
		c.okJSON(&k, "enable", "--user", "alice", id)
		assert.False(t, k.Disabled)
		assert.Contains(t, c.ok("verify", value), "valid: key "+id)

		// Rotation with grace 0 deletes the old key: its value is unknown.
		out = c.ok("rotate", "--user", "alice", id)
		newValue := keyPattern("ak").FindString(out)
		require.NotEmpty(t, newValue, out)
		assert.NotEqual(t, value, newValue)
		np, _ := parseKey("ak", newValue)
		r = c.run(value+"\n", "verify", "-")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stdout, "unknown id")
		var v verdict
		r = c.run(newValue+"\n", "verify", "-", "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
		assert.True(t, v.Valid)
		assert.Equal(t, np.id, v.ID)

		// With a grace period the old key works, then is reported expired.
		var nk apikeys.NewKey
		c.okJSON(&nk, "rotate", "--user", "alice", np.id.String(), "--grace", "1h")
		assert.NotEmpty(t, nk.Value)
		assert.Contains(t, c.ok("verify", newValue), "valid")
		c.okJSON(&k, "get", "--user", "alice", np.id.String())
		assert.Equal(t, nk.ID, k.SuccessorID)
		assert.False(t, k.ExpiresAt.IsZero(), "retired at the end of its grace")

		out = c.ok("delete", "--user", "alice", nk.ID.String())
		assert.Contains(t, out, "deleted key "+nk.ID.String())
		r = c.run("", "verify", nk.Value)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stdout, "unknown id")

		// The values appear only in create's and rotate's output.
		for _, args := range [][]string{{"list", "--user", "alice"}, {"list", "--user", "alice", "-o", "json"},
			{"get", "--user", "alice", np.id.String(), "-o", "json"}, {"verify", nk.Value}} {
			r := c.run("", args...)
			for _, v := range []string{value, newValue, nk.Value} {
				assert.NotContains(t, r.stdout+r.stderr, v, args)
			}
		}
	})
}

// TestVerifyReasons: garbage, a bad checksum, a wrong secret, and the
// pepper.
func TestVerifyReasons(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *cli) {
		r := c.run("", "verify", "garbage")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stdout, "malformed")
		assert.NotContains(t, r.stdout, "garbage")

		var nk apikeys.NewKey
		c.okJSON(&nk, "create", "--user", "u", "--type", "public", "--name", "web", "--origin", "https://app.example")
		v := nk.Value
		flip := func(s string, i int) string {
			b := []byte(s)
			b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
			return string(b)
		}
		r = c.run("", "verify", flip(v, len(v)-1))
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stdout, "bad checksum")

		// Same id, another secret, a valid checksum.
		wrong := withSecret(t, v)
		r = c.run("", "verify", wrong)
		assert.Equal(t, 1, r.code, r.stderr)
		assert.Contains(t, r.stdout, "wrong secret")
		assert.Contains(t, r.stdout, nk.ID.String())

		// Pepper: a key created with one verifies only with it.
		peppered := &cli{t: t, env: append(append([]string{}, c.env...), "APIKEYS_PEPPER=s3cret-pepper")}
		var pk apikeys.NewKey
		peppered.okJSON(&pk, "create", "--user", "u", "--type", "private", "--name", "pep")
		assert.Contains(t, peppered.ok("verify", pk.Value), "valid")
		r = c.run("", "verify", pk.Value)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stdout, "wrong secret")
		assert.Contains(t, r.stdout, "APIKEYS_PEPPER")
		r = peppered.run("", "verify", v)
		assert.Equal(t, 1, r.code, "a key made without the pepper")

		// Pepper rotation: with the old pepper among APIKEYS_OLD_PEPPERS
		// ("-": no pepper), keys under it verify, and say so.
		rotated := &cli{t: t, env: append(append([]string{}, c.env...), "APIKEYS_PEPPER=new-pepper", "APIKEYS_OLD_PEPPERS=s3cret-pepper,-")}
		for _, k := range []string{pk.Value, v} {
			var got struct {
				Valid     bool `json:"valid"`
				OldPepper bool `json:"old_pepper"`
			}
			rotated.okJSON(&got, "verify", k)
			assert.True(t, got.Valid && got.OldPepper, "%+v", got)
		}
	})
}

// withSecret returns key with its secret changed and its checksum fixed.
func withSecret(t *testing.T, key string) string {
	body := []byte(key[len(key)-bodyLen:])
	body[idChars] = map[bool]byte{true: 'B', false: 'A'}[body[idChars] == 'A']
	text := key[:len(key)-bodyLen] + string(body[:bodyLen-6])
	out := text + crcSuffix(text)
	require.True(t, apikeys.ValidKeyFormat("ak", out))
	return out
}

// TestScan: a planted key is found with its line and id, and never
// printed; a clean tree exits 0.
func TestScan(t *testing.T) {
	c := &cli{t: t, env: []string{"APIKEYS_STORE=sqlite:" + filepath.Join(t.TempDir(), "keys.db")}}
	c.ok("migrate")
	var nk apikeys.NewKey
	c.okJSON(&nk, "create", "--user", "u", "--type", "private", "--name", "leak")

	clean := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(clean, "a.go"), []byte("package a\n// ak_sk_notakey\n"), 0o600))
	r := c.run("", "scan", clean)
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stdout)

	dirty := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dirty, "sub"), 0o700))
	file := filepath.Join(dirty, "sub", "config.env")
	require.NoError(t, os.WriteFile(file, []byte("A=1\nB=2\nTOKEN=\""+nk.Value+"\"\n"), 0o600))
	// Skipped: .git, binaries.
	require.NoError(t, os.MkdirAll(filepath.Join(dirty, ".git"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dirty, ".git", "x"), []byte(nk.Value), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dirty, "bin"), []byte("\x00\x01"+nk.Value), 0o600))
	r = c.run("", "scan", dirty, clean)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Equal(t, fmt.Sprintf("%s:3: key %s (private)\n", file, nk.ID), r.stdout)
	assert.NotContains(t, r.stdout+r.stderr, nk.Value)

	var found []finding
	r = c.run("", "scan", "-o", "json", file)
	assert.Equal(t, 1, r.code)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &found))
	assert.Equal(t, []finding{{File: file, Line: 3, ID: nk.ID.String(), Type: apikeys.Private}}, found)

	r = c.run("", "scan", filepath.Join(clean, "missing"))
	assert.Equal(t, 2, r.code)
}

// TestUsage: usage errors exit 2 and name the problem; the store's
// password never shows.
func TestUsage(t *testing.T) {
	c := &cli{t: t}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "--user", "u"}, "no store"},
		{[]string{"create", "--user", "u", "--store", "memory"}, "required"},
		{[]string{"get", "--user", "u", "--store", "memory", "nope"}, "not a key id"},
		{[]string{"list", "--user", "u", "--store", "memory", "-o", "xml"}, "table or json"},
		{[]string{"list", "--user", "u", "--store", "postgres://root:Sup3rS3cret@127.0.0.1:1/x"}, "xxxxx"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		r := c.run("", tc.args...)
		assert.Equal(t, 2, r.code, tc.args)
		assert.Contains(t, r.stderr, tc.want, tc.args)
		assert.NotContains(t, r.stdout+r.stderr, "Sup3rS3cret")
	}
	c.env = []string{"APIKEYS_STORE=postgres://root:Sup3rS3cret@127.0.0.1:1/x"}
	r := c.run("", "--help")
	assert.Equal(t, 0, r.code)
	assert.NotContains(t, r.stdout, "Sup3rS3cret")
	assert.Contains(t, c.run("", "migrate", "--store", "memory").stdout, "nothing to do")
}

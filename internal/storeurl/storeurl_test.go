package storeurl

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMySQLDSN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"mysql://root@127.0.0.1:3306/test":              "root@tcp(127.0.0.1:3306)/test?parseTime=true",
		"mysql://u:p%40ss@db:3306/keys?tls=skip-verify": "u:p@ss@tcp(db:3306)/keys?parseTime=true&tls=skip-verify",
	} {
		got, err := MySQLDSN(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{"mysql://host", "mysql:///db", "mysql://%zz"} {
		_, err := MySQLDSN(bad)
		assert.Error(t, err, bad)
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ spec, want string }{
		{"memory", "memory"},
		{"sqlite:/tmp/keys.db", "sqlite:/tmp/keys.db"},
		{"sqlite:/tmp/a:b@c/keys.db", "sqlite:/tmp/a:b@c/keys.db"},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:pw@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"postgres://root@db:5432/test?sslmode=disable", "postgres://root@db:5432/test?sslmode=disable"},
		{"postgres://root:p%40ss@db/test?sslpassword=k3y&sslmode=disable", "postgres://root:xxxxx@db/test?sslpassword=xxxxx&sslmode=disable"},
		{"mysql://root:p@ss@db:3306/test", "mysql://root:xxxxx@db:3306/test"},
		{"root:pw@tcp(db:3306)/test", "root:xxxxx@tcp(db:3306)/test"},
	} {
		r := NewRedactor(tc.spec)
		assert.Equal(t, tc.want, r.Spec(), tc.spec)
	}

	r := NewRedactor("postgres://root:p%40ss@db/test")
	var log bytes.Buffer
	n, err := r.Writer(&log).Write([]byte("level=ERROR err=\"password p@ss, or p%40ss, refused\"\n"))
	require.NoError(t, err)
	assert.Equal(t, len("level=ERROR err=\"password p@ss, or p%40ss, refused\"\n"), n, "the length written, as given")
	assert.Equal(t, "level=ERROR err=\"password xxxxx, or xxxxx, refused\"\n", log.String())

	cause := errors.New("dial postgres://root:p%40ss@db/test: refused")
	red := r.Err(fmt.Errorf("store: %w", cause))
	assert.Equal(t, "store: dial postgres://root:xxxxx@db/test: refused", red.Error())
	assert.ErrorIs(t, red, cause, "redaction keeps the chain")
	plain := errors.New("no secret here")
	assert.Same(t, plain, r.Err(plain))
	assert.NoError(t, r.Err(nil))
}

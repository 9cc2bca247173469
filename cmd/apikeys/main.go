// Command apikeys administers the API keys of a github.com/keyward/apikeys
// store: the stores the demo server takes (Redis, PostgreSQL, MySQL,
// SQLite), and leaked-key scans that need no store.
//
//	go install github.com/keyward/apikeys/cmd/apikeys@latest
//	export APIKEYS_STORE='postgres://root@127.0.0.1:5432/test?sslmode=disable'
//	apikeys migrate
//	apikeys create --user alice --type private --name ci
//	apikeys list --user alice
//	apikeys verify - < key.txt
//	apikeys scan .
//
// Settings: --store or APIKEYS_STORE (memory, redis://..., postgres://...,
// mysql://... or sqlite:PATH), --namespace or APIKEYS_NAMESPACE (Redis key
// prefix or SQL table), --prefix or APIKEYS_PREFIX (default "ak"). The
// pepper comes only from the environment, APIKEYS_PEPPER, never a flag, so
// that it stays out of shell history and process listings. A password in
// the store spec is never printed (it shows as xxxxx).
//
// A key's value is printed by create and rotate only, once. Output is a
// table, or JSON with -o json.
//
// Exit status: 0 success (verify: the key is valid; scan: nothing found);
// 1 verify: the key is invalid, scan: keys found; 2 a usage error, a
// store error or any other failure.
//
// Commands other than migrate do not change an SQL store's schema: they
// refuse a table that is missing or of another version (run migrate, with
// this release, first). The demo server migrates at start.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFound   = 1 // verify: invalid key; scan: keys found
	exitFailure = 2 // usage, store or other error
)

// exitError ends the command with a status, after printing its message
// (when not empty).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if a.red != nil {
		err = a.red.Err(err)
	}
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(stderr, "apikeys:", ee.msg)
		}
		return ee.code
	default:
		// The library's errors start with "apikeys: " too.
		fmt.Fprintln(stderr, "apikeys:", strings.TrimPrefix(err.Error(), "apikeys: "))
		return exitFailure
	}
}

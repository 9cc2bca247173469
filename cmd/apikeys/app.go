package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/storeurl"
	"github.com/keyward/apikeys/sqlstore"
)

// Environment variables.
const (
	envStore      = "APIKEYS_STORE"
	envNamespace  = "APIKEYS_NAMESPACE"
	envPrefix     = "APIKEYS_PREFIX"
	envPepper     = "APIKEYS_PEPPER"
	envOldPeppers = "APIKEYS_OLD_PEPPERS"
)

// opTimeout bounds each store call, as in the demo server.
const opTimeout = 5 * time.Second

// app is one run of the command: its settings and streams.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	store, namespace, prefix, output string

	red *storeurl.Redactor // of the store spec, once known
}

const exitHelp = `
Exit status: 0 success; 1 verify: the key is invalid, scan: keys found;
2 usage, store or other error.`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "apikeys",
		Short: "Administer the API keys of an apikeys store",
		Long: `apikeys manages the keys of a github.com/keyward/apikeys store and finds leaked keys.

The store comes from --store or ` + envStore + `: memory, redis://..., postgres://...,
mysql://... or sqlite:PATH; its namespace (Redis key prefix or SQL table) from
--namespace or ` + envNamespace + `; the key prefix from --prefix or ` + envPrefix + ` (default ak).
The pepper, if the service uses one, comes only from ` + envPepper + ` (never a flag);
during a pepper rotation, the older ones from ` + envOldPeppers + `, comma-separated
("-" for no pepper).

A key's value is printed once, by create and rotate, and nowhere else.
` + exitHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Settings from the environment, read after the flags so
			// that --help never shows them (a store spec may hold a
			// password).
			if a.store == "" {
				a.store = a.getenv(envStore)
			}
			if a.namespace == "" {
				a.namespace = a.getenv(envNamespace)
			}
			if a.prefix == "" {
				a.prefix = cmp.Or(a.getenv(envPrefix), "ak")
			}
			if a.output != "table" && a.output != "json" {
				return usageErr("-o must be table or json, not %q", a.output)
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	pf := root.PersistentFlags()
	pf.StringVar(&a.store, "store", "", "store: memory, redis://..., postgres://..., mysql://... or sqlite:PATH (env "+envStore+")")
	pf.StringVar(&a.namespace, "namespace", "", "Redis key prefix or SQL table name (env "+envNamespace+"; default: the store's own)")
	pf.StringVar(&a.prefix, "prefix", "", "key prefix (env "+envPrefix+"; default ak)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(a.createCommand(), a.listCommand(), a.getCommand(), a.updateCommand(),
		a.enableCommand(true), a.enableCommand(false), a.rotateCommand(), a.deleteCommand(),
		a.migrateCommand(), a.verifyCommand(), a.scanCommand())
	return root
}

// usageErr is a usage error: exit status 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: exitFailure, msg: fmt.Sprintf(format, args...)}
}

// openStore opens the store of --store, checking (not migrating) an SQL
// schema unless schema says otherwise.
func (a *app) openStore(ctx context.Context, schema storeurl.Schema) (*storeurl.Opened, error) {
	if a.store == "" {
		return nil, usageErr("no store: give --store or set %s", envStore)
	}
	a.red = storeurl.NewRedactor(a.store)
	op, err := storeurl.Open(ctx, a.store, a.namespace, &storeurl.Options{Schema: schema, OpTimeout: opTimeout})
	if errors.Is(err, sqlstore.ErrSchemaTooOld) {
		return nil, fmt.Errorf("store %s: %w (apikeys migrate does)", a.red.Spec(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", a.red.Spec(), err)
	}
	return op, nil
}

// manager opens the store and returns a Manager on it, and the function
// that closes both.
func (a *app) manager(ctx context.Context) (*apikeys.Manager, func(), error) {
	op, err := a.openStore(ctx, storeurl.Check)
	if err != nil {
		return nil, nil, err
	}
	m, err := apikeys.New(op.Store, &apikeys.Config{
		Prefix:           a.prefix,
		Pepper:           a.pepper(),
		OldPeppers:       a.oldPeppers(),
		OpTimeout:        opTimeout,
		LastUsedInterval: -1, // the CLI uses no key
		ErrorLog:         slog.New(slog.NewTextHandler(a.red.Writer(a.stderr), nil)),
	})
	if err != nil {
		op.Close()
		return nil, nil, err
	}
	return m, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		m.Close(ctx)
		op.Close()
	}, nil
}

// oldPeppers are the service's Config.OldPeppers, comma-separated in
// APIKEYS_OLD_PEPPERS ("-" for "no pepper"), so that verify recognises
// keys not yet moved to the current pepper.
func (a *app) oldPeppers() [][]byte {
	var out [][]byte
	for p := range strings.SplitSeq(a.getenv(envOldPeppers), ",") {
		switch p = strings.TrimSpace(p); p {
		case "":
		case "-":
			out = append(out, nil)
		default:
			out = append(out, []byte(p))
		}
	}
	return out
}

func (a *app) pepper() []byte {
	if p := a.getenv(envPepper); p != "" {
		return []byte(p)
	}
	return nil
}

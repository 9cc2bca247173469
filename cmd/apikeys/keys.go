package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/storeurl"
	"github.com/keyward/apikeys/sqlstore"
)

// keyFlags are the settings create and update share.
type keyFlags struct {
	name                          string
	origins, assistants, scopes   []string
	ips                           []string
	expires                       string
	clearOrigins, clearAssistants bool
	clearScopes, clearIPs         bool
	noExpiry                      bool
}

func (f *keyFlags) register(cmd *cobra.Command, update bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "the key's name")
	fl.StringArrayVar(&f.origins, "origin", nil, "allowed origin (repeat for more)")
	fl.StringArrayVar(&f.assistants, "assistant", nil, "allowed assistant id (repeat for more)")
	fl.StringArrayVar(&f.scopes, "scope", nil, `scope "resource:action" (repeat for more)`)
	fl.StringArrayVar(&f.ips, "ip", nil, "allowed client address or CIDR prefix (repeat for more)")
	fl.StringVar(&f.expires, "expires", "", "expiry, RFC 3339 (2030-01-02T15:04:05Z)")
	if update {
		fl.BoolVar(&f.clearOrigins, "clear-origins", false, "remove every allowed origin")
		fl.BoolVar(&f.clearAssistants, "clear-assistants", false, "remove every allowed assistant")
		fl.BoolVar(&f.clearScopes, "clear-scopes", false, "remove every scope")
		fl.BoolVar(&f.clearIPs, "clear-ips", false, "remove every allowed address")
		fl.BoolVar(&f.noExpiry, "no-expiry", false, "remove the expiry")
	}
}

func parseExpiry(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageErr("--expires: want RFC 3339, such as 2030-01-02T15:04:05Z: %v", err)
	}
	return t, nil
}

func parseID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		// Never echo the argument: it may be a key value pasted by
		// mistake, and stderr ends up in logs and terminals' scrollback.
		if strings.Contains(s, "_sk_") || strings.Contains(s, "_pk_") {
			return uuid.Nil, usageErr("the argument looks like a key value, not a key id: pass the id (apikeys verify - prints it)")
		}
		return uuid.Nil, usageErr("the argument is not a key id (a UUID such as 0190b6f0-7c3a-7d6e-9f00-1a2b3c4d5e6f)")
	}
	return id, nil
}

func requireUser(cmd *cobra.Command) {
	cmd.Flags().String("user", "", "the keys' owner (required)")
	_ = cmd.MarkFlagRequired("user")
}

func user(cmd *cobra.Command) string {
	u, _ := cmd.Flags().GetString("user")
	return u
}

func (a *app) createCommand() *cobra.Command {
	var (
		f         keyFlags
		typ       string
		transient bool
		disabled  bool
		email     string
	)
	cmd := &cobra.Command{
		Use:   "create --user U --type private|public --name N [flags]",
		Short: "Create a key and print its value, once",
		Long: `Create a key for a user and print it, with its value. The value is shown this once:
store it now, it cannot be read again (rotate issues a new one).` + "\n" + exitHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := apikeys.CreateParams{
				Type: apikeys.KeyType(typ), Name: f.name, UserID: user(cmd), UserEmail: email,
				AllowedOrigins: f.origins, AllowedAssistants: f.assistants, TransientAssistant: transient,
				Scopes: f.scopes, AllowedIPs: f.ips, Disabled: disabled,
			}
			if f.expires != "" {
				t, err := parseExpiry(f.expires)
				if err != nil {
					return err
				}
				p.ExpiresAt = t
			}
			m, done, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			nk, err := m.Create(cmd.Context(), p)
			if err != nil {
				return err
			}
			return a.printNewKey(nk, "")
		},
	}
	requireUser(cmd)
	f.register(cmd, false)
	cmd.Flags().StringVar(&typ, "type", "", "private or public (required)")
	_ = cmd.MarkFlagRequired("type")
	_ = cmd.MarkFlagRequired("name")
	cmd.Flags().BoolVar(&transient, "transient", false, "allow transient assistants")
	cmd.Flags().BoolVar(&disabled, "disabled", false, "create the key switched off")
	cmd.Flags().StringVar(&email, "email", "", "the owner's e-mail address")
	return cmd
}

func (a *app) listCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list --user U [--limit N]",
		Short: "List a user's keys, newest first",
		Long:  "List a user's keys, newest first: all of them, or the newest N with --limit.\n" + exitHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageErr("--limit must not be negative")
			}
			m, done, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			keys := []apikeys.Key{}
			cursor := ""
			for {
				page := 1000
				if limit > 0 {
					page = min(limit-len(keys), 1000)
				}
				p, err := m.List(cmd.Context(), user(cmd), apikeys.ListParams{Limit: page, Cursor: cursor})
				if err != nil {
					return err
				}
				keys = append(keys, p.Keys...)
				if !p.HasMore || limit > 0 && len(keys) >= limit {
					break
				}
				cursor = p.NextCursor
			}
			return a.printKeys(keys)
		},
	}
	requireUser(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "at most N keys (0: all)")
	return cmd
}

// idCommand is a command on one key of a user: use names it, run acts.
func (a *app) idCommand(use, short, long string, run func(cmd *cobra.Command, m *apikeys.Manager, userID string, id uuid.UUID) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long + "\n" + exitHelp,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			m, done, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			return run(cmd, m, user(cmd), id)
		},
	}
	requireUser(cmd)
	return cmd
}

func (a *app) getCommand() *cobra.Command {
	return a.idCommand("get --user U ID", "Show a key (never its value)", "Show a user's key: every property but its value.",
		func(cmd *cobra.Command, m *apikeys.Manager, userID string, id uuid.UUID) error {
			k, err := m.Get(cmd.Context(), userID, id)
			if err != nil {
				return err
			}
			return a.printKey(k)
		})
}

func (a *app) updateCommand() *cobra.Command {
	var f keyFlags
	cmd := a.idCommand("update --user U ID [flags]", "Change a key's name, restrictions or expiry",
		"Change a user's key: only the flags given are changed; --clear-* and --no-expiry remove.",
		func(cmd *cobra.Command, m *apikeys.Manager, userID string, id uuid.UUID) error {
			var u apikeys.UpdateParams
			changed := cmd.Flags().Changed
			if changed("name") {
				u.Name = &f.name
			}
			list := func(flag string, vals []string, clear bool) (*[]string, error) {
				switch {
				case changed(flag) && clear:
					return nil, usageErr("--%s and its --clear-* flag exclude each other", flag)
				case changed(flag):
					return &vals, nil
				case clear:
					return &[]string{}, nil
				}
				return nil, nil
			}
			var err error
			if u.AllowedOrigins, err = list("origin", f.origins, f.clearOrigins); err != nil {
				return err
			}
			if u.AllowedAssistants, err = list("assistant", f.assistants, f.clearAssistants); err != nil {
				return err
			}
			if u.Scopes, err = list("scope", f.scopes, f.clearScopes); err != nil {
				return err
			}
			if u.AllowedIPs, err = list("ip", f.ips, f.clearIPs); err != nil {
				return err
			}
			switch {
			case changed("expires") && f.noExpiry:
				return usageErr("--expires and --no-expiry exclude each other")
			case changed("expires"):
				t, err := parseExpiry(f.expires)
				if err != nil {
					return err
				}
				u.ExpiresAt = &t
			case f.noExpiry:
				u.ExpiresAt = new(time.Time)
			}
			if u == (apikeys.UpdateParams{}) {
				return usageErr("nothing to change: give a flag (see --help)")
			}
			k, err := m.Update(cmd.Context(), userID, id, u)
			if err != nil {
				return err
			}
			return a.printKey(k)
		})
	f.register(cmd, true)
	return cmd
}

func (a *app) enableCommand(enable bool) *cobra.Command {
	use, short, long := "enable --user U ID", "Switch a key on", "Switch a user's key on again, with every setting it had."
	if !enable {
		use, short, long = "disable --user U ID", "Switch a key off", "Switch a user's key off: it authorizes nothing and keeps its settings."
	}
	return a.idCommand(use, short, long,
		func(cmd *cobra.Command, m *apikeys.Manager, userID string, id uuid.UUID) error {
			k, err := m.Update(cmd.Context(), userID, id, apikeys.UpdateParams{Disabled: new(!enable)})
			if err != nil {
				return err
			}
			return a.printKey(k)
		})
}

func (a *app) rotateCommand() *cobra.Command {
	var grace time.Duration
	cmd := a.idCommand("rotate --user U ID [--grace DURATION]", "Replace a key with a new one and print its value, once",
		`Issue a new key with the same settings as the user's key ID and print it, with its value
(shown this once). The old key stops working at once (--grace 0, the default: it is
deleted), or after the grace period (--grace 24h).`,
		func(cmd *cobra.Command, m *apikeys.Manager, userID string, id uuid.UUID) error {
			nk, err := m.Rotate(cmd.Context(), userID, id, grace)
			if err != nil && nk.Value == "" {
				return err
			}
			// With ErrOldKeyLive the new key exists: print it, then fail.
			if perr := a.printNewKey(nk, id.String()); perr != nil {
				return perr
			}
			return err
		})
	cmd.Flags().DurationVar(&grace, "grace", 0, "how long the old key keeps working (0: it stops at once)")
	return cmd
}

func (a *app) deleteCommand() *cobra.Command {
	return a.idCommand("delete --user U ID", "Delete a key", "Delete a user's key: it stops working at once.",
		func(cmd *cobra.Command, m *apikeys.Manager, userID string, id uuid.UUID) error {
			k, err := m.Delete(cmd.Context(), userID, id)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(map[string]any{"deleted": k})
			}
			fmt.Fprintf(a.stdout, "deleted key %s (%s, %q)\n", k.ID, k.Type, k.Name)
			return nil
		})
}

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade an SQL store's table",
		Long: `Create the SQL store's table (--namespace, default api_keys) or bring it up to this
release's schema version; it refuses a table a newer release migrated. Other stores need
no migration: it says so and succeeds.` + "\n" + exitHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, err := a.openStore(cmd.Context(), storeurl.Leave)
			if err != nil {
				return err
			}
			defer op.Close()
			s, ok := op.Store.(*sqlstore.Store)
			if !ok {
				fmt.Fprintf(a.stdout, "nothing to do: %s needs no migration\n", a.red.Spec())
				return nil
			}
			if err := s.Migrate(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "migrated: table %s is at this release's schema (%s)\n", s.Table(), a.red.Spec())
			return nil
		},
	}
}

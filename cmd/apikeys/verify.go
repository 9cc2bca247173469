package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/keyward/apikeys"
)

// verdict is verify's answer.
type verdict struct {
	Valid  bool            `json:"valid"`
	Reason string          `json:"reason,omitempty"` // why not
	ID     uuid.UUID       `json:"id,omitzero"`
	Type   apikeys.KeyType `json:"key_type,omitempty"`
	UserID string          `json:"user_id,omitempty"`
	Name   string          `json:"name,omitempty"`
	// OldPepper: the key is digested with one of APIKEYS_OLD_PEPPERS; the
	// service moves it to the current pepper when it is next used.
	OldPepper bool `json:"old_pepper,omitempty"`
}

func (a *app) verifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify KEY|-",
		Short: "Tell whether a key is valid, and if not why",
		Long: `Tell whether a key is valid (well formed, known, the right secret, enabled, not
expired), and if not, the reason: malformed, bad checksum, unknown id (never issued, or
deleted), wrong secret (or another pepper), expired, or disabled. The reasons are for
operators; services answer every one of them with the same 401. The key's restrictions
(origins, addresses, scopes, ...) are not checked: they depend on the request. With
"-" the key is read from the first line of standard input, which keeps it out of
shell history. The key is never printed.

Exit status: 0 the key is valid; 1 it is invalid; 2 usage, store or other error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if key == "-" {
				line, err := bufio.NewReader(a.stdin).ReadString('\n')
				if err != nil && line == "" {
					return usageErr("verify -: no key on standard input")
				}
				key = line
			}
			key = strings.TrimSpace(key)
			v, err := a.verify(cmd, key)
			if err != nil {
				return err
			}
			if a.output == "json" {
				if err := a.printJSON(v); err != nil {
					return err
				}
			} else if v.Valid {
				fmt.Fprintf(a.stdout, "valid: key %s (%s, user %s, %q)\n", v.ID, v.Type, v.UserID, v.Name)
			} else if v.ID != uuid.Nil {
				fmt.Fprintf(a.stdout, "invalid: %s (key %s)\n", v.Reason, v.ID)
			} else {
				fmt.Fprintf(a.stdout, "invalid: %s\n", v.Reason)
			}
			if !v.Valid {
				return &exitError{code: exitFound}
			}
			return nil
		},
	}
}

// verify explains key with Manager.Verify: it reads the store once and
// changes nothing (no last use, no rate limit or credit spent, no
// re-digest). The key's restrictions are not checked: they depend on a
// request.
func (a *app) verify(cmd *cobra.Command, key string) (verdict, error) {
	if _, _, ok := apikeys.ParseKeyID(a.prefix, key); !ok && !apikeys.LooksLikeToken(key) {
		reason := "malformed: not a key of prefix " + a.prefix
		if shaped(a.prefix, key) {
			reason = "bad checksum: a mistyped or truncated key"
		}
		return verdict{Reason: reason}, nil
	}
	m, done, err := a.manager(cmd.Context())
	if err != nil {
		return verdict{}, err
	}
	defer done()
	ver, err := m.Verify(cmd.Context(), key)
	if err != nil {
		return verdict{}, err
	}
	k := ver.Key
	v := verdict{Valid: ver.Valid, ID: k.ID, Type: k.Type, UserID: k.UserID, Name: k.Name}
	switch ver.Reason {
	case apikeys.ReasonAllowed:
	case apikeys.ReasonUnknown:
		v.Reason = "unknown id: never issued, or deleted (rotated keys are deleted when their grace ends at once)"
		if id, _, ok := apikeys.ParseKeyID(a.prefix, key); ok {
			v.ID = id
		}
	case apikeys.ReasonWrongSecret:
		v.Reason = "wrong secret: the id exists, the rest of the key does not match"
		if a.pepper() == nil {
			v.Reason += " (or the service uses a pepper: set " + envPepper + ")"
		} else {
			v.Reason += " (or " + envPepper + " is not the service's pepper: older ones go in " + envOldPeppers + ")"
		}
	case apikeys.ReasonExpired:
		v.Reason = "expired at " + when(k.ExpiresAt)
		if k.SuccessorID != uuid.Nil {
			v.Reason += " (rotated; its successor is " + k.SuccessorID.String() + ")"
		}
	case apikeys.ReasonDisabled:
		v.Reason = "disabled"
	default:
		v.Reason = string(ver.Reason)
	}
	if ver.OldPepper {
		v.OldPepper = true
	}
	return v, nil
}

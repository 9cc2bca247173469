package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/storeurl"
)

// verdict is verify's answer.
type verdict struct {
	Valid  bool            `json:"valid"`
	Reason string          `json:"reason,omitempty"` // why not
	ID     uuid.UUID       `json:"id,omitzero"`
	Type   apikeys.KeyType `json:"key_type,omitempty"`
	UserID string          `json:"user_id,omitempty"`
	Name   string          `json:"name,omitempty"`
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

// verify explains key. It reads the store once and changes nothing: no
// last use is recorded and no rate limit or credit is spent. It decides
// as Manager.Authorize does for a request that names nothing, before the
// restrictions.
func (a *app) verify(cmd *cobra.Command, key string) (verdict, error) {
	p, ok := parseKey(a.prefix, key)
	if !ok {
		reason := "malformed: not a key of prefix " + a.prefix
		if shaped(a.prefix, key) {
			reason = "bad checksum: a mistyped or truncated key"
		}
		return verdict{Reason: reason}, nil
	}
	v := verdict{ID: p.id, Type: p.typ}
	op, err := a.openStore(cmd.Context(), storeurl.Check)
	if err != nil {
		return v, err
	}
	defer op.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), opTimeout)
	defer cancel()
	rec, err := op.Store.Get(ctx, p.id)
	if errors.Is(err, apikeys.ErrNotFound) {
		v.Reason = "unknown id: never issued, or deleted (rotated keys are deleted when their grace ends at once)"
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("store get: %w", err)
	}
	v.UserID, v.Name = rec.UserID, rec.Name
	d := digest(a.pepper(), key)
	switch {
	case subtle.ConstantTimeCompare(d[:], rec.Digest[:]) != 1 || rec.Type != p.typ:
		v.Reason = "wrong secret: the id exists, the rest of the key does not match"
		if a.pepper() == nil {
			v.Reason += " (or the service uses a pepper: set " + envPepper + ")"
		} else {
			v.Reason += " (or " + envPepper + " is not the service's pepper)"
		}
	case rec.Expired(time.Now()):
		v.Reason = "expired at " + when(rec.ExpiresAt)
		if rec.SuccessorID != uuid.Nil {
			v.Reason += " (rotated; its successor is " + rec.SuccessorID.String() + ")"
		}
	case rec.Disabled:
		v.Reason = "disabled"
	default:
		v.Valid = true
	}
	return v, nil
}

// digest is what a store keeps for key: HMAC-SHA-256 with the pepper, or
// SHA-256 (Config.Pepper).
func digest(pepper []byte, key string) apikeys.Digest {
	if len(pepper) == 0 {
		return sha256.Sum256([]byte(key))
	}
	h := hmac.New(sha256.New, pepper)
	h.Write([]byte(key))
	return apikeys.Digest(h.Sum(nil))
}

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyward/apikeys"
)

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func joined[T any](vs []T) string {
	if len(vs) == 0 {
		return "-"
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

func enabled(k *apikeys.Key) string {
	if k.Disabled {
		return "no"
	}
	return "yes"
}

// printKey prints one key, never a value.
func (a *app) printKey(k apikeys.Key) error {
	if a.output == "json" {
		return a.printJSON(k)
	}
	return a.keyTable(&k, nil)
}

// keyTable writes k's fields, one a line, and extra after them.
func (a *app) keyTable(k *apikeys.Key, extra [][2]string) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"id", k.ID.String()}, {"type", string(k.Type)}, {"name", k.Name},
		{"user", k.UserID}, {"enabled", enabled(k)}, {"hint", k.Hint},
		{"origins", joined(k.AllowedOrigins)}, {"assistants", joined(k.AllowedAssistants)},
		{"transient", fmt.Sprint(k.TransientAssistant)}, {"scopes", joined(k.Scopes)},
		{"ips", joined(k.AllowedIPs)},
		{"created", when(k.CreatedAt)}, {"updated", when(k.UpdatedAt)},
		{"expires", when(k.ExpiresAt)}, {"last used", when(k.LastUsedAt)},
	}
	if k.SuccessorID != [16]byte{} {
		rows = append(rows, [2]string{"successor", k.SuccessorID.String()})
	}
	for _, r := range append(rows, extra...) {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// printNewKey prints a new key with its value: the only place a value is
// printed. replaced is the id of the key it replaces, if any.
func (a *app) printNewKey(nk apikeys.NewKey, replaced string) error {
	if a.output == "json" {
		return a.printJSON(nk)
	}
	extra := [][2]string{{"key", nk.Value}}
	if replaced != "" {
		extra = append([][2]string{{"replaces", replaced}}, extra...)
	}
	if err := a.keyTable(&nk.Key, extra); err != nil {
		return err
	}
	_, err := fmt.Fprintln(a.stdout, "\nThe key is shown only this once: store it now.")
	return err
}

// printKeys prints a listing.
func (a *app) printKeys(keys []apikeys.Key) error {
	if a.output == "json" {
		return a.printJSON(keys)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tNAME\tENABLED\tEXPIRES\tHINT\tCREATED")
	for i := range keys {
		k := &keys[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Type, k.Name, enabled(k), when(k.ExpiresAt), k.Hint, when(k.CreatedAt))
	}
	return tw.Flush()
}

// Package slogaudit is an apikeys.Hook that writes an audit log with
// log/slog: every change to a key at Info, every refused Authorize at Info
// (LevelRefused), and every allowed one at Debug (LevelAllowed), with
// structured attributes. It logs keys' ids, owners, hints and settings,
// never a key's value or digest (the Manager never gives either to a hook),
// and never the error text of a refusal of an invalid key, whose reason it
// names instead.
//
//	m, err := apikeys.New(store, &apikeys.Config{Hook: slogaudit.New(logger)})
package slogaudit

import (
	"context"
	"log/slog"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
)

// Hook logs decisions and changes to a *slog.Logger. Make it with New; a
// zero Hook logs to slog.Default(), everything at Info.
type Hook struct {
	// Logger receives the records; nil for slog.Default().
	Logger *slog.Logger
	// LevelAllowed is the level of allowed decisions. Default Debug.
	LevelAllowed slog.Level
	// LevelRefused is the level of refused decisions. Default Info.
	LevelRefused slog.Level
	// LevelChange is the level of changes. Default Info.
	LevelChange slog.Level
}

// New returns a Hook logging to l (nil: slog.Default()) at the default
// levels: allowed decisions at Debug, refusals and changes at Info.
func New(l *slog.Logger) *Hook {
	return &Hook{Logger: l, LevelAllowed: slog.LevelDebug, LevelRefused: slog.LevelInfo, LevelChange: slog.LevelInfo}
}

var _ apikeys.Hook = (*Hook)(nil)

func (h *Hook) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// Decision logs one Authorize as "apikeys: authorize", with the attributes
// allowed, reason, key_id (when known), user_id, token, cache ("hit",
// "miss" or absent), duration, and the request's origin, client_ip and
// assistant_id when it names them; a refusal of a valid key or a failure
// also has err.
func (h *Hook) Decision(ctx context.Context, d apikeys.Decision) {
	level := h.LevelAllowed
	if !d.Allowed {
		level = h.LevelRefused
	}
	l := h.logger()
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.Bool("allowed", d.Allowed), slog.String("reason", string(d.Reason)))
	if d.KeyID != uuid.Nil {
		attrs = append(attrs, slog.String("key_id", d.KeyID.String()))
	}
	if d.UserID != "" {
		attrs = append(attrs, slog.String("user_id", d.UserID))
	}
	if d.Token {
		attrs = append(attrs, slog.Bool("token", true))
	}
	if d.Cached {
		c := "miss"
		if d.CacheHit {
			c = "hit"
		}
		attrs = append(attrs, slog.String("cache", c))
	}
	attrs = append(attrs, slog.Duration("duration", d.Duration))
	if d.Request.Origin != "" {
		attrs = append(attrs, slog.String("origin", d.Request.Origin))
	}
	if d.Request.ClientIP.IsValid() {
		attrs = append(attrs, slog.String("client_ip", d.Request.ClientIP.String()))
	}
	if d.Request.AssistantID != "" {
		attrs = append(attrs, slog.String("assistant_id", d.Request.AssistantID))
	}
	if d.Err != nil && !invalid(d.Reason) {
		attrs = append(attrs, slog.String("err", d.Err.Error()))
	}
	l.LogAttrs(ctx, level, "apikeys: authorize", attrs...)
}

// invalid reports whether r is one of the reasons callers see as
// ErrInvalidKey: the reason says it all.
func invalid(r apikeys.Reason) bool {
	switch r {
	case apikeys.ReasonMalformed, apikeys.ReasonUnknown, apikeys.ReasonWrongSecret,
		apikeys.ReasonExpired, apikeys.ReasonDisabled, apikeys.ReasonTokenInvalid:
		return true
	}
	return false
}

// Change logs one change as "apikeys: key <kind>", with the attributes
// kind, key_id, user_id, actor ("service" or the acting key's id), and the
// groups before and after (absent for a created or deleted key), each
// holding the key's public settings.
func (h *Hook) Change(ctx context.Context, c apikeys.Change) {
	l := h.logger()
	if !l.Enabled(ctx, h.LevelChange) {
		return
	}
	actor := "service"
	if c.Actor != uuid.Nil {
		actor = c.Actor.String()
	}
	attrs := []slog.Attr{
		slog.String("kind", string(c.Kind)),
		slog.String("key_id", c.KeyID.String()),
		slog.String("user_id", c.UserID),
		slog.String("actor", actor),
	}
	if c.Before.ID != uuid.Nil {
		attrs = append(attrs, keyAttr("before", &c.Before))
	}
	if c.After.ID != uuid.Nil {
		attrs = append(attrs, keyAttr("after", &c.After))
	}
	l.LogAttrs(ctx, h.LevelChange, "apikeys: key "+string(c.Kind), attrs...)
}

// keyAttr is a key's public settings as a group.
func keyAttr(name string, k *apikeys.Key) slog.Attr {
	attrs := []any{
		slog.String("id", k.ID.String()),
		slog.String("key_type", string(k.Type)),
		slog.String("name", k.Name),
		slog.String("hint", k.Hint),
		slog.Bool("enabled", !k.Disabled),
	}
	if len(k.AllowedOrigins) > 0 {
		attrs = append(attrs, slog.Any("allowed_origins", k.AllowedOrigins))
	}
	if len(k.AllowedAssistants) > 0 {
		attrs = append(attrs, slog.Any("allowed_assistants", k.AllowedAssistants))
	}
	if k.TransientAssistant {
		attrs = append(attrs, slog.Bool("transient_assistant", true))
	}
	if len(k.Scopes) > 0 {
		attrs = append(attrs, slog.Any("scopes", k.Scopes))
	}
	if len(k.AllowedIPs) > 0 {
		ips := make([]string, len(k.AllowedIPs))
		for i, p := range k.AllowedIPs {
			ips[i] = p.String()
		}
		attrs = append(attrs, slog.Any("allowed_ips", ips))
	}
	if r := k.RateLimit; r != nil {
		attrs = append(attrs, slog.Group("rate_limit", slog.Int64("limit", r.Limit), slog.Int64("window_seconds", r.WindowSeconds)))
	}
	if c := k.Credits; c != nil {
		ca := []any{slog.Int64("remaining", c.Remaining)}
		if c.Refill != nil {
			ca = append(ca, slog.Int64("refill_amount", c.Refill.Amount), slog.Int64("refill_interval_seconds", c.Refill.IntervalSeconds))
		}
		attrs = append(attrs, slog.Group("credits", ca...))
	}
	if !k.ExpiresAt.IsZero() {
		attrs = append(attrs, slog.Time("expires_at", k.ExpiresAt))
	}
	if k.SuccessorID != uuid.Nil {
		attrs = append(attrs, slog.String("successor_id", k.SuccessorID.String()))
	}
	return slog.Group(name, attrs...)
}

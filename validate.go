package apikeys

import (
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

func (m *Manager) checkName(probs *problems, name string) string {
	name = strings.TrimSpace(name)
	switch {
	case !utf8.ValidString(name):
		probs.add("name", "must be valid UTF-8")
	case name == "":
		probs.add("name", "is required")
	case utf8.RuneCountInString(name) > MaxNameLen:
		probs.add("name", "must be at most "+strconv.Itoa(MaxNameLen)+" characters")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		probs.add("name", "must not contain control characters")
	}
	return name
}

func (m *Manager) checkOrigins(probs *problems, in []string) []string {
	return checkList(probs, "allowed_origins", in, m.cfg.MaxOrigins, func(s string) (string, string) { return canonicalOrigin(s, true) })
}

func (m *Manager) checkAssistants(probs *problems, in []string) []string {
	return checkList(probs, "allowed_assistants", in, m.cfg.MaxAssistants, func(s string) (string, string) {
		if !validAssistantID(s) {
			return "", "must be 1 to " + strconv.Itoa(MaxAssistantIDLen) + " of A-Z a-z 0-9 . _ : -"
		}
		return s, ""
	})
}

// checkList validates a list field: at most max entries, each put in
// canonical form by canon (a reason refuses it, reported under its index),
// duplicates after canonicalisation dropped, order kept.
func checkList[T comparable](probs *problems, field string, in []string, max int, canon func(string) (T, string)) []T {
	if len(in) > max {
		probs.add(field, "at most "+strconv.Itoa(max)+" entries")
		return nil
	}
	out := make([]T, 0, len(in))
	seen := make(map[T]struct{}, len(in))
	for i, s := range in {
		v, reason := canon(s)
		if reason != "" {
			probs.add(field+"["+strconv.Itoa(i)+"]", reason)
			continue
		}
		if _, dup := seen[v]; !dup {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}

func validAssistantID(s string) bool {
	if len(s) == 0 || len(s) > MaxAssistantIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func checkUserID(probs *problems, id string) string {
	switch {
	case id == "":
		probs.add("user_id", "is required")
	case len(id) > MaxUserIDLen:
		probs.add("user_id", "must be at most "+strconv.Itoa(MaxUserIDLen)+" bytes")
	case !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		probs.add("user_id", "must be valid UTF-8 without spaces or control characters")
	}
	return id
}

func checkEmail(probs *problems, email string) string {
	if email == "" {
		return ""
	}
	if len(email) > MaxEmailLen {
		probs.add("user_email", "must be at most "+strconv.Itoa(MaxEmailLen)+" bytes")
		return email
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") && !strings.HasSuffix(email, "@localhost") {
		probs.add("user_email", "must be a plain email address like name@example.com")
	}
	return email
}

func checkExpiry(probs *problems, t, now time.Time) time.Time {
	t = normTime(t)
	if !t.IsZero() && !t.After(now) {
		probs.add("expires_at", "must be in the future")
	}
	return t
}

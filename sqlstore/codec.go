package sqlstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
)

// appendList appends list as a JSON array of strings. Nil and empty both
// give "[]".
func appendList(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string. Origins and assistant ids
// never need escaping; anything that does goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, err := json.Marshal(s)
			if err != nil { // cannot happen for a string
				panic(err)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// listString encodes list for a list column.
func listString(list []string) string {
	var buf [256]byte
	return string(appendList(buf[:0], list))
}

// parseList decodes a JSON array of strings. Arrays without escapes (all
// that the store writes for valid keys) are split by hand into substrings
// of one string; anything else goes through encoding/json.
func parseList(s string) ([]string, error) {
	out, ok := parseSimpleList(s)
	if ok {
		return out, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("sqlstore: list column: %w", err)
	}
	return list, nil
}

func parseSimpleList(s string) ([]string, bool) {
	i := skipSpace(s, 0)
	if i == len(s) || s[i] != '[' {
		return nil, false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == ']' {
		return nil, skipSpace(s, i+1) == len(s)
	}
	n := 1
	for j := i; j < len(s); j++ {
		if s[j] == ',' {
			n++
		}
	}
	out := make([]string, 0, n)
	for {
		if i == len(s) || s[i] != '"' {
			return nil, false
		}
		start := i + 1
		end := start
		for end < len(s) && s[end] != '"' {
			if c := s[end]; c == '\\' || c < 0x20 {
				return nil, false
			}
			end++
		}
		if end == len(s) {
			return nil, false
		}
		out = append(out, s[start:end])
		i = skipSpace(s, end+1)
		if i == len(s) {
			return nil, false
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case ']':
			if skipSpace(s, i+1) != len(s) || !utf8.ValidString(s) {
				return nil, false
			}
			return out, true
		default:
			return nil, false
		}
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// listScanner scans a list column (JSON text, JSONB, JSON) into a slice.
type listScanner struct{ dst *[]string }

// Scan reads a JSON array; SQL NULL, JSON null or anything but an array is
// an error, since a restriction that cannot be read must never read as
// "none".
func (l listScanner) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case nil:
		return errors.New("sqlstore: list column: NULL")
	case string:
		s = v // immutable: the substrings may keep it
	case []byte:
		s = string(v) // the driver reuses its buffer: copy once
	default:
		return fmt.Errorf("sqlstore: list column: unexpected %T", src)
	}
	list, err := parseRestrictionList("list", s)
	if err != nil {
		return err
	}
	*l.dst = list
	return nil
}

// prefixListString encodes an address list for the allowed_ips column: a
// JSON array of the prefixes' canonical text, as netip.Prefix.String
// writes it ("203.0.113.0/24", "2001:db8::/32"), which needs no escaping.
// Nil and empty both give "[]".
func prefixListString(list []netip.Prefix) string {
	var buf [256]byte
	b := append(buf[:0], '[')
	for i, p := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = p.AppendTo(b)
		b = append(b, '"')
	}
	return string(append(b, ']'))
}

// restrictionText reads the text of a restriction column (scopes,
// allowed_ips). Unlike the older list columns, NULL is an error, not an
// empty list: the column is NOT NULL, and a restriction that cannot be
// read must not read as "none".
func restrictionText(column string, src any) (string, error) {
	switch v := src.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case nil:
		return "", fmt.Errorf("sqlstore: %s column: NULL", column)
	default:
		return "", fmt.Errorf("sqlstore: %s column: unexpected %T", column, src)
	}
}

// parseRestrictionList decodes a restriction column: a JSON array of
// strings, and nothing else (not the JSON null that parseList takes for
// an empty list).
func parseRestrictionList(column, s string) ([]string, error) {
	if i := skipSpace(s, 0); i == len(s) || s[i] != '[' {
		return nil, fmt.Errorf("sqlstore: %s column: not a JSON array", column)
	}
	list, err := parseList(s)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s column: %w", column, err)
	}
	return list, nil
}

// scopesScanner scans the scopes column. Entries are not checked against
// the scope grammar: one that is not a scope matches no request, which
// only narrows the key.
type scopesScanner struct{ dst *[]string }

func (l scopesScanner) Scan(src any) error {
	s, err := restrictionText("scopes", src)
	if err != nil {
		return err
	}
	list, err := parseRestrictionList("scopes", s)
	if err != nil {
		return err
	}
	*l.dst = list
	return nil
}

// prefixListScanner scans the allowed_ips column: a JSON array of
// prefixes in the canonical text prefixListString writes. Anything else
// is an error: an entry that does not parse, or that is not canonical
// ("10.0.0.1/8", "::ffff:10.0.0.0/104", "203.0.113.7"), was not written by
// the store.
type prefixListScanner struct{ dst *[]netip.Prefix }

func (l prefixListScanner) Scan(src any) error {
	s, err := restrictionText("allowed_ips", src)
	if err != nil {
		return err
	}
	list, err := parseRestrictionList("allowed_ips", s)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		*l.dst = nil
		return nil
	}
	out := make([]netip.Prefix, len(list))
	for i, v := range list {
		p, err := netip.ParsePrefix(v)
		if err == nil && (p != p.Masked() || p.Addr().Is4In6() || p.String() != v) {
			err = fmt.Errorf("%q is not a canonical prefix", v)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: allowed_ips column: %w", err)
		}
		out[i] = p
	}
	*l.dst = out
	return nil
}

// boolScanner scans a NOT NULL boolean column (BOOLEAN, MySQL's
// TINYINT(1), SQLite's INTEGER): true, false, 1 or 0, and nothing else.
// NULL and other numbers are errors, so that a flag such as disabled that
// cannot be read never reads as false.
type boolScanner struct {
	column string
	dst    *bool
}

func (b boolScanner) Scan(src any) error {
	switch v := src.(type) {
	case bool:
		*b.dst = v
		return nil
	case int64:
		if v == 0 || v == 1 {
			*b.dst = v == 1
			return nil
		}
	case []byte: // MySQL's text protocol
		if s := string(v); s == "0" || s == "1" {
			*b.dst = s == "1"
			return nil
		}
	case string:
		if v == "0" || v == "1" {
			*b.dst = v == "1"
			return nil
		}
	}
	return fmt.Errorf("sqlstore: %s column: %v (%T) is not a boolean", b.column, src, src)
}

// digestScanner scans a 32-byte binary column.
type digestScanner struct{ dst *apikeys.Digest }

func (d digestScanner) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("sqlstore: digest column: unexpected %T", src)
	}
	if len(b) != len(d.dst) {
		return fmt.Errorf("sqlstore: digest column: %d bytes, want %d", len(b), len(d.dst))
	}
	copy(d.dst[:], b)
	return nil
}

// nullUUIDScanner scans a nullable UUID column (UUID, or its text): NULL
// is the zero UUID.
type nullUUIDScanner struct{ dst *uuid.UUID }

func (u nullUUIDScanner) Scan(src any) error {
	if src == nil {
		*u.dst = uuid.UUID{}
		return nil
	}
	if err := u.dst.Scan(src); err != nil {
		return fmt.Errorf("sqlstore: uuid column: %w", err)
	}
	return nil
}

// timeScanner scans a time column into a UTC time; NULL is the zero time.
// PostgreSQL gives instants; MySQL DATETIME gives a wall clock, which the
// store always writes in UTC, so it is read as UTC whatever location the
// driver gave it (the DSN's loc) and whether or not parseTime is set;
// SQLite gives Unix microseconds.
type timeScanner struct {
	dst       *time.Time
	wallClock bool
}

// instantScanner and wallClockScanner are timeScanners that fit in an
// interface without an allocation (one pointer each).
type (
	instantScanner   struct{ dst *time.Time }
	wallClockScanner struct{ dst *time.Time }
)

func (t instantScanner) Scan(src any) error   { return timeScanner{t.dst, false}.Scan(src) }
func (t wallClockScanner) Scan(src any) error { return timeScanner{t.dst, true}.Scan(src) }

func (t timeScanner) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t.dst = time.Time{}
	case time.Time:
		if t.wallClock {
			y, mo, d := v.Date()
			h, mi, s := v.Clock()
			v = time.Date(y, mo, d, h, mi, s, v.Nanosecond(), time.UTC)
		}
		*t.dst = v.UTC()
	case int64:
		*t.dst = time.UnixMicro(v).UTC()
	case []byte:
		return t.parse(string(v))
	case string:
		return t.parse(v)
	default:
		return fmt.Errorf("sqlstore: time column: unexpected %T", src)
	}
	return nil
}

func (t timeScanner) parse(s string) error {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
		if v, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			*t.dst = v.UTC()
			return nil
		}
	}
	return fmt.Errorf("sqlstore: time column: cannot parse %q", s)
}

package storeurl

import (
	"io"
	"net/url"
	"slices"
	"strings"
)

// Redacted replaces a credential wherever a program prints it.
const Redacted = "xxxxx"

// Redactor hides the credentials of a store spec in everything a program
// prints or returns: the spec itself, errors (a driver or net/url may echo
// the DSN) and the log. It knows the password of a URL's user info, in its
// escaped and unescaped forms, that of a driver DSN such as MySQL's
// "user:password@tcp(host)/db", and the values of password-like query
// parameters (postgres://...?password=...).
type Redactor struct {
	spec    string   // the spec with its credentials replaced
	secrets []string // longest first, so that no part of one survives
}

// NewRedactor returns the Redactor of spec.
func NewRedactor(spec string) *Redactor {
	var secrets []string
	add := func(s string) {
		if s == "" {
			return
		}
		secrets = append(secrets, s)
		if u, err := url.PathUnescape(s); err == nil && u != s {
			secrets = append(secrets, u)
		}
		for _, e := range []string{url.QueryEscape(s), url.PathEscape(s)} {
			if e != s {
				secrets = append(secrets, e)
			}
		}
	}
	// User info, whatever the form: what precedes the last "@" of the part
	// before any query, after the scheme; the password follows its first
	// ":". This also covers specs that net/url cannot parse. (A sqlite:
	// spec is a path, which may hold both.)
	rest := spec
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 && !strings.HasPrefix(spec, "sqlite:") {
		if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
			add(pw)
		}
	}
	if u, err := url.Parse(spec); err == nil {
		if pw, ok := u.User.Password(); ok {
			add(pw)
		}
		for k, vs := range u.Query() {
			if sensitiveParam(k) {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	// A spec's query may not parse as a whole; look at each parameter.
	if _, query, ok := strings.Cut(spec, "?"); ok {
		for param := range strings.SplitSeq(query, "&") {
			if k, v, ok := strings.Cut(param, "="); ok && sensitiveParam(k) {
				add(v)
			}
		}
	}
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	r := &Redactor{secrets: slices.Compact(secrets)}
	r.spec = r.Text(spec)
	return r
}

// sensitiveParam reports whether a DSN query parameter holds a secret.
func sensitiveParam(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pass", "pwd", "secret", "token"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Spec returns the spec with its credentials replaced.
func (r *Redactor) Spec() string { return r.spec }

// Text returns s with every credential replaced.
func (r *Redactor) Text(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, Redacted)
	}
	return s
}

// Err returns err with its message redacted; errors.Is and errors.As still
// see what it wraps.
func (r *Redactor) Err(err error) error {
	if err == nil {
		return nil
	}
	msg := r.Text(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Writer returns w with every credential replaced in what is written to
// it. The log handler writes each record in one call, so a credential is
// never split between two writes.
func (r *Redactor) Writer(w io.Writer) io.Writer {
	if len(r.secrets) == 0 {
		return w
	}
	return redactingWriter{r, w}
}

type redactingWriter struct {
	r *Redactor
	w io.Writer
}

func (rw redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(rw.w, rw.r.Text(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

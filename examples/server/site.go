package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/apikeys/httpapi"
)

// The demo's pages (html/template files sharing layout.html), its one
// stylesheet and the web-call page's script.
//
//go:embed web
var webFS embed.FS

// keysPrefix is where the API-keys settings page (package keyspage) is
// mounted.
const keysPrefix = "/settings/api-keys"

// Content-Security-Policies: the pages load only their own stylesheet and
// script, nothing inline, post forms only to this origin, and cannot be
// framed. The web-call page may call any API base the visitor types in
// (connect-src *), and may be framed by a page of its own origin (the
// browser tests load it in a frame to drive it).
const (
	siteCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	webcallCSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src *; " +
		"form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)

// Demo sessions.
//
// The demo's sign-in asks for no password: anyone may sign in as any valid
// user name. What the session cookie must still guarantee is that it was
// issued by this server for the user it names, so that a visitor signed in
// as alice cannot edit the cookie into bob's (or extend it) silently. The
// cookie is "USER.EXPIRY.MAC", where MAC is the HMAC-SHA256, under a random
// secret generated when the process starts, of the user name and the
// expiry. The secret never leaves the process: a restart signs everyone
// out, and with several instances behind one address a session is valid
// only on the instance that issued it (a real service keeps its sessions in
// a shared store, or shares the secret).
const (
	sessionCookie = "demo_session"
	sessionTTL    = 12 * time.Hour
)

// userName is what a demo user name may be.
var userName = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)

// badUserName explains userName to a person.
const badUserName = "A user name is 1 to 64 characters: lowercase letters a-z, digits 0-9, '.', '_' and '-'."

// sessions issues and checks the demo's session cookies.
type sessions struct {
	secret []byte
	now    func() time.Time
}

func newSessions() (*sessions, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return &sessions{secret: secret, now: time.Now}, nil
}

func (s *sessions) mac(user, expiry string) string {
	h := hmac.New(sha256.New, s.secret)
	h.Write([]byte("apikeys demo session\x00" + user + "\x00" + expiry))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// cookie returns the session cookie for user.
func (s *sessions) cookie(r *http.Request, user string) *http.Cookie {
	expires := s.now().Add(sessionTTL)
	exp := strconv.FormatInt(expires.Unix(), 10)
	return &http.Cookie{
		Name:     sessionCookie,
		Value:    user + "." + exp + "." + s.mac(user, exp),
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(sessionTTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
}

// clear returns the cookie that deletes the session.
func (s *sessions) clear(r *http.Request) *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
}

// user returns the signed-in user of the request, or "": the cookie must
// carry this process's MAC of its user and expiry, and not have expired.
func (s *sessions) user(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	rest, mac, ok := cutLast(c.Value, ".")
	if !ok {
		return ""
	}
	user, exp, ok := cutLast(rest, ".")
	if !ok || !userName.MatchString(user) {
		return ""
	}
	if !hmac.Equal([]byte(mac), []byte(s.mac(user, exp))) {
		return ""
	}
	if sec, err := strconv.ParseInt(exp, 10, 64); err != nil || !s.now().Before(time.Unix(sec, 0)) {
		return ""
	}
	return user
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// owner is keyspage's Config.Owner: the session's user.
func (s *sessions) owner(r *http.Request) (httpapi.Owner, error) {
	user := s.user(r)
	if user == "" {
		return httpapi.Owner{}, errors.New("not signed in")
	}
	return httpapi.Owner{UserID: user, UserEmail: user + "@demo.example"}, nil
}

// localPath returns next when it is a path on this site, else "/": it must
// start with one slash, not "//" or "/\" (which browsers read as another
// host), and hold no control characters.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, `/\`) ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "/"
	}
	return next
}

// site serves the demo's own pages: the landing page, the sign-in, the
// web-call page and their assets.
type site struct {
	sess  *sessions
	users []string // the sign-in page's choices
	tmpl  *template.Template
	files map[string][]byte
	log   *slog.Logger
}

func newSite(sess *sessions, users []string, log *slog.Logger) (*site, error) {
	tmpl, err := template.ParseFS(webFS, "web/*.html")
	if err != nil {
		return nil, err
	}
	s := &site{sess: sess, tmpl: tmpl, files: map[string][]byte{}, log: log}
	for _, u := range users {
		if userName.MatchString(u) {
			s.users = append(s.users, u)
		}
	}
	for _, pattern := range []string{"web/*.css", "web/*.js"} {
		names, err := fs.Glob(webFS, pattern)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			body, err := webFS.ReadFile(name)
			if err != nil {
				return nil, err
			}
			s.files[path.Base(name)] = body
		}
	}
	return s, nil
}

// routes mounts the site's pages on mux. The sign-in and sign-out POSTs
// are refused when a browser marks them cross-origin.
func (s *site) routes(mux *http.ServeMux) {
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusForbidden, "error.html", pageData{Title: "Request refused",
			Error: "This form was sent from another site; sign in and out only from this site's own pages."})
	}))
	mux.HandleFunc("GET /{$}", s.landing)
	mux.HandleFunc("GET /webcall", s.webcall)
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.Handle("POST /signin", csrf.Handler(http.HandlerFunc(s.signIn)))
	mux.Handle("POST /signout", csrf.Handler(http.HandlerFunc(s.signOut)))
	mux.HandleFunc("GET /assets/{file}", s.asset)
	mux.HandleFunc("GET /favicon.ico", favicon)
}

// favicon answers the icon browsers ask every site for with no content:
// a 404 there is a console error on every page of the demo.
func favicon(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "max-age=86400")
	w.WriteHeader(http.StatusNoContent)
}

// pageData is what the page templates show.
type pageData struct {
	Title  string
	Active string // the nav entry of this page
	User   string // signed in, or ""
	Origin string // scheme://host of this site, as the request reached it
	Users  []string
	Next   string
	Typed  string
	Error  string
}

func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// render writes a page with the site's security headers.
func (s *site) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	d.User = s.sess.user(r)
	d.Origin = origin(r)
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, d); err != nil {
		s.log.ErrorContext(r.Context(), "demo page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	csp, frame := siteCSP, "DENY"
	if name == "webcall.html" {
		csp, frame = webcallCSP, "SAMEORIGIN"
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", frame)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store") // pages show who is signed in
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *site) landing(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "index.html", pageData{Title: "Home", Active: "home"})
}

func (s *site) webcall(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "webcall.html", pageData{Title: "Web call", Active: "webcall"})
}

func (s *site) signInPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin.html", pageData{Title: "Sign in", Users: s.users, Next: localPath(r.URL.Query().Get("next"))})
}

// signIn starts a session for the user named in the form, and sends the
// browser on to next when that is a path of this site (else to /).
func (s *site) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		s.render(w, r, http.StatusBadRequest, "error.html", pageData{Title: "Bad request", Error: "The sign-in form could not be read."})
		return
	}
	user, next := r.PostForm.Get("user"), localPath(r.PostForm.Get("next"))
	if !userName.MatchString(user) {
		msg := badUserName
		if user == "" {
			msg = "Pick a user or type a user name. " + badUserName
		}
		s.render(w, r, http.StatusBadRequest, "signin.html", pageData{Title: "Sign in", Users: s.users, Next: next, Typed: user, Error: msg})
		return
	}
	http.SetCookie(w, s.sess.cookie(r, user))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *site) signOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, s.sess.clear(r))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

var assetTypes = map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

func (s *site) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	body, ok := s.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", assetTypes[path.Ext(name)])
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(body)
}

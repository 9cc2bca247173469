// Package keyspage serves an API-keys settings page: the page where the
// signed-in users of a service list, create, restrict, rotate, disable and
// delete their API keys. One http.Handler holds the page (HTML, CSS and
// JavaScript embedded in the binary: no build step, no CDN) and the REST
// endpoints it calls (package httpapi), mounted under one path:
//
//	page, err := keyspage.New(m, &keyspage.Config{Prefix: "/settings/api-keys", Owner: sessionUser})
//	if err != nil {
//		return err
//	}
//	mux.Handle("/settings/api-keys/", page)
//
//	GET  {Prefix}/                 the page (text/html)
//	GET  {Prefix}/assets/{file}    its stylesheet and script
//	     {Prefix}/api/api_keys...  the REST endpoints of package httpapi, for the session's user
//
// The page never asks for an API key: whose keys it shows is the host
// service's session, through Config.Owner, which the page calls on every
// request (the page itself and each API call). A visitor without a session
// is sent to Config.SignInURL, or gets 401.
//
// Because the API is authorized by the session (a cookie, usually), the
// handler protects it against cross-site request forgery: a state-changing
// request (POST, PUT, DELETE) that a browser marks as cross-origin
// (Sec-Fetch-Site, or an Origin that is not the Host) is refused with 403,
// by net/http's CrossOriginProtection. Session cookies should be
// SameSite=Lax or Strict and HttpOnly as well. Against clickjacking, every
// answer forbids framing (frame-ancestors 'none', X-Frame-Options: DENY).
// The page's Content-Security-Policy allows only its own script and
// stylesheet, no inline code, and requires Trusted Types with no policy, so
// that the page cannot turn any text (a key's name, an error) into HTML.
// Answers that may hold a key value are never cached.
package keyspage

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/internal/envelope"
)

// Config configures the page. Owner is required; the rest have defaults.
type Config struct {
	// Prefix is the path the page is mounted under, such as
	// "/settings/api-keys": it starts with a slash and does not end with
	// one. Default "/api-keys". Mount the handler at Prefix + "/".
	Prefix string

	// Owner returns the signed-in user whose keys the page manages, from
	// the request's session; an error means no one is signed in. Required.
	Owner func(*http.Request) (httpapi.Owner, error)

	// SignInURL is where a visitor without a session is sent (303 See
	// Other), with the page's path in the query parameter "next". Default
	// "": the page answers 401.
	SignInURL string

	// Title is the page's heading. Default "API keys".
	Title string

	// Links are shown above the heading, so the page can lead back into
	// the host service (its home, its other settings). Each URL is a path
	// or an http(s) URL. Default none.
	Links []Link

	// TrustedOrigins are other origins (scheme://host[:port]) allowed to
	// send state-changing requests, such as the public origin of a service
	// behind a proxy that rewrites Host. Default none.
	TrustedOrigins []string

	// MaxGracePeriod bounds a rotation's grace period; the page offers
	// periods up to it. Default 30 days (httpapi's default).
	MaxGracePeriod time.Duration

	// ErrorLog receives store and internal failures. Default slog.Default().
	ErrorLog *slog.Logger
}

// Link is a link in the page's navigation.
type Link struct {
	Label string
	URL   string
}

//go:embed assets
var assets embed.FS

// The page's Content-Security-Policy: its own script and stylesheet, calls
// to its own origin, nothing inline, no framing, and Trusted Types with no
// policy, so no string ever becomes HTML or script.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

type page struct {
	prefix string
	owner  func(*http.Request) (httpapi.Owner, error)
	signIn string
	index  indexData // what every rendering shows but the user
	log    *slog.Logger
	tmpl   *template.Template
	files  map[string]asset
	mux    *http.ServeMux
}

// asset is one embedded file, with what serving it needs.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// New returns the page's handler. It fails when m is nil, Owner is
// missing, or another setting is invalid.
func New(m *apikeys.Manager, cfg *Config) (http.Handler, error) {
	if m == nil {
		return nil, errors.New("keyspage: New: nil Manager")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Owner == nil {
		return nil, errors.New("keyspage: New: Config.Owner is required: the page shows the keys of the session's user")
	}
	if c.Prefix == "" {
		c.Prefix = "/api-keys"
	}
	if !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") || path.Clean(c.Prefix) != c.Prefix ||
		strings.ContainsAny(c.Prefix, "{}?# \t") {
		return nil, fmt.Errorf("keyspage: New: Prefix %q must be a clean path that starts with / and does not end with one", c.Prefix)
	}
	if c.SignInURL != "" && !webURL(c.SignInURL) {
		return nil, fmt.Errorf("keyspage: New: SignInURL %q must be a path (/...) or an http(s) URL", c.SignInURL)
	}
	for _, l := range c.Links {
		if l.Label == "" || !webURL(l.URL) {
			return nil, fmt.Errorf("keyspage: New: Links: %q (%q) needs a label and a path (/...) or an http(s) URL", l.Label, l.URL)
		}
	}
	if c.Title == "" {
		c.Title = "API keys"
	}
	if c.MaxGracePeriod < 0 {
		return nil, errors.New("keyspage: New: MaxGracePeriod must not be negative")
	}
	if c.MaxGracePeriod == 0 {
		c.MaxGracePeriod = 30 * 24 * time.Hour
	}
	if c.ErrorLog == nil {
		c.ErrorLog = slog.Default()
	}
	api, err := httpapi.New(m, &httpapi.Config{
		Prefix:         c.Prefix + "/api",
		Owner:          c.Owner,
		MaxGracePeriod: c.MaxGracePeriod,
		ErrorLog:       c.ErrorLog,
	})
	if err != nil {
		return nil, fmt.Errorf("keyspage: New: %w", err)
	}
	csrf := http.NewCrossOriginProtection()
	for _, o := range c.TrustedOrigins {
		if err := csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("keyspage: New: TrustedOrigins: %w", err)
		}
	}
	csrf.SetDenyHandler(http.HandlerFunc(crossOrigin))
	p := &page{
		prefix: c.Prefix,
		owner:  c.Owner,
		signIn: c.SignInURL,
		index: indexData{
			Title:    c.Title,
			API:      c.Prefix + "/api/api_keys",
			Assets:   c.Prefix + "/assets/",
			MaxGrace: strconv.FormatInt(int64(c.MaxGracePeriod/time.Second), 10),
			Links:    slices.Clone(c.Links),
		},
		log: c.ErrorLog,
		mux: http.NewServeMux(),
	}
	if err := p.load(); err != nil {
		return nil, err
	}
	p.mux.HandleFunc("GET "+c.Prefix+"/{$}", p.serveIndex)
	p.mux.Handle("GET "+c.Prefix, http.RedirectHandler(c.Prefix+"/", http.StatusMovedPermanently))
	p.mux.HandleFunc("GET "+c.Prefix+"/assets/{file}", p.serveAsset)
	p.mux.Handle(c.Prefix+"/api/", jsonOnly(api))
	p.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	// The headers go on every answer, the cross-origin refusal included.
	return securityHeaders(csrf.Handler(p.mux)), nil
}

// webURL reports whether s is an absolute path on this host ("/...", not
// "//host") or an http(s) URL with a host: what the page may link to.
func webURL(s string) bool {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return false
	case u.Scheme == "":
		return u.Host == "" && strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "/\\")
	default:
		return (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
	}
}

// load reads the embedded files: the page's template and its assets.
func (p *page) load() error {
	tmpl, err := template.ParseFS(assets, "assets/index.html")
	if err != nil {
		return fmt.Errorf("keyspage: %w", err)
	}
	p.tmpl = tmpl
	p.files = map[string]asset{}
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
	err = fs.WalkDir(assets, "assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "assets/index.html" {
			return err
		}
		ct, ok := types[path.Ext(name)]
		if !ok {
			return fmt.Errorf("keyspage: no content type for %s", name)
		}
		body, err := assets.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		p.files[path.Base(name)] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return err
}

// securityHeaders sets what every answer carries: no framing, no
// sniffing, no cross-origin use; and a Content-Security-Policy that runs
// nothing, which the page itself replaces with its own.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

// crossOrigin answers a refused cross-origin request in the API's envelope.
func crossOrigin(w http.ResponseWriter, _ *http.Request) {
	envelope.WriteError(w, http.StatusForbidden, "cross-origin request refused: the keys page accepts changes only from its own origin", nil, nil)
}

// jsonOnly refuses a POST or PUT whose body is not declared JSON (415),
// empty bodies included: an HTML form can send only the other types, and
// without a CORS preflight, so this stops a cross-site form post in
// browsers that send neither Sec-Fetch-Site nor Origin, which
// CrossOriginProtection lets through. The page's script declares JSON.
func jsonOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				envelope.WriteError(w, http.StatusUnsupportedMediaType, "the keys page's API takes Content-Type: application/json", nil, nil)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// indexData is what the page's template shows.
type indexData struct {
	Title, User, API, Assets string
	MaxGrace                 string
	Links                    []Link
}

func (p *page) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	o, err := p.owner(r)
	if err != nil || o.UserID == "" {
		p.notSignedIn(w, r)
		return
	}
	d := p.index
	d.User = o.UserEmail
	if d.User == "" {
		d.User = o.UserID
	}
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, d); err != nil {
		p.log.ErrorContext(r.Context(), "keyspage: rendering the page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// notSignedIn sends the visitor to sign in, or answers 401.
func (p *page) notSignedIn(w http.ResponseWriter, r *http.Request) {
	if p.signIn == "" {
		http.Error(w, "sign in to manage your API keys", http.StatusUnauthorized)
		return
	}
	u, _ := url.Parse(p.signIn) // checked by New
	q := u.Query()
	q.Set("next", p.prefix+"/")
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (p *page) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := p.files[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "no-cache") // revalidated: a new binary serves new files
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// Package middleware authenticates net/http requests with API keys and
// answers CORS for them.
//
// A request presents its key as "Authorization: Bearer <key>" or as
// "X-API-Key: <key>". The query string is never read: URLs end up in logs,
// browser history and Referer headers. Presenting both headers, either one
// twice, or another Authorization scheme is a 400.
//
// Answers, all JSON in the platform envelope:
//
//   - 400: ambiguous or malformed credentials, several Origin headers, or
//     Config.Resource failed.
//   - 401: no key (WWW-Authenticate: Bearer realm="..."), or an invalid one:
//     malformed, unknown, wrong secret, deleted or expired all give the same
//     bytes (WWW-Authenticate: Bearer realm="...", error="invalid_token").
//   - 403: the key may not do this; the body names the restriction
//     ("allowed_origins", "allowed_ips", "allowed_assistants",
//     "transient_assistant", "scopes", "key_type"). A missing scope also
//     gets WWW-Authenticate: Bearer error="insufficient_scope" with the
//     scopes the route needs (RFC 6750 section 3.1).
//   - 429: the key's rate limit or credits leave less than the route's
//     Cost (Route.Cost); restriction "rate_limit" or "credits", with
//     Retry-After when waiting helps.
//   - 503: the store failed or timed out, or the Manager is closed. Nothing
//     about the key is said and the error goes to Config.ErrorLog.
//
// Every decision is apikeys.Manager.Authorize's: the middleware gathers the
// request's inputs (the key, Origin, the client address, what
// Config.Resource says about the assistant and what the Route says about
// scopes) and renders the outcome, through Config.ErrorFunc when it
// is a refusal. So its rules are Authorize's, failing closed: a key
// restricted to assistants is refused on a route whose Resource names none
// (and without a Resource no route names one), and a private key sent with
// an Origin header is refused unless its allowed_origins lists that origin.
//
// CORS: a preflight (OPTIONS with Access-Control-Request-Method) is answered
// 204 without a key, since browsers never send credentials on preflights;
// it echoes the Origin only when it is a syntactically valid origin, allows
// the headers Authorization, X-API-Key and Content-Type (plus
// Config.AllowHeaders) and caches for Config.MaxAge. The real request is
// where the key's allowed_origins are enforced; only an authorized response
// carries Access-Control-Allow-Origin, always the request's exact origin,
// never "*" or "null", and no Access-Control-Allow-Credentials (keys travel
// in headers, not cookies). A refusal carries it only when the key allows
// that origin (a page may read why its assistant was refused); a page on
// an origin the key does not allow, or presenting an invalid key, cannot
// read the answer at all. Every response from the
// middleware or the wrapped handler has "Origin" in Vary, added to what the
// handler sets, never replacing it. Authorized responses get
// "Cache-Control: no-store" unless the handler sets its own.
//
// Rate-limit headers (draft-ietf-httpapi-ratelimit-headers): every
// authorized response and every 429 for a key with limits carries
// RateLimit-Policy and RateLimit, with a policy "rate_limit" (q: the
// limit, w: the window) and, for credits that are refilled, "credits" (q:
// the refill amount, w: its interval); RateLimit gives what each leaves
// (r) and the seconds until it resets (t). A cross-origin page the key
// allows can read them, and Retry-After: they are in
// Access-Control-Expose-Headers.
package middleware

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/envelope"
)

// Config configures the middleware. The zero value, and nil, give the
// documented defaults.
type Config struct {
	// Realm names the protection space in WWW-Authenticate. Default "api".
	// Letters, digits, spaces and "-_.:/" only.
	Realm string

	// Resource tells the middleware which assistant the request wants and
	// whether it asks for a transient assistant; only the service knows its
	// routes and bodies. An error answers 400 with the error's text. A
	// Resource that reads the body must put it back (see PeekBody). Default:
	// no assistant, not transient, so that keys restricted to assistants
	// are refused (403) until the service says which assistant a route uses.
	Resource func(*http.Request) (assistantID string, transient bool, err error)

	// RequirePrivate makes every route behind Handler need a private key.
	// For single routes use Middleware.RequirePrivate or Protect instead.
	RequirePrivate bool

	// TrustedProxies are the addresses of the reverse proxies in front of
	// the service. The client address that keys' allowed_ips are checked
	// against is RemoteAddr; when RemoteAddr is in one of these prefixes,
	// it is the rightmost address in ForwardedHeader that is not itself a
	// trusted proxy. An unparseable or obfuscated entry there gives no
	// address, which keys restricted to addresses refuse. Default: none,
	// so forwarding headers are never believed.
	TrustedProxies []netip.Prefix

	// ForwardedHeader is the header the trusted proxies append the client
	// to: "X-Forwarded-For" (the default) or "Forwarded" (RFC 7239). Only
	// that one is read, since a proxy passes the other through from the
	// client untouched.
	ForwardedHeader string

	// AllowHeaders are request headers allowed on CORS requests besides
	// Authorization, X-API-Key and Content-Type.
	AllowHeaders []string

	// AllowMethods are the methods a preflight allows. Default GET, HEAD,
	// POST, PUT, PATCH, DELETE.
	AllowMethods []string

	// MaxAge is how long browsers may cache a preflight. Default 10
	// minutes; at most 2 hours (Chromium's own cap); negative turns
	// caching off (Access-Control-Max-Age: 0).
	MaxAge time.Duration

	// ErrorLog receives store failures. Default slog.Default(). Key values
	// are never logged.
	ErrorLog *slog.Logger

	// ErrorFunc writes the answer to a refused request: its status and
	// body. The middleware has already set the headers the protocol needs
	// (WWW-Authenticate, Retry-After, Vary, and Access-Control-Allow-Origin
	// where the key allows the origin), and ErrorFunc must keep them.
	// Default: the platform's JSON envelope, {"status":{...},"error":"...",
	// "errors":[],"restriction":"..."}. Invalid keys of every kind reach it
	// as one Refusal, so a custom ErrorFunc cannot tell them apart either.
	ErrorFunc func(w http.ResponseWriter, r *http.Request, ref *Refusal)
}

// Refusal is an answer the middleware gives instead of calling the handler.
type Refusal struct {
	// Status is the HTTP status: 400 (unusable credentials or request),
	// 401 (no key, or an invalid one), 403 (the key may not do this), 429
	// (its rate limit or credits are spent) or 503 (the key could not be
	// checked).
	Status int
	// Message says what is wrong, fit for the client.
	Message string
	// Restriction, on a 403 or 429, names the key setting that refused:
	// "allowed_origins", "allowed_ips", "allowed_assistants",
	// "transient_assistant", "scopes", "key_type", "rate_limit" or
	// "credits".
	Restriction string
	// Err is the apikeys error behind a 401, 403 or 503 (match it with
	// errors.Is), nil for a problem with the request itself. For 401 it is
	// always apikeys.ErrInvalidKey, whatever the cause.
	Err error
}

// WriteRefusal is the default ErrorFunc: the platform's JSON envelope.
func WriteRefusal(w http.ResponseWriter, _ *http.Request, ref *Refusal) {
	var extra map[string]string
	switch {
	case errors.Is(ref.Err, apikeys.ErrPrivateKeyRequired):
		extra = map[string]string{"restriction": ref.Restriction, "key_type": string(apikeys.Public), "required_key_type": string(apikeys.Private)}
	case errors.Is(ref.Err, apikeys.ErrPrivateKeyInBrowser):
		extra = map[string]string{"restriction": ref.Restriction, "key_type": string(apikeys.Private), "required_key_type": string(apikeys.Public)}
	case ref.Restriction != "":
		extra = map[string]string{"restriction": ref.Restriction}
	}
	envelope.WriteError(w, ref.Status, ref.Message, nil, extra)
}

// Middleware authenticates requests; make one with New.
type Middleware struct {
	m          *apikeys.Manager
	resource   func(*http.Request) (string, bool, error)
	render     func(http.ResponseWriter, *http.Request, *Refusal)
	private    bool
	proxies    []netip.Prefix
	fwdHeader  string
	realm      string
	log        *slog.Logger
	challenge  string // WWW-Authenticate for a missing key
	invalid    string // WWW-Authenticate for an invalid key
	allowHdrs  string
	allowMeths string
	maxAge     string
}

// MaxMaxAge bounds Config.MaxAge.
const MaxMaxAge = 2 * time.Hour

// New returns a Middleware that authorizes with m. cfg may be nil.
func New(m *apikeys.Manager, cfg *Config) (*Middleware, error) {
	if m == nil {
		return nil, errors.New("middleware: New: nil Manager")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Realm == "" {
		c.Realm = "api"
	}
	if strings.Trim(c.Realm, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.:/") != "" {
		return nil, errors.New("middleware: New: Realm may hold only letters, digits, spaces and -_.:/")
	}
	if c.MaxAge == 0 {
		c.MaxAge = 10 * time.Minute
	}
	if c.MaxAge < 0 {
		c.MaxAge = 0
	}
	if c.MaxAge > MaxMaxAge {
		return nil, errors.New("middleware: New: MaxAge must be at most 2h")
	}
	if len(c.AllowMethods) == 0 {
		c.AllowMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	}
	headers := []string{"Authorization", "X-API-Key", "Content-Type"}
	for _, h := range append(c.AllowHeaders, c.AllowMethods...) {
		if h == "" || strings.ContainsAny(h, " ,\t\r\n:") {
			return nil, errors.New("middleware: New: AllowHeaders and AllowMethods must be single tokens")
		}
	}
	headers = append(headers, c.AllowHeaders...)
	if c.ErrorLog == nil {
		c.ErrorLog = slog.Default()
	}
	if c.Resource == nil {
		c.Resource = func(*http.Request) (string, bool, error) { return "", false, nil }
	}
	if c.ErrorFunc == nil {
		c.ErrorFunc = WriteRefusal
	}
	switch c.ForwardedHeader {
	case "":
		c.ForwardedHeader = "X-Forwarded-For"
	case "X-Forwarded-For", "Forwarded":
	default:
		return nil, errors.New(`middleware: New: ForwardedHeader must be "X-Forwarded-For" or "Forwarded"`)
	}
	var proxies []netip.Prefix
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return nil, errors.New("middleware: New: TrustedProxies holds an invalid prefix")
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		proxies = append(proxies, p.Masked())
	}
	return &Middleware{
		m:          m,
		resource:   c.Resource,
		render:     c.ErrorFunc,
		private:    c.RequirePrivate,
		proxies:    proxies,
		fwdHeader:  c.ForwardedHeader,
		realm:      c.Realm,
		log:        c.ErrorLog,
		challenge:  `Bearer realm="` + c.Realm + `"`,
		invalid:    `Bearer realm="` + c.Realm + `", error="invalid_token"`,
		allowHdrs:  strings.Join(headers, ", "),
		allowMeths: strings.Join(c.AllowMethods, ", "),
		maxAge:     strconv.Itoa(int(c.MaxAge / time.Second)),
	}, nil
}

// Route is what the requests to one handler need beyond a valid key.
type Route struct {
	// Private: only private keys (403 key_type for a public one).
	Private bool
	// Scopes returns the scopes a request needs, all of which a key with
	// scopes must hold (403 insufficient_scope otherwise). A func, so that
	// one handler can need different scopes per method: see
	// httpapi.RequiredScopes, and Scopes for a fixed list. nil: none, and
	// keys with scopes are refused (a route that names no scope cannot be
	// one a scoped key was meant for).
	Scopes func(*http.Request) []string
	// Cost is what a request spends from a limited key's rate limit and
	// credits: 1 to apikeys.MaxQuota; 0 means 1.
	Cost int64
}

// Scopes returns a Route.Scopes that needs the same scopes of every
// request. It panics on a string that is not a concrete scope
// ("resource:action", apikeys.IsScope), a programming error that would
// otherwise refuse every scoped key on the route.
func Scopes(scopes ...string) func(*http.Request) []string {
	for _, s := range scopes {
		if !apikeys.IsScope(s) {
			panic("middleware: Scopes: " + strconv.Quote(s) + " is not a scope (resource:action)")
		}
	}
	scopes = slices.Clone(scopes)
	return func(*http.Request) []string { return scopes }
}

// Protect authenticates requests to next, which need what rt says. It
// panics on a Cost out of range, a programming error.
func (mw *Middleware) Protect(rt Route, next http.Handler) http.Handler {
	if rt.Cost < 0 || rt.Cost > apikeys.MaxQuota {
		panic("middleware: Protect: Route.Cost " + strconv.FormatInt(rt.Cost, 10) + " is not 1 to apikeys.MaxQuota")
	}
	return mw.handler(next, rt)
}

// Handler authenticates requests to next: Protect with a Route that needs
// a private key when Config.RequirePrivate says so, and no scope.
func (mw *Middleware) Handler(next http.Handler) http.Handler {
	return mw.handler(next, Route{Private: mw.private})
}

// RequirePrivate is Handler for a route that needs a private key.
func (mw *Middleware) RequirePrivate(next http.Handler) http.Handler {
	return mw.handler(next, Route{Private: true})
}

// Key returns the key that authorized r. Handlers behind the middleware
// can rely on it being there. Its lists are read-only (see
// apikeys.Manager.Authorize): clone one before changing it.
func Key(r *http.Request) (apikeys.Key, bool) {
	return apikeys.KeyFromContext(r.Context())
}

func (mw *Middleware) handler(next http.Handler, rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &requestState{vw: varyWriter{ResponseWriter: w}} // one allocation for the writer and the header values
		vw := &st.vw
		w = vw
		origins := r.Header.Values("Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			mw.preflight(w, origins)
			return
		}
		st.set(w.Header(), hVary, "Vary", "Origin")
		if len(origins) > 1 {
			mw.render(w, r, &Refusal{Status: http.StatusBadRequest, Message: "more than one Origin header"})
			return
		}
		origin := ""
		if len(origins) == 1 {
			origin = origins[0]
		}
		key, bearer, problem := credentials(r)
		if problem != "" {
			mw.render(w, r, &Refusal{Status: http.StatusBadRequest, Message: problem})
			return
		}
		if key == "" {
			w.Header().Set("WWW-Authenticate", mw.challenge)
			mw.render(w, r, &Refusal{Status: http.StatusUnauthorized, Message: "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>"})
			return
		}
		if !apikeys.ValidKeyFormat(mw.m.Prefix(), key) && !(bearer && apikeys.LooksLikeToken(key)) {
			// Garbage never reaches Config.Resource (which may read the
			// body) or the store; the answer is that of any invalid key.
			// Browser tokens come only as Authorization: Bearer.
			mw.refuse(w, r, apikeys.ErrInvalidKey)
			return
		}
		assistant, transient, err := mw.resource(r)
		if err != nil {
			mw.render(w, r, &Refusal{Status: http.StatusBadRequest, Message: err.Error()})
			return
		}
		req := apikeys.Request{
			Origin: origin, AssistantID: assistant, Transient: transient, RequirePrivate: rt.Private,
			ClientIP: mw.clientIP(r), Cost: rt.Cost,
		}
		if rt.Scopes != nil {
			req.Scopes = rt.Scopes(r)
		}
		k, err := mw.m.Authorize(r.Context(), key, req)
		if apikeys.IsOrigin(origin) && (err == nil || (!errors.Is(err, apikeys.ErrInvalidKey) && corsAllowed(&k, origin))) {
			// Authorized, or refused for another reason than the origin:
			// a page on an origin the key allows may read the answer.
			st.set(w.Header(), hAllowOrigin, "Access-Control-Allow-Origin", origin)
			if k.Limited() {
				w.Header().Set("Access-Control-Expose-Headers", "RateLimit, RateLimit-Policy, Retry-After")
			}
		}
		if k.Limited() && (err == nil || errors.Is(err, apikeys.ErrRateLimited) || errors.Is(err, apikeys.ErrCreditsExhausted)) {
			limitHeaders(w.Header(), &k, mw.m.Now())
		}
		if err != nil {
			if errors.Is(err, apikeys.ErrInsufficientScope) {
				w.Header().Set("WWW-Authenticate", insufficientScope(mw.realm, req.Scopes))
			}
			mw.refuse(w, r, err)
			return
		}
		st.set(w.Header(), hCacheControl, "Cache-Control", "no-store")
		next.ServeHTTP(w, r.WithContext(st.ctx.Init(r.Context(), k)))
		if !vw.wrote {
			vw.addVary() // the handler wrote nothing: net/http sends the headers now
		}
	})
}

// requestState is what the middleware allocates per request, in one
// allocation: the response writer's wrapper, the values of the headers it
// sets on every authorized response, and the context carrying the key.
type requestState struct {
	vw   varyWriter
	vals [3]string
	ctx  apikeys.KeyContext
}

// The headers whose values requestState holds.
const (
	hVary = iota
	hAllowOrigin
	hCacheControl
)

// set sets header key (canonical) to v, as Header.Set does, or, for Vary,
// adds v as Header.Add does. The value slice is st's, capped at one, so
// that an Add by the handler copies it rather than writing into st.
func (st *requestState) set(h http.Header, i int, key, v string) {
	if old, ok := h[key]; ok && i == hVary {
		h[key] = append(old, v)
		return
	}
	st.vals[i] = v
	h[key] = st.vals[i : i+1 : i+1]
}

// corsAllowed reports whether a browser on origin may read answers about
// key k: the origin is well formed and the key allows it, explicitly or,
// for a public key, by having no origin restriction.
func corsAllowed(k *apikeys.Key, origin string) bool {
	return apikeys.IsOrigin(origin) && k.AllowsOrigin(origin)
}

// credentials returns the presented key (or browser token) and whether it
// came as Authorization: Bearer, or a reason the request's credentials are
// unusable.
func credentials(r *http.Request) (key string, bearer bool, problem string) {
	auth, xkey := r.Header["Authorization"], r.Header["X-Api-Key"] // Values, without canonicalizing the keys each time
	switch {
	case len(auth) > 1:
		return "", false, "more than one Authorization header"
	case len(xkey) > 1:
		return "", false, "more than one X-API-Key header"
	case len(auth) == 1 && len(xkey) == 1:
		return "", false, "send the key in Authorization or X-API-Key, not both"
	case len(xkey) == 1:
		key = strings.TrimSpace(xkey[0])
		if key == "" {
			return "", false, "empty X-API-Key header"
		}
		return key, false, ""
	case len(auth) == 1:
		scheme, token, _ := strings.Cut(strings.TrimSpace(auth[0]), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", false, "the Authorization scheme must be Bearer"
		}
		token = strings.TrimSpace(token)
		if token == "" || strings.ContainsAny(token, " \t") {
			return "", false, "malformed Authorization header: use Bearer <key>"
		}
		return token, true, ""
	}
	return "", false, ""
}

// refusals maps each refusal of a valid key to its restriction.
var refusals = []struct {
	err         error
	restriction string
}{
	{apikeys.ErrPrivateKeyRequired, "key_type"},
	{apikeys.ErrPrivateKeyInBrowser, "key_type"},
	{apikeys.ErrOriginNotAllowed, "allowed_origins"},
	{apikeys.ErrAssistantNotAllowed, "allowed_assistants"},
	{apikeys.ErrTransientNotAllowed, "transient_assistant"},
	{apikeys.ErrIPNotAllowed, "allowed_ips"},
	{apikeys.ErrInsufficientScope, "scopes"},
}

// insufficientScope is the WWW-Authenticate challenge of RFC 6750 section
// 3.1 for a request that needed scopes (none: no scope attribute).
func insufficientScope(realm string, scopes []string) string {
	h := `Bearer realm="` + realm + `", error="insufficient_scope"`
	if len(scopes) > 0 {
		h += `, scope="` + strings.Join(scopes, " ") + `"`
	}
	return h
}

// refuse answers a request Authorize refused, after setting the headers
// that go with the outcome.
func (mw *Middleware) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, apikeys.ErrInvalidKey) {
		w.Header().Set("WWW-Authenticate", mw.invalid)
		mw.render(w, r, &Refusal{Status: http.StatusUnauthorized, Message: "invalid API key", Err: apikeys.ErrInvalidKey})
		return
	}
	var le *apikeys.LimitError
	if errors.As(err, &le) {
		restriction := "rate_limit"
		if errors.Is(err, apikeys.ErrCreditsExhausted) {
			restriction = "credits"
		}
		if le.RetryAfter > 0 {
			w.Header().Set("Retry-After", seconds(le.RetryAfter))
		}
		mw.render(w, r, &Refusal{Status: http.StatusTooManyRequests, Message: strings.TrimPrefix(err.Error(), "apikeys: "), Restriction: restriction, Err: err})
		return
	}
	for _, ref := range refusals {
		if errors.Is(err, ref.err) {
			mw.render(w, r, &Refusal{Status: http.StatusForbidden, Message: strings.TrimPrefix(err.Error(), "apikeys: "), Restriction: ref.restriction, Err: err})
			return
		}
	}
	// A store failure, a closed Manager, a timeout, or anything unforeseen:
	// never allowed, and never blamed on the key.
	mw.log.ErrorContext(r.Context(), "apikeys: cannot authorize request", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "1")
	mw.render(w, r, &Refusal{Status: http.StatusServiceUnavailable, Message: "the API key could not be checked; try again", Err: err})
}

// preflight answers a CORS preflight. It never looks at
// Access-Control-Request-Headers: the allowed list is fixed, so the cost
// does not depend on what the request sends.
func (mw *Middleware) preflight(w http.ResponseWriter, origins []string) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if len(origins) == 1 && apikeys.IsOrigin(origins[0]) {
		h.Set("Access-Control-Allow-Origin", origins[0])
		h.Set("Access-Control-Allow-Methods", mw.allowMeths)
		h.Set("Access-Control-Allow-Headers", mw.allowHdrs)
		h.Set("Access-Control-Max-Age", mw.maxAge)
	}
	w.WriteHeader(http.StatusNoContent)
}

// varyWriter makes sure "Origin" is in the Vary header when the response is
// written, even if the handler replaced Vary with its own values.
type varyWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *varyWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.addVary()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *varyWriter) addVary() {
	h := w.Header()
	if !hasToken(h.Values("Vary"), "Origin") {
		h.Add("Vary", "Origin")
	}
}

func (w *varyWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// WriteString writes s without copying it into a []byte when the
// underlying writer can (net/http's can), as io.WriteString would for a
// handler without the middleware.
func (w *varyWriter) WriteString(s string) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return io.WriteString(w.ResponseWriter, s)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *varyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through for streaming handlers.
func (w *varyWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if strings.EqualFold(t, token) || t == "*" {
				return true
			}
		}
	}
	return false
}

// limitHeaders sets the RateLimit-Policy and RateLimit headers of a
// limited key k, whose counters are as of now.
func limitHeaders(h http.Header, k *apikeys.Key, now time.Time) {
	var policy, state []string
	if r := k.RateLimit; r != nil {
		left, reset := k.RateLimitLeft(now)
		policy = append(policy, `"rate_limit";q=`+strconv.FormatInt(r.Limit, 10)+";w="+strconv.FormatInt(r.WindowSeconds, 10))
		state = append(state, `"rate_limit";r=`+strconv.FormatInt(left, 10)+";t="+seconds(reset))
	}
	if c := k.Credits; c != nil && c.Refill != nil {
		left, refill := k.CreditsLeft(now)
		policy = append(policy, `"credits";q=`+strconv.FormatInt(c.Refill.Amount, 10)+";w="+strconv.FormatInt(c.Refill.IntervalSeconds, 10))
		state = append(state, `"credits";r=`+strconv.FormatInt(left, 10)+";t="+seconds(refill))
	}
	if len(policy) > 0 {
		h.Set("RateLimit-Policy", strings.Join(policy, ", "))
		h.Set("RateLimit", strings.Join(state, ", "))
	}
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// Command server is a small voice-agent API protected by apikeys: the REST
// endpoints for managing keys, a demo endpoint a browser calls with a
// short-lived token (or a public key), a page showing how, and an API-keys
// settings page behind a demo sign-in.
//
//	go run ./examples/server                       # in memory, on 127.0.0.1:8080
//	go run ./examples/server -addr 127.0.0.1:9000 -bootstrap alice,bob
//	go run ./examples/server -store redis://127.0.0.1:6379/0
//	go run ./examples/server -store 'postgres://root@127.0.0.1:5432/test?sslmode=disable'
//	go run ./examples/server -store 'mysql://root@127.0.0.1:3306/test'
//	go run -tags sqlite ./examples/server -store sqlite:/tmp/apikeys.db   # SQLite needs the tag
//	go run ./examples/server -store redis://127.0.0.1:6379/0 -cache   # several instances, one truth
//
//	export APIKEYS_TOKEN_KEY=$(head -c 32 /dev/urandom | base64)   # once, for every instance
//	go run ./examples/server -store redis://127.0.0.1:6379/0 -cache  # each instance verifies the others' tokens
//
// -cache turns on the verification cache with the store's change
// notifications (Redis pub/sub, PostgreSQL LISTEN/NOTIFY, a MySQL change
// log), so that several instances on one store refuse a deleted key at
// once; -namespace picks the Redis key prefix or SQL table.
//
// Every authorization decision (with the operator's reason: unknown,
// wrong_secret, origin, rate_limit, ...; never the key) and every key
// change is logged to stderr (hooks/slogaudit); -metrics also counts them
// in OpenTelemetry metrics (hooks/otelhook), served as JSON at GET
// /debug/metrics.
//
// Browser tokens are signed with an Ed25519 key given as the base64 of its
// 32-byte seed, by -token-key or, better (a flag shows in ps), by the
// environment variable APIKEYS_TOKEN_KEY; a comma-separated list rotates:
// the first signs, the others still verify the tokens they signed until
// those expire. Without one, the server generates a key at start: right
// for the memory store, but every instance sharing a store must share the
// key, or tokens minted by one instance won't verify on another; on any
// other store the server then prints a warning saying so.
//
// On start it takes the address (a failed listen creates nothing), opens
// the store, creates one private key for each -bootstrap user that has no
// keys yet and prints it once: "bootstrap private key for USER: KEY", then
// prints "listening on http://ADDR (store: SPEC)" and serves. A password in
// the -store spec is never printed: it shows as xxxxx, also in errors and
// in the log.
//
// Endpoints:
//
//	POST/GET /api_keys, GET/PUT/DELETE /api_keys/{id}, POST /api_keys/{id}/rotate
//	    manage keys (private key required)
//	POST /call/web  {"assistant_id":"..."} or {"assistant":{...}} (transient)
//	    start a web call (a browser token, a public or a private key);
//	    201 {"call_id":"...","assistant_id":"..."}; 429 when the key's
//	    rate_limit or credits are spent, with Retry-After and RateLimit
//	    headers (see package middleware)
//	POST /demo/token  {"assistant_id":"..."}
//	    the demo playing the customer's backend: mints a token from the
//	    first -bootstrap user's private key named "bootstrap", for the
//	    page that asks (its Origin, which must be on this server's host)
//	    and that assistant, for 10 minutes; 201 {"token":"...",
//	    "expires_at":"...","key_id":"..."}. It authenticates no one, as a
//	    real backend must (its user's session); 503 without a -bootstrap
//	    user or when that user has no usable bootstrap key
//	GET /  the landing page: what the demo is, sign in or go to your keys,
//	    how to try a key
//	GET /signin?next=PATH, POST /signin (form: user, next), POST /signout
//	    the demo sign-in: pick a -bootstrap user or type a name (1-64 of
//	    a-z 0-9 . _ -), no password; it sets an HMAC-signed session cookie
//	    (see sessions in site.go) and redirects (303) to next when that is
//	    a path of this site, else to /. The POSTs are refused when a
//	    browser marks them cross-origin (http.CrossOriginProtection)
//	GET /settings/api-keys/
//	    the API-keys settings page (package keyspage) for the signed-in
//	    user, who lists, creates, restricts, rotates and deletes their keys;
//	    its REST endpoints, authorized by the session, are under
//	    /settings/api-keys/api/api_keys. Without a session it redirects to
//	    /signin?next=/settings/api-keys/
//	GET /webcall  a page that gets a token from /demo/token and calls
//	    /call/web with it (Authorization: Bearer), or with a public key
//	    pasted in (one made on the API-keys page must allow the page's
//	    origin), and shows the token's expiry, the answer, and for a 429
//	    its message, when to retry and the RateLimit headers
//	GET /assets/{file}  the pages' stylesheet and script
//	GET /favicon.ico  204: no icon, and no 404 for the browser to log
//
// The pages (files under web/, embedded) share one layout and stylesheet;
// each has a Content-Security-Policy that allows no inline script or
// style, and X-Content-Type-Options: nosniff.
//
// The sign-in asks for no password, but a session cookie still cannot be
// edited into another user's: it is USER.EXPIRY.MAC, the MAC an HMAC-SHA256
// of the user and expiry under a secret drawn at random when the process
// starts (not derived from the token key, so that it signs nothing but
// sessions). Hence a restart signs everyone out, and instances sharing a
// store do not share sessions: a real service keeps its own sessions.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/hooks/otelhook"
	"github.com/keyward/apikeys/hooks/slogaudit"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/internal/storeurl"
	"github.com/keyward/apikeys/keyspage"
	"github.com/keyward/apikeys/middleware"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// opTimeout bounds each store call (the Manager's default, made explicit
// because the SQLite busy timeout must stay below it; see openSQL).
const opTimeout = 5 * time.Second

// run starts the server and serves until ctx is done. ready, when not nil,
// receives the listening address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) (err error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	storeSpec := fs.String("store", "memory", "memory, redis://..., postgres://..., mysql://... or sqlite:PATH (SQLite: build with -tags sqlite)")
	bootstrap := fs.String("bootstrap", "demo", "comma-separated users that get a private key if they have none")
	namespace := fs.String("namespace", "", "Redis key prefix or SQL table name (default: the store's own)")
	cacheOn := fs.Bool("cache", false, "cache verified keys, dropping changed ones at once through the store's notifications (Redis, PostgreSQL, MySQL)")
	metricsOn := fs.Bool("metrics", false, "serve the OpenTelemetry metrics of authorizations and key changes as JSON at GET /debug/metrics")
	tokenKey := fs.String("token-key", "", "browser token signing keys: comma-separated base64 32-byte Ed25519 seeds, the first signs (default: $"+tokenKeyEnv+", else one generated at start)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The -store spec may hold a password: nothing the server prints or
	// returns shows it (the log and the errors, which drivers and net/url
	// may fill with the DSN, are redacted; stdout shows only the redacted
	// spec).
	red := storeurl.NewRedactor(*storeSpec)
	stderr = red.Writer(stderr)
	defer func() { err = red.Err(err) }()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	// Read (and check) the token keys before anything else happens.
	tokenSpec := *tokenKey
	if tokenSpec == "" {
		tokenSpec = os.Getenv(tokenKeyEnv)
	}
	signKeys, signKeyGenerated, err := tokenKeys(tokenSpec)
	if err != nil {
		return err
	}

	// Listen first: a server that cannot listen creates no key.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close() // after Serve, which closes it, a no-op
	opened, err := storeurl.Open(ctx, *storeSpec, *namespace, &storeurl.Options{OpTimeout: opTimeout})
	if err != nil {
		return fmt.Errorf("store %s: %w", red.Spec(), err)
	}
	defer opened.Close()
	store := opened.Store
	// Every decision (with the operator's reason, never the key) and every
	// change goes to the log; with -metrics, to OpenTelemetry metrics too.
	audit := slogaudit.New(log)
	audit.LevelAllowed = slog.LevelInfo
	var hook apikeys.Hook = audit
	var metrics *sdkmetric.ManualReader
	if *metricsOn {
		metrics = sdkmetric.NewManualReader()
		oh, err := otelhook.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics)), nil)
		if err != nil {
			return err
		}
		hook = hooks{audit, oh}
	}
	cfg := &apikeys.Config{OpTimeout: opTimeout, ErrorLog: log, TokenKeys: signKeys, Hook: hook}
	if signKeyGenerated && !storeurl.IsMemory(*storeSpec) {
		fmt.Fprintf(stdout, "warning: no -token-key or %s: this instance signs browser tokens with a key of its own; "+
			"tokens minted by one instance won't verify on another sharing the store\n", tokenKeyEnv)
	}
	if *cacheOn {
		cfg.Cache = &apikeys.CacheConfig{}
		cfg.Invalidator = opened.Invalidator
		if cfg.Invalidator == nil {
			fmt.Fprintln(stdout, "cache: this store sends no change notifications; other instances see changes within the cache TTL")
		}
	}
	m, err := apikeys.New(store, cfg)
	if err != nil {
		return err
	}
	defer func() {
		// Write the last-used times still pending.
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Close(closeCtx); err != nil {
			fmt.Fprintln(stderr, "server: closing:", red.Err(err))
		}
	}()
	users := splitUsers(*bootstrap)
	h, err := newHandler(m, log, users)
	if err == nil && metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("/", h)
		mux.Handle("GET /debug/metrics", metricsHandler(metrics))
		h = mux
	}
	if err != nil {
		return err
	}
	// The bootstrap keys are printed before "listening on", which tells
	// whoever reads the output (.ci/run) that they are all there.
	if err := bootstrapKeys(ctx, m, users, stdout); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	fmt.Fprintf(stdout, "listening on http://%s (store: %s)\n", ln.Addr(), red.Spec())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// bootstrapKeys gives each named user without keys a private key, printed
// once.
// A user whose name the demo's sign-in does not take gets a note: its key
// works for the API, but it is not offered at sign-in.
func bootstrapKeys(ctx context.Context, m *apikeys.Manager, users []string, out io.Writer) error {
	for _, user := range users {
		if !userName.MatchString(user) {
			fmt.Fprintf(out, "note: user %s cannot sign in to the demo's pages (%s)\n", user, badUserName)
		}
		page, err := m.List(ctx, user, apikeys.ListParams{Limit: 1})
		if err != nil {
			return fmt.Errorf("bootstrap %s: %w", user, err)
		}
		if len(page.Keys) > 0 {
			fmt.Fprintf(out, "user %s already has keys; no bootstrap key created\n", user)
			continue
		}
		nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Private, Name: "bootstrap", UserID: user, TransientAssistant: true})
		if err != nil {
			return fmt.Errorf("bootstrap %s: %w", user, err)
		}
		fmt.Fprintf(out, "bootstrap private key for %s: %s\n", user, nk.Value)
	}
	return nil
}

// splitUsers returns the comma-separated users, trimmed, without empty
// ones; the first is the one the demo's backend acts for.
func splitUsers(users string) []string {
	var out []string
	for _, user := range strings.Split(users, ",") {
		if user = strings.TrimSpace(user); user != "" {
			out = append(out, user)
		}
	}
	return out
}

// maxCallBody bounds /call/web bodies.
const maxCallBody = 64 << 10

// newHandler mounts the REST handler, the demo endpoints, the API-keys
// settings page and the demo's pages; users are the -bootstrap users: the
// sign-in page offers them, and the demo's backend mints tokens for the
// first (none: it mints none).
func newHandler(m *apikeys.Manager, log *slog.Logger, users []string) (http.Handler, error) {
	mw, err := middleware.New(m, &middleware.Config{Resource: callResource, ErrorLog: log})
	if err != nil {
		return nil, err
	}
	rest, err := httpapi.New(m, &httpapi.Config{ErrorLog: log})
	if err != nil {
		return nil, err
	}
	sess, err := newSessions()
	if err != nil {
		return nil, err
	}
	keys, err := keyspage.New(m, &keyspage.Config{
		Prefix: keysPrefix, Owner: sess.owner, SignInURL: "/signin", ErrorLog: log,
		Links: []keyspage.Link{{Label: "← Voice agents demo", URL: "/"}, {Label: "Web call", URL: "/webcall"}},
	})
	if err != nil {
		return nil, err
	}
	pages, err := newSite(sess, users, log)
	if err != nil {
		return nil, err
	}
	tokenUser := ""
	if len(users) > 0 {
		tokenUser = users[0]
	}
	mux := http.NewServeMux()
	api := mw.Protect(middleware.Route{Private: true, Scopes: httpapi.RequiredScopes}, rest)
	mux.Handle("/api_keys", api)
	mux.Handle("/api_keys/", api)
	// All methods reach the middleware, so it can answer CORS preflights.
	mux.Handle("/call/web", mw.Protect(middleware.Route{Scopes: middleware.Scopes("calls:write")}, http.HandlerFunc(callWeb)))
	mux.Handle("POST /demo/token", &tokenBackend{m: m, user: tokenUser, log: log})
	mux.Handle(keysPrefix+"/", keys)
	pages.routes(mux)
	return mux, nil
}

// callRequest is the body of POST /call/web.
type callRequest struct {
	AssistantID string          `json:"assistant_id"`
	Assistant   json.RawMessage `json:"assistant"`
}

func parseCall(r *http.Request) (callRequest, error) {
	var c callRequest
	body, err := middleware.PeekBody(r, maxCallBody)
	if err != nil {
		return c, err
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("body must be {\"assistant_id\":\"...\"} or {\"assistant\":{...}}: %v", err)
	}
	transient := len(c.Assistant) > 0 && string(c.Assistant) != "null"
	switch {
	case transient && c.AssistantID != "":
		return c, errors.New("give assistant_id or assistant, not both")
	case !transient && c.AssistantID == "":
		return c, errors.New("assistant_id or assistant is required")
	case transient && c.Assistant[0] != '{':
		return c, errors.New("assistant must be an object")
	}
	return c, nil
}

// callResource tells the middleware which assistant a call wants.
func callResource(r *http.Request) (string, bool, error) {
	if r.URL.Path != "/call/web" || r.Method != http.MethodPost {
		return "", false, nil
	}
	c, err := parseCall(r)
	if err != nil {
		return "", false, err
	}
	return c.AssistantID, c.AssistantID == "", nil
}

func callWeb(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, `{"error":"method not allowed"}`, http.StatusMethodNotAllowed)
		return
	}
	c, err := parseCall(r) // the middleware already checked it
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{"call_id": uuid.NewString(), "assistant_id": c.AssistantID})
}

// hooks sends every event to each hook in turn.
type hooks []apikeys.Hook

func (hs hooks) Decision(ctx context.Context, d apikeys.Decision) {
	for _, h := range hs {
		h.Decision(ctx, d)
	}
}

func (hs hooks) Change(ctx context.Context, c apikeys.Change) {
	for _, h := range hs {
		h.Change(ctx, c)
	}
}

// metricsHandler answers with the metrics collected so far, as JSON: the
// demo's stand-in for an exporter (a service would use an OTLP or
// Prometheus exporter instead).
func metricsHandler(r *sdkmetric.ManualReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var rm metricdata.ResourceMetrics
		if err := r.Collect(req.Context(), &rm); err != nil {
			http.Error(w, "cannot collect metrics", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rm.ScopeMetrics)
	})
}

// Command server is a small voice-agent API protected by apikeys: the REST
// endpoints for managing keys, a demo endpoint a browser calls with a
// short-lived token (or a public key), and a page showing how.
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
//	GET /  a page that gets a token from /demo/token and calls /call/web
//	    with it (Authorization: Bearer), or with a public key pasted in,
//	    and shows the token's expiry, the answer, and for a 429 its
//	    message, when to retry and the RateLimit headers (its stylesheet
//	    and script are /demo.css and /demo.js: its Content-Security-Policy
//	    allows no inline code)
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
	h, err := newHandler(m, log, firstUser(*bootstrap))
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
	if err := bootstrapKeys(ctx, m, *bootstrap, stdout); err != nil {
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
func bootstrapKeys(ctx context.Context, m *apikeys.Manager, users string, out io.Writer) error {
	for _, user := range strings.Split(users, ",") {
		user = strings.TrimSpace(user)
		if user == "" {
			continue
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

// firstUser returns the first of the comma-separated users, the one the
// demo's backend acts for; "" for none.
func firstUser(users string) string {
	for _, user := range strings.Split(users, ",") {
		if user = strings.TrimSpace(user); user != "" {
			return user
		}
	}
	return ""
}

// maxCallBody bounds /call/web bodies.
const maxCallBody = 64 << 10

// newHandler mounts the REST handler, the demo endpoints and the page;
// tokenUser is the user the demo's backend mints tokens for ("" for none).
func newHandler(m *apikeys.Manager, log *slog.Logger, tokenUser string) (http.Handler, error) {
	mw, err := middleware.New(m, &middleware.Config{Resource: callResource, ErrorLog: log})
	if err != nil {
		return nil, err
	}
	rest, err := httpapi.New(m, &httpapi.Config{ErrorLog: log})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	api := mw.Protect(middleware.Route{Private: true, Scopes: httpapi.RequiredScopes}, rest)
	mux.Handle("/api_keys", api)
	mux.Handle("/api_keys/", api)
	// All methods reach the middleware, so it can answer CORS preflights.
	mux.Handle("/call/web", mw.Protect(middleware.Route{Scopes: middleware.Scopes("calls:write")}, http.HandlerFunc(callWeb)))
	mux.Handle("POST /demo/token", &tokenBackend{m: m, user: tokenUser, log: log})
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /demo.css", asset("text/css; charset=utf-8", pageCSS))
	mux.HandleFunc("GET /demo.js", asset("text/javascript; charset=utf-8", pageJS))
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

// pageCSP lets the page load its stylesheet and script from its own
// origin, and nothing inline; connect-src is open because the page calls
// whatever API base the user types in.
const pageCSP = "default-src 'self'; connect-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"

func page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	_, _ = io.WriteString(w, pageHTML)
}

// asset serves one of the page's files.
func asset(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, body)
	}
}

const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>apikeys demo</title>
<link rel="stylesheet" href="/demo.css">
</head><body>
<h1>Start a web call from the browser</h1>
<p>The page holds no key. Its backend keeps the private key and gives the page a short-lived token,
restricted to this page's origin and one assistant. Here the demo server plays the backend, acting
for its bootstrap user; a real one would first check its user's session.</p>
<label>Assistant id <input id="assistant" value="asst-demo"></label>
<p><button id="get-token">1. Get a token: POST /demo/token</button></p>
<pre id="token-info">(no token yet: step 2 gets one if needed)</pre>
<pre id="token" class="token"></pre>
<label>API base <input id="base"></label>
<p><button id="go">2. POST /call/web with Authorization: Bearer &lt;token&gt;</button></p>
<pre id="out">(result)</pre>
<details><summary>Or paste a public key instead of the token</summary>
<p>Create a public key that allows this page's origin, with the bootstrap private key the server printed:</p>
<pre id="curl"></pre>
<label>Public key <input id="key" placeholder="ak_pk_..."></label>
<p>While this field holds a key, step 2 sends it instead of the token.</p>
</details>
<p>To see a limit at work, give the key (the bootstrap key, whose tokens spend its limits, or the
public key) <code>"rate_limit":{"limit":3,"window_seconds":60}</code> or
<code>"credits":{"remaining":3,"refill":null}</code> and call more than three times: the API answers
429, and says when to retry (Retry-After) and what is left (RateLimit, RateLimit-Policy).</p>
<script src="/demo.js"></script>
</body></html>
`

const pageCSS = `body{font:15px system-ui;max-width:46rem;margin:2rem auto;padding:0 1rem}
input{width:100%;font:inherit}
pre{background:#f4f4f4;padding:.6rem;overflow:auto}
.token{word-break:break-all;white-space:pre-wrap;font-size:12px}
.token:empty{display:none}
`

const pageJS = `const origin = location.origin;
const $ = (id) => document.getElementById(id);
$('base').value = origin;
$('curl').textContent =
  "curl -s " + origin + "/api_keys -H 'Authorization: Bearer <bootstrap private key>' \\\n" +
  "  -d '{\"api_key\":{\"name\":\"web\",\"key_type\":\"public\",\"allowed_origins\":[\"" + origin + "\"],\"allowed_assistants\":[\"asst-demo\"]}}'";
// retryIn reads Retry-After (seconds, or an HTTP date) as whole seconds
// from now; null when it is absent or unreadable.
const retryIn = (value) => {
  if (value === null) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
};
// describe says what an answer means: its status and body, and for a key
// with limits what the rate-limit headers tell (a page on another origin
// can read them too: the API lists them in Access-Control-Expose-Headers).
const describe = (res, text) => {
  const notes = [];
  if (res.status === 429) {
    let body = {};
    try { body = JSON.parse(text); } catch (e) { /* not JSON: the raw text is shown */ }
    notes.push('Too many requests: ' + (body.error || 'refused') + (body.restriction ? ' (' + body.restriction + ')' : ''));
    const wait = retryIn(res.headers.get('Retry-After'));
    notes.push(wait === null ? 'No Retry-After: waiting will not help; raise the key\'s limits with PUT /api_keys/{id}.' : 'retry in ' + wait + ' s');
  }
  for (const name of ['RateLimit', 'RateLimit-Policy']) {
    const value = res.headers.get(name);
    if (value !== null) notes.push(name + ': ' + value);
  }
  return res.status + ' ' + text.trim() + (notes.length ? '\n\n' + notes.join('\n') : '');
};
// token is the token the backend gave, for the assistant it names; null
// before the first.
let token = null;
// getToken asks the page's own backend (same origin: a real one would know
// the user by the session cookie this request carries) for a token, and
// shows it; it reports whether it got one.
const getToken = async () => {
  const assistant = $('assistant').value.trim();
  const res = await fetch('/demo/token', {
    method: 'POST',
    credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({assistant_id: assistant}),
  });
  const text = await res.text();
  if (res.status !== 201) {
    token = null;
    $('token').textContent = '';
    $('token-info').textContent = 'no token: ' + res.status + ' ' + text.trim();
    return false;
  }
  const t = JSON.parse(text);
  const expires = new Date(t.expires_at);
  token = {value: t.token, assistant, expires};
  $('token').textContent = t.token;
  $('token-info').textContent = 'token for ' + origin + ' and assistant ' + assistant + ', from key ' + t.key_id +
    '\nexpires at ' + expires.toLocaleTimeString() + ' (' + t.expires_at + '), in ' +
    Math.round((expires.getTime() - Date.now()) / 1000) + ' s';
  return true;
};
// fresh reports whether the token can serve a call now: for the assistant
// asked for, and not about to expire.
const fresh = () => token !== null && token.assistant === $('assistant').value.trim() &&
  token.expires.getTime() - Date.now() > 10000;
$('get-token').onclick = async () => {
  try {
    await getToken();
  } catch (e) {
    $('token-info').textContent = 'no token: ' + e;
  }
};
$('go').onclick = async () => {
  const out = $('out');
  try {
    // A public key pasted in wins; otherwise the token, a new one when
    // there is none, it is for another assistant, or it is expiring.
    let credential = $('key').value.trim();
    if (credential === '') {
      if (!fresh() && !(await getToken())) {
        out.textContent = 'no token to call with: see the answer of /demo/token above';
        return;
      }
      credential = token.value;
    }
    const res = await fetch($('base').value + '/call/web', {
      method: 'POST',
      headers: {'Authorization': 'Bearer ' + credential, 'Content-Type': 'application/json'},
      body: JSON.stringify({assistant_id: $('assistant').value.trim()}),
    });
    out.textContent = describe(res, await res.text());
  } catch (e) {
    out.textContent = 'blocked: ' + e;
  }
};
`

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

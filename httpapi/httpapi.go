// Package httpapi serves the API Keys REST endpoints:
//
//	POST   {prefix}/api_keys               create: 201, data holds key_value (shown once)
//	GET    {prefix}/api_keys               list, newest first: ?limit=1..1000 (default 100) &cursor=
//	GET    {prefix}/api_keys/{id}          get
//	PUT    {prefix}/api_keys/{id}          partial update
//	DELETE {prefix}/api_keys/{id}          delete: 200 with the deleted key
//	POST   {prefix}/api_keys/{id}/rotate   rotate: {"grace_period_seconds": N}; 201 with the new key_value
//	POST   {prefix}/api_keys/tokens        mint a browser token from the authenticated key: 201 (see MintToken below)
//	GET    {prefix}/api_keys/tokens/jwks.json   the public keys that verify tokens (see JWKS)
//	GET    {prefix}/api_keys/openapi.json       the OpenAPI 3.1 document of these routes (see OpenAPI and Spec)
//
// Responses use the platform's envelope,
// {"status":{"code":200,"message":"Success"},"data":...}, and for errors
// {"status":{"code":400,"message":"Bad Request"},"error":"...","errors":["field: reason",...]}.
// Request bodies are wrapped: {"api_key":{"name":"...","key_type":"public",...}}.
// Only create and rotate answers hold key_value.
//
// The handler belongs behind middleware.RequirePrivate: the owner of the
// keys is the authenticated private key's user (or Config.Owner). A
// public key gets 403. Another user's key is 404, like a missing one.
//
// Bad input never stores anything and is a 400 listing every problem:
// malformed JSON, a body over Config.MaxBodyBytes (64 KiB), a missing
// "api_key" wrapper, unknown or read-only fields, wrong types, and each
// invalid field as the Manager validates it. Updates may not carry
// key_type or key_value. A wrong method is 405 with Allow.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/internal/envelope"
)

// Owner is whose keys a request manages.
type Owner struct {
	UserID    string
	UserEmail string
}

// Config configures the handler. nil and the zero value give the defaults.
type Config struct {
	// Prefix is the path the routes live under, such as "/v1"; no
	// trailing slash. Default "" (routes at /api_keys).
	Prefix string

	// Owner returns whose keys the request manages, for services that
	// authenticate users another way. Default: the private key that
	// authorized the request (set by the middleware); a public key gets
	// 403 and a request without a key 401. An error from Owner is a 401
	// "authentication required": its text is logged at Debug level, never
	// sent, since it may hold the host's internals.
	Owner func(*http.Request) (Owner, error)

	// MaxBodyBytes bounds request bodies. Default 64 KiB.
	MaxBodyBytes int64

	// MaxGracePeriod bounds a rotation's grace period. Default 30 days.
	MaxGracePeriod time.Duration

	// ErrorLog receives store and internal failures. Default slog.Default().
	ErrorLog *slog.Logger
}

type handler struct {
	m        *apikeys.Manager
	owner    func(*http.Request) (Owner, error)
	maxBody  int64
	maxGrace time.Duration
	log      *slog.Logger
	mux      *http.ServeMux
}

// New returns the REST handler. It fails when m is nil or the Config is
// invalid: Prefix not a clean path, or a negative MaxBodyBytes or
// MaxGracePeriod (neither can be turned off).
func New(m *apikeys.Manager, cfg *Config) (http.Handler, error) {
	if m == nil {
		return nil, errors.New("httpapi: New: nil Manager")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if !validPrefix(c.Prefix) {
		return nil, fmt.Errorf("httpapi: New: Prefix %q must start with / and not end with one", c.Prefix)
	}
	if c.MaxBodyBytes < 0 || c.MaxGracePeriod < 0 {
		return nil, errors.New("httpapi: New: MaxBodyBytes and MaxGracePeriod must not be negative")
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.MaxGracePeriod == 0 {
		c.MaxGracePeriod = 30 * 24 * time.Hour
	}
	if c.ErrorLog == nil {
		c.ErrorLog = slog.Default()
	}
	h := &handler{m: m, owner: c.Owner, maxBody: c.MaxBodyBytes, maxGrace: c.MaxGracePeriod, log: c.ErrorLog, mux: http.NewServeMux()}
	if h.owner == nil {
		h.owner = ownerFromKey
	}
	base := c.Prefix + "/api_keys"
	routes := []struct {
		path    string
		methods map[string]http.HandlerFunc
	}{
		{base, map[string]http.HandlerFunc{"GET": h.list, "POST": h.create}},
		{base + "/{id}", map[string]http.HandlerFunc{"GET": h.get, "PUT": h.update, "DELETE": h.delete}},
		{base + "/{id}/rotate", map[string]http.HandlerFunc{"POST": h.rotate}},
		{base + "/tokens/jwks.json", map[string]http.HandlerFunc{"GET": newJWKS(m).ServeHTTP}},
	}
	for _, r := range routes {
		var allow []string
		for m := range r.methods {
			allow = append(allow, m)
			if m == "GET" {
				allow = append(allow, "HEAD")
			}
		}
		slices.Sort(allow)
		for method, fn := range r.methods {
			if strings.HasSuffix(r.path, "/jwks.json") {
				h.mux.Handle(method+" "+r.path, fn) // public keys: no owner needed
				continue
			}
			h.mux.Handle(method+" "+r.path, h.withOwner(fn))
		}
		isID := r.path == base+"/{id}"
		h.mux.HandleFunc(r.path, func(w http.ResponseWriter, req *http.Request) {
			if isID && req.PathValue("id") == "tokens" {
				methodNotAllowed(w, tokensAllow)
				return
			}
			if isID && req.PathValue("id") == "openapi.json" {
				methodNotAllowed(w, specAllow)
				return
			}
			methodNotAllowed(w, allow)
		})
	}
	// {base}/tokens is more specific than {base}/{id} for each method of
	// the latter, and "tokens" is never a key id: the methods of
	// {base}/{id} other than POST are 405 here, and so is any other method
	// (the method-less {base}/{id} pattern above answers for "tokens").
	h.mux.Handle("POST "+base+"/tokens", h.withOwner(h.mintToken))
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		h.mux.HandleFunc(method+" "+base+"/tokens", func(w http.ResponseWriter, _ *http.Request) {
			methodNotAllowed(w, tokensAllow)
		})
	}
	// {base}/openapi.json likewise: the document, which needs no owner.
	h.mux.Handle("GET "+base+"/openapi.json", &specHandler{body: specFor(c.Prefix)})
	for _, method := range []string{"PUT", "DELETE"} {
		h.mux.HandleFunc(method+" "+base+"/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
			methodNotAllowed(w, specAllow)
		})
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		envelope.WriteError(w, http.StatusNotFound, "no such endpoint", nil, nil)
	})
	return h, nil
}

// validPrefix reports whether p is a Prefix New accepts.
func validPrefix(p string) bool {
	return p == "" || strings.HasPrefix(p, "/") && !strings.HasSuffix(p, "/") && !strings.ContainsAny(p, "{} \t")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Answers may hold key values: never cache them.
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// RequiredScopes returns the scope a request to the handler needs:
// api_keys:read for GET and HEAD, api_keys:write for everything else
// (minting a token, POST {prefix}/api_keys/tokens, included). Give
// it to the middleware's Route, so that a key scoped to other work is
// refused before the handler runs:
//
//	mw.Protect(middleware.Route{Private: true, Scopes: httpapi.RequiredScopes}, rest)
//
// The Manager checks the same of the key that manages keys in any case.
func RequiredScopes(r *http.Request) []string {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return readScopes
	}
	return writeScopes
}

// methodNotAllowed answers 405 with Allow.
func methodNotAllowed(w http.ResponseWriter, allow []string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	envelope.WriteError(w, http.StatusMethodNotAllowed, "method not allowed; allowed: "+strings.Join(allow, ", "), nil, nil)
}

var (
	readScopes  = []string{apikeys.ScopeKeysRead}
	writeScopes = []string{apikeys.ScopeKeysWrite}
)

// errNoKey and errPublicKey are what the default Owner refuses.
var (
	errNoKey     = errors.New("no authenticated API key")
	errPublicKey = errors.New("public key")
)

func ownerFromKey(r *http.Request) (Owner, error) {
	k, ok := apikeys.KeyFromContext(r.Context())
	switch {
	case !ok:
		return Owner{}, errNoKey
	case k.Type != apikeys.Private:
		return Owner{}, errPublicKey
	}
	return Owner{UserID: k.UserID, UserEmail: k.UserEmail}, nil
}

type ownerKey struct{}

func (h *handler) withOwner(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := h.owner(r)
		switch {
		case errors.Is(err, errPublicKey):
			envelope.WriteError(w, http.StatusForbidden, "managing API keys requires a private key, but a public key was used", nil,
				map[string]string{"restriction": "key_type", "key_type": "public", "required_key_type": "private"})
			return
		case errors.Is(err, errNoKey):
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			envelope.WriteError(w, http.StatusUnauthorized, "an API key is required", nil, nil)
			return
		case err != nil:
			// A custom Owner's error is the host's own (a session store's
			// address, a cookie that failed to decode): logged, never shown.
			h.log.DebugContext(r.Context(), "httpapi: Owner refused the request", "err", err)
			envelope.WriteError(w, http.StatusUnauthorized, "authentication required", nil, nil)
			return
		case o.UserID == "":
			h.fail(w, r, errors.New("httpapi: Owner returned an empty user id"))
			return
		}
		next(w, r.WithContext(contextWithOwner(r, o)))
	})
}

func contextWithOwner(r *http.Request, o Owner) context.Context {
	return context.WithValue(r.Context(), ownerKey{}, o)
}

func owner(r *http.Request) Owner { return r.Context().Value(ownerKey{}).(Owner) }

// id parses the {id} path value; anything that is not a key id is simply
// not found.
func (h *handler) id(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	s := r.PathValue("id")
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		envelope.WriteError(w, http.StatusNotFound, "API key not found", nil, nil)
		return uuid.UUID{}, false
	}
	return id, true
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	fields, probs, ok := h.body(w, r)
	if !ok {
		return
	}
	o := owner(r)
	p := apikeys.CreateParams{UserID: o.UserID, UserEmail: o.UserEmail}
	bad := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		raw := fields[name]
		switch name {
		case "name":
			bad[name] = !decodeString(&probs, name, raw, &p.Name)
		case "key_type":
			var t string
			bad[name] = !decodeString(&probs, name, raw, &t)
			p.Type = apikeys.KeyType(t)
		case "allowed_origins":
			bad[name] = !decodeStrings(&probs, name, raw, &p.AllowedOrigins)
		case "allowed_assistants":
			bad[name] = !decodeStrings(&probs, name, raw, &p.AllowedAssistants)
		case "transient_assistant":
			bad[name] = !decodeBool(&probs, name, raw, &p.TransientAssistant)
		case "scopes":
			bad[name] = !decodeStrings(&probs, name, raw, &p.Scopes)
		case "allowed_ips":
			bad[name] = !decodeStrings(&probs, name, raw, &p.AllowedIPs)
		case "enabled":
			var enabled bool
			bad[name] = !decodeBool(&probs, name, raw, &enabled)
			p.Disabled = !enabled
		case "expires_at":
			var t *time.Time
			bad[name] = !decodeTime(&probs, name, raw, &t)
			if t != nil {
				p.ExpiresAt = *t
			}
		case "rate_limit":
			bad[name] = !decodeObject(&probs, name, raw, &p.RateLimit, `{"limit": 100, "window_seconds": 60}`)
		case "credits":
			bad[name] = !decodeObject(&probs, name, raw, &p.Credits, `{"remaining": 1000, "refill": {"amount": 1000, "interval_seconds": 86400}}`)
		default:
			probs = append(probs, unknownField(name))
		}
	}
	if len(probs) > 0 {
		h.invalid(w, probs, h.m.ValidateCreate(p), bad)
		return
	}
	nk, err := h.m.Create(r.Context(), p)
	if err != nil {
		h.error(w, r, err)
		return
	}
	envelope.WriteData(w, http.StatusCreated, nk, nil)
}

func (h *handler) update(w http.ResponseWriter, r *http.Request) {
	id, ok := h.id(w, r)
	if !ok {
		return
	}
	fields, probs, ok := h.body(w, r)
	if !ok {
		return
	}
	var u apikeys.UpdateParams
	bad := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		raw := fields[name]
		switch name {
		case "name":
			u.Name = new(string)
			bad[name] = !decodeString(&probs, name, raw, u.Name)
		case "allowed_origins":
			u.AllowedOrigins = new([]string)
			bad[name] = !decodeStrings(&probs, name, raw, u.AllowedOrigins)
		case "allowed_assistants":
			u.AllowedAssistants = new([]string)
			bad[name] = !decodeStrings(&probs, name, raw, u.AllowedAssistants)
		case "transient_assistant":
			u.TransientAssistant = new(bool)
			bad[name] = !decodeBool(&probs, name, raw, u.TransientAssistant)
		case "scopes":
			u.Scopes = new([]string)
			bad[name] = !decodeStrings(&probs, name, raw, u.Scopes)
		case "allowed_ips":
			u.AllowedIPs = new([]string)
			bad[name] = !decodeStrings(&probs, name, raw, u.AllowedIPs)
		case "enabled":
			var enabled bool
			bad[name] = !decodeBool(&probs, name, raw, &enabled)
			u.Disabled = new(!enabled)
		case "expires_at":
			var t *time.Time
			bad[name] = !decodeTime(&probs, name, raw, &t)
			u.ExpiresAt = new(time.Time)
			if t != nil {
				*u.ExpiresAt = *t
			}
		case "rate_limit":
			bad[name] = !decodeObject(&probs, name, raw, &u.RateLimit, `{"limit": 100, "window_seconds": 60}`)
			u.RemoveRateLimit = u.RateLimit == nil && !bad[name]
		case "credits":
			bad[name] = !decodeObject(&probs, name, raw, &u.Credits, `{"remaining": 1000, "refill": {"amount": 1000, "interval_seconds": 86400}}`)
			u.RemoveCredits = u.Credits == nil && !bad[name]
		case "key_type":
			probs = append(probs, "key_type: cannot be changed; create a new key instead")
		default:
			probs = append(probs, unknownField(name))
		}
	}
	for name, b := range bad {
		if b { // leave bad fields out of the dry run, so each is reported once
			switch name {
			case "name":
				u.Name = nil
			case "allowed_origins":
				u.AllowedOrigins = nil
			case "allowed_assistants":
				u.AllowedAssistants = nil
			case "scopes":
				u.Scopes = nil
			case "allowed_ips":
				u.AllowedIPs = nil
			case "expires_at":
				u.ExpiresAt = nil
			case "rate_limit":
				u.RateLimit = nil
			case "credits":
				u.Credits = nil
			}
		}
	}
	if len(probs) > 0 {
		h.invalid(w, probs, h.m.ValidateUpdate(u), bad)
		return
	}
	k, err := h.m.Update(r.Context(), owner(r).UserID, id, u)
	if err != nil {
		h.error(w, r, err)
		return
	}
	envelope.WriteData(w, http.StatusOK, k, nil)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var opts apikeys.ListParams
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			envelope.WriteError(w, http.StatusBadRequest, "invalid query", []string{"limit: must be an integer"}, nil)
			return
		}
		if n == 0 {
			n = -1 // an explicit 0 is out of range, not "the default"
		}
		opts.Limit = n
	}
	opts.Cursor = q.Get("cursor")
	page, err := h.m.List(r.Context(), owner(r).UserID, opts)
	if err != nil {
		h.error(w, r, err)
		return
	}
	envelope.WriteData(w, http.StatusOK, page.Keys, pagination{NextCursor: page.NextCursor, HasMore: page.HasMore})
}

type pagination struct {
	NextCursor string `json:"next_cursor"`
	HasMore    bool   `json:"has_more"`
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	id, ok := h.id(w, r)
	if !ok {
		return
	}
	k, err := h.m.Get(r.Context(), owner(r).UserID, id)
	if err != nil {
		h.error(w, r, err)
		return
	}
	envelope.WriteData(w, http.StatusOK, k, nil)
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := h.id(w, r)
	if !ok {
		return
	}
	k, err := h.m.Delete(r.Context(), owner(r).UserID, id)
	if err != nil {
		h.error(w, r, err)
		return
	}
	envelope.WriteData(w, http.StatusOK, k, nil)
}

func (h *handler) rotate(w http.ResponseWriter, r *http.Request) {
	id, ok := h.id(w, r)
	if !ok {
		return
	}
	var grace time.Duration
	raw, ok := h.read(w, r)
	if !ok {
		return
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			envelope.WriteError(w, http.StatusBadRequest, "malformed JSON", []string{jsonProblem(err)}, nil)
			return
		}
		var probs []string
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			v := fields[name]
			if name != "grace_period_seconds" {
				probs = append(probs, unknownField(name))
				continue
			}
			var n int64
			if err := json.Unmarshal(v, &n); err != nil || n < 0 || n > int64(h.maxGrace/time.Second) {
				probs = append(probs, fmt.Sprintf("grace_period_seconds: must be an integer from 0 to %d", int64(h.maxGrace/time.Second)))
				continue
			}
			grace = time.Duration(n) * time.Second
		}
		if len(probs) > 0 {
			envelope.WriteError(w, http.StatusBadRequest, "invalid request", probs, nil)
			return
		}
	}
	nk, err := h.m.Rotate(r.Context(), owner(r).UserID, id, grace)
	switch {
	case errors.Is(err, apikeys.ErrOldKeyLive) && nk.Value != "":
		// The new key works and only this answer holds its value: give it,
		// and say that the old key may still work.
		h.log.ErrorContext(r.Context(), "apikeys: rotate: old key not retired", "id", id, "new_id", nk.ID, "err", err)
		envelope.WriteWarning(w, http.StatusCreated, nk, "the new key was created, but the old key could not be retired and may still work; delete it or set its expires_at")
	case err != nil:
		h.error(w, r, err)
	default:
		envelope.WriteData(w, http.StatusCreated, nk, nil)
	}
}

// read reads the whole body, at most maxBody bytes.
func (h *handler) read(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			envelope.WriteError(w, http.StatusBadRequest, "request body too large", []string{fmt.Sprintf("body: at most %d bytes", h.maxBody)}, nil)
		} else {
			envelope.WriteError(w, http.StatusBadRequest, "cannot read request body", nil, nil)
		}
		return nil, false
	}
	return buf.Bytes(), true
}

// body reads {"api_key":{...}} and returns the inner object's members
// undecoded, with any problems of the wrapper itself.
func (h *handler) body(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, []string, bool) {
	raw, ok := h.read(w, r)
	if !ok {
		return nil, nil, false
	}
	return wrapped(w, raw, "api_key")
}

// wrapped decodes raw as {wrapper:{...}} and returns the inner object's
// members undecoded, with any problems of the wrapper itself.
func wrapped(w http.ResponseWriter, raw []byte, wrapper string) (map[string]json.RawMessage, []string, bool) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(raw, &outer); err != nil {
		envelope.WriteError(w, http.StatusBadRequest, "malformed JSON", []string{jsonProblem(err)}, nil)
		return nil, nil, false
	}
	var probs []string
	for _, name := range slices.Sorted(maps.Keys(outer)) {
		if name != wrapper {
			probs = append(probs, unknownField(name)+`; fields go inside "`+wrapper+`"`)
		}
	}
	inner, present := outer[wrapper]
	if !present {
		envelope.WriteError(w, http.StatusBadRequest, "invalid request", append(probs, wrapper+`: required; wrap the fields as {"`+wrapper+`":{...}}`), nil)
		return nil, nil, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(inner, &fields); err != nil || fields == nil {
		envelope.WriteError(w, http.StatusBadRequest, "invalid request", append(probs, wrapper+": must be an object"), nil)
		return nil, nil, false
	}
	return fields, probs, true
}

func unknownField(name string) string {
	switch name {
	case "key_value":
		return "key_value: cannot be set; it is generated and shown once on creation"
	case "id", "hint", "created_at", "updated_at", "last_used_at", "successor_id":
		return name + ": is read-only"
	case "user_id", "user_email":
		return name + ": is set from the authenticated key"
	}
	return strconv.Quote(name) + ": unknown field"
}

func jsonProblem(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("body: invalid JSON at byte %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return "body: must be a JSON object"
	}
	return "body: " + err.Error()
}

func decodeString(probs *[]string, name string, raw json.RawMessage, dst *string) bool {
	if json.Unmarshal(raw, dst) != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		*probs = append(*probs, name+": must be a string")
		return false
	}
	return true
}

func decodeStrings(probs *[]string, name string, raw json.RawMessage, dst *[]string) bool {
	if json.Unmarshal(raw, dst) != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		*probs = append(*probs, name+": must be an array of strings")
		return false
	}
	return true
}

func decodeBool(probs *[]string, name string, raw json.RawMessage, dst *bool) bool {
	if json.Unmarshal(raw, dst) != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		*probs = append(*probs, name+": must be true or false")
		return false
	}
	return true
}

// decodeObject decodes a JSON object of known members into *dst, or null
// into nil. Unknown members and values of the wrong type are problems,
// reported with an example of the expected shape.
//
// Every member must be present (null where it may be): a member left out
// would silently be zero, as "credits": {"refill": ...} would start a key
// with no credits, or a PUT of {"credits": {"remaining": 500}} would drop
// its refill.
func decodeObject[T any](probs *[]string, name string, raw json.RawMessage, dst **T, example string) bool {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		*dst = nil
		return true
	}
	var members map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	v := new(T)
	if json.Unmarshal(raw, &members) != nil || d.Decode(v) != nil || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) || !hasMembers(v, members) {
		*probs = append(*probs, name+": must be null or an object with every member, such as "+example)
		return false
	}
	*dst = v
	return true
}

// hasMembers reports whether members are exactly the JSON members of v's
// type, spelled exactly (encoding/json would also take "LIMIT" for
// "limit", the last of several winning, so that what is stored could
// differ from what a reader of the body sees), and likewise for credits'
// refill.
func hasMembers(v any, members map[string]json.RawMessage) bool {
	var need []string
	switch v := v.(type) {
	case *apikeys.RateLimit:
		need = []string{"limit", "window_seconds"}
	case *apikeys.Credits:
		need = []string{"remaining", "refill"}
		if v.Refill != nil {
			var refill map[string]json.RawMessage
			if json.Unmarshal(members["refill"], &refill) != nil || !hasMembers(v.Refill, refill) {
				return false
			}
		}
	case *apikeys.Refill:
		need = []string{"amount", "interval_seconds"}
	}
	if len(members) != len(need) {
		return false
	}
	for _, n := range need {
		if _, ok := members[n]; !ok {
			return false
		}
	}
	return true
}

// decodeTime accepts an RFC 3339 string, or null for "no expiry".
func decodeTime(probs *[]string, name string, raw json.RawMessage, dst **time.Time) bool {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return true
	}
	var t time.Time
	if json.Unmarshal(raw, &t) != nil {
		*probs = append(*probs, name+": must be an RFC 3339 time such as 2027-01-02T15:04:05Z, or null")
		return false
	}
	*dst = &t
	return true
}

// invalid answers 400 with the decoding problems and the validation
// problems of the fields that decoded.
func (h *handler) invalid(w http.ResponseWriter, probs []string, validation error, bad map[string]bool) {
	for _, fe := range apikeys.FieldErrors(validation) {
		base, _, _ := strings.Cut(fe.Field, "[")
		base, _, _ = strings.Cut(base, ".")
		if !bad[base] {
			probs = append(probs, fe.Field+": "+fe.Reason)
		}
	}
	envelope.WriteError(w, http.StatusBadRequest, "invalid request", probs, nil)
}

func (h *handler) error(w http.ResponseWriter, r *http.Request, err error) {
	var se *apikeys.StoreError
	switch {
	case errors.Is(err, apikeys.ErrValidation):
		var probs []string
		for _, fe := range apikeys.FieldErrors(err) {
			probs = append(probs, fe.Field+": "+fe.Reason)
		}
		envelope.WriteError(w, http.StatusBadRequest, "invalid request", probs, nil)
	case errors.Is(err, apikeys.ErrNotPermitted):
		// A change made with a key that would give more than the key has.
		var probs []string
		restriction := ""
		for _, pe := range apikeys.PermissionErrors(err) {
			probs = append(probs, pe.Field+": "+pe.Reason)
			if restriction == "" {
				restriction, _, _ = strings.Cut(pe.Field, "[")
				restriction, _, _ = strings.Cut(restriction, ".")
			}
		}
		envelope.WriteError(w, http.StatusForbidden, "not permitted for the API key making the change: a key can only give what it has", probs,
			map[string]string{"restriction": restriction})
	case errors.Is(err, apikeys.ErrInsufficientScope):
		// The key that manages keys lacks api_keys:read or api_keys:write.
		var se *apikeys.ScopeError
		scope := ""
		if errors.As(err, &se) {
			scope = se.Scope
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="insufficient_scope", scope="`+scope+`"`)
		envelope.WriteError(w, http.StatusForbidden, "the API key does not hold the scope "+scope, nil,
			map[string]string{"restriction": "scopes"})
	case errors.Is(err, apikeys.ErrNotFound):
		envelope.WriteError(w, http.StatusNotFound, "API key not found", nil, nil)
	case errors.Is(err, apikeys.ErrAlreadyRotated):
		envelope.WriteError(w, http.StatusConflict, strings.TrimPrefix(err.Error(), "apikeys: "), nil, nil)
	case errors.Is(err, apikeys.ErrConflict):
		envelope.WriteError(w, http.StatusConflict, "the key was changed concurrently; retry", nil, nil)
	case errors.As(err, &se), errors.Is(err, apikeys.ErrClosed):
		h.log.ErrorContext(r.Context(), "apikeys: store failure", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		envelope.WriteError(w, http.StatusServiceUnavailable, "the key store is unavailable; try again", nil, nil)
	default:
		h.fail(w, r, err)
	}
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "apikeys: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	envelope.WriteError(w, http.StatusInternalServerError, "internal error", nil, nil)
}

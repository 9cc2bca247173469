package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/httpapi"
	"github.com/keyward/apikeys/memstore"
)

// spec is the OpenAPI document as httpapi.Spec serves it for a prefix,
// loaded, validated and routed.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	specsMu sync.Mutex
	specs   = map[string]*spec{}
)

// loadSpec loads the document served for prefix (once per prefix).
func loadSpec(t testing.TB, prefix string) *spec {
	t.Helper()
	specsMu.Lock()
	defer specsMu.Unlock()
	if s, ok := specs[prefix]; ok {
		return s
	}
	w := httptest.NewRecorder()
	httpapi.Spec(prefix).ServeHTTP(w, httptest.NewRequest("GET", "/openapi.json", nil))
	require.Equal(t, 200, w.Code)
	doc, err := openapi3.NewLoader().LoadFromData(w.Body.Bytes())
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	s := &spec{doc: doc, router: router}
	specs[prefix] = s
	return s
}

// validated wraps h, a REST handler with the given Prefix (behind the
// middleware or not), so that every answer it gives is checked against
// the OpenAPI document, failing t on a mismatch; and every request it
// accepts (2xx) too. The tests of the package serve through it, so the
// document cannot drift from the handler.
func validated(t testing.TB, prefix string, h http.Handler) http.Handler {
	s := loadSpec(t, prefix)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			var err error
			body, err = io.ReadAll(r.Body)
			require.NoError(t, err)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if err := s.check(r, body, rec); err != nil {
			t.Errorf("the answer to %s %s does not match the OpenAPI document: %v\n%d %v\n%s", r.Method, r.URL, err, rec.Code, rec.Header(), rec.Body)
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// check validates the answer rec to the request r, whose body was body.
func (s *spec) check(r *http.Request, body []byte, rec *httptest.ResponseRecorder) error {
	ctx := context.Background()
	req := r.Clone(ctx)
	if len(bytes.TrimSpace(body)) == 0 {
		body = nil // the handler takes a blank body for none
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json") // the handler reads every body as JSON
	}
	head := req.Method == http.MethodHead
	if head {
		req.Method = http.MethodGet // HEAD is GET without the body
	}
	if rec.Code == http.StatusMethodNotAllowed {
		// A method the document does not list for the path.
		if rec.Header().Get("Allow") == "" {
			return errors.New("405 without Allow")
		}
		return s.checkError(rec)
	}
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		// A path or method the document does not list: 404 from the
		// handler, unless the middleware refused the request first.
		switch rec.Code {
		case 400, 401, 403, 404, 429, 503:
			return s.checkError(rec)
		}
		return fmt.Errorf("%v, but the answer is %d, not 404", err, rec.Code)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		ExcludeResponseBody:   head,
		MultiError:            true,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if rec.Code >= 200 && rec.Code < 300 && !head {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("the handler accepted a request the document does not: %w", err)
		}
	}
	if head && rec.Body.Len() > 0 {
		return errors.New("HEAD answered with a body")
	}
	return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                opts,
	})
}

// checkError validates an answer outside the document's operations
// against its Error schema.
func (s *spec) checkError(rec *httptest.ResponseRecorder) error {
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		return err
	}
	return s.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
}

// TestOpenAPIDocument: the embedded document loads and is a valid
// OpenAPI 3.1 document, describes every route, and the handler serves
// it, with servers set to the prefix.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI())
	require.NoError(t, err)
	require.NoError(t, doc.Validate(t.Context()))
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	assert.Empty(t, doc.Servers, "servers are added as served")
	want := map[string][]string{
		"/api_keys":                  {"GET", "POST"},
		"/api_keys/{id}":             {"DELETE", "GET", "PUT"},
		"/api_keys/{id}/rotate":      {"POST"},
		"/api_keys/tokens":           {"POST"},
		"/api_keys/tokens/jwks.json": {"GET"},
		"/api_keys/openapi.json":     {"GET"},
	}
	got := map[string][]string{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			got[path] = append(got[path], method)
		}
	}
	for p := range got {
		slices.Sort(got[p])
	}
	assert.Equal(t, want, got)

	// OpenAPI returns a copy.
	b := httpapi.OpenAPI()
	b[0] = 'x'
	assert.Equal(t, byte('{'), httpapi.OpenAPI()[0])

	// Served by the handler (behind the middleware, with a key) and by
	// Spec, with the prefix as the server.
	e := newEnv(t, nil)
	res := e.do(e.alice.Value, "GET", "/api_keys/openapi.json", "")
	require.Equal(t, 200, res.code, res.raw)
	assert.Equal(t, "public, max-age=300", res.header.Get("Cache-Control"))
	assert.JSONEq(t, string(httpapi.OpenAPI()), res.raw)
	assert.Equal(t, 200, e.do(e.alice.Value, "HEAD", "/api_keys/openapi.json", "").code)
	assert.Equal(t, 401, e.do("", "GET", "/api_keys/openapi.json", "").code)
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		res := e.do(e.alice.Value, method, "/api_keys/openapi.json", "")
		assert.Equal(t, 405, res.code, method)
		assert.Equal(t, "GET, HEAD", res.header.Get("Allow"), method)
	}

	m, err := apikeys.New(memstore.New(), nil)
	require.NoError(t, err)
	h, err := httpapi.New(m, &httpapi.Config{Prefix: "/v1"})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	validated(t, "/v1", h).ServeHTTP(w, httptest.NewRequest("GET", "/v1/api_keys/openapi.json", nil))
	require.Equal(t, 200, w.Code, "no owner needed: %s", w.Body)
	served, err := openapi3.NewLoader().LoadFromData(w.Body.Bytes())
	require.NoError(t, err)
	require.NoError(t, served.Validate(t.Context()))
	require.Len(t, served.Servers, 1)
	assert.Equal(t, "/v1", served.Servers[0].URL)
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))

	w = httptest.NewRecorder()
	httpapi.Spec("").ServeHTTP(w, httptest.NewRequest("DELETE", "/openapi.json", nil))
	assert.Equal(t, 405, w.Code)
	assert.Equal(t, "GET, HEAD", w.Header().Get("Allow"))
	assert.Panics(t, func() { httpapi.Spec("v1/") })
}

// TestOpenAPICatchesDrift: the validation fails on answers that differ
// from the document, so that it would catch a handler that drifted.
func TestOpenAPICatchesDrift(t *testing.T) {
	t.Parallel()
	s := loadSpec(t, "")
	id := "0190a0a0-0000-7000-8000-000000000000"
	key := `{"id":"` + id + `","key_type":"public","name":"k","allowed_origins":[],"allowed_assistants":[],"transient_assistant":false,"scopes":[],"allowed_ips":[],"rate_limit":null,"credits":null,"user_id":"u","user_email":"","hint":"ak_pk_...abcd","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","enabled":true`
	answer := func(code int, body string, hdr ...string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/json; charset=utf-8")
		for i := 0; i+1 < len(hdr); i += 2 {
			rec.Header().Set(hdr[i], hdr[i+1])
		}
		rec.WriteHeader(code)
		rec.WriteString(body)
		return rec
	}
	ok := `{"status":{"code":200,"message":"Success"},"data":` + key + `}}`
	get := httptest.NewRequest("GET", "/api_keys/"+id, nil)
	require.NoError(t, s.check(get, nil, answer(200, ok)), "the sample is right")
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"key_value outside create and rotate": answer(200, `{"status":{"code":200,"message":"Success"},"data":`+key+`,"key_value":"ak_pk_x"}}`),
		"a member missing":                    answer(200, strings.Replace(ok, `"hint":"ak_pk_...abcd",`, "", 1)),
		"an unknown member":                   answer(200, strings.Replace(ok, `"enabled":true`, `"enabled":true,"colour":"red"`, 1)),
		"a wrong type":                        answer(200, strings.Replace(ok, `"enabled":true`, `"enabled":"yes"`, 1)),
		"not in the envelope":                 answer(200, key+`}`),
		"an undocumented status":              answer(418, `{"status":{"code":418,"message":"I'm a teapot"},"error":"x","errors":[]}`),
		"an error without errors":             answer(404, `{"status":{"code":404,"message":"Not Found"},"error":"API key not found"}`),
		"an unknown restriction":              answer(403, `{"status":{"code":403,"message":"Forbidden"},"error":"x","errors":[],"restriction":"colour"}`),
		"503 without Retry-After":             answer(503, `{"status":{"code":503,"message":"Service Unavailable"},"error":"x","errors":[]}`),
		"405 without Allow":                   answer(405, `{"status":{"code":405,"message":"Method Not Allowed"},"error":"x","errors":[]}`),
	} {
		assert.Error(t, s.check(get, nil, rec), name)
	}
	// An accepted request the document does not allow.
	put := httptest.NewRequest("PUT", "/api_keys/"+id, nil)
	assert.Error(t, s.check(put, []byte(`{"api_key":{"colour":"red"}}`), answer(200, ok)))
	assert.NoError(t, s.check(put, []byte(`{"api_key":{"name":"x"}}`), answer(200, ok)))
}

// TestOpenAPILimitedKey: the answers to a key with a rate limit and
// refilled credits carry RateLimit headers, and a spent key gets 429,
// as the document says (e.do validates them).
func TestOpenAPILimitedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res := e.do(e.alice.Value, "POST", "/api_keys", `{"api_key":{"name":"limited","key_type":"private","rate_limit":{"limit":2,"window_seconds":3600},"credits":{"remaining":10,"refill":{"amount":10,"interval_seconds":86400}}}}`)
	require.Equal(t, 201, res.code, res.raw)
	limited := res.data()["key_value"].(string)
	res = e.do(limited, "GET", "/api_keys", "")
	require.Equal(t, 200, res.code, res.raw)
	assert.NotEmpty(t, res.header.Get("RateLimit"))
	assert.NotEmpty(t, res.header.Get("RateLimit-Policy"))
	require.Equal(t, 200, e.do(limited, "GET", "/api_keys", "").code)
	res = e.do(limited, "GET", "/api_keys", "")
	require.Equal(t, 429, res.code, res.raw)
	assert.Equal(t, "rate_limit", res.body["restriction"])
	assert.NotEmpty(t, res.header.Get("Retry-After"))
}
